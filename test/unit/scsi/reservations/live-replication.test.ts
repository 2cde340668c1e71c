/**
 * Live SCSI state replication: a PERSISTENT RESERVE OUT, RESERVE or RELEASE
 * that changes the state completes only once the replica holds the new
 * state; unit attention changes are pushed without holding commands up; a
 * node taking the LU over restores the state and moves the registrations of
 * the old node's target port to its own.
 */
import { describe, expect, test } from 'vitest';
import { MemoryBackingStore } from '../../../../src/block';
import { LiveScsiState, LogicalUnit, ScsiTargetDevice } from '../../../../src/target/scsi';
import { expectGood, run, VOLUME_ID } from '../helpers';
import { admit, expectConflict, I1, I2, itNexus, pendingUas, readKeys, readReservation, register, reserve, Type, UA, writeBlock } from './helpers';

function node(): { lu: LogicalUnit; dev: ScsiTargetDevice } {
  const lu = new LogicalUnit({ store: new MemoryBackingStore(1024 * 512), blockSize: 512, identity: { volumeId: VOLUME_ID } });
  return { lu, dev: new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:vol0', luns: new Map([[0, lu]]) }) };
}

/** A replica that keeps what it is sent and acknowledges only when told to (hold) or at once. */
class Replica {
  readonly received: LiveScsiState[] = [];
  private holding = false;
  private waiting: (() => void)[] = [];
  hold(): void {
    this.holding = true;
  }
  ack(): void {
    this.holding = false;
    for (const w of this.waiting.splice(0)) w();
  }
  get latest(): LiveScsiState | undefined {
    return this.received.at(-1);
  }
  readonly port = {
    replicate: (state: LiveScsiState): Promise<void> => {
      this.received.push(JSON.parse(JSON.stringify(state)) as LiveScsiState);
      return this.holding ? new Promise<void>((r) => this.waiting.push(r)) : Promise.resolve();
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('live SCSI state replication', () => {
  test('prout_completes_only_after_the_replica_has_the_new_state', async () => {
    const a = node();
    const replica = new Replica();
    await a.lu.replicateLiveState(replica.port);
    await admit(a.dev, I1, I2);
    // The unit attention pushes of admit() are not waited for by its commands: let them land first.
    await a.lu.pushLiveState();
    replica.hold();
    let done = false;
    const reg = register(a.dev, I1, 0xa1n).then((r) => ((done = true), r));
    await tick();
    expect(done).toBe(false);
    expect(replica.latest!.reservations.registrations).toEqual([{ initiator: I1.initiatorPort, relativeTargetPortId: 1, key: '00000000000000a1' }]);
    replica.ack();
    expectGood(await reg);

    replica.hold();
    let reserved = false;
    const res = reserve(a.dev, I1, 0xa1n, Type.WE_RO).then((r) => ((reserved = true), r));
    await tick();
    expect(reserved).toBe(false);
    expect(replica.latest!.reservations.reservation).toMatchObject({ type: Type.WE_RO });
    replica.ack();
    expectGood(await res);
  });

  test('scsi2_reserve_and_release_wait_for_the_replica', async () => {
    const a = node();
    const replica = new Replica();
    await a.lu.replicateLiveState(replica.port);
    await admit(a.dev, I1);
    // The unit attention pushes of admit() are not waited for by its commands: let them land first.
    await a.lu.pushLiveState();
    replica.hold();
    let done = false;
    const r = run(a.dev, [0x16, 0, 0, 0, 0, 0], { nexus: I1 }).then((x) => ((done = true), x));
    await tick();
    expect(done).toBe(false);
    expect(replica.latest!.reservations.scsi2).toEqual({ initiator: I1.initiatorPort, relativeTargetPortId: 1 });
    replica.ack();
    expectGood(await r);
    const before = replica.received.length;
    // A RESERVE that changes nothing (the holder again) sends nothing.
    expectGood(await run(a.dev, [0x16, 0, 0, 0, 0, 0], { nexus: I1 }));
    expect(replica.received.length).toBe(before);
    replica.hold();
    let released = false;
    const rel = run(a.dev, [0x17, 0, 0, 0, 0, 0], { nexus: I1 }).then((x) => ((released = true), x));
    await tick();
    expect(released).toBe(false);
    expect(replica.latest!.reservations.scsi2).toBeNull();
    replica.ack();
    expectGood(await rel);
  });

  test('unit_attention_changes_are_pushed_without_waiting', async () => {
    const a = node();
    const replica = new Replica();
    await a.lu.replicateLiveState(replica.port);
    replica.hold();
    // A new nexus gets POWER ON: the command that reports it does not wait for the replica.
    const r = await run(a.dev, [0x00, 0, 0, 0, 0, 0], { nexus: I2 });
    expect(r.status).toBe(0x02);
    await tick();
    const keys = replica.received.flatMap((s) => s.unitAttentions.nexuses.map((n) => n.key));
    expect(keys).toContain(I2.key);
    replica.ack();
  });

  test('without_a_replica_nothing_waits_and_detaching_stops_pushes', async () => {
    const a = node();
    await admit(a.dev, I1);
    expectGood(await register(a.dev, I1, 0x1n));
    const replica = new Replica();
    await a.lu.replicateLiveState(replica.port);
    // Attaching pushed the current state.
    expect(replica.latest!.reservations.registrations).toHaveLength(1);
    await a.lu.replicateLiveState(null);
    const n = replica.received.length;
    expectGood(await register(a.dev, I1, 0x2n));
    expect(replica.received.length).toBe(n);
  });

  test('takeover_restores_the_replica_and_moves_registrations_to_its_port', async () => {
    const a = node();
    const replica = new Replica();
    await a.lu.replicateLiveState(replica.port);
    await admit(a.dev, I1, I2);
    expectGood(await register(a.dev, I1, 0xa1n));
    expectGood(await reserve(a.dev, I1, 0xa1n, Type.WE_RO));

    // Node b serves the LU through relative target port 2.
    const b = node();
    b.lu.restoreLiveState(replica.latest!);
    b.lu.reservations.targetPortMoved(1, 2);
    const i1b = itNexus(1, 2);
    const i2b = itNexus(2, 2);
    await admit(b.dev, i1b, i2b);
    expect((await readKeys(b.dev, i1b)).keys).toEqual([0xa1n]);
    expect(await readReservation(b.dev, i1b)).toMatchObject({ reserved: true, key: 0xa1n, type: Type.WE_RO });
    expectGood(await writeBlock(b.dev, i1b));
    expectConflict(await writeBlock(b.dev, i2b));
  });

  test('takeover_carries_pending_unit_attentions_to_the_nexuses_through_its_port', async () => {
    const a = node();
    const replica = new Replica();
    await a.lu.replicateLiveState(replica.port);
    await admit(a.dev, I1, I2);
    expectGood(await register(a.dev, I1, 0xa1n));
    expectGood(await register(a.dev, I2, 0xb2n));
    expectGood(await reserve(a.dev, I1, 0xa1n, Type.WE_RO));
    // I1 preempts I2: I2 has REGISTRATIONS PREEMPTED pending when node a dies.
    expectGood(await run(a.dev, [0x5f, 0x04, Type.WE_RO, 0, 0, 0, 0, 0, 24, 0], { nexus: I1, dataOut: [Buffer.from([0, 0, 0, 0, 0, 0, 0, 0xa1, 0, 0, 0, 0, 0, 0, 0, 0xb2, 0, 0, 0, 0, 0, 0, 0, 0])] }));
    await tick();

    const b = node();
    b.lu.restoreLiveState(replica.latest!);
    const i2b = itNexus(2, 2);
    b.lu.unitAttentions.rekey((key) => (key === I2.key ? i2b.key : key === I1.key ? itNexus(1, 2).key : null));
    // What I2 had pending on a, and no POWER ON: its nexus carries on through b's port.
    expect(await pendingUas(b.dev, i2b)).toEqual([UA.REGISTRATIONS_PREEMPTED]);
  });

  test('target_port_moved_keeps_an_existing_registration_at_the_new_port', async () => {
    const a = node();
    await admit(a.dev, I1);
    const i1p2 = itNexus(1, 2);
    await admit(a.dev, i1p2);
    expectGood(await register(a.dev, I1, 0xa1n));
    expectGood(await register(a.dev, i1p2, 0xb2n));
    expectGood(await reserve(a.dev, I1, 0xa1n, Type.EA));
    a.lu.reservations.targetPortMoved(1, 2);
    // One registration per I_T nexus: the one already at port 2 stays, and holds the reservation.
    expect(a.lu.reservations.persistent.registrations).toEqual([{ initiator: I1.initiatorPort, relativeTargetPortId: 2, key: '00000000000000b2' }]);
    expect(await readReservation(a.dev, i1p2)).toMatchObject({ reserved: true, key: 0xb2n, type: Type.EA });
    expect(await pendingUas(a.dev, i1p2)).toEqual([]);
  });
});
