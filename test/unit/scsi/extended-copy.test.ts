/**
 * EXTENDED COPY (LID1) and RECEIVE COPY RESULTS, named after libiscsi's
 * test_extendedcopy_* / test_receive_copy_results_*. Parameter lists are
 * assembled byte by byte here (SPC-4 6.4); the NAA is the pinned one from
 * identity.test.ts, not computed by the code under test.
 */
import { describe, expect, test } from 'vitest';
import { BlockIoError, MemoryBackingStore } from '../../../src/block';
import { CopyTargetRegistry, LockMode, LogicalUnit, LuAvailability, ScsiTargetDevice } from '../../../src/target/scsi';
import { be16, be32, be64, clearUnitAttentions, expectCheck, expectGood, fixture, nexus, pattern, readyFixture, run, RunOptions } from './helpers';

/** NAA designator of VOLUME_ID (pinned in identity.test.ts). */
const NAA0 = '67a5a11ddcbce4fde6a631a25d8d1304';

const hexBytes = (h: string): number[] => [...Buffer.from(h, 'hex')];

/** CSCD identification descriptor (0xE4) naming an LU by an NAA designator. */
function cscd(naaHex: string, blockLength = 512, o: { code?: number; byte1?: number; designatorHeader?: number[] } = {}): number[] {
  const naa = hexBytes(naaHex);
  const d = [
    o.code ?? 0xe4,
    o.byte1 ?? 0x00, // LU ID TYPE 00b, NUL 0, PERIPHERAL DEVICE TYPE 0
    0, 0, // RELATIVE INITIATOR PORT IDENTIFIER
    ...(o.designatorHeader ?? [0x01, 0x03, 0x00, naa.length]), // binary, LU association, NAA, length
    ...naa,
  ];
  while (d.length < 28) d.push(0);
  d.push(0x00, (blockLength >> 16) & 0xff, (blockLength >> 8) & 0xff, blockLength & 0xff); // PAD=0, DISK BLOCK LENGTH
  return d;
}

/** Block device to block device segment descriptor (0x02). */
function b2b(src: number, dst: number, blocks: number, srcLba: number, dstLba: number, dc = 0): number[] {
  return [0x02, dc << 1, 0x00, 0x18, ...be16(src), ...be16(dst), 0, 0, ...be16(blocks), ...be64(BigInt(srcLba)), ...be64(BigInt(dstLba))];
}

/** Parameter list: 16-byte header, then the CSCD and segment descriptors. */
function plist(listId: number, listIdUsage: number, cscds: number[][], segments: number[][], inline = 0): Buffer {
  const c = cscds.flat();
  const s = segments.flat();
  return Buffer.from([listId, listIdUsage << 3, ...be16(c.length), 0, 0, 0, 0, ...be32(s.length), ...be32(inline), ...c, ...s]);
}

const HOLD = 0;
const NO_HOLD = 2;
const NO_LIST_ID = 3;

const xcopyCdb = (length: number): number[] => [0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(length), 0, 0];

function xcopy(dev: ScsiTargetDevice, list: Buffer, o: RunOptions = {}) {
  return run(dev, xcopyCdb(list.length), { ...o, dataOut: list.length > 0 ? [list] : [] });
}

const rcr = (sa: number, listId = 0, alloc = 1024): number[] => [0x84, sa, listId, 0, 0, 0, 0, 0, 0, 0, ...be32(alloc), 0, 0];
const COPY_STATUS = 0x00;
const OP_PARAMS = 0x03;

async function writeBlocks(lu: LogicalUnit, lba: number, data: Buffer): Promise<void> {
  await lu.store.writev(lba * lu.blockSize, [data]);
}

function readBlocks(lu: LogicalUnit, lba: number, blocks: number): Promise<Buffer> {
  return lu.store.read(lba * lu.blockSize, blocks * lu.blockSize);
}

function secondLu(volumeId: string, o: { blockSize?: 512 | 4096; blocks?: number; readOnly?: boolean } = {}): LogicalUnit {
  const blockSize = o.blockSize ?? 512;
  return new LogicalUnit({ store: new MemoryBackingStore((o.blocks ?? 1024) * blockSize), blockSize, identity: { volumeId }, readOnly: o.readOnly ?? false });
}

const naaOf = (lu: LogicalUnit): string => lu.identity.naa.toString('hex');

