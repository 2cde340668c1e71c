/** The native addon through src/block/native.ts: error shaping and the raw calls. */
import { closeSync, openSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockIoError } from '../../../src/block';
import { blockIo, toBlockIoError } from '../../../src/block/native';
import { expectBlockIoError, pattern, scratchDir } from './helpers';

const tmp = scratchDir();
afterAll(() => tmp.remove());

describe('error shaping', () => {
  it.each([
    [5, 'EIO'],
    [6, 'ENXIO'],
    [9, 'EBADF'],
    [22, 'EINVAL'],
    [28, 'ENOSPC'],
    [30, 'EROFS'],
    [95, 'EOPNOTSUPP'],
    [122, 'EDQUOT'],
    [4000, 'EUNKNOWN'],
  ])('names errno %i %s', (errno, code) => {
    const err = blockIo.makeErrnoError(errno, 'pwritev');
    expect(err).toBeInstanceOf(BlockIoError);
    expect(err).toMatchObject({ code, errno });
    expect((err as Error).message).toMatch(new RegExp(`^${code}: .*, pwritev$`));
  });

  it('turns a system error into a BlockIoError and leaves other errors alone', () => {
    const fake = Object.assign(new Error('ENOSPC: No space left on device, pwritev'), { code: 'ENOSPC', errno: 28 });
    const converted = toBlockIoError(fake);
    expect(converted).toBeInstanceOf(BlockIoError);
    expect(converted).toMatchObject({ code: 'ENOSPC', errno: 28, message: fake.message });

    const typeError = new TypeError('fd must be a number');
    expect(toBlockIoError(typeError)).toBe(typeError);
    const already = new BlockIoError('EIO', 'x');
    expect(toBlockIoError(already)).toBe(already);
    expect(toBlockIoError('not an error')).toBe('not an error');
  });

  it('reports bad arguments as TypeError, not as I/O errors', async () => {
    await expect(blockIo.preadv(-1, [], 0)).rejects.toThrow(TypeError);
    await expect(blockIo.pwritev(0, ['x' as unknown as Buffer], 0, false)).rejects.toThrow(TypeError);
    await expect(blockIo.fallocate(0, 'shred' as 'zero', 0, 1)).rejects.toThrow(TypeError);
    expect(() => blockIo.allocAligned(1.5)).toThrow(TypeError);
  });

  it('rejects I/O on a closed descriptor with EBADF', async () => {
    const { fd } = blockIo.openFile(tmp.file('closed.img'), { create: true, sizeBytes: 4096 });
    await blockIo.close(fd);
    const err = await expectBlockIoError(blockIo.fdatasync(fd), 'EBADF');
    expect(err.errno).toBe(9);
    await expectBlockIoError(blockIo.preadv(fd, [Buffer.alloc(1)], 0), 'EBADF');
  });
});

describe('raw calls', () => {
  it('opens, sizes and creates only once', () => {
    const path = tmp.file('open.img');
    const first = blockIo.openFile(path, { create: true, sizeBytes: 12345 });
    expect(first).toMatchObject({ created: true, blockDevice: false, sizeBytes: 12345 });
    const second = blockIo.openFile(path, { create: true, sizeBytes: 1 });
    expect(second).toMatchObject({ created: false, sizeBytes: 12345 });
    expect(blockIo.sizeOf(second.fd)).toBe(12345);
    closeSync(first.fd);
    closeSync(second.fd);
  });

  it('returns a short count when reading past end of file', async () => {
    const { fd } = blockIo.openFile(tmp.file('short.img'), { create: true, sizeBytes: 100 });
    expect(await blockIo.preadv(fd, [Buffer.alloc(64), Buffer.alloc(64)], 0)).toBe(100);
    expect(await blockIo.preadv(fd, [Buffer.alloc(64)], 200)).toBe(0);
    await blockIo.close(fd);
  });

  it('finds data and holes, with -1 when there is nothing further', async () => {
    const { fd } = blockIo.openFile(tmp.file('seek.img'), { create: true, sizeBytes: 64 * 1024 });
    expect(await blockIo.seekData(fd, 0)).toBe(-1);
    await blockIo.pwritev(fd, [pattern(4096, 1)], 16384, true);
    expect(await blockIo.seekData(fd, 0)).toBe(16384);
    expect(await blockIo.seekHole(fd, 16384)).toBe(20480);
    expect(await blockIo.seekData(fd, 20480)).toBe(-1);
    expect(await blockIo.seekHole(fd, 64 * 1024)).toBe(-1);
    await blockIo.fallocate(fd, 'punch', 16384, 4096);
    expect(await blockIo.seekData(fd, 0)).toBe(-1);
    await blockIo.close(fd);
  });

  it('zeroes a range with fallocate zero', async () => {
    const { fd } = blockIo.openFile(tmp.file('zero.img'), { create: true, sizeBytes: 3 * 4096 });
    await blockIo.pwritev(fd, [pattern(3 * 4096, 2)], 0, false);
    await blockIo.fallocate(fd, 'zero', 100, 8000);
    const back = Buffer.alloc(3 * 4096);
    await blockIo.preadv(fd, [back], 0);
    const expected = pattern(3 * 4096, 2).fill(0, 100, 8100);
    expect(back.equals(expected)).toBe(true);
    await blockIo.close(fd);
  });

  it('allocates page-aligned buffers', () => {
    const b = blockIo.allocAligned(3 * 4096);
    expect(b.length).toBe(3 * 4096);
    expect(blockIo.isAligned([b, b.subarray(4096)], 4096)).toBe(true);
    expect(blockIo.isAligned([b.subarray(1, 4097)], 4096)).toBe(false);
    expect(blockIo.isAligned([b.subarray(0, 100)], 4096)).toBe(false);
    expect(blockIo.allocAligned(0).length).toBe(0);
  });

  it('refuses character devices', () => {
    const fd = openSync('/dev/null', 'r');
    expect(() => blockIo.sizeOf(fd)).toThrow(BlockIoError);
    closeSync(fd);
  });
});
