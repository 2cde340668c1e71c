import { describe, expect, test, vi } from 'vitest';
import { BlockIoError } from '../../../src/block';
import { be16, be32, be64, expectCheck, expectGood, pattern, readyFixture, run } from './helpers';

const read10 = (lba: number, blocks: number, flags = 0): number[] => [0x28, flags, ...be32(lba), 0, ...be16(blocks), 0];
const write10 = (lba: number, blocks: number, flags = 0): number[] => [0x2a, flags, ...be32(lba), 0, ...be16(blocks), 0];
const read12 = (lba: number, blocks: number, flags = 0): number[] => [0xa8, flags, ...be32(lba), ...be32(blocks), 0, 0];
const write12 = (lba: number, blocks: number, flags = 0): number[] => [0xaa, flags, ...be32(lba), ...be32(blocks), 0, 0];
const read16 = (lba: bigint, blocks: number, flags = 0): number[] => [0x88, flags, ...be64(lba), ...be32(blocks), 0, 0];
const write16 = (lba: bigint, blocks: number, flags = 0): number[] => [0x8a, flags, ...be64(lba), ...be32(blocks), 0, 0];
const read6 = (lba: number, blocks: number): number[] => [0x08, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, blocks, 0];
const write6 = (lba: number, blocks: number): number[] => [0x0a, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, blocks, 0];
const writeVerify10 = (lba: number, blocks: number, flags = 0): number[] => [0x2e, flags, ...be32(lba), 0, ...be16(blocks), 0];

