import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { MemoryBackingStore } from '../../../../src/block';
import { FileReservationStore, LogicalUnit, ReservationSnapshot, ReservationStore, ScsiTargetDevice } from '../../../../src/target/scsi';
import { expectCheck, expectGood, run, VOLUME_ID } from '../helpers';
import { admit, I1, I2, prinCdb, prout, ProutSa, readKeys, readReservation, register, reserve, Type } from './helpers';

const APTPL = 0x01;

function node(store: ReservationStore): { lu: LogicalUnit; dev: ScsiTargetDevice } {
  const lu = new LogicalUnit({ store: new MemoryBackingStore(1024 * 512), blockSize: 512, identity: { volumeId: VOLUME_ID }, reservationStore: store });
  return { lu, dev: new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:vol0', luns: new Map([[0, lu]]) }) };
}

/** A store in memory whose saves can be held back or made to fail. */
class MemoryStore implements ReservationStore {
  saved: ReservationSnapshot | null = null;
  saves = 0;
  hold: Promise<void> | null = null;
  failSaves = false;
  failLoad = false;

  async load(): Promise<ReservationSnapshot | null> {
    if (this.failLoad) throw new Error('disk on fire');
    return this.saved === null ? null : (JSON.parse(JSON.stringify(this.saved)) as ReservationSnapshot);
  }

  async save(snapshot: ReservationSnapshot): Promise<void> {
    if (this.hold) await this.hold;
    if (this.failSaves) throw new Error('disk full');
    this.saves++;
    this.saved = JSON.parse(JSON.stringify(snapshot)) as ReservationSnapshot;
  }
}

describe('APTPL', () => {
  test('prout_register_aptpl_saves_before_completing', async () => {
    const store = new MemoryStore();
    const { dev } = node(store);
    await admit(dev, I1, I2);
    let release!: () => void;
    store.hold = new Promise((resolve) => (release = resolve));
    let done = false;
    const pending = register(dev, I1, 0x1n, APTPL).then((r) => {
      done = true;
      return r;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(done).toBe(false);
    // Until the state is durable it is not in effect.
    expect((await readKeys(dev, I2)).keys).toEqual([]);
    release();
    expectGood(await pending);
    expect(store.saved).toMatchObject({ aptpl: true, registrations: [{ key: '0000000000000001' }], scsi2: null });
    expect((await readKeys(dev, I2)).keys).toEqual([0x1n]);
  });

  test('prout_aptpl_restored_at_start', async () => {
    const store = new MemoryStore();
    const first = node(store);
    await admit(first.dev, I1, I2);
    expectGood(await register(first.dev, I1, 0x1n, APTPL));
    expectGood(await register(first.dev, I2, 0x2n, APTPL)); // the last APTPL received governs
    expectGood(await reserve(first.dev, I1, 0x1n, Type.WE_RO));
    expect(store.saves).toBe(3); // every change once APTPL is active, RESERVE included
    expect(store.saved?.reservation).toMatchObject({ type: Type.WE_RO });

    // Power cycle: a new logical unit on the same store.
    const second = node(store);
    await second.lu.reservations.whenReady();
    await admit(second.dev, I1, I2);
    expect(await readKeys(second.dev, I2)).toEqual({ generation: 0, additionalLength: 16, keys: [0x1n, 0x2n] });
    expect(await readReservation(second.dev, I2)).toEqual({ generation: 0, reserved: true, key: 0x1n, scope: 0, type: Type.WE_RO });
    expect((await run(second.dev, prinCdb(2), { nexus: I1 })).dataIn![3]! & 0x01).toBe(1); // PTPL_A
  });

  test('prout_aptpl_cleared_is_not_restored', async () => {
    const store = new MemoryStore();
    const first = node(store);
    await admit(first.dev, I1);
    expectGood(await register(first.dev, I1, 0x1n, APTPL));
    expectGood(await prout(first.dev, I1, ProutSa.REGISTER, { key: 0x1n, sark: 0x2n })); // APTPL=0 now
    expect(store.saved).toMatchObject({ aptpl: false });
    const saves = store.saves;
    expectGood(await reserve(first.dev, I1, 0x2n, Type.WE)); // not persisted any more
    expect(store.saves).toBe(saves);
    const second = node(store);
    await admit(second.dev, I1);
    expect((await readKeys(second.dev, I1)).keys).toEqual([]);
  });

  test('prout_aptpl_save_failure_changes_nothing', async () => {
    const store = new MemoryStore();
    const { dev } = node(store);
    await admit(dev, I1);
    expectGood(await register(dev, I1, 0x1n, APTPL));
    store.failSaves = true;
    expectCheck(await reserve(dev, I1, 0x1n, Type.EA), 0x4, 0x44, 0x00);
    expect((await readReservation(dev, I1)).reserved).toBe(false);
    store.failSaves = false;
    expectGood(await reserve(dev, I1, 0x1n, Type.EA));
  });

  test('aptpl_load_failure_fails_every_command', async () => {
    const store = new MemoryStore();
    store.failLoad = true;
    const { lu, dev } = node(store);
    await expect(lu.reservations.whenReady()).rejects.toThrow('disk on fire');
    await run(dev, [0x00, 0, 0, 0, 0, 0], { nexus: I1 }); // power-on unit attention
    expectCheck(await run(dev, [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], { nexus: I1 }), 0x4, 0x44, 0x00);
  });
});

describe('FileReservationStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-pr-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const snapshot: ReservationSnapshot = {
    version: 1,
    generation: 4,
    aptpl: true,
    registrations: [{ initiator: 'iqn.1993-08.org.debian:01:init1,i,0x23d000000001', relativeTargetPortId: 1, key: '00000000000000ab' }],
    reservation: { type: 1, scope: 0, holder: { initiator: 'iqn.1993-08.org.debian:01:init1,i,0x23d000000001', relativeTargetPortId: 1 } },
    scsi2: null,
  };

  test('file_store_round_trip', async () => {
    const file = path.join(dir, 'vol.img.twinsan-pr.json');
    const store = new FileReservationStore(file);
    expect(await store.load()).toBeNull();
    await store.save(snapshot);
    expect(await store.load()).toEqual(snapshot);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(snapshot);
    await store.save({ ...snapshot, generation: 5 });
    expect((await store.load())?.generation).toBe(5);
    expect(await readdir(dir)).toEqual(['vol.img.twinsan-pr.json']); // no temporary files left
  });

  test('file_store_refuses_a_damaged_file', async () => {
    const file = path.join(dir, 'pr.json');
    await writeFile(file, '{"version": 1, "generation": 4');
    await expect(new FileReservationStore(file).load()).rejects.toThrow(/not JSON/);
    await writeFile(file, JSON.stringify({ ...snapshot, version: 9 }));
    await expect(new FileReservationStore(file).load()).rejects.toThrow(/unsupported version/);
  });

  test('file_store_aptpl_survives_restart', async () => {
    const file = path.join(dir, 'pr.json');
    const first = node(new FileReservationStore(file));
    await admit(first.dev, I1, I2);
    expectGood(await register(first.dev, I1, 0xabn, APTPL));
    expectGood(await reserve(first.dev, I1, 0xabn, Type.EA));
    const second = node(new FileReservationStore(file));
    await admit(second.dev, I1, I2);
    expect(await readReservation(second.dev, I1)).toEqual({ generation: 0, reserved: true, key: 0xabn, scope: 0, type: Type.EA });
    expectGood(await run(second.dev, [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], { nexus: I1 }));
    expect((await run(second.dev, [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], { nexus: I2 })).status).toBe(0x18);
  });
});
