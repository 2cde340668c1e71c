/**
 * Pins the identity bytes an initiator sees for one volume id. If any of
 * these fail, every deployed volume would change its SCSI identity
 * (multipath WWIDs, /dev/disk/by-id names): do not "fix" the expected bytes
 * unless that is intended.
 */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { MemoryBackingStore } from '../../../src/block';
import { LogicalUnit, naaDesignator, ScsiTargetDevice, unitSerialNumber } from '../../../src/target/scsi';
import { fixture, nexus, run, VOLUME_ID } from './helpers';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// Byte 5 = 0x18: TPGS=01b (implicit ALUA) and 3PC (EXTENDED COPY). Neither is identity.
const PINNED_STANDARD_INQUIRY = hex(`
  00 00 06 12 5b 18 00 02
  54 57 49 4e 53 41 4e 20
  74 77 69 6e 73 61 6e 20 76 6f 6c 75 6d 65 20 20
  30 30 30 31
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00
  00 a0 04 60 04 c0 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`);

const PINNED_VPD_80 = hex(`00 80 00 20 ${Buffer.from('3f1c2a9e6b1d4f7a9c3e5d2b8a7e1f60').toString('hex')}`);

const PINNED_NAA = hex('67 a5 a1 1d dc bc e4 fd e6 a6 31 a2 5d 8d 13 04');

/** The logical unit designators: identical on both nodes. */
const PINNED_LU_DESIGNATORS = `
  01 03 00 10 67 a5 a1 1d dc bc e4 fd e6 a6 31 a2 5d 8d 13 04
  02 01 00 28 54 57 49 4e 53 41 4e 20 ${Buffer.from('3f1c2a9e6b1d4f7a9c3e5d2b8a7e1f60').toString('hex')}`;

/** A lone device: relative target port 1 in target port group 1. */
const PINNED_VPD_83 = hex(`
  00 83 00 50
  ${PINNED_LU_DESIGNATORS}
  01 14 00 04 00 00 00 01
  01 15 00 04 00 00 00 01`);

/** Node B of a pair, reached through relative target port 2 in target port group 2. */
const PINNED_VPD_83_NODE_B = hex(`
  00 83 00 50
  ${PINNED_LU_DESIGNATORS}
  01 14 00 04 00 00 00 02
  01 15 00 04 00 00 00 02`);

const PAIR = { groups: [{ id: 1, ports: [1] }, { id: 2, ports: [2] }] };