describe('EXTENDED COPY', () => {
  test('extendedcopy_simple', async () => {
    const { dev, lu } = await readyFixture();
    const data = pattern(512 * 256, 3);
    await writeBlocks(lu, 0, data);
    const r = await xcopy(dev, plist(1, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 256, 0, 1024 - 256)]));
    expectGood(r);
    expect(r.dataOutExpected).toBe(16 + 32 + 28);
    expect((await readBlocks(lu, 1024 - 256, 256)).equals(data)).toBe(true);
  });

  test('extendedcopy_several_segments_and_zero_blocks', async () => {
    const { dev, lu } = await readyFixture();
    await writeBlocks(lu, 10, pattern(512 * 4, 9));
    const r = await xcopy(dev, plist(2, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 2, 10, 100), b2b(0, 0, 0, 0, 0), b2b(0, 0, 2, 12, 200)]));
    expectGood(r);
    expect((await readBlocks(lu, 100, 2)).equals(pattern(512 * 4, 9).subarray(0, 1024))).toBe(true);
    expect((await readBlocks(lu, 200, 2)).equals(pattern(512 * 4, 9).subarray(1024))).toBe(true);
  });

  test('extendedcopy_param_hdr', async () => {
    const { dev } = await readyFixture();
    const full = plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 8, 0, 512)]);
    // Parameter list length cutting the CSCD descriptor, then the segment descriptor.
    expectCheck(await xcopy(dev, full.subarray(0, 16 + 32 - 1)), 0x5, 0x1a, 0x00);
    expectCheck(await xcopy(dev, full.subarray(0, 16 + 32 + 28 - 1)), 0x5, 0x1a, 0x00);
    // Zero: nothing to do, not an error.
    expectGood(await run(dev, xcopyCdb(0)));
    // Shorter than the header: refused at the CDB.
    const short = await run(dev, xcopyCdb(8), { dataOut: [Buffer.alloc(8)] });
    expectCheck(short, 0x5, 0x1a, 0x00);
    expect(short.dataOutExpected).toBeUndefined();
    // Longer than any valid list: refused at the CDB too.
    expectCheck(await run(dev, xcopyCdb(16 + 2048 + 1), { dataOut: [Buffer.alloc(16 + 2048 + 1)] }), 0x5, 0x1a, 0x00);
  });

  test('extendedcopy_param_hdr_fields', async () => {
    const { dev } = await readyFixture();
    const reserved = plist(1, 1, [cscd(NAA0)], [b2b(0, 0, 8, 0, 512)]);
    expect(expectCheck(await xcopy(dev, reserved), 0x5, 0x26, 0x00).sks).toMatchObject({ cd: false, field: 1, bit: 4 });
    const inline = plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 8, 0, 512)], 4);
    expect(expectCheck(await xcopy(dev, Buffer.concat([inline, Buffer.alloc(4)])), 0x5, 0x26, 0x00).sks).toMatchObject({ field: 12 });
    const ragged = plist(1, HOLD, [cscd(NAA0).slice(0, 30)], [b2b(0, 0, 8, 0, 512)]);
    expectCheck(await xcopy(dev, ragged), 0x5, 0x26, 0x00);
  });

  test('extendedcopy_descr_limits', async () => {
    const { dev } = await readyFixture();
    const op = (await run(dev, rcr(OP_PARAMS))).dataIn!;
    const maxCscd = op.readUInt16BE(8);
    const maxSegments = op.readUInt16BE(10);
    const maxListLength = op.readUInt32BE(12);
    const seg = b2b(0, 0, 8, 0, 512);
    const tooManyCscds = plist(1, HOLD, Array.from({ length: maxCscd + 1 }, () => cscd(NAA0)), [seg]);
    expectCheck(await xcopy(dev, tooManyCscds), 0x5, 0x26, 0x06);
    const tooManySegments = plist(2, HOLD, [cscd(NAA0)], Array.from({ length: maxSegments + 1 }, () => seg));
    expectCheck(await xcopy(dev, tooManySegments), 0x5, 0x26, 0x08);
    // Descriptor lists longer than MAXIMUM DESCRIPTOR LIST LENGTH (libiscsi sends max+1 CSCDs too: length wins).
    const count = Math.ceil((maxListLength - (maxCscd + 1) * 32) / 28) + 1;
    const tooLong = plist(3, HOLD, Array.from({ length: maxCscd + 1 }, () => cscd(NAA0)), Array.from({ length: count }, () => seg));
    expect(tooLong.length - 16).toBeGreaterThan(maxListLength);
    expectCheck(await run(dev, xcopyCdb(tooLong.length), { dataOut: [tooLong] }), 0x5, 0x1a, 0x00);
    // At the limits exactly: accepted.
    const atLimits = plist(4, HOLD, Array.from({ length: maxCscd }, () => cscd(NAA0)), Array.from({ length: maxSegments }, () => b2b(maxCscd - 1, 0, 1, 0, 1)));
    expectGood(await xcopy(dev, atLimits));
  });

  test('extendedcopy_descr_type', async () => {
    const { dev } = await readyFixture();
    const seg = b2b(0, 0, 8, 0, 512);
    const fc = plist(1, HOLD, [cscd(NAA0, 512, { code: 0xe0 })], [seg]);
    expect(expectCheck(await xcopy(dev, fc), 0x5, 0x26, 0x07).sks).toMatchObject({ cd: false, field: 16 });
    // Stream to stream (0x03): 20 bytes.
    const stream = [0x03, 0x00, 0x00, 0x10, 0, 0, 0, 0, ...new Array<number>(12).fill(0)];
    expect(expectCheck(await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [stream])), 0x5, 0x26, 0x09).sks).toMatchObject({ field: 48 });
    // A CSCD for a sequential access device: not a device type this copy manager handles.
    expectCheck(await xcopy(dev, plist(1, HOLD, [cscd(NAA0, 512, { byte1: 0x01 })], [seg])), 0x5, 0x26, 0x07);
    // A block to block descriptor with the wrong DESCRIPTOR LENGTH.
    const badLength = b2b(0, 0, 8, 0, 512);
    badLength[3] = 0x14;
    expectCheck(await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [badLength.slice(0, 24)])), 0x5, 0x26, 0x00);
  });

  test('extendedcopy_valid_tgt_descr', async () => {
    const { dev, lu } = await readyFixture();
    await writeBlocks(lu, 0, pattern(512 * 8, 5));
    // SPC-4: LU ID TYPE and NUL are ignored.
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0, 512, { byte1: 0x80 })], [b2b(0, 0, 8, 0, 512)])));
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0, 512, { byte1: 0x20 })], [b2b(0, 0, 8, 0, 520)])));
    expect((await readBlocks(lu, 520, 8)).equals(pattern(512 * 8, 5))).toBe(true);
    // An NAA this node does not serve.
    const unknown = await xcopy(dev, plist(1, HOLD, [cscd('6' + '0'.repeat(31))], [b2b(0, 0, 8, 0, 512)]));
    expect(expectCheck(unknown, 0xa, 0x08, 0x04).sks).toMatchObject({ cd: false, field: 20 });
    // A designator that is not an NAA (T10 vendor id) is not looked up.
    const t10 = plist(1, HOLD, [cscd(NAA0, 512, { designatorHeader: [0x02, 0x01, 0x00, 16] })], [b2b(0, 0, 8, 0, 512)]);
    expectCheck(await xcopy(dev, t10), 0xa, 0x08, 0x04);
    // DISK BLOCK LENGTH must be the LU's.
    expect(expectCheck(await xcopy(dev, plist(1, HOLD, [cscd(NAA0, 4096)], [b2b(0, 0, 1, 0, 512)])), 0x5, 0x26, 0x00).sks).toMatchObject({ field: 16 + 29 });
    // Designator longer than the descriptor holds.
    expectCheck(await xcopy(dev, plist(1, HOLD, [cscd(NAA0, 512, { designatorHeader: [0x01, 0x03, 0x00, 21] })], [b2b(0, 0, 1, 0, 512)])), 0x5, 0x26, 0x00);
  });

  test('extendedcopy_valid_seg_descr', async () => {
    const { dev, lu } = await readyFixture();
    await writeBlocks(lu, 0, pattern(512 * 8, 7));
    // Destination CSCD index 1 with one CSCD in the list.
    const r = await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 1, 8, 0, 512)]));
    expect(expectCheck(r, 0xa, 0x08, 0x04).sks).toMatchObject({ cd: false, field: 16 + 32 + 6 });
    // Beyond the end of the destination: pointer at its LBA field.
    const eol = await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 8, 0, 1024 - 1)]));
    expect(expectCheck(eol, 0xa, 0x00, 0x00).sks).toMatchObject({ cd: false, field: 16 + 32 + 20 });
    // Beyond the end of the source.
    const srcEol = await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 8, 1020, 0)]));
    expect(expectCheck(srcEol, 0xa, 0x00, 0x00).sks).toMatchObject({ field: 16 + 32 + 12 });
    // A huge LBA does not wrap.
    const huge = await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [[...b2b(0, 0, 8, 0, 0).slice(0, 20), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]));
    expectCheck(huge, 0xa, 0x00, 0x00);
    // A list that fails in its second segment copies nothing: every segment is checked first.
    const second = await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 8, 0, 100), b2b(0, 0, 8, 0, 1020)]));
    expectCheck(second, 0xa, 0x00, 0x00);
    expect((await readBlocks(lu, 100, 8)).equals(Buffer.alloc(512 * 8))).toBe(true);
  });

  test('extendedcopy_overlap_behaves_like_memmove', async () => {
    // More than one 1 MiB chunk (2048 blocks), overlapping on one LU, both directions.
    const { dev, lu } = await readyFixture({ blocks: 8192 });
    const data = pattern(512 * 3000, 11);
    await writeBlocks(lu, 1000, data);
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 3000, 1000, 2500)])));
    expect((await readBlocks(lu, 2500, 3000)).equals(data)).toBe(true);
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 3000, 2500, 100)])));
    expect((await readBlocks(lu, 100, 3000)).equals(data)).toBe(true);
    expect(lu.locks.heldCount).toBe(0);
  });

  test('extendedcopy_between_luns_and_block_sizes', async () => {
    const { dev, lu } = await readyFixture();
    const big = secondLu('volume-4k', { blockSize: 4096, blocks: 64 });
    dev.addLun(1, big);
    await clearUnitAttentions(dev);
    await writeBlocks(lu, 16, pattern(4096 * 2, 13));
    // Addressed to LUN 0, copying from LUN 0 to LUN 1: 16 source blocks (DC=0) = 2 destination blocks.
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0), cscd(naaOf(big), 4096)], [b2b(0, 1, 16, 16, 3)])));
    expect((await readBlocks(big, 3, 2)).equals(pattern(4096 * 2, 13))).toBe(true);
    // DC=1: the count is in destination blocks; and back the other way.
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0), cscd(naaOf(big), 4096)], [b2b(1, 0, 16, 3, 600, 0)])));
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0), cscd(naaOf(big), 4096)], [b2b(0, 1, 1, 600, 10, 1)])));
    expect((await readBlocks(big, 10, 1)).equals(pattern(4096 * 2, 13).subarray(0, 4096))).toBe(true);
    // 3 source blocks of 512 are not a whole 4096-byte destination block.
    expectCheck(await xcopy(dev, plist(1, HOLD, [cscd(NAA0), cscd(naaOf(big), 4096)], [b2b(0, 1, 3, 0, 0)])), 0x5, 0x26, 0x00);
  });

  test('extendedcopy_other_target_needs_permission', async () => {
    const registry = new CopyTargetRegistry();
    const { dev, lu } = await readyFixture({ device: { copyTargets: registry } });
    const foreign = secondLu('volume-of-another-target');
    const other = new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:other', luns: new Map([[0, foreign]]), copyTargets: registry });
    const unregister = registry.register(foreign, { device: other });
    await writeBlocks(foreign, 0, pattern(512 * 4, 17));
    const list = plist(1, HOLD, [cscd(naaOf(foreign)), cscd(NAA0)], [b2b(0, 1, 4, 0, 40)]);
    // CVE-2020-28374: naming another target's LU is not enough.
    expectCheck(await xcopy(dev, list), 0xa, 0x08, 0x04);
    unregister();
    registry.register(foreign, { device: other, mayCopy: (n) => n.initiatorPort === nexus(1).initiatorPort });
    expectGood(await xcopy(dev, list));
    expect((await readBlocks(lu, 40, 4)).equals(pattern(512 * 4, 17))).toBe(true);
    // Another initiator of this target is not allowed by that rule.
    await clearUnitAttentions(dev, { nexus: nexus(2) });
    expectCheck(await xcopy(dev, list, { nexus: nexus(2) }), 0xa, 0x08, 0x04);
    // A registration whose LU left its device is stale.
    other.removeLun(0);
    expectCheck(await xcopy(dev, list), 0xa, 0x08, 0x04);
    expect(() => registry.register(secondLu('volume-of-another-target'), { device: other })).toThrow();
  });

  test('extendedcopy_copy_target_not_accessible', async () => {
    const { dev } = await readyFixture({ device: { alua: { groups: [{ id: 1, ports: [1] }, { id: 2, ports: [2] }], localGroup: 1 } } });
    const second = secondLu('second-volume');
    dev.addLun(1, second);
    await clearUnitAttentions(dev);
    const list = plist(1, HOLD, [cscd(NAA0), cscd(naaOf(second))], [b2b(0, 1, 4, 0, 0)]);
    dev.markMoving(1);
    expect(expectCheck(await xcopy(dev, list), 0xa, 0x0d, 0x02).sks).toMatchObject({ field: 16 + 64 + 6 });
    dev.setAvailability(1, LuAvailability.ONLINE);
    dev.setAluaState(1, 'standby', { lun: 1 });
    expectCheck(await xcopy(dev, list), 0xa, 0x0d, 0x02);
    // The group-wide state clears LUN 1's own state; LUN 0 (addressed) did not change, so no unit attention.
    dev.setAluaState(1, 'active/optimized');
    expectGood(await xcopy(dev, list));
  });

  test('extendedcopy_write_protected_destination', async () => {
    const { dev } = await readyFixture();
    const ro = secondLu('read-only-volume', { readOnly: true });
    dev.addLun(1, ro);
    await clearUnitAttentions(dev);
    expectCheck(await xcopy(dev, plist(1, HOLD, [cscd(NAA0), cscd(naaOf(ro))], [b2b(0, 1, 4, 0, 0)])), 0xa, 0x27, 0x00);
    // Reading from it is fine.
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0), cscd(naaOf(ro))], [b2b(1, 0, 4, 0, 0)])));
  });

  test('extendedcopy_io_error_is_third_party_device_failure', async () => {
    const store = new MemoryBackingStore(512 * 1024);
    store.read = () => Promise.reject(new BlockIoError('EIO', 'medium error'));
    const { dev } = await readyFixture({ lu: { store } });
    const r = await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 4, 0, 100)]));
    expect(expectCheck(r, 0xa, 0x0d, 0x01).sks).toMatchObject({ field: 16 + 32 });
  });

  test('extendedcopy_honours_range_locks', async () => {
    const { dev, lu } = await readyFixture();
    await writeBlocks(lu, 0, pattern(512 * 8, 19));
    const release = lu.locks.tryAcquire(500, 510, LockMode.SHARED)!; // a reader of the destination
    let done = false;
    const pending = xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 8, 0, 504)])).then((r) => {
      done = true;
      return r;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(done).toBe(false);
    // While it waits, RECEIVE COPY RESULTS shows it running.
    const status = (await run(dev, rcr(COPY_STATUS, 1))).dataIn!;
    expect(status[4]).toBe(0x10);
    // The same list id again from the same nexus: OPERATION IN PROGRESS; another nexus may use it.
    expectCheck(await xcopy(dev, plist(1, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 1, 0, 900)])), 0x5, 0x00, 0x16);
    await clearUnitAttentions(dev, { nexus: nexus(2) });
    expectGood(await xcopy(dev, plist(1, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 1, 0, 900)]), { nexus: nexus(2) }));
    release();
    expectGood(await pending);
    expect((await readBlocks(lu, 504, 8)).equals(pattern(512 * 8, 19))).toBe(true);
    expect(lu.locks.heldCount).toBe(0);
  });

  test('extendedcopy_too_many_concurrent_copies_is_busy', async () => {
    const { dev, lu } = await readyFixture();
    const max = (await run(dev, rcr(OP_PARAMS))).dataIn![36]!;
    const release = lu.locks.tryAcquire(0, 1, LockMode.EXCLUSIVE)!;
    const running = Array.from({ length: max }, (_, i) => xcopy(dev, plist(i, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 1, 0, 100 + i)])));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const r = await xcopy(dev, plist(200, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 1, 0, 300)]));
    expect(r.status).toBe(0x08);
    release();
    for (const p of running) expectGood(await p);
    expectGood(await xcopy(dev, plist(200, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 1, 0, 300)])));
  });

  test('extendedcopy_rsoc_usage', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, [0xa3, 0x0c, 0x02, 0x83, 0x00, 0x00, 0, 0, 0, 64, 0, 0]);
    expectGood(r);
    expect([...r.dataIn!.subarray(4)]).toEqual([0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    // EXTENDED COPY (LID4) is not implemented.
    expectCheck(await run(dev, [0x83, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 0x5, 0x24, 0x00);
  });

  test('inquiry_3pc', async () => {
    const { dev } = fixture();
    const d = (await run(dev, [0x12, 0, 0, 0, 96, 0])).dataIn!;
    expect(d[5]! & 0x08).toBe(0x08);
  });
});

