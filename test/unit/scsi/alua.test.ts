/**
 * Implicit ALUA: standard INQUIRY TPGS, REPORT TARGET PORT GROUPS, VPD 0x83
 * target port group designator, the asymmetric access states' senses and
 * the ASYMMETRIC ACCESS STATE CHANGED unit attention. CDBs are written out
 * by hand; RTPG data is parsed here independently of the code under test.
 */
import { describe, expect, test } from 'vitest';
import { AluaGroups, AluaState } from '../../../src/target/scsi';
import { ScsiTargetDevice } from '../../../src/target/scsi';
import { expectCheck, expectGood, fixture, nexus, readyFixture, run, RunOptions } from './helpers';

/**
 * Pending unit attentions of a nexus (asc<<8|ascq), taken with REQUEST SENSE:
 * TEST UNIT READY would meet the standby / transitioning senses instead.
 */
async function clearUnitAttentions(dev: ScsiTargetDevice, o: RunOptions = {}): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await run(dev, [0x03, 0, 0, 0, 18, 0], o);
    expectGood(r);
    const key = r.dataIn![2]! & 0x0f;
    if (key === 0) return seen;
    expect(key).toBe(0x6);
    seen.push((r.dataIn![12]! << 8) | r.dataIn![13]!);
  }
  throw new Error('unit attentions never cleared');
}

const PAIR = {
  groups: [
    { id: 1, ports: [1], state: AluaState.ACTIVE_OPTIMIZED, preferred: true },
    { id: 2, ports: [2], state: AluaState.STANDBY },
  ],
  localGroup: 1,
};

/** REPORT TARGET PORT GROUPS: MAINTENANCE IN, SA 0Ah, PARAMETER DATA FORMAT in byte 1 bits 7..5. */
const rtpg = (format = 0, alloc = 1024): number[] => [0xa3, (format << 5) | 0x0a, 0, 0, 0, 0, alloc >>> 24, (alloc >>> 16) & 0xff, (alloc >>> 8) & 0xff, alloc & 0xff, 0, 0];

const TUR = [0x00, 0, 0, 0, 0, 0];
const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const WRITE10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const INQUIRY = [0x12, 0, 0, 0, 96, 0];
const REPORT_LUNS = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0];
const REQUEST_SENSE = [0x03, 0, 0, 0, 18, 0];
const MODE_SENSE6 = [0x1a, 0x08, 0x3f, 0, 255, 0];
const READ_CAPACITY10 = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const RSOC = [0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0];

interface GroupDescriptor {
  pref: boolean;
  state: number;
  supported: number;
  id: number;
  status: number;
  ports: number[];
}

function parseRtpg(d: Buffer): { extended: boolean; transitionTime: number; groups: GroupDescriptor[] } {
  const end = 4 + d.readUInt32BE(0);
  const extended = ((d[4]! >> 4) & 0x07) === 1;
  const groups: GroupDescriptor[] = [];
  for (let at = extended ? 8 : 4; at < end; ) {
    const count = d[at + 7]!;
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(d.readUInt16BE(at + 8 + 4 * i + 2));
    groups.push({ pref: (d[at]! & 0x80) !== 0, state: d[at]! & 0x0f, supported: d[at + 1]!, id: d.readUInt16BE(at + 2), status: d[at + 5]!, ports });
    at += 8 + 4 * count;
  }
  expect(groups.reduce((n, g) => n + 8 + 4 * g.ports.length, extended ? 8 : 4)).toBe(end);
  return { extended, transitionTime: extended ? d[5]! : 0, groups };
}

