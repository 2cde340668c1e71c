import { describe, expect, test } from 'vitest';
import { MemoryBackingStore } from '../../../../src/block';
import { LogicalUnit, ReservationSnapshot, ReservationStore, ScsiTargetDevice } from '../../../../src/target/scsi';
import { be32, expectCheck, expectGood, readyFixture, run, VOLUME_ID } from '../helpers';
import { admit, I1, I2, itNexus, prinCdb, prout, ProutSa, readKeys, register, reserve, Type } from './helpers';

describe('PERSISTENT RESERVE IN', () => {
  test('prin_read_keys_simple', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, prinCdb(0, 16384));
    expectGood(r);
    expect([...r.dataIn!]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  test('prin_read_keys_truncate', async () => {
    const { dev } = await readyFixture();
    expectGood(await register(dev, I1, 0x0102030405060708n));
    const r = await run(dev, prinCdb(0, 8));
    expectGood(r);
    // ADDITIONAL LENGTH describes the whole list even when the allocation length cuts it.
    expect([...r.dataIn!]).toEqual([0, 0, 0, 1, 0, 0, 0, 8]);
    const full = await run(dev, prinCdb(0, 100));
    expect([...full.dataIn!]).toEqual([0, 0, 0, 1, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('prin_serviceaction_range', async () => {
    const { dev } = await readyFixture();
    for (let sa = 0; sa < 4; sa++) expectGood(await run(dev, prinCdb(sa)));
    for (let sa = 4; sa < 0x20; sa++) {
      const s = expectCheck(await run(dev, prinCdb(sa)), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 4 });
    }
  });

  test('prin_read_reservation', async () => {
    const { dev } = await readyFixture();
    expectGood(await register(dev, I1, 0xabcdn));
    let r = await run(dev, prinCdb(1));
    expect([...r.dataIn!]).toEqual([0, 0, 0, 1, 0, 0, 0, 0]);
    expectGood(await reserve(dev, I1, 0xabcdn, Type.EA_RO));
    r = await run(dev, prinCdb(1));
    expect([...r.dataIn!]).toEqual([
      0, 0, 0, 1, 0, 0, 0, 16, // PRGENERATION, ADDITIONAL LENGTH
      0, 0, 0, 0, 0, 0, 0xab, 0xcd, // RESERVATION KEY
      0, 0, 0, 0, 0, 0x06, 0, 0, // obsolete, reserved, SCOPE|TYPE, obsolete
    ]);
  });

  test('prin_report_caps', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, prinCdb(2));
    expectGood(r);
    // LENGTH 8; CRH SIP_C ATP_C (no PTPL_C without a store); TMV, ALLOW COMMANDS 001b; all six types.
    expect([...r.dataIn!]).toEqual([0, 8, 0x1c, 0x90, 0xea, 0x01, 0, 0]);
  });

  test('prin_report_caps_ptpl', async () => {
    let saved: ReservationSnapshot | null = null;
    const store: ReservationStore = { load: async () => saved, save: async (s) => void (saved = s) };
    const lu = new LogicalUnit({ store: new MemoryBackingStore(1024 * 512), blockSize: 512, identity: { volumeId: VOLUME_ID }, reservationStore: store });
    const dev = new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:vol0', luns: new Map([[0, lu]]) });
    await admit(dev, I1);
    expect([...(await run(dev, prinCdb(2), { nexus: I1 })).dataIn!]).toEqual([0, 8, 0x1d, 0x90, 0xea, 0x01, 0, 0]);
    expectGood(await register(dev, I1, 0x1n, 0x01)); // APTPL
    expect([...(await run(dev, prinCdb(2), { nexus: I1 })).dataIn!]).toEqual([0, 8, 0x1d, 0x91, 0xea, 0x01, 0, 0]);
  });

  test('prin_read_full_status', async () => {
    const { dev } = await readyFixture();
    const i2port2 = itNexus(2, 2);
    await admit(dev, I2, i2port2);
    expectGood(await register(dev, I1, 0x11n));
    expectGood(await register(dev, i2port2, 0x22n, 0x04)); // ALL_TG_PT
    expectGood(await reserve(dev, I1, 0x11n, Type.WE));
    const r = await run(dev, prinCdb(3));
    expectGood(r);
    const tid1 = [0x45, 0, 0, 0x34, ...Buffer.from('iqn.1993-08.org.debian:01:init1,i,0x23d000000001'), 0, 0, 0, 0];
    const tid2 = [0x45, 0, 0, 0x34, ...Buffer.from('iqn.1993-08.org.debian:01:init2,i,0x23d000000002'), 0, 0, 0, 0];
    const descriptor1 = [
      0, 0, 0, 0, 0, 0, 0, 0x11, // RESERVATION KEY
      0, 0, 0, 0, // reserved
      0x01, 0x01, // R_HOLDER; SCOPE|TYPE
      0, 0, 0, 0, // reserved
      0, 1, // RELATIVE TARGET PORT IDENTIFIER
      ...be32(56), // ADDITIONAL DESCRIPTOR LENGTH
      ...tid1,
    ];
    const descriptor2 = [0, 0, 0, 0, 0, 0, 0, 0x22, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, ...be32(56), ...tid2];
    expect([...r.dataIn!]).toEqual([0, 0, 0, 2, ...be32(descriptor1.length + descriptor2.length), ...descriptor1, ...descriptor2]);
    // Cut to the allocation length, the header still describes everything.
    const cut = await run(dev, prinCdb(3, 12));
    expect([...cut.dataIn!]).toEqual([0, 0, 0, 2, ...be32(160), 0, 0, 0, 0]);
  });

  test('prin_read_full_status_all_registrants', async () => {
    const { dev } = await readyFixture();
    await admit(dev, I2);
    expectGood(await register(dev, I1, 0x11n));
    expectGood(await register(dev, I2, 0x22n));
    expectGood(await reserve(dev, I2, 0x22n, Type.EA_AR));
    const d = (await run(dev, prinCdb(3))).dataIn!;
    // Every registrant holds an all-registrants reservation.
    expect([d[8 + 12], d[8 + 13]]).toEqual([0x01, 0x08]);
    expect([d[8 + 80 + 12], d[8 + 80 + 13]]).toEqual([0x01, 0x08]);
    expect((await readKeys(dev, I2)).keys).toEqual([0x11n, 0x22n]);
    expectGood(await prout(dev, I2, ProutSa.CLEAR, { key: 0x22n }));
  });
});
