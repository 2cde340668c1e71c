/** DirtyBitmap: the bit operations, in memory, and its durability bookkeeping with a fake committer. */
import { describe, expect, it } from 'vitest';
import { BitmapWrite, CommitHooks, DirtyBitmap } from '../../../../src/mirror/meta/bitmap';
import { GroupCommit } from '../../../../src/mirror/meta/group-commit';

const KiB = 1024;
const R = 64 * KiB;

describe('DirtyBitmap bits', () => {
  it('marks every region a byte range touches', async () => {
    const bm = DirtyBitmap.inMemory(100 * R, R);
    await bm.mark(R - 1, 2); // regions 0 and 1
    await bm.mark(10 * R, R); // exactly region 10
    await bm.mark(20 * R + 5, 0); // nothing
    expect([0, 1, 2, 9, 10, 11, 20].map((r) => bm.isDirty(r))).toEqual([true, true, false, false, true, false, false]);
    expect(bm.dirtyRegions()).toBe(3);
  });

  it('finds the next dirty region across bytes and words', async () => {
    const bm = DirtyBitmap.inMemory(5000 * R, R);
    for (const r of [3, 8, 31, 32, 700, 4999]) await bm.markRegions(r);
    const found: number[] = [];
    for (let r = bm.findNextDirty(0); r !== -1; r = bm.findNextDirty(r + 1)) found.push(r);
    expect(found).toEqual([3, 8, 31, 32, 700, 4999]);
    expect(bm.findNextDirty(4)).toBe(8);
    expect(bm.findNextDirty(33)).toBe(700);
    expect(bm.findNextDirty(5000)).toBe(-1);
    expect(bm.findNextDirty(-3)).toBe(3);
  });

  it('scans a large clean map quickly', async () => {
    const bm = DirtyBitmap.inMemory(2 ** 40, R); // 16 Mi regions, 2 MiB
    await bm.markRegions(bm.regionCount - 1);
    const t = performance.now();
    expect(bm.findNextDirty(0)).toBe(bm.regionCount - 1);
    expect(performance.now() - t).toBeLessThan(500);
  });

  it('counts dirty bytes with a short last region', async () => {
    const bm = DirtyBitmap.inMemory(3 * R + 100, R);
    expect(bm.regionCount).toBe(4);
    expect(bm.regionRange(3)).toEqual({ offset: 3 * R, length: 100 });
    await bm.markRegions(2, 2);
    expect(bm.dirtyBytes()).toBe(R + 100);
    await bm.markRegions(0);
    expect(bm.dirtyBytes()).toBe(2 * R + 100);
  });

  it('clears lazily and counts', async () => {
    const bm = DirtyBitmap.inMemory(64 * R, R);
    await bm.markRegions(0, 64);
    bm.clear(10, 5);
    bm.clear(10); // already clear
    expect(bm.dirtyRegions()).toBe(59);
    expect(bm.findNextDirty(10)).toBe(15);
    await bm.flushLazy();
  });

  it('setAll marks every region, spare bits stay zero', async () => {
    const bm = DirtyBitmap.inMemory(13 * R, R);
    await bm.setAll();
    expect(bm.dirtyRegions()).toBe(13);
    expect([...bm.toBytes()]).toEqual([0xff, 0x1f]);
  });

  it('serialises LSB first and merges a peer bitmap', async () => {
    const a = DirtyBitmap.inMemory(20 * R, R);
    await a.markRegions(0);
    await a.markRegions(9);
    expect([...a.toBytes()]).toEqual([0x01, 0x02, 0x00]);
    const b = DirtyBitmap.inMemory(20 * R, R, Buffer.from([0x80, 0x02, 0xff]));
    expect(b.dirtyRegions()).toBe(1 + 1 + 4); // the last byte's spare bits are masked
    await a.merge(b.toBytes());
    expect([...a.toBytes()]).toEqual([0x81, 0x02, 0x0f]);
    expect(a.dirtyRegions()).toBe(7);
    await expect(a.merge(Buffer.alloc(2))).rejects.toThrow(RangeError);
  });

  it('round-trips through bytes', async () => {
    const a = DirtyBitmap.inMemory(1000 * R, R);
    for (let r = 0; r < 1000; r += 7) await a.markRegions(r);
    const b = DirtyBitmap.inMemory(1000 * R, R, a.toBytes());
    expect(b.toBytes()).toEqual(a.toBytes());
    expect(b.dirtyRegions()).toBe(a.dirtyRegions());
  });

  it('agrees with a plain array under random marks and clears of any span', async () => {
    let seed = 42;
    const rnd = (k: number): number => Math.floor(((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * k);
    const regions = 300;
    const bm = DirtyBitmap.inMemory(regions * R, R);
    const model = new Array<boolean>(regions).fill(false);
    for (let i = 0; i < 2000; i++) {
      const first = rnd(regions);
      const count = rnd(Math.min(40, regions - first) + 1);
      if (rnd(2) === 0) {
        await bm.markRegions(first, count);
        model.fill(true, first, first + count);
      } else {
        bm.clear(first, count);
        model.fill(false, first, first + count);
      }
      if (i % 50 === 0) {
        expect(bm.dirtyRegions()).toBe(model.filter(Boolean).length);
        const from = rnd(regions);
        const next = model.indexOf(true, from);
        expect(bm.findNextDirty(from)).toBe(next);
      }
    }
    expect(model.map((_, r) => bm.isDirty(r))).toEqual(model);
  });

  it('marks a whole 16 TiB volume quickly (a byte at a time)', async () => {
    const bm = DirtyBitmap.inMemory(16 * 2 ** 40, R); // 256 Mi regions, 32 MiB
    const t = performance.now();
    await bm.mark(0, bm.sizeBytes);
    expect(bm.dirtyRegions()).toBe(2 ** 28);
    bm.clear(1, 2 ** 28 - 2);
    expect(bm.dirtyRegions()).toBe(2);
    expect(performance.now() - t).toBeLessThan(10_000);
  });

  it('refuses ranges outside the volume', async () => {
    const bm = DirtyBitmap.inMemory(10 * R, R);
    await expect(bm.mark(9 * R, R + 1)).rejects.toThrow(RangeError);
    await expect(bm.mark(-1, 1)).rejects.toThrow(RangeError);
    expect(() => bm.clear(10)).toThrow(RangeError);
    expect(() => bm.isDirty(10)).toThrow(RangeError);
  });

  it('resizes, masking or adding regions', async () => {
    const bm = DirtyBitmap.inMemory(20 * R, R);
    await bm.markRegions(0, 20);
    expect(bm.resizeTo(10 * R, false)).toBe(2); // shrinking: nothing on disk to rewrite
    expect(bm.dirtyRegions()).toBe(10);
    expect([...bm.toBytes()]).toEqual([0xff, 0x03]);
    expect(bm.resizeTo(30 * R, false)).toBe(1);
    expect(bm.dirtyRegions()).toBe(10);
    bm.resizeTo(40 * R, true);
    expect(bm.dirtyRegions()).toBe(20);
    expect(bm.findNextDirty(10)).toBe(30);
  });
});

/** A bitmap whose commits are recorded: what each commit wrote. */
function persisted(sizeBytes: number): { bm: DirtyBitmap; commits: BitmapWrite[][]; gate: { hold: Promise<void> | null } } {
  const commits: BitmapWrite[][] = [];
  const gate: { hold: Promise<void> | null } = { hold: null };
  // eslint-disable-next-line prefer-const
  let bm: DirtyBitmap;
  const committer = new GroupCommit(async () => {
    const writes = bm.takeWrites(false);
    if (gate.hold) await gate.hold;
    commits.push(writes);
    bm.settleWrites();
  });
  const hooks: CommitHooks = { request: () => committer.request(), current: () => committer.current(), check: () => undefined };
  bm = new DirtyBitmap(sizeBytes, R, hooks);
  return { bm, commits, gate };
}

describe('DirtyBitmap durability', () => {
  it('concurrent marks share one commit that writes only the changed words', async () => {
    const { bm, commits } = persisted(100_000 * R);
    await Promise.all([bm.markRegions(0), bm.markRegions(5), bm.markRegions(63), bm.markRegions(64_000)]);
    expect(commits).toHaveLength(1);
    expect(commits[0]!.map((w) => [w.offset, w.bytes.length])).toEqual([
      [0, 8],
      [8000, 8],
    ]);
  });

  it('marking bits that are already durable costs no commit', async () => {
    const { bm, commits } = persisted(1000 * R);
    await bm.markRegions(3);
    await bm.mark(3 * R, 10);
    await bm.merge(bm.toBytes());
    expect(commits).toHaveLength(1);
  });

  it('a mark of a bit still being written waits for that write', async () => {
    const { bm, commits, gate } = persisted(1000 * R);
    let release!: () => void;
    gate.hold = new Promise((r) => (release = r));
    let firstDone = false;
    const first = bm.markRegions(3).then(() => (firstDone = true));
    await new Promise((r) => setImmediate(r)); // the commit has started and holds
    let secondDone = false;
    const second = bm.markRegions(3).then(() => (secondDone = true));
    await new Promise((r) => setImmediate(r));
    expect([firstDone, secondDone]).toEqual([false, false]);
    gate.hold = null;
    release();
    await Promise.all([first, second]);
    expect(commits).toHaveLength(1);
  });

  it('lazy clears are written by flushLazy or with a later commit of their word', async () => {
    const { bm, commits } = persisted(1000 * R);
    await bm.markRegions(0, 200);
    bm.clear(0, 64);
    bm.clear(500 - 300); // region 200 is clean already: nothing to write
    await bm.flushLazy();
    expect(commits.at(-1)!.map((w) => [w.offset, [...w.bytes]])).toEqual([[0, [0, 0, 0, 0, 0, 0, 0, 0]]]);
    bm.clear(64);
    await bm.markRegions(65 + 64 * 5); // another word: the lazy one is not written
    expect(commits.at(-1)!.map((w) => w.offset)).toEqual([48]);
    await bm.flushLazy();
    expect(commits.at(-1)!.map((w) => w.offset)).toEqual([8]);
  });

  it('many scattered changes become a few larger writes', async () => {
    const { bm, commits } = persisted(1_000_000 * R);
    await Promise.all(Array.from({ length: 1000 }, (_, i) => bm.markRegions(i * 128)));
    expect(commits).toHaveLength(1);
    expect(commits[0]!.length).toBe(1); // 16-byte gaps merge into one run
    await bm.setAll();
    const all = commits.at(-1)!;
    expect(all.map((w) => w.offset)).toEqual([0]);
    expect(all[0]!.bytes.equals(bm.toBytes())).toBe(true);
  });
});
