import { describe, expect, test } from 'vitest';
import { ScsiFailure } from '../../../../src/target/scsi/failures';
import { encodeTransportId, nexusIdentity, parseTransportId } from '../../../../src/target/scsi/reservations';
import { nexus } from '../helpers';
import { iscsiTransportId, itNexus } from './helpers';

describe('TransportIDs', () => {
  test('transport_id_iscsi_port', () => {
    const bytes = Buffer.from(iscsiTransportId('IQN.1993-08.org.Debian:01:Init1,i,0x23D000000001', 1));
    expect(parseTransportId(bytes, 0)).toEqual({ initiator: 'iqn.1993-08.org.debian:01:init1,i,0x23d000000001', length: bytes.length });
    // A short ISID is widened to 12 hex digits.
    expect(parseTransportId(Buffer.from(iscsiTransportId('iqn.x:y,i,0x1', 1)), 0).initiator).toBe('iqn.x:y,i,0x000000000001');
  });

  test('transport_id_iscsi_device', () => {
    const bytes = Buffer.from(iscsiTransportId('iqn.1993-08.org.debian:01:init3', 0));
    expect(parseTransportId(bytes, 0)).toEqual({ initiator: 'iqn.1993-08.org.debian:01:init3', length: 36 });
  });

  test('transport_id_encode', () => {
    const port = 'iqn.1993-08.org.debian:01:init1,i,0x23d000000001';
    expect([...encodeTransportId(port)]).toEqual(iscsiTransportId(port, 1));
    expect([...encodeTransportId('iqn.a:b')]).toEqual(iscsiTransportId('iqn.a:b', 0)); // padded to the minimum of 20
    expect(encodeTransportId('iqn.a:b').length).toBe(24);
  });

  test('transport_id_other_protocols_are_24_bytes', () => {
    const fc = Buffer.alloc(24);
    fc[0] = 0x00; // FCP
    fc.write('2100001b32a9da4e', 8, 'hex');
    const parsed = parseTransportId(fc, 0);
    expect(parsed.length).toBe(24);
    expect([...encodeTransportId(parsed.initiator)]).toEqual([...fc]);
  });

  test('transport_id_faults_point_at_the_field', () => {
    const at = (bytes: number[], base = 0): number | undefined => {
      try {
        parseTransportId(Buffer.from([...Array<number>(base).fill(0), ...bytes]), base);
      } catch (err) {
        expect(err).toBeInstanceOf(ScsiFailure);
        expect((err as ScsiFailure).reason).toBe('invalid-field-in-parameter-list');
        return (err as ScsiFailure).detail.field?.byte;
      }
      return undefined;
    };
    const good = iscsiTransportId('iqn.a:b,i,0x1', 1);
    expect(at(good)).toBeUndefined();
    expect(at([0x85, ...good.slice(1)], 10)).toBe(10); // FORMAT CODE 10b
    expect(at([good[0]!, 0, 0, 22, ...good.slice(4)], 10)).toBe(12); // ADDITIONAL LENGTH not a multiple of 4
    expect(at([good[0]!, 0, 0, 40, ...good.slice(4)])).toBe(2); // longer than the data
    expect(at([0x45, 0, 0, 4, 0x41, 0x42, 0x43, 0x44])).toBe(4); // no NUL
    expect(at(iscsiTransportId('iqn.a:b,i,0xnothex', 1))).toBe(4);
    expect(at(iscsiTransportId('iqn.a:b', 1))).toBe(4); // port format without an ISID
    expect(at(iscsiTransportId('iqn.a:b,i,0x1', 0))).toBe(4); // device format with one
  });

  test('nexus_identity', () => {
    expect(nexusIdentity(itNexus(1, 2))).toEqual({ initiator: 'iqn.1993-08.org.debian:01:init1,i,0x23d000000001', relativeTargetPortId: 2 });
    // A transport that gives no usable TransportID: the SCSI initiator port name is used.
    expect(nexusIdentity(nexus(1))).toEqual(nexusIdentity(itNexus(1)));
  });
});
