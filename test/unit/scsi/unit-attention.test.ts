import { describe, expect, test } from 'vitest';
import { LogicalUnit, TaskManagementFunction, UnitAttention } from '../../../src/target/scsi';
import { clearUnitAttentions, expectCheck, expectGood, fixture, nexus, readyFixture, run } from './helpers';

const TUR = [0x00, 0, 0, 0, 0, 0];
const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];

describe('unit attention conditions', () => {
  test('unit_attention_power_on_reset_on_first_command_of_each_nexus', async () => {
    const { dev } = fixture();
    expectCheck(await run(dev, READ10), 0x6, 0x29, 0x00);
    expectGood(await run(dev, READ10));
    // A second nexus gets its own.
    expectCheck(await run(dev, TUR, { nexus: nexus(2) }), 0x6, 0x29, 0x00);
    expectGood(await run(dev, TUR, { nexus: nexus(2) }));
  });

  test('unit_attention_reported_before_unsupported_opcode_and_invalid_cdb', async () => {
    const { dev } = fixture();
    expectCheck(await run(dev, [0xc0, 0, 0, 0, 0, 0]), 0x6, 0x29, 0x00);
    expectCheck(await run(dev, [0xc0, 0, 0, 0, 0, 0]), 0x5, 0x20, 0x00);
  });

  test('unit_attention_sense_follows_d_sense', async () => {
    const { dev, lu } = await readyFixture();
    const control = [0x0a, 0x0a, 0x24, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0];
    expectGood(await run(dev, [0x15, 0x10, 0, 0, 16, 0], { dataOut: [Buffer.from([0, 0, 0, 0, ...control])] }));
    lu.notifyCapacityChanged();
    const r = await run(dev, TUR);
    expect(r.sense![0]).toBe(0x72);
    expect([...r.sense!.subarray(1, 4)]).toEqual([0x06, 0x2a, 0x09]);
  });

  test('unit_attention_after_lun_reset', async () => {
    const { dev } = fixture();
    const a = nexus(1);
    const b = nexus(2);
    await clearUnitAttentions(dev, { nexus: a });
    await clearUnitAttentions(dev, { nexus: b });
    expect(dev.taskManagement(TaskManagementFunction.LOGICAL_UNIT_RESET, a, 0)).toBe('complete');
    // Every nexus, the requester included, sees BUS DEVICE RESET FUNCTION OCCURRED once.
    expect(await clearUnitAttentions(dev, { nexus: a })).toEqual([0x2903]);
    expect(await clearUnitAttentions(dev, { nexus: b })).toEqual([0x2903]);
  });

  test('unit_attention_lun_reset_supersedes_pending_reset_condition', async () => {
    const { dev, lu } = fixture();
    await clearUnitAttentions(dev);
    lu.notifyCapacityChanged();
    dev.taskManagement(TaskManagementFunction.LOGICAL_UNIT_RESET, nexus(1), 0);
    expect(await clearUnitAttentions(dev)).toEqual([0x2903, 0x2a09]);
  });

  test('unit_attention_target_warm_and_cold_reset', async () => {
    const { dev, lu } = fixture();
    const second = new LogicalUnit({
      store: lu.store,
      blockSize: 512,
      identity: { volumeId: 'second' },
    });
    dev.addLun(1, second);
    await clearUnitAttentions(dev, { lun: 0 });
    await clearUnitAttentions(dev, { lun: 1 });
    expect(dev.taskManagement(TaskManagementFunction.TARGET_WARM_RESET, nexus(1), 0)).toBe('complete');
    expect(await clearUnitAttentions(dev, { lun: 0 })).toEqual([0x2902]);
    expect(await clearUnitAttentions(dev, { lun: 1 })).toEqual([0x2902]);
    expect(dev.taskManagement(TaskManagementFunction.TARGET_COLD_RESET, nexus(1), 5)).toBe('complete');
    expect(await clearUnitAttentions(dev, { lun: 0 })).toEqual([0x2901]);
  });

  test('unit_attention_nexus_lost_forgets_state', async () => {
    const { dev, lu } = await readyFixture();
    lu.notifyCapacityChanged();
    dev.nexusLost(nexus(1));
    expect(lu.unitAttentions.knows(nexus(1).key)).toBe(false);
    // The next session on the same I_T nexus starts from power on, not with the stale condition.
    expect(await clearUnitAttentions(dev)).toEqual([0x2900]);
  });

  test('unit_attention_generic_establish_except_nexus', async () => {
    const { dev, lu } = fixture();
    await clearUnitAttentions(dev, { nexus: nexus(1) });
    await clearUnitAttentions(dev, { nexus: nexus(2) });
    lu.establishUnitAttention(UnitAttention.RESERVATIONS_PREEMPTED, { exceptNexus: nexus(1).key });
    expectGood(await run(dev, TUR, { nexus: nexus(1) }));
    expectCheck(await run(dev, TUR, { nexus: nexus(2) }), 0x6, 0x2a, 0x03);
  });

  test('unit_attention_state_replicates_through_snapshot', async () => {
    const a = fixture();
    await clearUnitAttentions(a.dev);
    a.lu.notifyCapacityChanged();
    const b = fixture();
    b.lu.unitAttentions.restore(JSON.parse(JSON.stringify(a.lu.unitAttentions.snapshot())));
    // The peer reports the replicated condition, not a fresh power on.
    expectCheck(await run(b.dev, TUR), 0x6, 0x2a, 0x09);
    expectGood(await run(b.dev, TUR));
  });

  test.each([
    ['null', null],
    ['no nexuses', { version: 1 }],
    ['a nexus without a key', { version: 1, nexuses: [{ pending: [] }] }],
    ['pending that is not an array', { version: 1, nexuses: [{ key: 'k', pending: 7 }] }],
    ['an ASC that is not a byte', { version: 1, nexuses: [{ key: 'k', pending: [{ asc: '2a', ascq: 9 }] }] }],
    ['an ASCQ out of range', { version: 1, nexuses: [{ key: 'k', pending: [{ asc: 0x2a, ascq: 256 }] }] }],
  ])('unit_attention_restore_refuses_a_malformed_snapshot_and_keeps_its_state (%s)', async (_what, bad) => {
    const { dev, lu } = fixture();
    await clearUnitAttentions(dev, { nexus: nexus(1) });
    lu.establishUnitAttention(UnitAttention.CAPACITY_DATA_HAS_CHANGED);
    const before = lu.unitAttentions.snapshot();
    expect(() => lu.unitAttentions.restore(bad as never)).toThrow(/unit attention snapshot/);
    expect(lu.unitAttentions.snapshot()).toEqual(before);
  });

  test('restore_live_state_applies_nothing_when_the_unit_attentions_are_malformed', async () => {
    const a = fixture();
    await clearUnitAttentions(a.dev, { nexus: nexus(1) });
    a.lu.establishUnitAttention(UnitAttention.CAPACITY_DATA_HAS_CHANGED);
    const b = fixture();
    const state = { reservations: a.lu.reservations.snapshot(), unitAttentions: { version: 1, nexuses: [{ key: 'k', pending: null }] } };
    const reservationsBefore = b.lu.reservations.snapshot();
    expect(() => b.lu.restoreLiveState(state as never)).toThrow(/unit attention snapshot/);
    expect(b.lu.reservations.snapshot()).toEqual(reservationsBefore);
  });
});

describe('task management', () => {
  test('tmf_abort_and_clear_functions_complete', () => {
    const { dev } = fixture();
    for (const fn of [TaskManagementFunction.ABORT_TASK, TaskManagementFunction.ABORT_TASK_SET, TaskManagementFunction.CLEAR_TASK_SET]) {
      expect(dev.taskManagement(fn, nexus(1), 0)).toBe('complete');
      expect(dev.taskManagement(fn, nexus(1), 3)).toBe('lun-does-not-exist');
    }
  });

  test('tmf_clear_aca_not_supported', () => {
    const { dev } = fixture();
    expect(dev.taskManagement(TaskManagementFunction.CLEAR_ACA, nexus(1), 0)).toBe('not-supported');
  });

  test('tmf_lun_reset_on_missing_lun', () => {
    const { dev } = fixture();
    expect(dev.taskManagement(TaskManagementFunction.LOGICAL_UNIT_RESET, nexus(1), 1)).toBe('lun-does-not-exist');
  });
});
