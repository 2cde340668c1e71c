/**
 * A small seeded PRNG (sfc32, state filled by splitmix32) so that a fuzz run
 * is reproduced by its seed. Not for anything but tests.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** One of `rows`, each chosen with probability weight / sum of weights. */
  weighted<T>(rows: ReadonlyArray<readonly [T, number]>): T {
    let total = 0;
    for (const [, w] of rows) total += w;
    let x = (this.u32() / 0x1_0000_0000) * total;
    for (const [v, w] of rows) {
      if (x < w) return v;
      x -= w;
    }
    return rows[rows.length - 1]![0];
  }

  /**
   * n random bytes. Long runs are copied from a fixed pseudo-random pool at a
   * random offset (as reproducible, and far cheaper than generating each byte).
   */
  bytes(n: number): Buffer {
    if (n > 256) {
      const b = Buffer.allocUnsafe(n);
      for (let at = 0; at < n; ) {
        const start = this.int(POOL.length - 256);
        at += POOL.copy(b, at, start, Math.min(POOL.length, start + (n - at)));
      }
      b.writeUInt32LE(this.u32(), 0);
      return b;
    }
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(this.u32(), i);
    for (; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }

  /** A length that is usually small and sometimes large: 0..max, log-uniform-ish. */
  size(max: number): number {
    const bits = this.int(Math.ceil(Math.log2(max + 1)) + 1);
    return Math.min(max, this.int(2 ** bits));
  }

  /** An independent generator seeded from this one. */
  fork(): Prng {
    return new Prng(this.u32());
  }
}

/** 1 MiB of bytes from a fixed seed, the source of Prng.bytes() for long runs. */
const POOL: Buffer = (() => {
  const g = new Prng(0x706f6f6c);
  const b = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(g.u32(), i);
  return b;
})();
