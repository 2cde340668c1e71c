/**
 * One behavioural suite for every BackingStore implementation, so the
 * in-memory store used in tests and the real file store agree.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BackingStore, FileBackingStore, MemoryBackingStore } from '../../../src/block';
import { expectBlockIoError, pattern, scratchDir } from './helpers';

const SIZE = 1 << 20;
const tmp = scratchDir();
afterAll(() => tmp.remove());

interface Implementation {
  readonly name: string;
  readonly thin: boolean;
  make(sizeBytes: number): Promise<BackingStore>;
}

const implementations: Implementation[] = [
  { name: 'MemoryBackingStore thin', thin: true, make: async (size) => new MemoryBackingStore(size, { thin: true }) },
  { name: 'MemoryBackingStore thick', thin: false, make: async (size) => new MemoryBackingStore(size, { thin: false }) },
  {
    name: 'FileBackingStore thin',
    thin: true,
    make: (size) => FileBackingStore.open(tmp.file('thin.img'), { create: true, sizeBytes: size, thin: true }),
  },
  {
    name: 'FileBackingStore thick',
    thin: false,
    make: (size) => FileBackingStore.open(tmp.file('thick.img'), { create: true, sizeBytes: size, thin: false }),
  },
];

describe.each(implementations)('$name', (impl) => {
  const open: BackingStore[] = [];
  async function store(size = SIZE): Promise<BackingStore> {
    const s = await impl.make(size);
    open.push(s);
    return s;
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  it('reports its size and provisioning', async () => {
    const s = await store();
    expect(s.sizeBytes).toBe(SIZE);
    expect(s.thin).toBe(impl.thin);
    expect(s.description).not.toBe('');
  });

  it('reads zeros from a fresh store', async () => {
    const s = await store();
    expect((await s.read(0, SIZE)).equals(Buffer.alloc(SIZE))).toBe(true);
  });

  it('round-trips a gathered write through a scattered read', async () => {
    const s = await store();
    const parts = [pattern(1000, 1), Buffer.alloc(0), pattern(3096, 2), pattern(4096 * 3, 3)];
    const whole = Buffer.concat(parts);
    await s.writev(4096 + 7, parts);
    expect((await s.read(4096 + 7, whole.length)).equals(whole)).toBe(true);

    const out = [Buffer.alloc(1), Buffer.alloc(5000), Buffer.alloc(0), Buffer.alloc(whole.length - 5001)];
    await s.readv(4096 + 7, out);
    expect(Buffer.concat(out).equals(whole)).toBe(true);
  });

  it('handles odd sizes at both ends of the store', async () => {
    const s = await store();
    await s.writev(SIZE - 1, [Buffer.from([0xab])]);
    await s.writev(1, [pattern(511, 4)]);
    expect((await s.read(SIZE - 1, 1))[0]).toBe(0xab);
    expect((await s.read(0, 513)).equals(Buffer.concat([Buffer.alloc(1), pattern(511, 4), Buffer.alloc(1)]))).toBe(true);
    expect((await s.read(SIZE, 0)).length).toBe(0);
  });

  it('treats an empty write as a no-op', async () => {
    const s = await store();
    await s.writev(0, []);
    await s.writev(SIZE, [Buffer.alloc(0)]);
    expect((await s.read(0, 16)).equals(Buffer.alloc(16))).toBe(true);
  });

  it('round-trips a fua write and a flush', async () => {
    const s = await store();
    await s.writev(8192, [pattern(4096, 5)], { fua: true });
    await s.flush();
    expect((await s.read(8192, 4096)).equals(pattern(4096, 5))).toBe(true);
  });

  it('keeps concurrent writes to distinct ranges apart', async () => {
    const s = await store();
    await Promise.all(Array.from({ length: 32 }, (_, i) => s.writev(i * 4096, [pattern(4096, i)])));
    const all = await s.read(0, 32 * 4096);
    for (let i = 0; i < 32; i++) expect(all.subarray(i * 4096, (i + 1) * 4096).equals(pattern(4096, i))).toBe(true);
  });

  it('rejects ranges outside the store with ERANGE', async () => {
    const s = await store();
    await expectBlockIoError(s.read(SIZE - 1, 2), 'ERANGE');
    await expectBlockIoError(s.read(-1, 1), 'ERANGE');
    await expectBlockIoError(s.read(0.5, 1), 'ERANGE');
    await expectBlockIoError(s.readv(SIZE, [Buffer.alloc(1)]), 'ERANGE');
    await expectBlockIoError(s.writev(SIZE - 4, [Buffer.alloc(8)]), 'ERANGE');
    await expectBlockIoError(s.discard(SIZE, 1), 'ERANGE');
    await expectBlockIoError(s.writeZeroes(0, SIZE + 1), 'ERANGE');
  });

  it('reads zeros after a discard, even of a partial block', async () => {
    const s = await store();
    await s.writev(0, [pattern(5 * 4096, 6)]);
    await s.discard(4096 + 100, 2 * 4096);
    const after = await s.read(0, 5 * 4096);
    const expected = Buffer.concat([pattern(5 * 4096, 6)]);
    expected.fill(0, 4096 + 100, 3 * 4096 + 100);
    expect(after.equals(expected)).toBe(true);
  });

  it('reads zeros after writeZeroes without touching neighbours', async () => {
    const s = await store();
    await s.writev(0, [pattern(3 * 4096, 7)]);
    await s.writeZeroes(10, 4096);
    const expected = pattern(3 * 4096, 7);
    expected.fill(0, 10, 4106);
    expect((await s.read(0, 3 * 4096)).equals(expected)).toBe(true);
  });

  it('reports allocation status from offset, bounded by maxLength', async () => {
    const s = await store();
    if (impl.thin) {
      expect(await s.allocationStatus(0, SIZE)).toEqual({ offset: 0, length: SIZE, mapped: false });
      await s.writev(8192, [pattern(4096, 8)]);
      expect(await s.allocationStatus(0, SIZE)).toEqual({ offset: 0, length: 8192, mapped: false });
      expect(await s.allocationStatus(8192, SIZE)).toEqual({ offset: 8192, length: 4096, mapped: true });
      expect(await s.allocationStatus(12288, SIZE)).toEqual({ offset: 12288, length: SIZE - 12288, mapped: false });
      expect(await s.allocationStatus(100, 50)).toEqual({ offset: 100, length: 50, mapped: false });
    } else {
      expect(await s.allocationStatus(0, SIZE)).toEqual({ offset: 0, length: SIZE, mapped: true });
      expect(await s.allocationStatus(4096, 100)).toEqual({ offset: 4096, length: 100, mapped: true });
    }
    await expectBlockIoError(s.allocationStatus(SIZE, 1), 'ENXIO');
  });

  it(impl.thin ? 'deallocates whole blocks on discard' : 'stays allocated after discard', async () => {
    const s = await store();
    await s.writev(0, [pattern(4 * 4096, 9)]);
    await s.discard(4096, 2 * 4096);
    expect(await s.allocationStatus(0, SIZE)).toEqual({ offset: 0, length: impl.thin ? 4096 : SIZE, mapped: true });
    expect(await s.allocationStatus(4096, SIZE)).toEqual(
      impl.thin ? { offset: 4096, length: 8192, mapped: false } : { offset: 4096, length: SIZE - 4096, mapped: true },
    );
    if (impl.thin) expect(await s.allocationStatus(3 * 4096, 4096)).toEqual({ offset: 3 * 4096, length: 4096, mapped: true });
  });

  it('keeps data across resize and zero-fills growth', async () => {
    const s = await store(64 * 1024);
    await s.writev(60 * 1024, [pattern(4096, 10)]);
    await s.resize(128 * 1024);
    expect(s.sizeBytes).toBe(128 * 1024);
    expect((await s.read(60 * 1024, 4096)).equals(pattern(4096, 10))).toBe(true);
    expect((await s.read(64 * 1024, 64 * 1024)).equals(Buffer.alloc(64 * 1024))).toBe(true);

    await s.resize(62 * 1024);
    expect(s.sizeBytes).toBe(62 * 1024);
    expect((await s.read(60 * 1024, 2048)).equals(pattern(4096, 10).subarray(0, 2048))).toBe(true);
    await expectBlockIoError(s.read(62 * 1024, 1), 'ERANGE');
  });

  it('fails every call with EBADF after close, and closes idempotently', async () => {
    const s = await store();
    await s.close();
    await s.close();
    await expectBlockIoError(s.read(0, 1), 'EBADF');
    await expectBlockIoError(s.readv(0, [Buffer.alloc(1)]), 'EBADF');
    await expectBlockIoError(s.writev(0, [Buffer.alloc(1)]), 'EBADF');
    await expectBlockIoError(s.flush(), 'EBADF');
    await expectBlockIoError(s.discard(0, 1), 'EBADF');
    await expectBlockIoError(s.writeZeroes(0, 1), 'EBADF');
    await expectBlockIoError(s.allocationStatus(0, 1), 'EBADF');
    await expectBlockIoError(s.resize(1), 'EBADF');
  });
});