describe('ALUA', () => {
  test('inquiry_tpgs_implicit', async () => {
    const { dev } = fixture();
    const d = (await run(dev, [0x12, 0, 0, 0, 96, 0])).dataIn!;
    expect((d[5]! >> 4) & 0x03).toBe(0x01); // TPGS=01b: implicit only
  });

  test('inquiry_vpd83_target_port_group_follows_the_port', async () => {
    const { dev } = fixture({ device: { alua: PAIR } });
    for (const [port, group] of [
      [1, 1],
      [2, 2],
      [7, 1], // a port no group lists belongs to the local group
    ] as const) {
      const d = (await run(dev, [0x12, 0x01, 0x83, 0x01, 0x00, 0x00], { nexus: nexus(1, port) })).dataIn!;
      const tail = d.subarray(d.length - 16).toString('hex');
      expect(tail).toBe(`01140004${port.toString(16).padStart(8, '0')}01150004${group.toString(16).padStart(8, '0')}`);
    }
  });

  test('rtpg_simple_single_group', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, rtpg());
    expectGood(r);
    const { extended, groups } = parseRtpg(r.dataIn!);
    expect(extended).toBe(false);
    expect(groups).toEqual([{ pref: false, state: 0x0, supported: 0x8f, id: 1, status: 0, ports: [1] }]);
  });

  test('rtpg_two_groups', async () => {
    const { dev } = await readyFixture({ device: { alua: PAIR } });
    const r = await run(dev, rtpg());
    expectGood(r);
    expect(r.dataIn!.toString('hex')).toBe(
      [
        '00000018', // RETURN DATA LENGTH: two descriptors of 12 bytes
        '80', '8f', '0001', '00', '00', '00', '01', '00000001', // PREF, active/optimized, T/U/S/AN/AO_SUP, group 1, port 1
        '02', '8f', '0002', '00', '00', '00', '01', '00000002', // standby, group 2, port 2
      ].join(''),
    );
  });

  test('rtpg_extended_header', async () => {
    const { dev } = await readyFixture({ device: { alua: { ...PAIR, implicitTransitionSeconds: 30 } } });
    const r = await run(dev, rtpg(1));
    expectGood(r);
    const d = r.dataIn!;
    expect(d.readUInt32BE(0)).toBe(d.length - 4);
    expect(d[4]).toBe(0x10); // FORMAT TYPE 001b
    expect(d[5]).toBe(30); // IMPLICIT TRANSITION TIME
    const { extended, transitionTime, groups } = parseRtpg(d);
    expect(extended).toBe(true);
    expect(transitionTime).toBe(30);
    expect(groups.map((g) => [g.id, g.state, g.ports])).toEqual([
      [1, 0x0, [1]],
      [2, 0x2, [2]],
    ]);
  });

  test('rtpg_alloc_length_truncates', async () => {
    const { dev } = await readyFixture({ device: { alua: PAIR } });
    const r = await run(dev, rtpg(0, 10));
    expectGood(r);
    expect(r.dataIn!.length).toBe(10);
    expect(r.dataIn!.readUInt32BE(0)).toBe(24); // still the full length
  });

  test('rtpg_invalid_parameter_data_format', async () => {
    const { dev } = await readyFixture();
    const s = expectCheck(await run(dev, rtpg(2)), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 7 });
  });

  test('rtpg_lists_the_port_the_command_came_through', async () => {
    // A lone device's group lists no ports: the requester's port is in it.
    const { dev } = fixture();
    await clearUnitAttentions(dev, { nexus: nexus(1, 5) });
    const { groups } = parseRtpg((await run(dev, rtpg(), { nexus: nexus(1, 5) })).dataIn!);
    expect(groups[0]!.ports).toEqual([5]);
  });

  test('rtpg_is_in_rsoc', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, [0xa3, 0x0c, 0x02, 0xa3, 0x00, 0x0a, 0, 0, 0, 64, 0, 0]);
    expectGood(r);
    expect(r.dataIn![1]! & 0x07).toBe(3); // supported
    expect([...r.dataIn!.subarray(4, 16)]).toEqual([0xa3, 0xea, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0]);
  });

  test('alua_transitioning_sense', async () => {
    const { dev } = fixture({ device: { alua: PAIR } });
    dev.setAluaState(1, AluaState.TRANSITIONING);
    await clearUnitAttentions(dev);
    for (const c of [TUR, READ10, READ_CAPACITY10, MODE_SENSE6]) expectCheck(await run(dev, c), 0x2, 0x04, 0x0a);
    expectCheck(await run(dev, WRITE10, { dataOut: [Buffer.alloc(512)] }), 0x2, 0x04, 0x0a);
    for (const c of [INQUIRY, REPORT_LUNS, REQUEST_SENSE, rtpg(), RSOC]) expectGood(await run(dev, c));
    const { groups } = parseRtpg((await run(dev, rtpg())).dataIn!);
    expect(groups[0]!.state).toBe(0xf);
    expect(groups[0]!.status).toBe(0x02); // altered by implicit behaviour
    // Through the other node's port (group 2, standby) the answer is standby's.
    await clearUnitAttentions(dev, { nexus: nexus(2, 2) });
    expectCheck(await run(dev, TUR, { nexus: nexus(2, 2) }), 0x2, 0x04, 0x0b);
  });

  test('alua_standby_sense_and_allowed_commands', async () => {
    const { dev } = fixture({ device: { alua: PAIR } });
    const viaB = { nexus: nexus(1, 2) };
    await clearUnitAttentions(dev, viaB);
    for (const c of [TUR, READ10, READ_CAPACITY10]) expectCheck(await run(dev, c, viaB), 0x2, 0x04, 0x0b);
    expectCheck(await run(dev, WRITE10, { ...viaB, dataOut: [Buffer.alloc(512)] }), 0x2, 0x04, 0x0b);
    // SPC-4 5.15.2.4.4: these still work in standby.
    for (const c of [INQUIRY, REPORT_LUNS, REQUEST_SENSE, rtpg(), MODE_SENSE6, RSOC]) expectGood(await run(dev, c, viaB));
    // Port 1 (group 1, active/optimized) is unaffected.
    await clearUnitAttentions(dev);
    expectGood(await run(dev, READ10));
  });

  test('alua_unavailable_sense', async () => {
    const { dev } = fixture({ device: { alua: PAIR } });
    dev.setAluaState(2, AluaState.UNAVAILABLE);
    const viaB = { nexus: nexus(1, 2) };
    await clearUnitAttentions(dev, viaB);
    for (const c of [TUR, READ10, MODE_SENSE6]) expectCheck(await run(dev, c, viaB), 0x2, 0x04, 0x0c);
    for (const c of [INQUIRY, REPORT_LUNS, REQUEST_SENSE, rtpg()]) expectGood(await run(dev, c, viaB));
  });

  test('alua_active_non_optimized_runs_everything', async () => {
    const { dev } = fixture({ device: { alua: PAIR } });
    dev.setAluaState(2, AluaState.ACTIVE_NON_OPTIMIZED);
    const viaB = { nexus: nexus(1, 2) };
    await clearUnitAttentions(dev, viaB);
    expectGood(await run(dev, READ10, viaB));
    expectGood(await run(dev, WRITE10, { ...viaB, dataOut: [Buffer.alloc(512)] }));
    const { groups } = parseRtpg((await run(dev, rtpg(), viaB)).dataIn!);
    expect(groups.map((g) => g.state)).toEqual([0x0, 0x1]);
  });

  test('alua_state_change_unit_attention_to_all_nexuses', async () => {
    const { dev } = fixture({ device: { alua: PAIR } });
    const a = { nexus: nexus(1, 1) };
    const b = { nexus: nexus(2, 2) };
    await clearUnitAttentions(dev, a);
    await clearUnitAttentions(dev, b);
    dev.setAluaState(2, AluaState.ACTIVE_OPTIMIZED);
    // Implicit transition: every nexus, through either group, is told.
    expect(await clearUnitAttentions(dev, a)).toEqual([0x2a06]);
    expect(await clearUnitAttentions(dev, b)).toEqual([0x2a06]);
    // Setting the same state again changes nothing and tells nobody.
    dev.setAluaState(2, AluaState.ACTIVE_OPTIMIZED);
    expect(await clearUnitAttentions(dev, a)).toEqual([]);
    expectGood(await run(dev, READ10, b));
  });

  test('alua_transition_then_active_ua_each_time', async () => {
    const { dev } = fixture({ device: { alua: PAIR } });
    await clearUnitAttentions(dev);
    dev.setAluaState(1, AluaState.TRANSITIONING);
    expectCheck(await run(dev, READ10), 0x6, 0x2a, 0x06);
    expectCheck(await run(dev, READ10), 0x2, 0x04, 0x0a); // retryable
    dev.setAluaState(1, AluaState.ACTIVE_OPTIMIZED);
    expectCheck(await run(dev, READ10), 0x6, 0x2a, 0x06);
    expectGood(await run(dev, READ10));
  });

  test('alua_per_lu_state', async () => {
    const { dev, lu } = fixture({ device: { alua: PAIR } });
    const { LogicalUnit } = await import('../../../src/target/scsi');
    const { MemoryBackingStore } = await import('../../../src/block');
    const other = new LogicalUnit({ store: new MemoryBackingStore(512 * 64), blockSize: 512, identity: { volumeId: 'other-volume' } });
    dev.addLun(1, other);
    await clearUnitAttentions(dev);
    await clearUnitAttentions(dev, { lun: 1 });
    // LUN 1 is owned by the other node: standby here, LUN 0 untouched.
    dev.setAluaState(1, AluaState.STANDBY, { lun: 1 });
    expect(await clearUnitAttentions(dev)).toEqual([]);
    expect(await clearUnitAttentions(dev, { lun: 1 })).toEqual([0x2a06]);
    expectCheck(await run(dev, READ10, { lun: 1 }), 0x2, 0x04, 0x0b);
    expectGood(await run(dev, READ10));
    expect(parseRtpg((await run(dev, rtpg(), { lun: 1 })).dataIn!).groups[0]!.state).toBe(0x2);
    expect(parseRtpg((await run(dev, rtpg())).dataIn!).groups[0]!.state).toBe(0x0);
    // A group-wide change clears the per-LU state.
    dev.setAluaState(1, AluaState.ACTIVE_OPTIMIZED);
    expectCheck(await run(dev, READ10, { lun: 1 }), 0x6, 0x2a, 0x06);
    expectGood(await run(dev, READ10, { lun: 1 }));
    expect(lu.unitAttentions.pending(nexus(1).key)).toEqual([]); // LUN 0 did not change
  });

  test('alua_unknown_group_or_lun_is_an_error', () => {
    const { dev } = fixture({ device: { alua: PAIR } });
    expect(() => dev.setAluaState(3, AluaState.STANDBY)).toThrow(RangeError);
    expect(() => dev.setAluaState(1, AluaState.STANDBY, { lun: 9 })).toThrow(RangeError);
    expect(() => dev.setAluaState(1, 'offline' as AluaState)).toThrow(RangeError);
  });

  test('alua_config_validation', () => {
    expect(() => new AluaGroups({ groups: [], localGroup: 1 })).toThrow(RangeError);
    expect(() => new AluaGroups({ groups: [{ id: 1, ports: [1] }], localGroup: 2 })).toThrow(RangeError);
    expect(() => new AluaGroups({ groups: [{ id: 0, ports: [1] }], localGroup: 0 })).toThrow(RangeError);
    expect(() => new AluaGroups({ groups: [{ id: 1, ports: [1] }, { id: 1, ports: [2] }], localGroup: 1 })).toThrow(RangeError);
    expect(() => new AluaGroups({ groups: [{ id: 1, ports: [1] }, { id: 2, ports: [1] }], localGroup: 1 })).toThrow(RangeError);
    expect(() => new AluaGroups({ groups: [{ id: 1, ports: [0x10000] }], localGroup: 1 })).toThrow(RangeError);
    expect(() => new AluaGroups({ groups: [{ id: 1, ports: [1] }], localGroup: 1, implicitTransitionSeconds: 256 })).toThrow(RangeError);
    const g = new AluaGroups({ groups: [{ id: 10, ports: [1, 3] }, { id: 20, ports: [2] }], localGroup: 20 });
    expect([1, 2, 3, 4].map((p) => g.groupOfPort(p))).toEqual([10, 20, 10, 20]);
  });
});
