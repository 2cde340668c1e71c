import { describe, expect, test, vi } from 'vitest';
import { BlockIoError } from '../../../src/block';
import { be16, be32, be64, expectCheck, expectGood, readyFixture, run } from './helpers';

const getLbaStatus = (lba: bigint | number, alloc = 1024): number[] => [0x9e, 0x12, ...be64(BigInt(lba)), ...be32(alloc), 0, 0];
const unmapCdb = (pll: number): number[] => [0x42, 0, 0, 0, 0, 0, 0, ...be16(pll), 0];
const MAPPED = 0;
const DEALLOCATED = 1;

interface Descriptor {
  lba: number;
  blocks: number;
  status: number;
}

/** Independent parser of GET LBA STATUS parameter data. */
function parse(d: Buffer): { length: number; descriptors: Descriptor[] } {
  const length = d.readUInt32BE(0);
  const descriptors: Descriptor[] = [];
  for (let at = 8; at + 16 <= d.length; at += 16) {
    descriptors.push({ lba: Number(d.readBigUInt64BE(at)), blocks: d.readUInt32BE(at + 8), status: d[at + 12]! & 0x0f });
  }
  return { length, descriptors };
}

describe('GET LBA STATUS', () => {
  test('getlbastatus_simple_thick', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    const r = await run(dev, getLbaStatus(0));
    expectGood(r);
    expect(parse(r.dataIn!)).toEqual({ length: 20, descriptors: [{ lba: 0, blocks: 1024, status: MAPPED }] });
    for (const lba of [1, 255, 1023]) {
      expect(parse((await run(dev, getLbaStatus(lba, 24))).dataIn!).descriptors).toEqual([{ lba, blocks: 1024 - lba, status: MAPPED }]);
    }
  });

  test('getlbastatus_thin_extents', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    expect(parse((await run(dev, getLbaStatus(0))).dataIn!).descriptors).toEqual([{ lba: 0, blocks: 1024, status: DEALLOCATED }]);
    await store.writev(8 * 512, [Buffer.alloc(8 * 512, 1)]);
    await store.writev(16 * 512, [Buffer.alloc(16 * 512, 1)]); // adjacent: merged with the first
    await store.writev(64 * 512, [Buffer.alloc(512, 1)]); // part of a chunk: the whole chunk is mapped
    const r = parse((await run(dev, getLbaStatus(0))).dataIn!);
    expect(r.descriptors).toEqual([
      { lba: 0, blocks: 8, status: DEALLOCATED },
      { lba: 8, blocks: 24, status: MAPPED },
      { lba: 32, blocks: 32, status: DEALLOCATED },
      { lba: 64, blocks: 8, status: MAPPED },
      { lba: 72, blocks: 1024 - 72, status: DEALLOCATED },
    ]);
    expect(r.length).toBe(4 + 5 * 16);
    // The first descriptor starts at the requested LBA, even inside an extent.
    expect(parse((await run(dev, getLbaStatus(9, 24))).dataIn!).descriptors).toEqual([{ lba: 9, blocks: 23, status: MAPPED }]);
    expect(parse((await run(dev, getLbaStatus(1023, 24))).dataIn!).descriptors).toEqual([{ lba: 1023, blocks: 1, status: DEALLOCATED }]);
  });

  test('getlbastatus_unmap_single', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    await store.writev(0, [Buffer.alloc(264 * 512, 0x41)]);
    for (let lba = 0; lba + 8 <= 256; lba += 8) {
      const list = Buffer.from([0, 22, 0, 16, 0, 0, 0, 0, ...be64(BigInt(lba)), ...be32(8), 0, 0, 0, 0]);
      expectGood(await run(dev, unmapCdb(24), { dataOut: [list] }));
      expect(parse((await run(dev, getLbaStatus(lba, 24))).dataIn!).descriptors).toEqual([{ lba, blocks: 8, status: DEALLOCATED }]);
      const after = parse((await run(dev, getLbaStatus(lba + 8, 24))).dataIn!).descriptors;
      expect(after).toEqual([{ lba: lba + 8, blocks: 264 - lba - 8, status: MAPPED }]);
    }
  });

  test('getlbastatus_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    for (const lba of [1024n, 1025n, 1n << 63n, 0xffffffffffffffffn]) expectCheck(await run(dev, getLbaStatus(lba, 24)), 0x5, 0x21, 0x00);
    expectGood(await run(dev, getLbaStatus(1023n, 24)));
  });

  test('getlbastatus_alloclen', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    for (let lba = 0; lba < 1024; lba += 16) await store.writev(lba * 512, [Buffer.alloc(512, 1)]); // 128 extents
    const r0 = await run(dev, getLbaStatus(0, 0));
    expectGood(r0);
    expect(r0.dataIn!.length).toBe(0);
    for (const alloc of [1, 4, 8, 23]) {
      const d = (await run(dev, getLbaStatus(0, alloc))).dataIn!;
      expect(d.length).toBe(alloc);
      if (alloc >= 4) expect(d.readUInt32BE(0)).toBe(4 + 16); // one descriptor built for a buffer with no room for more
    }
    // As many descriptors as the allocation length has room for ...
    const three = parse((await run(dev, getLbaStatus(0, 8 + 3 * 16 + 5))).dataIn!);
    expect(three.length).toBe(4 + 3 * 16);
    expect(three.descriptors).toEqual([
      { lba: 0, blocks: 8, status: MAPPED },
      { lba: 8, blocks: 8, status: DEALLOCATED },
      { lba: 16, blocks: 8, status: MAPPED },
    ]);
    // ... up to 64 per command.
    const many = parse((await run(dev, getLbaStatus(0, 65535))).dataIn!);
    expect(many.descriptors.length).toBe(64);
    expect(many.length).toBe(4 + 64 * 16);
    const last = many.descriptors[63]!;
    expect(last).toEqual({ lba: 63 * 8, blocks: 8, status: DEALLOCATED });
  });

  test('getlbastatus_block_partly_backed_counts_as_mapped', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 64, blockSize: 4096 });
    // A store (e.g. a file system with 1 KiB blocks) reporting holes smaller than a logical block.
    vi.spyOn(store, 'allocationStatus').mockImplementation(async (offset, maxLength) => {
      const kib = Math.floor(offset / 1024);
      const mapped = kib % 8 === 2; // 1 KiB of data in every other 4 KiB block
      return { offset, length: Math.min(maxLength, 1024), mapped };
    });
    const d = parse((await run(dev, getLbaStatus(0, 8 + 4 * 16))).dataIn!).descriptors;
    expect(d).toEqual([
      { lba: 0, blocks: 1, status: MAPPED },
      { lba: 1, blocks: 1, status: DEALLOCATED },
      { lba: 2, blocks: 1, status: MAPPED },
      { lba: 3, blocks: 1, status: DEALLOCATED },
    ]);
  });

  test('getlbastatus_store_error', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    vi.spyOn(store, 'allocationStatus').mockRejectedValueOnce(new BlockIoError('EIO', 'bad'));
    expectCheck(await run(dev, getLbaStatus(0)), 0x3, 0x11, 0x00);
  });

  test('getlbastatus_rsoc', async () => {
    const { dev } = await readyFixture();
    const one = (await run(dev, [0xa3, 0x0c, 0x02, 0x9e, 0x00, 0x12, ...be32(512), 0, 0])).dataIn!;
    expect(one[1]! & 0x07).toBe(3);
    expect([...one.subarray(4, 6)]).toEqual([0x9e, 0x12]);
  });
});
