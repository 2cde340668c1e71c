/** Batched submission (src/block/io-queue.ts): many transfers per engine job, each settled on its own; small ones that cannot block run inline. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IoInline, TransferOwner, inlineHints, ownedRead, ownedWrite, queuedPreadv, queuedPwritev } from '../../../src/block/io-queue';
import { blockIo } from '../../../src/block/native';
import { expectBlockIoError, pattern, scratchDir } from './helpers';

const tmp = scratchDir();
afterAll(() => tmp.remove());

describe('queued transfers', () => {
  it('writes and reads back 200 transfers issued in one tick, gathered from several buffers each', async () => {
    const { fd } = blockIo.openFile(tmp.file('many.img'), { create: true, sizeBytes: 200 * 4096 });
    const writes = [];
    for (let i = 0; i < 200; i++) {
      const data = pattern(4096, i);
      writes.push(queuedPwritev(fd, [data.subarray(0, 1000), data.subarray(1000)], i * 4096, i % 7 === 0));
    }
    expect(await Promise.all(writes)).toEqual(new Array(200).fill(4096));
    const backs = Array.from({ length: 200 }, () => Buffer.alloc(4096));
    const reads = backs.map((b, i) => queuedPreadv(fd, [b.subarray(0, 17), b.subarray(17)], i * 4096));
    expect(await Promise.all(reads)).toEqual(new Array(200).fill(4096));
    backs.forEach((b, i) => expect(b.equals(pattern(4096, i))).toBe(true));
    await blockIo.close(fd);
  });

  it('spreads large transfers over several jobs and keeps each result with its transfer', async () => {
    const { fd } = blockIo.openFile(tmp.file('large.img'), { create: true, sizeBytes: 8 * 1024 * 1024 });
    const mib = 1024 * 1024;
    const writes = Array.from({ length: 8 }, (_, i) => queuedPwritev(fd, [pattern(mib, i + 50)], i * mib, false));
    await Promise.all(writes);
    const backs = Array.from({ length: 8 }, () => Buffer.alloc(mib));
    await Promise.all(backs.map((b, i) => queuedPreadv(fd, [b], i * mib)));
    backs.forEach((b, i) => expect(b.equals(pattern(mib, i + 50))).toBe(true));
    await blockIo.close(fd);
  });

  it('fails only the transfer that failed: a bad descriptor in the same tick as good ones', async () => {
    const { fd } = blockIo.openFile(tmp.file('mixed.img'), { create: true, sizeBytes: 8192 });
    const good = queuedPwritev(fd, [pattern(4096, 3)], 0, false);
    const bad = queuedPwritev(999_999, [pattern(4096, 4)], 0, false);
    const badRead = queuedPreadv(999_998, [Buffer.alloc(16)], 0);
    const goodRead = queuedPreadv(fd, [Buffer.alloc(100)], 8100);
    expect(await good).toBe(4096);
    const err = await expectBlockIoError(bad, 'EBADF');
    expect(err.message).toMatch(/pwritev$/);
    expect((await expectBlockIoError(badRead, 'EBADF')).message).toMatch(/preadv$/);
    // A read running into end of file stops there.
    expect(await goodRead).toBe(92);
    await blockIo.close(fd);
  });

  it('rejects a transfer whose offset is not a safe integer, without hanging the others', async () => {
    const { fd } = blockIo.openFile(tmp.file('args.img'), { create: true, sizeBytes: 4096 });
    const bad = queuedPreadv(fd, [Buffer.alloc(16)], -1);
    await expect(bad).rejects.toThrow(TypeError);
    expect(await queuedPreadv(fd, [Buffer.alloc(16)], 0)).toBe(16);
    await blockIo.close(fd);
  });
});

describe('owned transfers', () => {
  /** An owner that records what it is told and wraps errors so the test can see they went through it. */
  function recorder(): TransferOwner & { settled: number; errors: unknown[] } {
    const o = {
      settled: 0,
      errors: [] as unknown[],
      transferSettled: () => void o.settled++,
      transferError: (err: unknown) => (o.errors.push(err), new Error(`owner: ${(err as Error).message}`)),
      shortRead: (offset: number, done: number, length: number) => new Error(`short ${offset} ${done}/${length}`),
    };
    return o;
  }

  it('resolve with the given value, and tell the owner of each transfer before they settle', async () => {
    const { fd } = blockIo.openFile(tmp.file('owned.img'), { create: true, sizeBytes: 8192 });
    const owner = recorder();
    const data = pattern(4096, 9);
    const wrote = ownedWrite(owner, fd, [data.subarray(0, 100), data.subarray(100)], 4096, true, IoInline.NONE);
    await expect(wrote).resolves.toBeUndefined();
    expect(owner.settled).toBe(1);
    const back = Buffer.alloc(4096);
    const token = { read: 'back' };
    await expect(ownedRead(owner, fd, [back], 4096, IoInline.NONE, token)).resolves.toBe(token);
    expect(back.equals(data)).toBe(true);
    expect(owner.settled).toBe(2);
    await blockIo.close(fd);
  });

  it("reject a failure with the owner's error and a short read with its shortRead", async () => {
    const { fd } = blockIo.openFile(tmp.file('owned-short.img'), { create: true, sizeBytes: 4096 });
    const owner = recorder();
    await expect(ownedWrite(owner, 999_997, [pattern(512, 1)], 0, false, IoInline.NONE)).rejects.toThrow(/^owner: .*pwritev$/);
    expect((owner.errors[0] as { code?: string }).code).toBe('EBADF');
    await expect(ownedRead(owner, fd, [Buffer.alloc(1000)], 3596, IoInline.NONE, null)).rejects.toThrow('short 3596 500/1000');
    expect(owner.settled).toBe(2);
    await blockIo.close(fd);
  });
});

