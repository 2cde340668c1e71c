/**
 * Logical unit availability during failover: a LUN that exists but is busy
 * or moving must never answer LOGICAL UNIT NOT SUPPORTED (05h/25h/00h),
 * which ESXi takes as permanent device loss.
 */
import { describe, expect, test } from 'vitest';
import { MemoryBackingStore } from '../../../src/block';
import { LogicalUnit, LuAvailability, ScsiResponse } from '../../../src/target/scsi';
import { clearUnitAttentions, expectCheck, expectGood, fixture, nexus, parseSense, readyFixture, run, VOLUME_ID } from './helpers';

const TUR = [0x00, 0, 0, 0, 0, 0];
const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const WRITE10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const INQUIRY = [0x12, 0, 0, 0, 96, 0];
const VPD83 = [0x12, 0x01, 0x83, 0x01, 0x00, 0x00];
const REPORT_LUNS = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0];
const REQUEST_SENSE = [0x03, 0, 0, 0, 18, 0];
const READ_CAPACITY16 = [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];
const RTPG = [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0];

const BUSY = 0x08;

function neverLunNotSupported(r: ScsiResponse): void {
  if (r.sense) {
    const s = parseSense(r.sense);
    expect([s.key, s.asc, s.ascq]).not.toEqual([0x5, 0x25, 0x00]);
  }
  if (r.dataIn && r.dataIn.length >= 14 && (r.dataIn[0]! & 0x7f) === 0x70) {
    // REQUEST SENSE parameter data
    expect([r.dataIn[2]! & 0x0f, r.dataIn[12], r.dataIn[13]]).not.toEqual([0x5, 0x25, 0x00]);
  }
}

describe('logical unit availability', () => {
  test('lun_moving_never_lun_not_supported', async () => {
    const { dev } = await readyFixture();
    dev.markMoving(0);
    expect(dev.isMoving(0)).toBe(true);
    for (const c of [TUR, READ10, READ_CAPACITY16, [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]]) {
      const r = await run(dev, c);
      neverLunNotSupported(r);
      expect(r.status).toBe(BUSY);
      expect(r.sense).toBeNull();
    }
    expect((await run(dev, WRITE10, { dataOut: [Buffer.alloc(512)] })).status).toBe(BUSY);
    expectCheck(await run(dev, [0xc0]), 0x5, 0x20, 0x00); // an unknown opcode is still just that
    // The LU is still there: same identity, still listed, still reports its groups.
    for (const c of [INQUIRY, VPD83, REPORT_LUNS, REQUEST_SENSE, RTPG]) {
      const r = await run(dev, c);
      expectGood(r);
      neverLunNotSupported(r);
    }
    expect((await run(dev, REPORT_LUNS)).dataIn!.readUInt32BE(0)).toBe(8);
    // Back online: commands run again, no unit attention (nothing changed for the initiator).
    dev.setAvailability(0, LuAvailability.ONLINE);
    expect(dev.isMoving(0)).toBe(false);
    expectGood(await run(dev, READ10));
  });

  test('lun_moving_without_lu_is_busy_not_lun_not_supported', async () => {
    const { dev } = await readyFixture();
    // LUN 4 is on its way to this node: nothing attached yet.
    dev.markMoving(4);
    for (const c of [TUR, READ10, INQUIRY, VPD83, REQUEST_SENSE, RTPG]) {
      const r = await run(dev, c, { lun: 4 });
      neverLunNotSupported(r);
      expect(r.status).toBe(BUSY);
    }
    expectGood(await run(dev, REPORT_LUNS, { lun: 4 }));
    // It arrives: online from then on.
    const lu = new LogicalUnit({ store: new MemoryBackingStore(512 * 64), blockSize: 512, identity: { volumeId: 'arriving' } });
    dev.addLun(4, lu);
    expect(dev.isMoving(4)).toBe(false);
    await clearUnitAttentions(dev, { lun: 4 });
    expectGood(await run(dev, READ10, { lun: 4 }));
  });

  test('lun_removed_while_moving_stays_busy', async () => {
    const { dev } = await readyFixture();
    dev.markMoving(0);
    dev.removeLun(0);
    expect(dev.isMoving(0)).toBe(true);
    for (const c of [TUR, READ10, INQUIRY, REQUEST_SENSE]) {
      const r = await run(dev, c);
      neverLunNotSupported(r);
      expect(r.status).toBe(BUSY);
    }
    // The move is over and the LUN is gone for good: now it is not supported.
    dev.setAvailability(0, LuAvailability.ONLINE);
    expectCheck(await run(dev, READ10), 0x5, 0x25, 0x00);
  });

  test('lun_removed_while_online_is_not_supported', async () => {
    // Plain removal (not a move) is reported as such; the others get REPORTED LUNS DATA HAS CHANGED.
    const { dev } = await readyFixture();
    const other = new LogicalUnit({ store: new MemoryBackingStore(512 * 64), blockSize: 512, identity: { volumeId: 'other' } });
    dev.addLun(1, other);
    await clearUnitAttentions(dev, { lun: 1 });
    dev.removeLun(0);
    expectCheck(await run(dev, READ10), 0x5, 0x25, 0x00);
    expectCheck(await run(dev, READ10, { lun: 1 }), 0x6, 0x3f, 0x0e);
  });

  test('lun_transitioning_sense_and_unit_attention', async () => {
    const { dev, lu } = await readyFixture();
    await clearUnitAttentions(dev, { nexus: nexus(2) });
    dev.setAvailability(0, LuAvailability.TRANSITIONING);
    expect(lu.availability).toBe(LuAvailability.TRANSITIONING);
    expectCheck(await run(dev, READ10), 0x6, 0x2a, 0x06);
    for (const c of [TUR, READ10]) {
      const r = await run(dev, c);
      neverLunNotSupported(r);
      expectCheck(r, 0x2, 0x04, 0x0a);
    }
    expectGood(await run(dev, INQUIRY));
    // RTPG shows this node's group transitioning for the LU.
    const d = (await run(dev, RTPG)).dataIn!;
    expect(d[4]! & 0x0f).toBe(0xf);
    dev.setAvailability(0, LuAvailability.ONLINE);
    expectCheck(await run(dev, READ10), 0x6, 0x2a, 0x06);
    expectGood(await run(dev, READ10));
    // The other nexus was told of both changes; they coalesce into one pending entry.
    expect(await clearUnitAttentions(dev, { nexus: nexus(2) })).toEqual([0x2a06]);
  });

  test('lun_transitioning_needs_a_logical_unit', () => {
    const { dev } = fixture();
    expect(() => dev.setAvailability(9, LuAvailability.TRANSITIONING)).toThrow(RangeError);
    expect(() => dev.setAvailability(0, 'gone' as LuAvailability)).toThrow(RangeError);
  });

  test('lun_moving_then_moved_back_identity_unchanged', async () => {
    const { dev } = await readyFixture();
    const before = (await run(dev, VPD83)).dataIn!;
    dev.markMoving(0);
    const lu = dev.removeLun(0)!;
    const again = new LogicalUnit({ store: lu.store, blockSize: 512, identity: { volumeId: VOLUME_ID } });
    dev.addLun(0, again);
    expect(dev.isMoving(0)).toBe(false);
    expect((await run(dev, VPD83)).dataIn!.equals(before)).toBe(true);
  });
});