describe('RECEIVE COPY RESULTS', () => {
  test('receivecopyresults_op_params', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, rcr(OP_PARAMS));
    expectGood(r);
    expect(r.dataIn!.toString('hex')).toBe(
      [
        '0000002a', // AVAILABLE DATA: 46 - 4
        '01', '000000', // SNLID
        '0008', // MAXIMUM CSCD DESCRIPTOR COUNT
        '0040', // MAXIMUM SEGMENT DESCRIPTOR COUNT
        '00000800', // MAXIMUM DESCRIPTOR LIST LENGTH: 8*32 + 64*28
        '10000000', // MAXIMUM SEGMENT LENGTH: 256 MiB
        '00000000', // MAXIMUM INLINE DATA LENGTH
        '00000000', // HELD DATA LIMIT
        '00000000', // MAXIMUM STREAM DEVICE TRANSFER SIZE
        '0000', '0010', // TOTAL CONCURRENT COPIES
        '10', // MAXIMUM CONCURRENT COPIES
        '09', // DATA SEGMENT GRANULARITY: 512 bytes
        '00', '00', '000000',
        '02', '02', 'e4', // implemented descriptor type codes
      ].join(''),
    );
    expect((await run(dev, rcr(OP_PARAMS, 0, 8))).dataIn!.length).toBe(8);
  });

  test('receivecopyresults_copy_status', async () => {
    const { dev } = await readyFixture();
    // No copy with this list id: INVALID FIELD IN CDB at the list id.
    expect(expectCheck(await run(dev, rcr(COPY_STATUS, 1)), 0x5, 0x24, 0x00).sks).toMatchObject({ cd: true, field: 2 });
    expectGood(await xcopy(dev, plist(1, HOLD, [cscd(NAA0)], [b2b(0, 0, 16, 0, 512), b2b(0, 0, 16, 0, 600)])));
    const d = (await run(dev, rcr(COPY_STATUS, 1))).dataIn!;
    expect(d.toString('hex')).toBe(['00000008', '00', '0002', '00', be32(2 * 16 * 512).map((b) => b.toString(16).padStart(2, '0')).join('')].join(''));
    // Another nexus has its own list ids.
    await clearUnitAttentions(dev, { nexus: nexus(2) });
    expectCheck(await run(dev, rcr(COPY_STATUS, 1), { nexus: nexus(2) }), 0x5, 0x24, 0x00);
    // Not held when the list said so.
    expectGood(await xcopy(dev, plist(2, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 1, 0, 512)])));
    expectCheck(await run(dev, rcr(COPY_STATUS, 2)), 0x5, 0x24, 0x00);
    expectGood(await xcopy(dev, plist(0, NO_LIST_ID, [cscd(NAA0)], [b2b(0, 0, 1, 0, 512)])));
    expectCheck(await run(dev, rcr(COPY_STATUS, 0)), 0x5, 0x24, 0x00);
    // Reusing list id 1 without holding drops the old status.
    expectGood(await xcopy(dev, plist(1, NO_HOLD, [cscd(NAA0)], [b2b(0, 0, 1, 0, 512)])));
    expectCheck(await run(dev, rcr(COPY_STATUS, 1)), 0x5, 0x24, 0x00);
  });

  test('receivecopyresults_copy_status_after_abort', async () => {
    const { dev } = await readyFixture();
    // A copy aborted while resolving is held as completed with errors...
    expectCheck(await xcopy(dev, plist(7, HOLD, [cscd(NAA0)], [b2b(0, 0, 8, 0, 1020)])), 0xa, 0x00, 0x00);
    expect([...(await run(dev, rcr(COPY_STATUS, 7))).dataIn!.subarray(4, 8)]).toEqual([0x01, 0, 0, 0]);
    // ...a parameter list rejected outright is not a copy at all.
    expectCheck(await xcopy(dev, plist(8, HOLD, [cscd(NAA0, 512, { code: 0xe0 })], [b2b(0, 0, 8, 0, 0)])), 0x5, 0x26, 0x07);
    expectCheck(await run(dev, rcr(COPY_STATUS, 8)), 0x5, 0x24, 0x00);
  });

  test('receivecopyresults_forgotten_with_the_nexus', async () => {
    const { dev } = await readyFixture();
    expectGood(await xcopy(dev, plist(3, HOLD, [cscd(NAA0)], [b2b(0, 0, 1, 0, 512)])));
    expectGood(await run(dev, rcr(COPY_STATUS, 3)));
    dev.nexusLost(nexus(1));
    await clearUnitAttentions(dev);
    expectCheck(await run(dev, rcr(COPY_STATUS, 3)), 0x5, 0x24, 0x00);
  });
});