describe('READ / WRITE', () => {
  test('read10_simple_returns_written_data', async () => {
    const { dev, store } = await readyFixture();
    const data = pattern(4 * 512);
    await store.writev(8 * 512, [data]);
    const r = await run(dev, read10(8, 4));
    expectGood(r);
    expect(r.dataIn!.equals(data)).toBe(true);
  });

  test('read10_returns_the_store_buffer_without_copying', async () => {
    const { dev, store } = await readyFixture();
    const fromStore = Buffer.alloc(512, 0x5a);
    vi.spyOn(store, 'read').mockResolvedValue(fromStore);
    const r = await run(dev, read10(0, 1));
    expect(r.dataIn).toBe(fromStore);
  });

  test('read10_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    for (const blocks of [1, 2, 255, 256]) expectCheck(await run(dev, read10(1024 + 1 - blocks, blocks)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, read10(0x80000000, 1)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, read10(0xffffffff, 1)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, read10(1023, 2)), 0x5, 0x21, 0x00);
    expectGood(await run(dev, read10(1023, 1)));
  });

  test('read10_0blocks', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    const r = await run(dev, read10(0, 0));
    expectGood(r);
    expect(r.dataIn!.length).toBe(0);
    expectGood(await run(dev, read10(1024, 0))); // an empty range at the end is in range
    expectCheck(await run(dev, read10(1025, 0)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, read10(0xffffffff, 0)), 0x5, 0x21, 0x00);
  });

  test('read10_rdprotect', async () => {
    const { dev } = await readyFixture();
    for (let p = 1; p < 8; p++) {
      const s = expectCheck(await run(dev, read10(0, 1, p << 5)), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 1, bpv: true, bit: 7 });
    }
  });

  test('read10_dpofua', async () => {
    const { dev } = await readyFixture();
    for (const flags of [0x10, 0x08, 0x18]) expectGood(await run(dev, read10(0, 1, flags)));
  });

  test('read6_transfer_length_0_is_256_blocks', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    const r = await run(dev, read6(0, 0));
    expectGood(r);
    expect(r.dataIn!.length).toBe(256 * 512);
    for (const n of [1, 255]) expect((await run(dev, read6(1024 - n, n))).dataIn!.length).toBe(n * 512);
  });

  test('read6_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    expectCheck(await run(dev, read6(1024, 1)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, read6(0x1fffff, 1)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, read6(1023, 2)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, read6(1000, 0)), 0x5, 0x21, 0x00); // 256 blocks
  });

  test('read12_and_read16_simple', async () => {
    const { dev, store } = await readyFixture();
    const data = pattern(3 * 512, 9);
    await store.writev(100 * 512, [data]);
    expect((await run(dev, read12(100, 3))).dataIn!.equals(data)).toBe(true);
    expect((await run(dev, read16(100n, 3))).dataIn!.equals(data)).toBe(true);
  });

  test('read16_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    for (const lba of [0x8000000000000000n, 1n << 55n, 1n << 54n, 0xffffffffffffffffn, 1025n]) {
      expectCheck(await run(dev, read16(lba, 1)), 0x5, 0x21, 0x00);
    }
    expectCheck(await run(dev, read16(1023n, 2)), 0x5, 0x21, 0x00);
  });

  test('read_maximum_transfer_length_enforced', async () => {
    const { dev } = await readyFixture({ blocks: 4096, lu: { maxTransferBytes: 64 * 512 } });
    expectGood(await run(dev, read10(0, 64)));
    const s = expectCheck(await run(dev, read10(0, 65)), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 7 });
  });

  test('write10_simple', async () => {
    const { dev, store } = await readyFixture();
    const data = pattern(2 * 512, 3);
    const r = await run(dev, write10(10, 2), { dataOut: [data] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(1024);
    expect((await store.read(10 * 512, 1024)).equals(data)).toBe(true);
  });

  test('write10_passes_the_data_out_vector_to_writev_unconcatenated', async () => {
    const { dev, store } = await readyFixture();
    const parts = [pattern(300), pattern(212), pattern(512)];
    const spy = vi.spyOn(store, 'writev');
    expectGood(await run(dev, write10(0, 2), { dataOut: parts }));
    expect(spy).toHaveBeenCalledTimes(1);
    const [offset, buffers] = spy.mock.calls[0]!;
    expect(offset).toBe(0);
    expect(buffers).toBe(parts); // the very same vector
  });

  test('write10_residuals_excess_data_out_is_trimmed_without_copying', async () => {
    const { dev, store } = await readyFixture();
    const a = Buffer.alloc(400, 0x61);
    const b = Buffer.alloc(400, 0x62);
    const spy = vi.spyOn(store, 'writev');
    const r = await run(dev, write10(0, 1), { dataOut: [a, b] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(512); // transport reports an underflow of 288
    const buffers = spy.mock.calls[0]![1];
    expect(buffers.length).toBe(2);
    expect(buffers[0]).toBe(a);
    expect(buffers[1]!.length).toBe(112);
    expect(buffers[1]!.buffer).toBe(b.buffer); // a view, not a copy
    expect((await store.read(512, 512)).equals(Buffer.alloc(512))).toBe(true); // nothing past the CDB's range
  });

  test('write10_residuals_partial_block_data_out_writes_nothing', async () => {
    const { dev, store } = await readyFixture();
    for (const dataOut of [[Buffer.alloc(200, 0xee)], [Buffer.alloc(512, 0xee), Buffer.alloc(100, 0xee)]]) {
      const r = await run(dev, write10(0, 2), { dataOut });
      expectCheck(r, 0x5, 0x0e, 0x03); // INVALID FIELD IN COMMAND INFORMATION UNIT
      expect(r.dataOutExpected).toBe(1024); // transport reports the overflow
    }
    expect((await store.read(0, 1024)).equals(Buffer.alloc(1024))).toBe(true);
  });

  test('write10_residuals_short_data_out_writes_the_whole_blocks_sent', async () => {
    // SAM-5: process the command normally but transfer no data beyond the
    // expected length (libiscsi's write10_residuals expects GOOD here).
    const { dev, store } = await readyFixture();
    for (const dataOut of [null, []]) {
      const r = await run(dev, write10(0, 2), { dataOut });
      expectGood(r);
      expect(r.dataOutExpected).toBe(1024);
    }
    expect((await store.read(0, 1024)).equals(Buffer.alloc(1024))).toBe(true);
    const r = await run(dev, write10(0, 2), { dataOut: [Buffer.alloc(512, 0xee)] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(1024);
    expect((await store.read(0, 512)).equals(Buffer.alloc(512, 0xee))).toBe(true);
    expect((await store.read(512, 512)).equals(Buffer.alloc(512))).toBe(true);
  });

  test('write10_0blocks', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    const r = await run(dev, write10(0, 0));
    expectGood(r);
    expect(r.dataOutExpected).toBe(0);
    expectCheck(await run(dev, write10(1025, 0)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, write10(0xffffffff, 0)), 0x5, 0x21, 0x00);
  });

  test('write10_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    expectCheck(await run(dev, write10(1023, 2), { dataOut: [Buffer.alloc(1024)] }), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, write16(1n << 60n, 1), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
  });

  test('write10_wrprotect', async () => {
    const { dev } = await readyFixture();
    expectCheck(await run(dev, write10(0, 1, 0x20), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
  });

  test('write10_dpofua', async () => {
    const { dev, store } = await readyFixture();
    const spy = vi.spyOn(store, 'writev');
    for (const flags of [0x00, 0x10, 0x08, 0x18]) expectGood(await run(dev, write10(0, 1, flags), { dataOut: [Buffer.alloc(512)] }));
    expect(spy.mock.calls.map((c) => c[2]?.fua)).toEqual([false, false, true, true]);
  });

  test('write6_transfer_length_0_is_256_blocks', async () => {
    const { dev, store } = await readyFixture();
    const data = pattern(256 * 512, 5);
    const r = await run(dev, write6(0, 0), { dataOut: [data] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(256 * 512);
    expect((await store.read(0, 256 * 512)).equals(data)).toBe(true);
  });

  test('write12_and_write16_simple', async () => {
    const { dev, store } = await readyFixture();
    expectGood(await run(dev, write12(1, 1), { dataOut: [Buffer.alloc(512, 1)] }));
    expectGood(await run(dev, write16(2n, 1), { dataOut: [Buffer.alloc(512, 2)] }));
    expect((await store.read(512, 1024)).equals(Buffer.concat([Buffer.alloc(512, 1), Buffer.alloc(512, 2)]))).toBe(true);
  });

  test('write_readonly_lu_is_write_protected', async () => {
    const { dev } = await readyFixture({ lu: { readOnly: true } });
    for (const c of [write10(0, 1), write12(0, 1), write16(0n, 1), writeVerify10(0, 1)]) {
      expectCheck(await run(dev, c, { dataOut: [Buffer.alloc(512)] }), 0x7, 0x27, 0x00);
    }
    expectGood(await run(dev, read10(0, 1)));
  });

  test('write_4096_byte_blocks', async () => {
    const { dev, store } = await readyFixture({ blockSize: 4096, blocks: 64 });
    const data = pattern(4096, 11);
    expectGood(await run(dev, write10(63, 1), { dataOut: [data] }));
    expect((await store.read(63 * 4096, 4096)).equals(data)).toBe(true);
    expectCheck(await run(dev, write10(64, 1), { dataOut: [data] }), 0x5, 0x21, 0x00);
  });

  test('writeverify10_simple_and_bytchk', async () => {
    const { dev, store } = await readyFixture();
    const spy = vi.spyOn(store, 'writev');
    const data = pattern(1024, 4);
    const r = await run(dev, writeVerify10(4, 2, 0x02), { dataOut: [data] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(1024);
    expect(spy.mock.calls[0]![2]).toEqual({ fua: true });
    expect((await store.read(4 * 512, 1024)).equals(data)).toBe(true);
    expectGood(await run(dev, writeVerify10(4, 1, 0x10), { dataOut: [data.subarray(0, 512)] })); // DPO, BYTCHK=0
    expectCheck(await run(dev, writeVerify10(4, 1, 0x04), { dataOut: [data.subarray(0, 512)] }), 0x5, 0x24, 0x00); // BYTCHK=10b
  });

  test('writeverify10_miscompare_when_medium_differs', async () => {
    const { dev, store } = await readyFixture();
    // A store that loses a byte: the verify step must notice.
    const realRead = store.read.bind(store);
    vi.spyOn(store, 'read').mockImplementation(async (offset, length) => {
      const b = await realRead(offset, length);
      b[700] ^= 0xff;
      return b;
    });
    const s = expectCheck(await run(dev, writeVerify10(0, 2, 0x02), { dataOut: [pattern(1024)] }), 0xe, 0x1d, 0x00);
    expect(s.information).toBe(700);
  });

  test('writeverify10_0blocks_and_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    expectGood(await run(dev, writeVerify10(0, 0)));
    expectCheck(await run(dev, writeVerify10(1025, 0)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, writeVerify10(1024, 1), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
    const wv16 = [0x8e, 0x02, ...be64(2000n), ...be32(1), 0, 0];
    expectCheck(await run(dev, wv16, { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
    const wv12 = [0xae, 0x02, ...be32(1), ...be32(1), 0, 0];
    expectGood(await run(dev, wv12, { dataOut: [Buffer.alloc(512)] }));
  });

  test('write_when_write_cache_disabled_is_always_fua', async () => {
    const { dev, store } = await readyFixture();
    const caching = [0x08, 0x12, 0x00, ...new Array(17).fill(0)]; // WCE=0
    expectGood(await run(dev, [0x15, 0x10, 0, 0, 4 + caching.length, 0], { dataOut: [Buffer.from([0, 0, 0, 0, ...caching])] }));
    const spy = vi.spyOn(store, 'writev');
    expectGood(await run(dev, write10(0, 1), { dataOut: [Buffer.alloc(512)] }));
    expect(spy.mock.calls[0]![2]).toEqual({ fua: true });
  });

  test('read_eio_is_unrecovered_read_error', async () => {
    const { dev, store } = await readyFixture();
    vi.spyOn(store, 'read').mockRejectedValue(new BlockIoError('EIO', 'boom'));
    expectCheck(await run(dev, read10(0, 1)), 0x3, 0x11, 0x00);
  });

  test('write_eio_is_write_error', async () => {
    const { dev, store } = await readyFixture();
    vi.spyOn(store, 'writev').mockRejectedValue(new BlockIoError('EIO', 'boom'));
    expectCheck(await run(dev, write10(0, 1), { dataOut: [Buffer.alloc(512)] }), 0x3, 0x0c, 0x00);
  });

  test('write_enospc_on_thin_lu_is_space_allocation_failed', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    store.capacityLimitBytes = 4096;
    expectGood(await run(dev, write10(0, 8), { dataOut: [Buffer.alloc(4096, 1)] }));
    expectCheck(await run(dev, write10(8, 1), { dataOut: [Buffer.alloc(512, 1)] }), 0x7, 0x27, 0x07);
  });

  test('write_enospc_on_thick_lu_and_other_errors_are_internal_target_failure', async () => {
    const { dev, store } = await readyFixture();
    const spy = vi.spyOn(store, 'writev').mockRejectedValueOnce(new BlockIoError('ENOSPC', 'full'));
    expectCheck(await run(dev, write10(0, 1), { dataOut: [Buffer.alloc(512)] }), 0x4, 0x44, 0x00);
    spy.mockRejectedValueOnce(new BlockIoError('EBADF', 'closed'));
    expectCheck(await run(dev, write10(0, 1), { dataOut: [Buffer.alloc(512)] }), 0x4, 0x44, 0x00);
  });

  test('overlapping_writes_complete_in_arrival_order', async () => {
    const { dev, store } = await readyFixture();
    const real = store.writev.bind(store);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let first = true;
    vi.spyOn(store, 'writev').mockImplementation(async (o, b, opt) => {
      if (first) {
        first = false;
        await gate; // the first write stalls inside the store
      }
      return real(o, b, opt);
    });
    const w1 = run(dev, write10(0, 2), { dataOut: [Buffer.alloc(1024, 1)] });
    const w2 = run(dev, write10(1, 1), { dataOut: [Buffer.alloc(512, 2)] });
    await new Promise((r) => setImmediate(r));
    release();
    expectGood(await w1);
    expectGood(await w2);
    // The later write wins on the overlapping block.
    expect((await store.read(512, 512)).equals(Buffer.alloc(512, 2))).toBe(true);
    expect((await store.read(0, 512)).equals(Buffer.alloc(512, 1))).toBe(true);
  });
});