describe('transfers run inline', () => {
  const shm = existsSync('/dev/shm') ? mkdtempSync(path.join('/dev/shm', 'twinsan-block-')) : null;
  afterAll(() => shm && rmSync(shm, { recursive: true, force: true }));

  /** submitBatch straight: which transfers came back at once (not NaN). */
  function submit(fd: number, specs: { write: boolean; offset: number; data: Buffer; inline: IoInline }[]): { inline: Float64Array; later: Promise<Float64Array | null> } {
    let resolve!: (r: Float64Array | null) => void;
    const later = new Promise<Float64Array | null>((r) => (resolve = r));
    const inline = blockIo.submitBatch(
      Int32Array.from(specs.map(() => fd)),
      Float64Array.from(specs.map((s) => s.offset)),
      Uint8Array.from(specs.map((s) => (s.write ? 1 : 0) | s.inline)),
      Uint32Array.from(specs.map(() => 1)),
      specs.map((s) => s.data),
      resolve,
    );
    if (!inline.some(Number.isNaN)) resolve(null);
    return { inline, later };
  }

  it.skipIf(shm === null)('on tmpfs, small transfers complete inside the call; large ones and later ones on the same file go to the engine, in order', async () => {
    const opened = blockIo.openFile(path.join(shm!, 'mem.img'), { create: true, sizeBytes: 4 * 1024 * 1024 });
    expect(opened.memoryBacked).toBe(true);
    expect(inlineHints(opened, false)).toEqual({ read: IoInline.MEMORY, write: IoInline.MEMORY });
    const small = pattern(4096, 1);
    const big = pattern(1024 * 1024, 2);
    const overlapping = pattern(4096, 3);
    const { inline, later } = submit(opened.fd, [
      { write: true, offset: 0, data: small, inline: IoInline.MEMORY },
      { write: true, offset: 8192, data: big, inline: IoInline.MEMORY },
      // Inside the big write's range: must not overtake it.
      { write: true, offset: 8192, data: overlapping, inline: IoInline.MEMORY },
    ]);
    expect(inline[0]).toBe(4096);
    expect(Number.isNaN(inline[1]!)).toBe(true);
    expect(Number.isNaN(inline[2]!)).toBe(true);
    const rest = await later;
    expect(Array.from(rest!.subarray(1))).toEqual([1024 * 1024, 4096]);
    const back = Buffer.alloc(8192 + 1024 * 1024);
    expect(await queuedPreadv(opened.fd, [back], 0, IoInline.MEMORY)).toBe(back.length);
    expect(back.subarray(0, 4096).equals(small)).toBe(true);
    expect(back.subarray(8192, 8192 + 4096).equals(overlapping)).toBe(true);
    expect(back.subarray(8192 + 4096).equals(big.subarray(4096))).toBe(true);
    await blockIo.close(opened.fd);
  });

  it.skipIf(shm === null)("writes inline results into the caller's array, call after call, and refuses one that is too short", async () => {
    const opened = blockIo.openFile(path.join(shm!, 'results.img'), { create: true, sizeBytes: 4 * 1024 * 1024 });
    const results = new Float64Array(2);
    const batch = (data: Buffer[], done: (r: Float64Array) => void = () => undefined, into: Float64Array = results): Float64Array | undefined =>
      blockIo.submitBatch(
        Int32Array.from(data.map(() => opened.fd)),
        Float64Array.from(data.map((_, i) => i * 1024 * 1024)),
        Uint8Array.from(data.map(() => 1 | IoInline.MEMORY)),
        Uint32Array.from(data.map(() => 1)),
        data,
        done,
        into,
      );
    expect(batch([pattern(4096, 1), pattern(512, 2)])).toBe(results);
    expect(Array.from(results)).toEqual([4096, 512]);
    expect(batch([pattern(1024, 3)])).toBe(results);
    expect(results[0]).toBe(1024);
    // A transfer left to the engine: NaN in the caller's array, its result in a new array later.
    let later!: (r: Float64Array) => void;
    const fromEngine = new Promise<Float64Array>((r) => (later = r));
    batch([pattern(4096, 4), pattern(1024 * 1024, 5)], later);
    expect(results[0]).toBe(4096);
    expect(Number.isNaN(results[1]!)).toBe(true);
    const rest = await fromEngine;
    expect(rest).not.toBe(results);
    expect(rest[1]).toBe(1024 * 1024);
    expect(() => batch([pattern(16, 6), pattern(16, 7), pattern(16, 8)])).toThrow(RangeError);
    expect(() => batch([pattern(16, 6)], undefined, new Float32Array(4) as unknown as Float64Array)).toThrow(TypeError);
    const back = Buffer.alloc(4096);
    expect(await queuedPreadv(opened.fd, [back], 0, IoInline.MEMORY)).toBe(4096);
    expect(back.equals(pattern(4096, 4))).toBe(true);
    await blockIo.close(opened.fd);
  });

  it('on a file system with RWF_NOWAIT reads, a cached read completes inside the call; writes never do', async () => {
    const opened = blockIo.openFile(tmp.file('nowait.img'), { create: true, sizeBytes: 64 * 1024 });
    const hints = inlineHints(opened, false);
    if (opened.memoryBacked) return; // os.tmpdir() on tmpfs: covered above
    expect(hints.write).toBe(IoInline.NONE);
    if (!opened.nowaitReads) {
      expect(hints.read).toBe(IoInline.NONE);
      return;
    }
    expect(hints.read).toBe(IoInline.TRY_NOWAIT);
    const data = pattern(4096, 9);
    const w = submit(opened.fd, [{ write: true, offset: 4096, data, inline: IoInline.TRY_NOWAIT }]);
    expect(Number.isNaN(w.inline[0]!)).toBe(true);
    expect(Array.from((await w.later)!)).toEqual([4096]);
    // Just written: in the page cache.
    const back = Buffer.alloc(4096);
    const r = submit(opened.fd, [{ write: false, offset: 4096, data: back, inline: IoInline.TRY_NOWAIT }]);
    expect(r.inline[0]).toBe(4096);
    expect(await r.later).toBeNull();
    expect(back.equals(data)).toBe(true);
    await blockIo.close(opened.fd);
  });

  it('never runs O_DIRECT transfers inline', () => {
    expect(inlineHints({ memoryBacked: true, nowaitReads: true }, true)).toEqual({ read: IoInline.NONE, write: IoInline.NONE });
  });

  it.skipIf(shm === null)('fails an inline transfer on its own: a write to a read-only descriptor next to a good read', async () => {
    const file = path.join(shm!, 'ro.img');
    const rw = blockIo.openFile(file, { create: true, sizeBytes: 8192 });
    await blockIo.close(rw.fd);
    const ro = blockIo.openFile(file, { readOnly: true });
    const bad = queuedPwritev(ro.fd, [pattern(4096, 5)], 0, false, IoInline.MEMORY);
    const good = queuedPreadv(ro.fd, [Buffer.alloc(4096)], 4096, IoInline.MEMORY);
    expect((await expectBlockIoError(bad, 'EBADF')).message).toMatch(/pwritev$/);
    expect(await good).toBe(4096);
    await blockIo.close(ro.fd);
  });
});
