import { describe, expect, test, vi } from 'vitest';
import { BlockIoError } from '../../../src/block';
import { be16, be32, be64, expectCheck, expectGood, readyFixture, run } from './helpers';

const sync10 = (lba: number, blocks: number, flags = 0): number[] => [0x35, flags, ...be32(lba), 0, ...be16(blocks), 0];
const sync16 = (lba: bigint, blocks: number, flags = 0): number[] => [0x91, flags, ...be64(lba), ...be32(blocks), 0, 0];
const prefetch10 = (lba: number, blocks: number, flags = 0): number[] => [0x34, flags, ...be32(lba), 0, ...be16(blocks), 0];
const prefetch16 = (lba: bigint, blocks: number, flags = 0): number[] => [0x90, flags, ...be64(lba), ...be32(blocks), 0, 0];

describe('SYNCHRONIZE CACHE / PRE-FETCH', () => {
  test('synchronizecache10_simple_flushes_the_store', async () => {
    const { dev, store } = await readyFixture();
    const spy = vi.spyOn(store, 'flush');
    expectGood(await run(dev, sync10(0, 0)));
    expectGood(await run(dev, sync10(10, 5, 0x02))); // IMMED
    expectGood(await run(dev, sync16(0n, 1024)));
    expect(spy).toHaveBeenCalledTimes(3);
  });

  test('synchronizecache_beyond_eol', async () => {
    const { dev, store } = await readyFixture({ blocks: 1024 });
    const spy = vi.spyOn(store, 'flush');
    expectCheck(await run(dev, sync10(1000, 25)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, sync10(1025, 0)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, sync16(1n << 40n, 1)), 0x5, 0x21, 0x00);
    expect(spy).not.toHaveBeenCalled();
  });

  test('synchronizecache_flush_error_is_write_error', async () => {
    const { dev, store } = await readyFixture();
    vi.spyOn(store, 'flush').mockRejectedValue(new BlockIoError('EIO', 'fsync failed'));
    expectCheck(await run(dev, sync10(0, 0)), 0x3, 0x0c, 0x00);
  });

  test('prefetch10_simple', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    for (const n of [1, 255, 256]) {
      const r = await run(dev, prefetch10(0, n));
      expect(r.status).toBe(0x00); // GOOD, not CONDITION MET: there is no cache to fill
      expectGood(await run(dev, prefetch10(1024 - n, n)));
    }
  });

  test('prefetch10_flags', async () => {
    const { dev } = await readyFixture();
    expectGood(await run(dev, prefetch10(0, 1, 0x02))); // IMMED
    expectGood(await run(dev, [0x34, 0, ...be32(0), 3, ...be16(1), 0])); // GROUP NUMBER
  });

  test('prefetch10_0blocks', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    expectGood(await run(dev, prefetch10(0, 0)));
    expectCheck(await run(dev, prefetch10(1025, 0)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, prefetch10(0x80000000, 0)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, prefetch10(0xffffffff, 0)), 0x5, 0x21, 0x00);
  });

  test('prefetch16_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    expectCheck(await run(dev, prefetch16(1024n, 1)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, prefetch16(1023n, 2)), 0x5, 0x21, 0x00);
    expectCheck(await run(dev, prefetch16(0xffffffffffffffffn, 1)), 0x5, 0x21, 0x00);
    expectGood(await run(dev, prefetch16(1023n, 1)));
  });
});
