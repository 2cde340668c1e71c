import { describe, expect, test, vi } from 'vitest';
import { BlockIoError } from '../../../src/block';
import { be16, be32, be64, expectCheck, expectGood, pattern, readyFixture, run } from './helpers';

const verify10 = (lba: number, blocks: number, flags = 0): number[] => [0x2f, flags, ...be32(lba), 0, ...be16(blocks), 0];
const verify12 = (lba: number, blocks: number, flags = 0): number[] => [0xaf, flags, ...be32(lba), ...be32(blocks), 0, 0];
const verify16 = (lba: bigint, blocks: number, flags = 0): number[] => [0x8f, flags, ...be64(lba), ...be32(blocks), 0, 0];
const BYTCHK = 0x02;

describe('VERIFY', () => {
  test('verify10_simple', async () => {
    const { dev, store } = await readyFixture();
    const data = pattern(8 * 512, 2);
    await store.writev(0, [data]);
    const r = await run(dev, verify10(0, 8, BYTCHK), { dataOut: [data.subarray(0, 1000), data.subarray(1000)] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(8 * 512);
  });

  test('verify10_mismatch', async () => {
    const { dev, store } = await readyFixture();
    const data = pattern(4 * 512, 2);
    await store.writev(512, [data]);
    for (const offset of [0, 1, 511, 512, 2047]) {
      const sent = Buffer.from(data);
      sent[offset] ^= 0x58;
      const s = expectCheck(await run(dev, verify10(1, 4, BYTCHK), { dataOut: [sent] }), 0xe, 0x1d, 0x00);
      expect(s.information).toBe(offset);
    }
  });

  test('verify10_mismatch_no_cmp', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, verify10(0, 4, 0), { dataOut: [Buffer.alloc(2048, 0x58)] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(0);
  });

  test('verify10_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    expectCheck(await run(dev, verify10(1024, 1, BYTCHK), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, verify10(0x80000000, 1, BYTCHK), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, verify10(1023, 2, BYTCHK), { dataOut: [Buffer.alloc(1024)] }), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, verify16(1n << 62n, 1, BYTCHK), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x21, 0x00);
  });

  test('verify10_0blocks', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    expectGood(await run(dev, verify10(0, 0, BYTCHK)));
    expectCheck(await run(dev, verify10(1025, 0, BYTCHK)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, verify10(0xffffffff, 0, BYTCHK)), 0x5, 0x21, 0x00);
  });

  test('verify10_vrprotect_and_reserved_bytchk', async () => {
    const { dev } = await readyFixture();
    expectCheck(await run(dev, verify10(0, 1, 0x20 | BYTCHK), { dataOut: [Buffer.alloc(512)] }), 0x5, 0x24, 0x00);
    const s = expectCheck(await run(dev, verify10(0, 1, 0x04)), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 2 });
  });

  test('verify10_dpo', async () => {
    const { dev } = await readyFixture();
    expectGood(await run(dev, verify10(0, 1, 0x10 | BYTCHK), { dataOut: [Buffer.alloc(512)] }));
  });

  test('verify12_and_verify16_simple', async () => {
    const { dev, store } = await readyFixture();
    const data = pattern(512, 77);
    await store.writev(3 * 512, [data]);
    expectGood(await run(dev, verify12(3, 1, BYTCHK), { dataOut: [data] }));
    expectGood(await run(dev, verify16(3n, 1, BYTCHK), { dataOut: [data] }));
    expectCheck(await run(dev, verify16(3n, 1, BYTCHK), { dataOut: [Buffer.alloc(512)] }), 0xe, 0x1d, 0x00);
  });

  test('verify16_bytchk_single_block_compares_every_block', async () => {
    const { dev, store } = await readyFixture();
    const block = pattern(512, 5);
    await store.writev(0, [block, block, block]);
    const r = await run(dev, verify16(0n, 3, 0x06), { dataOut: [block] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(512);
    const changed = Buffer.from(block);
    changed[10] ^= 1;
    await store.writev(1024, [changed]);
    const s = expectCheck(await run(dev, verify16(0n, 3, 0x06), { dataOut: [block] }), 0xe, 0x1d, 0x00);
    expect(s.information).toBe(1024 + 10);
  });

  test('verify_read_error_is_medium_error', async () => {
    const { dev, store } = await readyFixture();
    vi.spyOn(store, 'read').mockRejectedValue(new BlockIoError('EIO', 'bad sector'));
    expectCheck(await run(dev, verify10(0, 1, BYTCHK), { dataOut: [Buffer.alloc(512)] }), 0x3, 0x11, 0x00);
  });
});
