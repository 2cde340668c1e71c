/** Batched submission (src/block/io-queue.ts): many transfers per thread-pool job, each settled on its own. */
import { afterAll, describe, expect, it } from 'vitest';
import { queuedPreadv, queuedPwritev } from '../../../src/block/io-queue';
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
