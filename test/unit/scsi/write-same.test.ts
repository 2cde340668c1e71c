import { describe, expect, test, vi } from 'vitest';
import { BlockIoError } from '../../../src/block';
import { be16, be32, be64, expectCheck, expectGood, pattern, readyFixture, run } from './helpers';

const UNMAP = 0x08;
const ANCHOR = 0x10;
const NDOB = 0x01;
const ws10 = (lba: number, blocks: number, flags = 0): number[] => [0x41, flags, ...be32(lba), 0, ...be16(blocks), 0];
const ws16 = (lba: bigint | number, blocks: number, flags = 0): number[] => [0x93, flags, ...be64(BigInt(lba)), ...be32(blocks), 0, 0];
const getLbaStatus = (lba: number): number[] => [0x9e, 0x12, ...be64(BigInt(lba)), ...be32(24), 0, 0];
const inquiry = (page: number): number[] => [0x12, 1, page, ...be16(255), 0];
const MAX = 0xffff;

/** Provisioning status of the first descriptor GET LBA STATUS returns for `lba`: [blocks, status]. */
async function statusAt(dev: Parameters<typeof run>[0], lba: number): Promise<[number, number]> {
  const d = (await run(dev, getLbaStatus(lba))).dataIn!;
  expect(Number(d.readBigUInt64BE(8))).toBe(lba);
  return [d.readUInt32BE(16), d[20]! & 0x0f];
}

