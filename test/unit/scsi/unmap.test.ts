import { describe, expect, test, vi } from 'vitest';
import { BackingStore, BlockIoError } from '../../../src/block';
import { LogicalUnit, ScsiTargetDevice } from '../../../src/target/scsi';
import { be16, be32, be64, clearUnitAttentions, expectCheck, expectGood, readyFixture, run, VOLUME_ID } from './helpers';

const unmapCdb = (parameterListLength: number, anchor = 0): number[] => [0x42, anchor, 0, 0, 0, 0, 0, ...be16(parameterListLength), 0];
const inquiry = (page: number): number[] => [0x12, 1, page, ...be16(255), 0];
const rc16 = [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(32), 0, 0];

/** An UNMAP parameter list, written out field by field. */
function parameterList(extents: readonly (readonly [bigint | number, number])[], descriptorBytes = extents.length * 16): Buffer {
  const bytes = [...be16(6 + extents.length * 16), ...be16(descriptorBytes), 0, 0, 0, 0];
  for (const [lba, n] of extents) bytes.push(...be64(BigInt(lba)), ...be32(n), 0, 0, 0, 0);
  return Buffer.from(bytes);
}

async function unmap(dev: ScsiTargetDevice, extents: readonly (readonly [bigint | number, number])[]) {
  const list = parameterList(extents);
  return run(dev, unmapCdb(list.length), { dataOut: [list] });
}

/** A thin LU over a store that only counts discards: big enough for the LBA-count limit without the memory. */
async function hugeThinLu(): Promise<{ dev: ScsiTargetDevice; discard: ReturnType<typeof vi.fn> }> {
  const discard = vi.fn(async () => undefined);
  const store = { sizeBytes: 2 ** 40, thin: true, description: 'huge', discard, flush: vi.fn(async () => undefined) } as unknown as BackingStore;
  const lu = new LogicalUnit({ store, blockSize: 512, identity: { volumeId: VOLUME_ID } });
  const dev = new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:vol0', luns: new Map([[0, lu]]) });
  await clearUnitAttentions(dev);
  return { dev, discard };
}