describe('identity bytes', () => {
  test('identity_pinned_standard_inquiry', async () => {
    const { dev } = fixture();
    const r = await run(dev, [0x12, 0x00, 0x00, 0x01, 0x00, 0x00]);
    expect(r.status).toBe(0);
    expect(r.dataIn!.toString('hex')).toBe(PINNED_STANDARD_INQUIRY.toString('hex'));
  });

  test('identity_pinned_vpd_unit_serial_number', async () => {
    const { dev } = fixture();
    const r = await run(dev, [0x12, 0x01, 0x80, 0x01, 0x00, 0x00]);
    expect(r.dataIn!.toString('hex')).toBe(PINNED_VPD_80.toString('hex'));
  });

  test('identity_pinned_vpd_device_identification', async () => {
    const { dev } = fixture();
    const r = await run(dev, [0x12, 0x01, 0x83, 0x01, 0x00, 0x00]);
    expect(r.dataIn!.toString('hex')).toBe(PINNED_VPD_83.toString('hex'));
  });

  test('identity_naa_structure_is_ieee_registered_extended', () => {
    const naa = naaDesignator(VOLUME_ID);
    expect(naa.toString('hex')).toBe(PINNED_NAA.toString('hex'));
    expect(naa[0]! >> 4).toBe(6); // NAA 6
    // Company id 0x7A5A11: CID format (low nibble of first octet 0xA).
    const cid = ((naa[0]! & 0x0f) << 20) | (naa[1]! << 12) | (naa[2]! << 4) | (naa[3]! >> 4);
    expect(cid).toBe(0x7a5a11);
    // The 100 vendor specific bits are SHA-256("twinsan-naa:" + id), recomputed independently.
    const h = createHash('sha256').update(`twinsan-naa:${VOLUME_ID}`).digest();
    const bitsFromNaa = naa.toString('hex').slice(7); // 25 nibbles after NAA + CID
    expect(bitsFromNaa).toBe(h.toString('hex').slice(0, 25));
  });

  test('identity_independent_of_instance_and_case', async () => {
    const a = fixture();
    const store = new MemoryBackingStore(4096 * 16);
    const lu = new LogicalUnit({ store, blockSize: 4096, identity: { volumeId: `  ${VOLUME_ID.toUpperCase()} ` } });
    const b = new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:other-node', luns: new Map([[7, lu]]) });
    for (const page of [0x80, 0x83]) {
      const ra = await run(a.dev, [0x12, 0x01, page, 0x01, 0x00, 0x00]);
      const rb = await run(b, [0x12, 0x01, page, 0x01, 0x00, 0x00], { lun: 7 });
      expect(rb.dataIn!.equals(ra.dataIn!)).toBe(true);
    }
  });

  test('identity_relative_port_follows_the_nexus_and_tpg_is_reported', async () => {
    const { dev } = fixture({ device: { targetPortGroup: 0x11 } });
    const r = await run(dev, [0x12, 0x01, 0x83, 0x01, 0x00, 0x00], { nexus: nexus(1, 2) });
    const tail = r.dataIn!.subarray(r.dataIn!.length - 16);
    expect(tail.toString('hex')).toBe('0114000400000002' + '0115000400000011');
    expect(r.dataIn!.readUInt16BE(2)).toBe(r.dataIn!.length - 4);
  });

  test('identity_serial_for_non_uuid_volume_id_is_hashed', () => {
    const s = unitSerialNumber('Vol_A');
    expect(s).toBe(createHash('sha256').update('twinsan-serial:vol_a').digest().subarray(0, 16).toString('hex'));
    expect(s).toMatch(/^[0-9a-f]{32}$/);
  });

  test('identity_configured_strings_are_validated', () => {
    const store = new MemoryBackingStore(4096);
    expect(() => new LogicalUnit({ store, blockSize: 512, identity: { volumeId: VOLUME_ID, vendor: 'TOO-LONG-VENDOR' } })).toThrow(RangeError);
    expect(() => new LogicalUnit({ store, blockSize: 512, identity: { volumeId: VOLUME_ID, product: 'caf\u00e9' } })).toThrow(RangeError);
    expect(() => new LogicalUnit({ store, blockSize: 512, identity: { volumeId: '  ' } })).toThrow(RangeError);
  });

  test('identity_pinned_vpd_device_identification_node_b_port', async () => {
    const { dev } = fixture({ device: { alua: { ...PAIR, localGroup: 2 } } });
    const r = await run(dev, [0x12, 0x01, 0x83, 0x01, 0x00, 0x00], { nexus: nexus(1, 2) });
    expect(r.dataIn!.toString('hex')).toBe(PINNED_VPD_83_NODE_B.toString('hex'));
  });

  test('identity_same_on_both_nodes', async () => {
    // Two nodes of a pair serve the same volume: different target names, LUN
    // numbers, ports, groups and group states. Only the target port
    // designators at the end of VPD 0x83 may differ.
    const nodeA = fixture({ device: { name: 'iqn.2026-11.io.twinsan:node-a', alua: { ...PAIR, localGroup: 1 } } });
    const storeB = new MemoryBackingStore(512 * 1024);
    const luB = new LogicalUnit({ store: storeB, blockSize: 512, identity: { volumeId: VOLUME_ID } });
    const nodeB = new ScsiTargetDevice({
      name: 'iqn.2026-11.io.twinsan:node-b',
      luns: new Map([[3, luB]]),
      alua: { groups: [{ id: 1, ports: [1], state: 'standby' }, { id: 2, ports: [2], state: 'active/non-optimized' }], localGroup: 2 },
    });
    const viaA = { nexus: nexus(1, 1) };
    const viaB = { nexus: nexus(1, 2), lun: 3 };
    for (const c of [
      [0x12, 0x00, 0x00, 0x01, 0x04, 0x00], // standard INQUIRY, 260 bytes
      [0x12, 0x01, 0x80, 0x01, 0x00, 0x00], // unit serial number
    ]) {
      const a = await run(nodeA.dev, c, viaA);
      const b = await run(nodeB, c, viaB);
      expect(b.dataIn!.toString('hex')).toBe(a.dataIn!.toString('hex'));
    }
    const a83 = (await run(nodeA.dev, [0x12, 0x01, 0x83, 0x01, 0x00, 0x00], viaA)).dataIn!;
    const b83 = (await run(nodeB, [0x12, 0x01, 0x83, 0x01, 0x00, 0x00], viaB)).dataIn!;
    expect(a83.length).toBe(b83.length);
    const luPart = 4 + hex(PINNED_LU_DESIGNATORS).length;
    expect(b83.subarray(0, luPart).toString('hex')).toBe(a83.subarray(0, luPart).toString('hex'));
    expect(a83.subarray(luPart).toString('hex')).toBe('0114000400000001' + '0115000400000001');
    expect(b83.subarray(luPart).toString('hex')).toBe('0114000400000002' + '0115000400000002');
    expect(a83.toString('hex')).toBe(PINNED_VPD_83.toString('hex'));
    expect(b83.toString('hex')).toBe(PINNED_VPD_83_NODE_B.toString('hex'));
  });
});
