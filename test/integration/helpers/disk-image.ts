/**
 * An in-memory model of what a LUN should contain: start from zeros, apply
 * the same pattern writes sent to the target, then compare the backing file
 * (by sha256, and by first differing offset for a readable failure).
 */
import { createHash } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import type { PatternOp } from './qemu';

export interface Extent {
  readonly offset: number;
  readonly length: number;
}

export class ExpectedImage {
  readonly bytes: Buffer;

  constructor(readonly size: number) {
    this.bytes = Buffer.alloc(size);
  }

  /** Apply pattern writes (verify ops are ignored). */
  apply(ops: readonly PatternOp[]): this {
    for (const { op, offset, length, pattern } of ops) {
      if (op !== 'write') continue;
      if (offset < 0 || offset + length > this.size) throw new Error(`write ${offset}+${length} is outside the ${this.size}-byte image`);
      this.bytes.fill(pattern, offset, offset + length);
    }
    return this;
  }

  /** Copy `data` into the image at `offset` (a write of non-uniform data). */
  applyBytes(offset: number, data: Buffer): this {
    if (offset < 0 || offset + data.length > this.size) throw new Error(`write ${offset}+${data.length} is outside the ${this.size}-byte image`);
    data.copy(this.bytes, offset);
    return this;
  }

  /**
   * Verify ops that check `extents` against this image: one "read -P" per run
   * of equal bytes, so overlapping writes are checked byte-exactly.
   */
  verifyOps(extents: readonly Extent[]): PatternOp[] {
    const ops: PatternOp[] = [];
    for (const { offset, length } of extents) {
      let start = offset;
      const end = offset + length;
      while (start < end) {
        const value = this.bytes[start]!;
        let stop = start + 1;
        while (stop < end && this.bytes[stop] === value) stop++;
        ops.push({ op: 'verify', offset: start, length: stop - start, pattern: value });
        start = stop;
      }
    }
    return ops;
  }

  /** Save as a raw image file (for qemu-img compare). */
  async writeTo(path: string): Promise<void> {
    await writeFile(path, this.bytes);
  }

  sha256(): string {
    return createHash('sha256').update(this.bytes).digest('hex');
  }
}

/** sha256 of a whole file, hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    for await (const chunk of fh.createReadStream({ highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** Offset of the first byte where the file differs from `expected` (or the shorter length), else undefined. */
export async function firstDifference(path: string, expected: Buffer): Promise<number | undefined> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const chunk = Buffer.alloc(1024 * 1024);
    for (let pos = 0; pos < Math.min(size, expected.length); pos += chunk.length) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
      if (chunk.subarray(0, bytesRead).equals(expected.subarray(pos, pos + bytesRead))) continue;
      for (let i = 0; i < bytesRead; i++) {
        if (chunk[i] !== expected[pos + i]) return pos + i;
      }
    }
    return size === expected.length ? undefined : Math.min(size, expected.length);
  } finally {
    await fh.close();
  }
}

/**
 * `length` bytes in which every 4-byte word holds its own index (big-endian),
 * xor `seed`: no two 512-byte sectors are alike, so misplaced, reordered or
 * repeated sectors show up.
 */
export function stampedBytes(length: number, seed = 0): Buffer {
  if (length % 4 !== 0) throw new Error(`length must be a multiple of 4, got ${length}`);
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4) buf.writeUInt32BE(((i / 4) ^ seed) >>> 0, i);
  return buf;
}