describe('UNMAP', () => {
  test('unmap_simple', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    for (const n of [1, 7, 8, 9, 64, 256]) {
      await store.writev(0, [Buffer.alloc(264 * 512, 0x61)]);
      const r = await unmap(dev, [[0, n]]);
      expectGood(r);
      expect(r.dataOutExpected).toBe(24);
      // LBPRZ: unmapped blocks read back as zeros; the rest is untouched.
      expect((await store.read(0, n * 512)).equals(Buffer.alloc(n * 512))).toBe(true);
      expect((await store.read(n * 512, 512)).equals(Buffer.alloc(512, 0x61))).toBe(true);
      // Whole 4 KiB chunks are released.
      expect(store.allocatedBytes()).toBe((264 / 8) * 4096 - Math.floor(n / 8) * 4096);
    }
  });

  test('unmap_many_descriptors_in_any_order_overlapping', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    await store.writev(0, [Buffer.alloc(1024 * 512, 0xff)]);
    const discard = vi.spyOn(store, 'discard');
    expectGood(await unmap(dev, [[512, 64], [0, 8], [4, 8], [1000, 24], [100, 0]]));
    expect(discard.mock.calls).toEqual([[512 * 512, 64 * 512], [0, 8 * 512], [4 * 512, 8 * 512], [1000 * 512, 24 * 512]]);
    for (const [lba, n] of [[512, 64], [0, 12], [1000, 24]] as const) {
      expect((await store.read(lba * 512, n * 512)).equals(Buffer.alloc(n * 512))).toBe(true);
    }
    expect((await store.read(12 * 512, 512)).equals(Buffer.alloc(512, 0xff))).toBe(true);
  });

  test('unmap_0blocks', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    const discard = vi.spyOn(store, 'discard');
    for (const lba of [0, 1, 255, 1024]) expectGood(await unmap(dev, [[lba, 0]]));
    expectGood(await unmap(dev, [])); // a header and no descriptors
    expectGood(await unmap(dev, Array.from({ length: 256 }, (_, i) => [Math.floor(i / 2), 0] as const)));
    const r = await run(dev, unmapCdb(0)); // PARAMETER LIST LENGTH 0: no data at all
    expectGood(r);
    expect(r.dataOutExpected).toBe(0);
    expect(discard).not.toHaveBeenCalled();
  });

  test('unmap_parameter_list_length_error', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    const discard = vi.spyOn(store, 'discard');
    const list = parameterList([[0, 8]]);
    for (let pll = 1; pll < 8; pll++) {
      const s = expectCheck(await run(dev, unmapCdb(pll), { dataOut: [list.subarray(0, pll)] }), 0x5, 0x1a, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 7 });
    }
    // The descriptors announced run past the parameter list.
    expectCheck(await run(dev, unmapCdb(16), { dataOut: [list.subarray(0, 16)] }), 0x5, 0x1a, 0x00);
    expectCheck(await run(dev, unmapCdb(24), { dataOut: [parameterList([[0, 8]], 32)] }), 0x5, 0x1a, 0x00);
    expect(discard).not.toHaveBeenCalled();
  });

  test('unmap_partial_descriptor_is_ignored', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    const discard = vi.spyOn(store, 'discard');
    // Descriptor data length 24: one whole descriptor and 8 bytes of a second.
    const list = Buffer.concat([parameterList([[0, 8], [64, 8]], 24)]);
    expectGood(await run(dev, unmapCdb(list.length), { dataOut: [list] }));
    expect(discard.mock.calls).toEqual([[0, 8 * 512]]);
  });

  test('unmap_too_many_descriptors', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    const discard = vi.spyOn(store, 'discard');
    expectGood(await unmap(dev, Array.from({ length: 256 }, (_, i) => [i, 1] as const)));
    discard.mockClear();
    const s = expectCheck(await unmap(dev, Array.from({ length: 257 }, (_, i) => [i, 1] as const)), 0x5, 0x26, 0x00);
    expect(s.sks).toMatchObject({ cd: false, field: 2 });
    expect(discard).not.toHaveBeenCalled();
  });

  test('unmap_too_many_blocks', async () => {
    const { dev, discard } = await hugeThinLu();
    expectGood(await unmap(dev, [[0, 1024 * 1024]]));
    expectGood(await unmap(dev, [[0, 512 * 1024], [1n << 30n, 512 * 1024]]));
    discard.mockClear();
    let s = expectCheck(await unmap(dev, [[0, 1024 * 1024 + 1]]), 0x5, 0x26, 0x00);
    expect(s.sks).toMatchObject({ cd: false, field: 8 + 8 });
    s = expectCheck(await unmap(dev, [[0, 1024 * 1024], [5, 1]]), 0x5, 0x26, 0x00);
    expect(s.sks).toMatchObject({ cd: false, field: 8 + 16 + 8 });
    expect(discard).not.toHaveBeenCalled();
  });

  test('unmap_beyond_eol', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    const discard = vi.spyOn(store, 'discard');
    for (const extent of [[1024, 1], [1023, 2], [1025, 0], [1n << 63n, 1], [0xffffffffffffffffn, 1]] as const) {
      expectCheck(await unmap(dev, [extent]), 0x5, 0x21, 0x00);
    }
    // Nothing is unmapped when any descriptor is bad, wherever it is in the list.
    expectCheck(await unmap(dev, [[0, 8], [1020, 8]]), 0x5, 0x21, 0x00);
    expect(discard).not.toHaveBeenCalled();
    expectGood(await unmap(dev, [[1016, 8]]));
  });

  test('unmap_anchor', async () => {
    const { dev } = await readyFixture({ thin: true });
    const list = parameterList([[0, 8]]);
    const s = expectCheck(await run(dev, unmapCdb(list.length, 0x01), { dataOut: [list] }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 0 });
  });

  test('unmap_on_a_fully_provisioned_lu_is_refused', async () => {
    const { dev, store } = await readyFixture();
    const discard = vi.spyOn(store, 'discard');
    expectCheck(await unmap(dev, [[0, 8]]), 0x5, 0x24, 0x00);
    expectCheck(await run(dev, unmapCdb(0)), 0x5, 0x24, 0x00);
    expect(discard).not.toHaveBeenCalled();
    expect((await run(dev, rc16)).dataIn![14]! & 0x80).toBe(0); // LBPME=0
  });

  test('unmap_write_protected', async () => {
    const { dev } = await readyFixture({ thin: true, lu: { readOnly: true } });
    expectCheck(await unmap(dev, [[0, 8]]), 0x7, 0x27, 0x00);
  });

  test('unmap_frees_space_on_a_full_thin_volume', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    await store.writev(0, [Buffer.alloc(64 * 512, 1)]);
    store.capacityLimitBytes = 64 * 512;
    expectCheck(await run(dev, [0x2a, 0, ...be32(512), 0, ...be16(1), 0], { dataOut: [Buffer.alloc(512)] }), 0x7, 0x27, 0x07);
    // Unaligned ends are zeroed in place: no allocation needed.
    expectGood(await unmap(dev, [[3, 30]])); // LBAs 3..32: chunks 8..15, 16..23, 24..31 freed
    expect(store.allocatedBytes()).toBe(64 * 512 - 3 * 4096);
    expect((await store.read(0, 40 * 512)).equals(Buffer.concat([Buffer.alloc(3 * 512, 1), Buffer.alloc(30 * 512), Buffer.alloc(7 * 512, 1)]))).toBe(true);
    expectGood(await run(dev, [0x2a, 0, ...be32(512), 0, ...be16(1), 0], { dataOut: [Buffer.alloc(512)] }));
  });

  test('unmap_store_errors', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    vi.spyOn(store, 'discard').mockRejectedValueOnce(new BlockIoError('EIO', 'bad'));
    expectCheck(await unmap(dev, [[0, 8]]), 0x3, 0x0c, 0x00);
  });

  test('unmap_vpd_limits', async () => {
    const { dev } = await readyFixture({ thin: true });
    const bl = (await run(dev, inquiry(0xb0))).dataIn!;
    expect(bl.readUInt32BE(20)).toBe(1024 * 1024); // MAXIMUM UNMAP LBA COUNT
    expect(bl.readUInt32BE(24)).toBe(256); // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
    expect(bl.readUInt32BE(28)).toBe(8); // OPTIMAL UNMAP GRANULARITY: one 4096-byte physical block
    expect(bl.readUInt32BE(32)).toBe(0x80000000); // UGAVALID, UNMAP GRANULARITY ALIGNMENT 0
    const lbp = (await run(dev, inquiry(0xb2))).dataIn!;
    expect(lbp[5]! & 0x80).toBe(0x80); // LBPU
    expect((await run(dev, rc16)).dataIn![14]! & 0xc0).toBe(0xc0); // LBPME, LBPRZ
    // 4096-byte logical blocks: the granularity is one block.
    const big = await readyFixture({ thin: true, blockSize: 4096, blocks: 64 });
    expect((await run(big.dev, inquiry(0xb0))).dataIn!.readUInt32BE(28)).toBe(1);
    // A fully provisioned LU offers no UNMAP.
    const thick = await readyFixture();
    const tb = (await run(thick.dev, inquiry(0xb0))).dataIn!;
    expect([tb.readUInt32BE(20), tb.readUInt32BE(24), tb.readUInt32BE(28), tb.readUInt32BE(32)]).toEqual([0, 0, 0, 0]);
    expect((await run(thick.dev, inquiry(0xb2))).dataIn![5]! & 0x80).toBe(0);
  });
});
