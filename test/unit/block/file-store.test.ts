/** FileBackingStore behaviour beyond the shared contract: files, flags, O_DIRECT. */
import { statSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BlockIoError, DIRECT_IO_ALIGNMENT, FileBackingStore, FileStoreOptions } from '../../../src/block';
import { blockIo } from '../../../src/block/native';
import { expectBlockIoError, pattern, scratchDir } from './helpers';

const SIZE = 1 << 20;
const tmp = scratchDir();
afterAll(() => tmp.remove());

const open: FileBackingStore[] = [];
async function openStore(path: string, options: FileStoreOptions): Promise<FileBackingStore> {
  const s = await FileBackingStore.open(path, options);
  open.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

/** O_DIRECT support depends on the file system under os.tmpdir(). */
function directSupported(): boolean {
  const path = tmp.file('probe.img');
  try {
    const { fd } = blockIo.openFile(path, { create: true, direct: true });
    void blockIo.close(fd);
    return true;
  } catch (err) {
    if (err instanceof BlockIoError && err.code === 'EINVAL') return false;
    throw err;
  }
}

describe('FileBackingStore.open', () => {
  it('creates a thin store as a sparse file', async () => {
    const path = tmp.file('sparse.img');
    const s = await openStore(path, { create: true, sizeBytes: SIZE });
    expect(s.thin).toBe(true);
    expect(statSync(path).size).toBe(SIZE);
    expect(allocatedBytes(path)).toBe(0);
  });

  it('creates a thick store fully allocated', async () => {
    const path = tmp.file('thick.img');
    await openStore(path, { create: true, sizeBytes: SIZE, thin: false });
    expect(allocatedBytes(path)).toBeGreaterThanOrEqual(SIZE);
  });

  it('reopens an existing file with its data and size, ignoring sizeBytes', async () => {
    const path = tmp.file('reopen.img');
    const first = await FileBackingStore.open(path, { create: true, sizeBytes: SIZE });
    await first.writev(4096, [pattern(100, 1)]);
    await first.close();
    const again = await openStore(path, { create: true, sizeBytes: 4096 });
    expect(again.sizeBytes).toBe(SIZE);
    expect((await again.read(4096, 100)).equals(pattern(100, 1))).toBe(true);
  });

  it('fails with ENOENT for a missing file without create', async () => {
    const err = await expectBlockIoError(FileBackingStore.open(tmp.file('missing.img')), 'ENOENT');
    expect(err.errno).toBe(2);
    expect(err.message).toContain('missing.img');
  });

  it('refuses to create a read-only store, and a bad size', async () => {
    await expectBlockIoError(FileBackingStore.open(tmp.file('ro.img'), { create: true, readOnly: true }), 'EINVAL');
    await expectBlockIoError(FileBackingStore.open(tmp.file('neg.img'), { create: true, sizeBytes: -1 }), 'EINVAL');
  });

  it('refuses something that is neither a file nor a block device', async () => {
    await expectBlockIoError(FileBackingStore.open('/dev/null'), 'EINVAL');
    await expectBlockIoError(FileBackingStore.open(tmp.dir), 'EISDIR');
  });
});

describe('FileBackingStore I/O', () => {
  it('serves reads but fails writes with EROFS when read-only', async () => {
    const path = tmp.file('readonly.img');
    writeFileSync(path, pattern(8192, 2));
    const s = await openStore(path, { readOnly: true });
    expect((await s.read(0, 8192)).equals(pattern(8192, 2))).toBe(true);
    await expectBlockIoError(s.writev(0, [Buffer.alloc(1)]), 'EROFS');
    await expectBlockIoError(s.discard(0, 4096), 'EROFS');
    await expectBlockIoError(s.writeZeroes(0, 4096), 'EROFS');
    await expectBlockIoError(s.resize(4096), 'EROFS');
  });

  it('round-trips more buffers than IOV_MAX in one call', async () => {
    const s = await openStore(tmp.file('iov.img'), { create: true, sizeBytes: SIZE });
    const parts = Array.from({ length: 1500 }, (_, i) => pattern(1 + (i % 509), i));
    const whole = Buffer.concat(parts);
    await s.writev(3, parts);
    const out = Array.from({ length: 1500 }, (_, i) => Buffer.alloc(1 + ((i * 7) % 300)));
    const outLength = out.reduce((n, b) => n + b.length, 0);
    await s.readv(3, out);
    expect(Buffer.concat(out).equals(whole.subarray(0, outLength))).toBe(true);
    expect((await s.read(3, whole.length)).equals(whole)).toBe(true);
  });

  it('frees space on discard when thin and keeps it when thick', async () => {
    const thinPath = tmp.file('thin-discard.img');
    const thin = await openStore(thinPath, { create: true, sizeBytes: SIZE });
    await thin.writev(0, [pattern(SIZE, 3)]);
    await thin.flush();
    const before = allocatedBytes(thinPath);
    await thin.discard(0, SIZE / 2);
    expect(allocatedBytes(thinPath)).toBeLessThanOrEqual(before - SIZE / 2);

    const thickPath = tmp.file('thick-discard.img');
    const thick = await openStore(thickPath, { create: true, sizeBytes: SIZE, thin: false });
    await thick.discard(0, SIZE / 2);
    expect(allocatedBytes(thickPath)).toBeGreaterThanOrEqual(SIZE);
  });

  it('allocates the grown tail of a thick store', async () => {
    const path = tmp.file('thick-grow.img');
    const s = await openStore(path, { create: true, sizeBytes: 64 * 1024, thin: false });
    await s.resize(SIZE);
    expect(allocatedBytes(path)).toBeGreaterThanOrEqual(SIZE);
  });

  it('lets in-flight writes finish before close, then rejects new calls', async () => {
    const path = tmp.file('close.img');
    const s = await FileBackingStore.open(path, { create: true, sizeBytes: SIZE });
    const writes = Array.from({ length: 16 }, (_, i) => s.writev(i * 4096, [pattern(4096, i)]));
    const closed = s.close();
    await expectBlockIoError(s.read(0, 1), 'EBADF');
    await Promise.all([...writes, closed]);
    const again = await openStore(path, {});
    for (let i = 0; i < 16; i++) expect((await again.read(i * 4096, 4096)).equals(pattern(4096, i))).toBe(true);
  });

  it('prefixes native errors with the store description', async () => {
    const path = tmp.file('described.img');
    const s = await openStore(path, { create: true, sizeBytes: 4096 });
    // Shrink the file behind the store's back: the next read comes up short.
    writeFileSync(path, Buffer.alloc(100));
    const err = await expectBlockIoError(s.read(0, 4096), 'EIO');
    expect(err.message).toContain(path);
  });
});

describe.runIf(directSupported())('FileBackingStore with O_DIRECT', () => {
  it('round-trips aligned and unaligned buffers', async () => {
    const s = await openStore(tmp.file('direct.img'), { create: true, sizeBytes: SIZE, direct: true });
    const aligned = blockIo.allocAligned(DIRECT_IO_ALIGNMENT);
    pattern(DIRECT_IO_ALIGNMENT, 4).copy(aligned);
    const unaligned = Buffer.alloc(DIRECT_IO_ALIGNMENT + 1).subarray(1);
    pattern(DIRECT_IO_ALIGNMENT, 5).copy(unaligned);
    await s.writev(0, [aligned]);
    await s.writev(DIRECT_IO_ALIGNMENT, [unaligned], { fua: true });

    const back = [Buffer.alloc(100), Buffer.alloc(2 * DIRECT_IO_ALIGNMENT - 100)];
    await s.readv(0, back);
    expect(Buffer.concat(back).equals(Buffer.concat([pattern(4096, 4), pattern(4096, 5)]))).toBe(true);
    expect((await s.read(DIRECT_IO_ALIGNMENT, DIRECT_IO_ALIGNMENT)).equals(pattern(4096, 5))).toBe(true);
  });

  it('rejects unaligned offsets and lengths with EINVAL', async () => {
    const s = await openStore(tmp.file('direct-bad.img'), { create: true, sizeBytes: SIZE, direct: true });
    await expectBlockIoError(s.read(512, DIRECT_IO_ALIGNMENT), 'EINVAL');
    await expectBlockIoError(s.read(0, 512), 'EINVAL');
    await expectBlockIoError(s.writev(0, [Buffer.alloc(100)]), 'EINVAL');
    await expectBlockIoError(s.writeZeroes(0, 100), 'EINVAL');
  });
});

/**
 * Block-device paths. DESTROYS the device's contents, so it runs only when
 * pointed at a scratch device: TWINSAN_TEST_BLOCK_DEVICE=/dev/loopN
 * (e.g. `losetup -f --show scratch.img`).
 */
const blockDevice = process.env.TWINSAN_TEST_BLOCK_DEVICE;
describe.runIf(blockDevice)('FileBackingStore on a block device', () => {
  it.each([false, true])('writes, discards, zeroes and reports mapped (direct: %s)', async (direct) => {
    const s = await openStore(blockDevice as string, { direct });
    expect(s.blockDevice).toBe(true);
    expect(s.sizeBytes).toBeGreaterThanOrEqual(16 * 4096);
    await s.writev(4096, [pattern(3 * 4096, 6)], { fua: true });
    expect((await s.read(4096, 3 * 4096)).equals(pattern(3 * 4096, 6))).toBe(true);
    await s.discard(4096, 4096);
    await s.writeZeroes(3 * 4096, 4096);
    const expected = pattern(3 * 4096, 6).fill(0, 0, 4096).fill(0, 2 * 4096);
    expect((await s.read(4096, 3 * 4096)).equals(expected)).toBe(true);
    expect(await s.allocationStatus(0, 4096)).toEqual({ offset: 0, length: 4096, mapped: true });
    await expectBlockIoError(s.resize(s.sizeBytes + 4096), 'EINVAL');
    await s.resize(s.sizeBytes);
  });
});