describe('WRITE SAME', () => {
  test('writesame10_simple', async () => {
    const { dev, store } = await readyFixture({ blocks: 1024 });
    const block = pattern(512, 3);
    for (const [lba, n] of [[0, 1], [0, 256], [1024 - 7, 7]] as const) {
      const r = await run(dev, ws10(lba, n), { dataOut: [block] });
      expectGood(r);
      expect(r.dataOutExpected).toBe(512);
      const medium = await store.read(lba * 512, n * 512);
      for (let i = 0; i < n; i++) expect(medium.subarray(i * 512, (i + 1) * 512).equals(block)).toBe(true);
    }
    expect((await store.read((1024 - 8) * 512, 512)).equals(Buffer.alloc(512))).toBe(true); // nothing before the range
  });

  test('writesame16_simple_from_a_split_data_out', async () => {
    const { dev, store } = await readyFixture();
    const block = pattern(512, 11);
    expectGood(await run(dev, ws16(10, 3), { dataOut: [block.subarray(0, 100), block.subarray(100)] }));
    expect((await store.read(10 * 512, 3 * 512)).equals(Buffer.concat([block, block, block]))).toBe(true);
  });

  test('writesame16_large_range_writes_bounded_chunks_from_one_buffer', async () => {
    const { dev, store } = await readyFixture({ blocks: MAX + 1 });
    const block = pattern(512, 5);
    const spy = vi.spyOn(store, 'writev');
    expectGood(await run(dev, ws16(1, MAX), { dataOut: [block] }));
    const buffers = spy.mock.calls.map((c) => c[1]);
    expect(buffers.length).toBeGreaterThan(1);
    let offset = 512;
    for (const [i, call] of spy.mock.calls.entries()) {
      expect(call[0]).toBe(offset);
      expect(call[1].length).toBe(1);
      expect(call[1][0]!.length).toBeLessThanOrEqual(1024 * 1024);
      expect(call[1][0]!.buffer).toBe(buffers[0]![0]!.buffer); // the same chunk every time
      offset += call[1][0]!.length;
      if (i < spy.mock.calls.length - 1) expect(call[1][0]!.length).toBe(1024 * 1024);
    }
    expect(offset).toBe((MAX + 1) * 512);
    const medium = await store.read(0, (MAX + 1) * 512);
    expect(medium.subarray(0, 512).equals(Buffer.alloc(512))).toBe(true);
    for (const at of [1, 2, 2048, 2049, MAX - 1, MAX]) expect(medium.subarray(at * 512, (at + 1) * 512).equals(block)).toBe(true);
  });

  test('writesame16_zeros_use_write_zeroes', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    const zeroes = vi.spyOn(store, 'writeZeroes');
    const writev = vi.spyOn(store, 'writev');
    const discard = vi.spyOn(store, 'discard');
    expectGood(await run(dev, ws16(16, 16), { dataOut: [Buffer.alloc(512)] }));
    expect(zeroes).toHaveBeenCalledWith(16 * 512, 16 * 512);
    expect(writev).not.toHaveBeenCalled();
    expect(discard).not.toHaveBeenCalled();
    // Without UNMAP the blocks are written, so they are mapped.
    expect(await statusAt(dev, 16)).toEqual([16, 0]);
  });

  test('writesame16_unmap', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    for (const [lba, n] of [[0, 8], [0, 256], [1024 - 64, 64]] as const) {
      await store.writev(lba * 512, [Buffer.alloc(n * 512, 0xff)]);
      const before = store.allocatedBytes();
      const r = await run(dev, ws16(lba, n, UNMAP), { dataOut: [Buffer.alloc(512)] });
      expectGood(r);
      expect((await store.read(lba * 512, n * 512)).equals(Buffer.alloc(n * 512))).toBe(true);
      expect(store.allocatedBytes()).toBe(before - n * 512);
      expect((await statusAt(dev, lba))[1]).toBe(1); // deallocated
    }
  });

  test('writesame10_unmap', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    await store.writev(0, [Buffer.alloc(64 * 512, 0xff)]);
    const discard = vi.spyOn(store, 'discard');
    expectGood(await run(dev, ws10(8, 32, UNMAP), { dataOut: [Buffer.alloc(512)] }));
    expect(discard).toHaveBeenCalledWith(8 * 512, 32 * 512);
    expect(await statusAt(dev, 8)).toEqual([32, 1]);
    expect(await statusAt(dev, 40)).toEqual([24, 0]);
  });

  test('writesame16_unmap_unaligned', async () => {
    // 512-byte blocks on 4096-byte physical blocks: LBAs 5..19 hold whole
    // physical block 8..15 (deallocated) and parts of 0..7 and 16..23
    // (zeroed in place, still mapped). All of it reads back as zeros.
    const { dev, store } = await readyFixture({ thin: true, blocks: 64 });
    await store.writev(0, [Buffer.alloc(32 * 512, 0xff)]);
    expectGood(await run(dev, ws16(5, 15, UNMAP), { dataOut: [Buffer.alloc(512)] }));
    const medium = await store.read(0, 32 * 512);
    expect(medium.subarray(0, 5 * 512).equals(Buffer.alloc(5 * 512, 0xff))).toBe(true);
    expect(medium.subarray(5 * 512, 20 * 512).equals(Buffer.alloc(15 * 512))).toBe(true);
    expect(medium.subarray(20 * 512).equals(Buffer.alloc(12 * 512, 0xff))).toBe(true);
    expect(await statusAt(dev, 0)).toEqual([8, 0]);
    expect(await statusAt(dev, 8)).toEqual([8, 1]);
    expect(await statusAt(dev, 16)).toEqual([16, 0]);
    // Less than one physical block, with no data-out (NDOB).
    for (let i = 1; i < 8; i++) expectGood(await run(dev, ws16(i, 8 - i, UNMAP | NDOB)));
  });

  test('writesame16_unmap_with_a_pattern_writes_the_pattern', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    const discard = vi.spyOn(store, 'discard');
    expectGood(await run(dev, ws16(1, 7, UNMAP), { dataOut: [Buffer.alloc(512, 0xa6)] }));
    expect(discard).not.toHaveBeenCalled();
    expect((await store.read(512, 7 * 512)).equals(Buffer.alloc(7 * 512, 0xa6))).toBe(true);
  });

  test('writesame16_unmap_on_a_thick_lu_writes_zeros', async () => {
    const { dev, store } = await readyFixture();
    await store.writev(0, [Buffer.alloc(16 * 512, 0xff)]);
    const discard = vi.spyOn(store, 'discard');
    const zeroes = vi.spyOn(store, 'writeZeroes');
    expectGood(await run(dev, ws16(0, 16, UNMAP), { dataOut: [Buffer.alloc(512)] }));
    expectGood(await run(dev, ws10(0, 16, UNMAP), { dataOut: [Buffer.alloc(512)] }));
    expect(discard).not.toHaveBeenCalled();
    expect(zeroes).toHaveBeenCalledTimes(2);
    expect((await store.read(0, 16 * 512)).equals(Buffer.alloc(16 * 512))).toBe(true);
  });

  test('writesame16_ndob', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    await store.writev(0, [Buffer.alloc(32 * 512, 0xff)]);
    const r = await run(dev, ws16(0, 8, NDOB));
    expectGood(r);
    expect(r.dataOutExpected).toBe(0);
    expect((await store.read(0, 8 * 512)).equals(Buffer.alloc(8 * 512))).toBe(true);
    expect(await statusAt(dev, 0)).toEqual([32, 0]); // written, still mapped
    expectGood(await run(dev, ws16(8, 8, NDOB | UNMAP)));
    expect(await statusAt(dev, 8)).toEqual([8, 1]);
    // NDOB with data-out anyway.
    const s = expectCheck(await run(dev, ws16(16, 8, NDOB), { dataOut: [Buffer.alloc(512, 1)] }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 0 });
    expect((await store.read(16 * 512, 512)).equals(Buffer.alloc(512, 0xff))).toBe(true);
  });

  test('writesame16_anchor', async () => {
    const { dev } = await readyFixture({ thin: true });
    for (const flags of [ANCHOR, ANCHOR | UNMAP]) {
      const s = expectCheck(await run(dev, ws16(0, 1, flags), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 4 });
      expectCheck(await run(dev, ws10(0, 1, flags), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
    }
  });

  test('writesame10_pbdata_lbdata_obsolete', async () => {
    const { dev } = await readyFixture();
    for (const flags of [0x02, 0x04, 0x06]) {
      const s = expectCheck(await run(dev, ws10(0, 1, flags), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 1 });
    }
  });

  test('writesame16_wrprotect', async () => {
    const { dev } = await readyFixture();
    for (let p = 1; p < 8; p++) {
      const s = expectCheck(await run(dev, ws16(0, 1, p << 5), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 7 });
      expectCheck(await run(dev, ws10(0, 1, p << 5), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
    }
  });

  test('writesame16_0blocks', async () => {
    // WSNZ=1: NUMBER OF LOGICAL BLOCKS 0 is not "to the end of the medium".
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    await store.writev(0, [Buffer.alloc(1024 * 512, 0xff)]);
    const discard = vi.spyOn(store, 'discard');
    for (const lba of [0, 1000, 1023]) {
      let s = expectCheck(await run(dev, ws16(lba, 0), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 10, bit: 7 });
      expectCheck(await run(dev, ws16(lba, 0, UNMAP), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
      expectCheck(await run(dev, ws16(lba, 0, UNMAP | NDOB)), 0x5, 0x24, 0x00);
      s = expectCheck(await run(dev, ws10(lba, 0, UNMAP), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 7, bit: 7 });
    }
    expect(discard).not.toHaveBeenCalled();
    expect((await store.read(0, 1024 * 512)).equals(Buffer.alloc(1024 * 512, 0xff))).toBe(true);
  });

  test('writesame16_maximum_write_same_length', async () => {
    const { dev } = await readyFixture({ blocks: MAX + 10 });
    expectGood(await run(dev, ws16(0, MAX), { dataOut: [Buffer.alloc(512)] }));
    const s = expectCheck(await run(dev, ws16(0, MAX + 1), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 10, bit: 7 });
  });

  test('writesame16_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    for (let n = 1; n <= 256; n += 51) {
      expectCheck(await run(dev, ws16(1024 - n + 1, n), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
      expectCheck(await run(dev, ws16(1n << 63n, n), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
      expectCheck(await run(dev, ws16(0xffffffffffffffffn, n), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
      expectCheck(await run(dev, ws10(1024 - n + 1, n), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
    }
  });

  test('writesame16_invalid_dataout_size', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    await store.writev(0, [Buffer.alloc(512, 0xff)]);
    for (const dataOut of [[Buffer.alloc(256)], [Buffer.alloc(1024)], [Buffer.alloc(512), Buffer.alloc(1)]]) {
      for (const c of [ws16(0, 1, UNMAP), ws10(0, 1, UNMAP), ws16(0, 1)]) {
        const r = await run(dev, c, { dataOut });
        expectCheck(r, 0x5, 0x0e, 0x03);
        expect(r.dataOutExpected).toBe(512);
      }
    }
    expect((await store.read(0, 512)).equals(Buffer.alloc(512, 0xff))).toBe(true);
  });

  test('writesame_write_protected', async () => {
    const { dev } = await readyFixture({ lu: { readOnly: true } });
    expectCheck(await run(dev, ws16(0, 1), { dataOut: [Buffer.alloc(512)] }), 0x7, 0x27, 0x00);
    expectCheck(await run(dev, ws10(0, 1, UNMAP), { dataOut: [Buffer.alloc(512)] }), 0x7, 0x27, 0x00);
    expectCheck(await run(dev, ws16(0, 1, NDOB)), 0x7, 0x27, 0x00);
  });

  test('writesame_space_allocation_failed', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    await store.writev(0, [Buffer.alloc(8 * 4096, 0xff)]);
    store.capacityLimitBytes = 8 * 4096; // full
    expectCheck(await run(dev, ws16(64, 8), { dataOut: [Buffer.alloc(512, 1)] }), 0x7, 0x27, 0x07);
    expectCheck(await run(dev, ws10(64, 8), { dataOut: [Buffer.alloc(512)] }), 0x7, 0x27, 0x07); // zeros, mapped
    expectCheck(await run(dev, ws16(64, 8, NDOB)), 0x7, 0x27, 0x07);
    // Deallocating needs no space, and frees some.
    expectGood(await run(dev, ws16(0, 16, UNMAP), { dataOut: [Buffer.alloc(512)] }));
    expectGood(await run(dev, ws16(64, 8), { dataOut: [Buffer.alloc(512, 1)] }));
    // EDQUOT (a quota on the backing file system) is out of space too.
    vi.spyOn(store, 'writev').mockRejectedValueOnce(new BlockIoError('EDQUOT', 'quota'));
    expectCheck(await run(dev, ws16(128, 1), { dataOut: [Buffer.alloc(512, 1)] }), 0x7, 0x27, 0x07);
  });

  test('writesame_with_write_cache_disabled_completes_durably', async () => {
    const { dev, store, lu } = await readyFixture({ thin: true });
    const flush = vi.spyOn(store, 'flush');
    expectGood(await run(dev, ws16(0, 8), { dataOut: [Buffer.alloc(512, 1)] }));
    expect(flush).not.toHaveBeenCalled();
    const caching = lu.mode.currentPage(0x08);
    caching[2]! &= ~0x04; // WCE=0
    lu.mode.replace(new Map([[0x08, caching]]));
    for (const [c, flags] of [[ws16(0, 8), 0], [ws16(0, 8), UNMAP], [ws10(0, 8), 0]] as const) {
      flush.mockClear();
      expectGood(await run(dev, c.map((b, i) => (i === 1 ? b | flags : b)), { dataOut: [Buffer.alloc(512, flags ? 0 : 1)] }));
      expect(flush).toHaveBeenCalledTimes(1);
    }
  });

  test('writesame_holds_the_range_exclusively', async () => {
    const { dev, store, lu } = await readyFixture();
    let finish!: () => void;
    vi.spyOn(store, 'writeZeroes').mockImplementationOnce(() => new Promise<void>((resolve) => (finish = resolve)));
    const pending = run(dev, ws16(0, 16), { dataOut: [Buffer.alloc(512)] });
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(lu.locks.heldCount).toBe(1);
    let readDone = false;
    const reader = run(dev, [0x28, 0, ...be32(15), 0, ...be16(1), 0]).then((r) => ((readDone = true), r));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(readDone).toBe(false);
    finish();
    expectGood(await pending);
    expectGood(await reader);
  });

  test('writesame_vpd_limits', async () => {
    const { dev } = await readyFixture({ thin: true });
    const bl = (await run(dev, inquiry(0xb0))).dataIn!;
    expect(bl[4]! & 0x01).toBe(1); // WSNZ: NUMBER OF LOGICAL BLOCKS 0 is rejected
    expect(bl.readBigUInt64BE(36)).toBe(BigInt(MAX)); // MAXIMUM WRITE SAME LENGTH
    const lbp = (await run(dev, inquiry(0xb2))).dataIn!;
    expect(lbp[5]! & 0x60).toBe(0x60); // LBPWS, LBPWS10
    expect(lbp[5]! & 0x02).toBe(0); // ANC_SUP=0
    const thick = await readyFixture();
    expect((await run(thick.dev, inquiry(0xb2))).dataIn![5]! & 0x60).toBe(0);
    expect((await run(thick.dev, inquiry(0xb0))).dataIn!.readBigUInt64BE(36)).toBe(BigInt(MAX));
  });
});
