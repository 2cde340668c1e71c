import { describe, expect, test } from 'vitest';
import { buildSense, FAILURE_SENSE, senseForFailure, SenseFormat, SenseKey } from '../../../src/target/scsi';

describe('sense data builder', () => {
  test('sense_fixed_format_layout', () => {
    const s = buildSense({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x24, ascq: 0x00, field: { inCdb: true, byte: 2, bit: 5 } });
    expect(s.length).toBe(18);
    expect(s[0]).toBe(0x70); // current, fixed, INFORMATION not valid
    expect(s[2]).toBe(0x05);
    expect(s[7]).toBe(10); // additional sense length
    expect(s[12]).toBe(0x24);
    expect(s[13]).toBe(0x00);
    expect(s[15]).toBe(0x80 | 0x40 | 0x08 | 5); // SKSV, C/D, BPV, bit 5
    expect(s.readUInt16BE(16)).toBe(2);
  });

  test('sense_fixed_information_sets_valid', () => {
    const s = buildSense({ key: SenseKey.MISCOMPARE, asc: 0x1d, ascq: 0, information: 0x1234 });
    expect(s[0]).toBe(0xf0);
    expect(s.readUInt32BE(3)).toBe(0x1234);
    expect(s[15]! & 0x80).toBe(0); // no sense-key specific data
  });

  test('sense_parameter_list_pointer_has_cd_clear_and_no_bpv', () => {
    const s = buildSense({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, ascq: 0, field: { inCdb: false, byte: 0x0110 } });
    expect(s[15]).toBe(0x80);
    expect(s.readUInt16BE(16)).toBe(0x0110);
  });

  test('sense_descriptor_format_layout', () => {
    const s = buildSense({ key: SenseKey.MISCOMPARE, asc: 0x1d, ascq: 0, information: 7, field: { inCdb: true, byte: 1, bit: 2 } }, SenseFormat.DESCRIPTOR);
    expect(s[0]).toBe(0x72);
    expect(s[1]).toBe(0x0e);
    expect(s[2]).toBe(0x1d);
    expect(s[3]).toBe(0x00);
    expect(s[7]).toBe(12 + 8);
    // information descriptor
    expect([...s.subarray(8, 12)]).toEqual([0x00, 0x0a, 0x80, 0x00]);
    expect(s.readBigUInt64BE(12)).toBe(7n);
    // sense key specific descriptor
    expect([...s.subarray(20, 28)]).toEqual([0x02, 0x06, 0, 0, 0xc8 | 2, 0x00, 0x01, 0x00]);
  });

  test('sense_failure_table_maps_reason_to_key_asc_ascq', () => {
    const s = senseForFailure('space-allocation-failed', {}, SenseFormat.FIXED);
    expect([s[2], s[12], s[13]]).toEqual([0x07, 0x27, 0x07]);
    expect(FAILURE_SENSE['lba-out-of-range']).toMatchObject({ key: 0x5, asc: 0x21, ascq: 0x00 });
    expect(FAILURE_SENSE['unrecovered-read-error']).toMatchObject({ key: 0x3, asc: 0x11, ascq: 0x00 });
    expect(FAILURE_SENSE['write-error']).toMatchObject({ key: 0x3, asc: 0x0c, ascq: 0x00 });
    expect(FAILURE_SENSE['internal-target-failure']).toMatchObject({ key: 0x4, asc: 0x44, ascq: 0x00 });
  });

  test('sense_every_failure_reason_has_a_distinct_code_and_text', () => {
    const seen = new Set<string>();
    for (const [reason, code] of Object.entries(FAILURE_SENSE)) {
      const k = `${code.key}/${code.asc}/${code.ascq}`;
      expect(seen.has(k), `${reason} duplicates ${k}`).toBe(false);
      seen.add(k);
      expect(code.text.length).toBeGreaterThan(0);
    }
  });
});
