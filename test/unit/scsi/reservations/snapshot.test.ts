import { describe, expect, test } from 'vitest';
import { MemoryBackingStore } from '../../../../src/block';
import { LogicalUnit, parseSnapshot, ReservationSnapshot, ScsiTargetDevice } from '../../../../src/target/scsi';
import { be32, expectGood, run, VOLUME_ID } from '../helpers';
import {
  admit,
  expectConflict,
  I1,
  I2,
  I3,
  itNexus,
  proutCdb,
  proutParams,
  proutRaw,
  ProutSa,
  readKeys,
  readReservation,
  register,
  reserve,
  Type,
  writeBlock,
} from './helpers';

function node(): { lu: LogicalUnit; dev: ScsiTargetDevice } {
  const lu = new LogicalUnit({ store: new MemoryBackingStore(1024 * 512), blockSize: 512, identity: { volumeId: VOLUME_ID } });
  return { lu, dev: new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:vol0', luns: new Map([[0, lu]]) }) };
}

const PORT1 = 'iqn.1993-08.org.debian:01:init1,i,0x23d000000001';
const PORT2 = 'iqn.1993-08.org.debian:01:init2,i,0x23d000000002';

describe('reservation snapshots', () => {
  test('reservations_snapshot_is_plain_json', async () => {
    const a = node();
    await admit(a.dev, I1, I2);
    expectGood(await register(a.dev, I1, 0xa1n, 0x04)); // ALL_TG_PT
    expectGood(await register(a.dev, I2, 0xb2n));
    expectGood(await reserve(a.dev, I1, 0xa1n, Type.EA));
    const snapshot = a.lu.reservations.snapshot();
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
    expect(snapshot).toEqual({
      version: 1,
      generation: 2,
      aptpl: false,
      registrations: [
        { initiator: PORT1, relativeTargetPortId: null, key: '00000000000000a1' },
        { initiator: PORT2, relativeTargetPortId: 1, key: '00000000000000b2' },
      ],
      reservation: { type: 3, scope: 0, holder: { initiator: PORT1, relativeTargetPortId: null } },
      scsi2: null,
    });
  });

  test('reservations_restore_on_the_peer_node', async () => {
    const a = node();
    await admit(a.dev, I1, I2);
    expectGood(await register(a.dev, I1, 0xa1n, 0x04)); // ALL_TG_PT: registered through every target port
    expectGood(await register(a.dev, I2, 0xb2n)); // through target port 1 only
    expectGood(await reserve(a.dev, I1, 0xa1n, Type.WE_RO));
    const wire = JSON.stringify(a.lu.reservations.snapshot());

    // The peer serves the LU through target port 2.
    const b = node();
    b.lu.reservations.restore(JSON.parse(wire) as ReservationSnapshot);
    const i1 = itNexus(1, 2);
    const i2 = itNexus(2, 2);
    await admit(b.dev, i1, i2);
    expect(await readKeys(b.dev, i1)).toEqual(await readKeys(a.dev, I1));
    expect(await readReservation(b.dev, i1)).toEqual(await readReservation(a.dev, I1));
    expectGood(await writeBlock(b.dev, i1)); // the holder, through the peer's port
    expectConflict(await writeBlock(b.dev, i2)); // registered only through port 1
    await admit(b.dev, I2);
    expectGood(await writeBlock(b.dev, I2)); // through port 1 it is
  });

  test('reservations_survive_session_reinstatement', async () => {
    const a = node();
    await admit(a.dev, I1, I2);
    expectGood(await register(a.dev, I1, 0x1n));
    expectGood(await reserve(a.dev, I1, 0x1n, Type.EA));
    a.dev.nexusLost(I1); // the session ends; the same initiator port logs in again
    await admit(a.dev, I1);
    expectGood(await writeBlock(a.dev, I1));
    expectConflict(await writeBlock(a.dev, I2));
  });

  test('reservations_restore_replaces_everything', async () => {
    const a = node();
    await admit(a.dev, I1, I2, I3);
    expectGood(await run(a.dev, [0x16, 0, 0, 0, 0, 0], { nexus: I3 })); // RESERVE (6)
    const snapshot = a.lu.reservations.snapshot();
    expect(snapshot.scsi2).toEqual({ initiator: 'iqn.1993-08.org.debian:01:init3,i,0x23d000000003', relativeTargetPortId: 1 });
    const b = node();
    await admit(b.dev, I1);
    expectGood(await register(b.dev, I1, 0x5n));
    b.lu.reservations.restore(snapshot);
    expect(b.lu.reservations.snapshot()).toEqual(snapshot);
    expectConflict(await writeBlock(b.dev, I1));
    expectConflict(await run(b.dev, [0x5e, 0, 0, 0, 0, 0, 0, 0, 8, 0], { nexus: I1 })); // PERSISTENT RESERVE IN under a SCSI-2 reservation
    await admit(b.dev, I3);
    expectGood(await run(b.dev, [0x17, 0, 0, 0, 0, 0], { nexus: I3 })); // RELEASE (6) by the holder
    expectGood(await writeBlock(b.dev, I1));
    expect((await readKeys(b.dev, I1)).keys).toEqual([]);
  });

  test('scsi2_reservation_follows_the_initiator_port_to_the_new_owner', async () => {
    const a = node();
    await admit(a.dev, I1, I3);
    expectGood(await run(a.dev, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: I3 })); // RESERVE (10) through port 1
    const wire = JSON.stringify(a.lu.reservations.snapshot());
    // The old owner dies (or hands the group over) and its sessions drop there: that is not replicated.
    a.dev.nexusLost(I3);
    expect(a.lu.reservations.scsi2Holder).toBeNull();

    // The peer restores the replica and the initiators reconnect through its target port 2.
    const b = node();
    const holder = itNexus(3, 2);
    const other = itNexus(1, 2);
    await admit(b.dev, holder, other);
    b.lu.reservations.restore(JSON.parse(wire) as ReservationSnapshot);
    expectConflict(await writeBlock(b.dev, holder)); // not yet: the reservation is held through port 1
    b.lu.reservations.targetPortMoved(1, 2);
    expect(b.lu.reservations.scsi2Holder).toEqual({ initiator: 'iqn.1993-08.org.debian:01:init3,i,0x23d000000003', relativeTargetPortId: 2 });
    expectConflict(await writeBlock(b.dev, other));
    expectConflict(await run(b.dev, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: other })); // RESERVE (10) by another initiator
    expectGood(await writeBlock(b.dev, holder));
    expectGood(await run(b.dev, [0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: holder })); // RELEASE (10) by the holder
    expectGood(await writeBlock(b.dev, other));
  });

  test('scsi2_reservation_is_released_by_a_real_nexus_loss_on_the_owner', async () => {
    const a = node();
    await admit(a.dev, I1, I3);
    expectGood(await run(a.dev, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: I3 }));
    expectConflict(await writeBlock(a.dev, I1));
    a.dev.nexusLost(I3); // the initiator logged out, or its connection dropped, outside a failover
    expectGood(await writeBlock(a.dev, I1));
  });

  test('reservations_spec_i_pt_device_registration_round_trips', async () => {
    const a = node();
    await admit(a.dev, I1);
    const tid = [0x05, 0, 0, 0x20, ...Buffer.from('iqn.1993-08.org.debian:01:init3'), 0];
    const data = [...proutParams(0n, 0x9n, 0x08), ...be32(tid.length), ...tid];
    expectGood(await proutRaw(a.dev, I1, proutCdb(ProutSa.REGISTER, 0, data.length), data));
    const snapshot = a.lu.reservations.snapshot();
    expect(snapshot.registrations[1]).toEqual({ initiator: 'iqn.1993-08.org.debian:01:init3', relativeTargetPortId: 1, key: '0000000000000009' });
    expect(parseSnapshot(JSON.parse(JSON.stringify(snapshot)))).toEqual(snapshot);
  });

  test('parse_snapshot_rejects_bad_input', () => {
    const good: ReservationSnapshot = {
      version: 1,
      generation: 1,
      aptpl: false,
      registrations: [{ initiator: PORT1, relativeTargetPortId: 1, key: '0000000000000001' }],
      reservation: { type: 1, scope: 0, holder: { initiator: PORT1, relativeTargetPortId: 1 } },
      scsi2: null,
    };
    expect(parseSnapshot(good)).toEqual(good);
    const bad: unknown[] = [
      null,
      { ...good, version: 2 },
      { ...good, generation: -1 },
      { ...good, registrations: [{ ...good.registrations[0], key: '0000000000000000' }] },
      { ...good, registrations: [{ ...good.registrations[0], key: 'xyz' }] },
      { ...good, registrations: [...good.registrations, { initiator: PORT1, relativeTargetPortId: null, key: '0000000000000002' }] },
      { ...good, reservation: { ...good.reservation, type: 2 } },
      { ...good, reservation: { ...good.reservation, holder: null } },
      { ...good, reservation: { ...good.reservation, holder: { initiator: PORT2, relativeTargetPortId: 1 } } },
      { ...good, scsi2: { initiator: PORT1, relativeTargetPortId: 0 } },
    ];
    for (const b of bad) expect(() => parseSnapshot(b)).toThrow(/invalid reservation snapshot/);
  });
});
