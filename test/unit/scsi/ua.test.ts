import { describe, expect, test } from 'vitest';
import { UnitAttention, UnitAttentionQueues } from '../../../src/target/scsi';

describe('unit attention queues', () => {
  test('ua_new_nexus_gets_power_on_reset', () => {
    const q = new UnitAttentionQueues();
    expect(q.admit('a')).toBe(true);
    expect(q.admit('a')).toBe(false);
    expect(q.take('a')).toEqual(UnitAttention.POWER_ON_RESET);
    expect(q.take('a')).toBeUndefined();
  });

  test('ua_establish_except_nexus', () => {
    const q = new UnitAttentionQueues();
    q.admit('a');
    q.admit('b');
    q.clear('a');
    q.clear('b');
    q.establish(UnitAttention.MODE_PARAMETERS_CHANGED, { exceptNexus: 'a' });
    expect(q.peek('a')).toBeUndefined();
    expect(q.peek('b')).toEqual(UnitAttention.MODE_PARAMETERS_CHANGED);
  });

  test('ua_establish_only_nexus', () => {
    const q = new UnitAttentionQueues();
    q.admit('a');
    q.admit('b');
    q.establish(UnitAttention.CAPACITY_DATA_HAS_CHANGED, { onlyNexus: 'b' });
    expect(q.pending('a')).toEqual([UnitAttention.POWER_ON_RESET]);
    expect(q.pending('b')).toEqual([UnitAttention.POWER_ON_RESET, UnitAttention.CAPACITY_DATA_HAS_CHANGED]);
  });

  test('ua_duplicates_are_not_queued_twice', () => {
    const q = new UnitAttentionQueues();
    q.admit('a');
    q.establish(UnitAttention.CAPACITY_DATA_HAS_CHANGED);
    q.establish(UnitAttention.CAPACITY_DATA_HAS_CHANGED);
    expect(q.pending('a')).toEqual([UnitAttention.POWER_ON_RESET, UnitAttention.CAPACITY_DATA_HAS_CHANGED]);
  });

  test('ua_reset_class_goes_first_and_replaces_older_reset', () => {
    const q = new UnitAttentionQueues();
    q.admit('a');
    q.establish(UnitAttention.MODE_PARAMETERS_CHANGED);
    q.establish(UnitAttention.BUS_DEVICE_RESET_FUNCTION_OCCURRED);
    expect(q.pending('a')).toEqual([UnitAttention.BUS_DEVICE_RESET_FUNCTION_OCCURRED, UnitAttention.MODE_PARAMETERS_CHANGED]);
  });

  test('ua_establish_reaches_only_known_nexuses', () => {
    const q = new UnitAttentionQueues();
    q.establish(UnitAttention.CAPACITY_DATA_HAS_CHANGED);
    expect(q.nexusKeys()).toEqual([]);
    q.admit('late');
    expect(q.pending('late')).toEqual([UnitAttention.POWER_ON_RESET]);
  });

  test('ua_forget_then_readmit_starts_over', () => {
    const q = new UnitAttentionQueues();
    q.admit('a');
    q.take('a');
    q.forget('a');
    expect(q.knows('a')).toBe(false);
    expect(q.admit('a')).toBe(true);
    expect(q.peek('a')).toEqual(UnitAttention.POWER_ON_RESET);
  });

  test('ua_snapshot_restore_roundtrip_is_plain_json', () => {
    const q = new UnitAttentionQueues();
    q.admit('a');
    q.admit('b');
    q.take('b');
    q.establish(UnitAttention.REPORTED_LUNS_DATA_HAS_CHANGED);
    q.establish({ asc: 0x2a, ascq: 0x10, name: 'TIMESTAMP CHANGED' }, { onlyNexus: 'a' });
    const json = JSON.parse(JSON.stringify(q.snapshot()));
    const r = new UnitAttentionQueues();
    r.restore(json);
    expect(r.snapshot()).toEqual(q.snapshot());
    expect(r.take('a')).toEqual(UnitAttention.POWER_ON_RESET);
    expect(r.take('a')).toEqual(UnitAttention.REPORTED_LUNS_DATA_HAS_CHANGED);
    expect(r.take('a')).toMatchObject({ asc: 0x2a, ascq: 0x10 });
    expect(r.take('b')).toEqual(UnitAttention.REPORTED_LUNS_DATA_HAS_CHANGED);
  });

  test('ua_restore_rejects_unknown_version', () => {
    const q = new UnitAttentionQueues();
    expect(() => q.restore({ version: 2, nexuses: [] } as never)).toThrow(/version/);
  });
});
