import { describe, expect, test, vi } from 'vitest';
import { be32, expectCheck, expectGood, readyFixture, run } from '../helpers';
import {
  admit,
  ALL_TYPES,
  expectConflict,
  I1,
  I2,
  I3,
  itNexus,
  pendingUas,
  prout,
  proutCdb,
  proutParams,
  proutRaw,
  ProutSa,
  readBlock,
  readKeys,
  readReservation,
  register,
  release,
  reserve,
  Type,
  UA,
  writeBlock,
} from './helpers';

async function twoInitiators(): ReturnType<typeof readyFixture> {
  const f = await readyFixture({ device: {} });
  await admit(f.dev, I1, I2, I3);
  return f;
}

const isAllRegistrants = (type: number): boolean => type === Type.WE_AR || type === Type.EA_AR;

describe('PERSISTENT RESERVE OUT: REGISTER', () => {
  test('prout_register_simple', async () => {
    const { dev } = await twoInitiators();
    const before = await readKeys(dev);
    expectGood(await register(dev, I1, 0x1234n));
    const after = await readKeys(dev);
    expect(after.keys).toEqual([0x1234n]);
    expect(after.generation).toBe(before.generation + 1);
    // Re-registering with a RESERVATION KEY that does not match: RESERVATION CONFLICT.
    expectConflict(await prout(dev, I1, ProutSa.REGISTER, { key: 0n, sark: 0x1235n }));
    // Unregister with the right key.
    expectGood(await prout(dev, I1, ProutSa.REGISTER, { key: 0x1234n, sark: 0n }));
    expect((await readKeys(dev)).keys).toEqual([]);
    expect((await readKeys(dev)).generation).toBe(before.generation + 2);
  });

  test('prout_register_unregistered_with_nonzero_key_conflicts', async () => {
    const { dev } = await twoInitiators();
    expectConflict(await prout(dev, I1, ProutSa.REGISTER, { key: 0x99n, sark: 0x1n }));
    expect((await readKeys(dev)).keys).toEqual([]);
  });

  test('prout_register_zero_key_unregistered_is_a_no_op', async () => {
    const { dev } = await twoInitiators();
    const before = await readKeys(dev);
    expectGood(await prout(dev, I1, ProutSa.REGISTER, { key: 0n, sark: 0n }));
    expect(await readKeys(dev)).toEqual(before);
  });

  test('prout_register_changes_the_key', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0xa1n));
    expectGood(await prout(dev, I1, ProutSa.REGISTER, { key: 0xa1n, sark: 0xa2n }));
    expect((await readKeys(dev)).keys).toEqual([0xa2n]);
    // REGISTER AND IGNORE EXISTING KEY does not look at the RESERVATION KEY.
    expectGood(await prout(dev, I1, ProutSa.REGISTER_AND_IGNORE, { key: 0xdeadn, sark: 0xa3n }));
    expect((await readKeys(dev)).keys).toEqual([0xa3n]);
  });

  test('prout_register_two_initiators_and_sessions', async () => {
    const { dev } = await twoInitiators();
    const i1b = itNexus(1, 1, '23d0000000ff'); // same initiator, another session (ISID): another I_T nexus
    await admit(dev, i1b);
    expectGood(await register(dev, I1, 0x11n));
    expectGood(await register(dev, I2, 0x22n));
    expectGood(await register(dev, i1b, 0x33n));
    expect((await readKeys(dev)).keys).toEqual([0x11n, 0x22n, 0x33n]);
  });

  test('prout_parameter_list_length_error', async () => {
    const { dev } = await twoInitiators();
    for (const length of [0, 23, 25, 28]) {
      const data = [...proutParams(0n, 1n), 0, 0, 0, 0].slice(0, length);
      expectCheck(await proutRaw(dev, I1, proutCdb(ProutSa.REGISTER_AND_IGNORE, 0, length), data), 0x5, 0x1a, 0x00);
    }
    expect((await readKeys(dev)).keys).toEqual([]);
  });

  test('prout_parameter_list_too_long', async () => {
    const { dev } = await twoInitiators();
    const s = expectCheck(await run(dev, proutCdb(ProutSa.REGISTER, 0, 0x10001), { nexus: I1, dataOut: [] }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 5 });
  });

  test('prout_register_aptpl_without_a_store_is_invalid', async () => {
    const { dev } = await twoInitiators();
    const s = expectCheck(await register(dev, I1, 0x1n, 0x01), 0x5, 0x26, 0x00);
    expect(s.sks).toMatchObject({ cd: false, field: 20, bit: 0 });
  });

  test('prout_unknown_service_action', async () => {
    const { dev } = await twoInitiators();
    const s = expectCheck(await proutRaw(dev, I1, proutCdb(0x08, 0, 24), proutParams(0n, 1n)), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 4 });
  });
});

describe('PERSISTENT RESERVE OUT: RESERVE and RELEASE', () => {
  test('prout_reserve_simple', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x77n));
    const generation = (await readKeys(dev)).generation;
    for (const type of ALL_TYPES) {
      expectGood(await reserve(dev, I1, 0x77n, type));
      expect(await readReservation(dev)).toEqual({ generation, reserved: true, key: isAllRegistrants(type) ? 0n : 0x77n, scope: 0, type });
      expectGood(await release(dev, I1, 0x77n, type));
      expect(await readReservation(dev)).toEqual({ generation, reserved: false });
    }
  });

  test('prout_reserve_unregistered_or_wrong_key_conflicts', async () => {
    const { dev } = await twoInitiators();
    expectConflict(await reserve(dev, I1, 0n, Type.WE));
    expectGood(await register(dev, I1, 0x5n));
    expectConflict(await reserve(dev, I1, 0x6n, Type.WE));
    expect((await readReservation(dev)).reserved).toBe(false);
  });

  test('prout_reserve_invalid_type_or_scope', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x5n));
    for (const type of [0, 2, 4, 9, 0xf]) {
      const s = expectCheck(await reserve(dev, I1, 0x5n, type), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 2, bit: 3 });
    }
    const s = expectCheck(await prout(dev, I1, ProutSa.RESERVE, { key: 0x5n, type: Type.WE, scope: 1 }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 2, bit: 7 });
  });

  test('prout_reserve_held_by_another_nexus_conflicts', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    expectGood(await reserve(dev, I1, 0x1n, Type.WE));
    expectConflict(await reserve(dev, I2, 0x2n, Type.WE));
    // The holder may repeat its RESERVE, not change the type.
    expectGood(await reserve(dev, I1, 0x1n, Type.WE));
    expectConflict(await reserve(dev, I1, 0x1n, Type.EA));
    expect(await readReservation(dev)).toMatchObject({ key: 0x1n, type: Type.WE });
  });

  test('prout_release_by_non_holder_changes_nothing', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    expectGood(await reserve(dev, I1, 0x1n, Type.EA));
    expectGood(await release(dev, I2, 0x2n, Type.EA));
    expect(await readReservation(dev)).toMatchObject({ reserved: true, key: 0x1n });
    // A holder releasing with another type: INVALID RELEASE OF PERSISTENT RESERVATION, and the reservation stays.
    expectCheck(await release(dev, I1, 0x1n, Type.WE), 0x5, 0x26, 0x04);
    expect((await readReservation(dev)).reserved).toBe(true);
  });

  test('prout_release_registrants_only_announces_reservations_released', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    expectGood(await reserve(dev, I1, 0x1n, Type.WE_RO));
    expectGood(await release(dev, I1, 0x1n, Type.WE_RO));
    expect(await pendingUas(dev, I2)).toEqual([UA.RESERVATIONS_RELEASED]);
    expect(await pendingUas(dev, I1)).toEqual([]);
    expect(await pendingUas(dev, I3)).toEqual([]); // not registered
    // WRITE EXCLUSIVE: released silently.
    expectGood(await reserve(dev, I1, 0x1n, Type.WE));
    expectGood(await release(dev, I1, 0x1n, Type.WE));
    expect(await pendingUas(dev, I2)).toEqual([]);
  });
});

/** libiscsi test_prout_reserve_access: [registered I2 reads, writes, unregistered I2 reads, writes]. */
const ACCESS: ReadonlyArray<[string, number, [boolean, boolean, boolean, boolean]]> = [
  ['ea', Type.EA, [false, false, false, false]],
  ['we', Type.WE, [true, false, true, false]],
  ['earo', Type.EA_RO, [true, true, false, false]],
  ['wero', Type.WE_RO, [true, true, true, false]],
  ['eaar', Type.EA_AR, [true, true, false, false]],
  ['wear', Type.WE_AR, [true, true, true, false]],
];

describe('PERSISTENT RESERVE OUT: access', () => {
  test.each(ACCESS)('prout_reserve_access_%s', async (_name, type, [regRead, regWrite, unregRead, unregWrite]) => {
    const { dev } = await twoInitiators();
    const ok = (r: Awaited<ReturnType<typeof readBlock>>, allowed: boolean): void => (allowed ? expectGood(r) : expectConflict(r));
    expectGood(await register(dev, I1, 0x10n));
    expectGood(await register(dev, I2, 0x20n));
    expectGood(await reserve(dev, I1, 0x10n, type));
    ok(await readBlock(dev, I1), true);
    ok(await writeBlock(dev, I1), true);
    ok(await readBlock(dev, I2), regRead);
    ok(await writeBlock(dev, I2), regWrite);
    expectGood(await prout(dev, I2, ProutSa.REGISTER, { key: 0x20n, sark: 0n }));
    ok(await readBlock(dev, I2), unregRead);
    ok(await writeBlock(dev, I2), unregWrite);
    // Commands every reservation allows.
    expectGood(await run(dev, [0x12, 0, 0, 0, 36, 0], { nexus: I2 })); // INQUIRY
    expectGood(await run(dev, [0x00, 0, 0, 0, 0, 0], { nexus: I2 })); // TEST UNIT READY
    expectGood(await run(dev, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: I2 })); // READ CAPACITY (10)
    expectGood(await release(dev, I1, 0x10n, type));
    expectGood(await readBlock(dev, I2));
    expectGood(await writeBlock(dev, I2));
  });

  test('prout_reserve_access_by_cdb_fields', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x10n));
    expectGood(await reserve(dev, I1, 0x10n, Type.EA));
    expectGood(await run(dev, [0x1b, 0, 0, 0, 0x01, 0], { nexus: I2 })); // START STOP UNIT, START=1
    expectConflict(await run(dev, [0x1b, 0, 0, 0, 0x00, 0], { nexus: I2 })); // stop
    expectGood(await run(dev, [0x1e, 0, 0, 0, 0x00, 0], { nexus: I2 })); // PREVENT=0
    expectConflict(await run(dev, [0x1e, 0, 0, 0, 0x01, 0], { nexus: I2 }));
    expectConflict(await run(dev, [0x1a, 0, 0x3f, 0, 0xff, 0], { nexus: I2 })); // MODE SENSE: read class, EA
    expectConflict(await run(dev, [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: I2 })); // SYNCHRONIZE CACHE
  });

  test('prout_reserve_ownership', async () => {
    for (const type of ALL_TYPES) {
      const { dev } = await twoInitiators();
      expectGood(await register(dev, I1, 0x1n));
      expectGood(await register(dev, I2, 0x2n));
      expectGood(await reserve(dev, I1, 0x1n, type));
      expectGood(await prout(dev, I1, ProutSa.REGISTER, { key: 0x1n, sark: 0n })); // the holder unregisters
      if (isAllRegistrants(type)) {
        expect(await readReservation(dev)).toMatchObject({ reserved: true, key: 0n, type });
        expectGood(await release(dev, I2, 0x2n, type));
      } else {
        expect((await readReservation(dev)).reserved).toBe(false);
      }
      const registrantsOnly = type === Type.WE_RO || type === Type.EA_RO;
      expect(await pendingUas(dev, I2)).toEqual(registrantsOnly ? [UA.RESERVATIONS_RELEASED] : []);
      // The last registrant of an all-registrants reservation leaving ends it.
      expectGood(await reserve(dev, I2, 0x2n, type));
      expectGood(await prout(dev, I2, ProutSa.REGISTER, { key: 0x2n, sark: 0n }));
      expect((await readReservation(dev)).reserved).toBe(false);
    }
  });
});

describe('PERSISTENT RESERVE OUT: CLEAR and PREEMPT', () => {
  test('prout_clear_simple', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    const generation = (await readKeys(dev, I2)).generation;
    expectGood(await reserve(dev, I1, 0x1n, Type.EA));
    expectConflict(await prout(dev, I3, ProutSa.CLEAR, { key: 0n })); // not registered
    expectConflict(await prout(dev, I2, ProutSa.CLEAR, { key: 0x1n })); // wrong key
    expectGood(await prout(dev, I2, ProutSa.CLEAR, { key: 0x2n }));
    expect(await readKeys(dev, I2)).toEqual({ generation: generation + 1, additionalLength: 0, keys: [] });
    expect((await readReservation(dev, I2)).reserved).toBe(false);
    expect(await pendingUas(dev, I1)).toEqual([UA.RESERVATIONS_PREEMPTED]);
    expect(await pendingUas(dev, I2)).toEqual([]);
  });

  test('prout_preempt_rm_reg', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    const generation = (await readKeys(dev, I2)).generation;
    // No reservation: PREEMPT removes the registrations holding the key.
    expectGood(await prout(dev, I2, ProutSa.PREEMPT, { key: 0x2n, sark: 0x1n, type: Type.EA }));
    expect(await readKeys(dev, I2)).toEqual({ generation: generation + 1, additionalLength: 8, keys: [0x2n] });
    expect((await readReservation(dev, I2)).reserved).toBe(false);
    expect(await pendingUas(dev, I1)).toEqual([UA.REGISTRATIONS_PREEMPTED]);
    expect(await pendingUas(dev, I2)).toEqual([]);
  });

  test('prout_preempt_takes_the_reservation', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    expectGood(await register(dev, I3, 0x3n));
    expectGood(await reserve(dev, I1, 0x1n, Type.WE));
    expectGood(await prout(dev, I2, ProutSa.PREEMPT, { key: 0x2n, sark: 0x1n, type: Type.EA }));
    expect(await readReservation(dev, I2)).toMatchObject({ reserved: true, key: 0x2n, type: Type.EA });
    expect((await readKeys(dev, I2)).keys).toEqual([0x2n, 0x3n]);
    expect(await pendingUas(dev, I1)).toEqual([UA.REGISTRATIONS_PREEMPTED]);
    // The type changed: the remaining registrants are told the old reservation is gone.
    expect(await pendingUas(dev, I3)).toEqual([UA.RESERVATIONS_RELEASED]);
    expect(await pendingUas(dev, I2)).toEqual([]);
    expectConflict(await readBlock(dev, I1));
  });

  test('prout_preempt_errors', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    expectGood(await reserve(dev, I1, 0x1n, Type.WE));
    // SERVICE ACTION RESERVATION KEY 0 without an all-registrants reservation.
    const s = expectCheck(await prout(dev, I2, ProutSa.PREEMPT, { key: 0x2n, sark: 0n, type: Type.WE }), 0x5, 0x26, 0x00);
    expect(s.sks).toMatchObject({ cd: false, field: 8 });
    // A key nobody holds.
    expectConflict(await prout(dev, I2, ProutSa.PREEMPT, { key: 0x2n, sark: 0x9n, type: Type.WE }));
    // Unregistered requester.
    expectConflict(await prout(dev, I3, ProutSa.PREEMPT, { key: 0n, sark: 0x1n, type: Type.WE }));
    expect(await readReservation(dev, I2)).toMatchObject({ key: 0x1n });
  });

  test('prout_preempt_all_registrants', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    expectGood(await register(dev, I3, 0x3n));
    expectGood(await reserve(dev, I1, 0x1n, Type.WE_AR));
    // A non-zero key removes that registration; the all-registrants reservation stays.
    expectGood(await prout(dev, I2, ProutSa.PREEMPT, { key: 0x2n, sark: 0x3n, type: Type.WE_AR }));
    expect((await readKeys(dev, I2)).keys).toEqual([0x1n, 0x2n]);
    expect(await readReservation(dev, I2)).toMatchObject({ reserved: true, type: Type.WE_AR });
    // Key 0 preempts the reservation itself: every other registration goes.
    expectGood(await prout(dev, I2, ProutSa.PREEMPT, { key: 0x2n, sark: 0n, type: Type.EA }));
    expect((await readKeys(dev, I2)).keys).toEqual([0x2n]);
    expect(await readReservation(dev, I2)).toMatchObject({ reserved: true, key: 0x2n, type: Type.EA });
    expect(await pendingUas(dev, I1)).toEqual([UA.REGISTRATIONS_PREEMPTED]);
    expect(await pendingUas(dev, I3)).toEqual([UA.REGISTRATIONS_PREEMPTED]);
  });

  test('prout_preempt_abort_ua', async () => {
    const onAbortTasks = vi.fn(async () => {});
    const { dev } = await readyFixture({ device: { onAbortTasks } });
    await admit(dev, I1, I2, I3);
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    expectGood(await register(dev, I3, 0x3n));
    expectGood(await reserve(dev, I1, 0x1n, Type.EA));
    expectGood(await prout(dev, I2, ProutSa.PREEMPT_AND_ABORT, { key: 0x2n, sark: 0x1n, type: Type.EA }));
    expect(onAbortTasks).toHaveBeenCalledTimes(1);
    expect(onAbortTasks).toHaveBeenCalledWith(0, [I1.key]);
    expect(await pendingUas(dev, I1)).toEqual([UA.REGISTRATIONS_PREEMPTED]);
    expect(await pendingUas(dev, I3)).toEqual([]);
    // PREEMPT (without ABORT) never calls the hook.
    expectGood(await prout(dev, I2, ProutSa.PREEMPT, { key: 0x2n, sark: 0x3n, type: Type.EA }));
    expect(onAbortTasks).toHaveBeenCalledTimes(1);
  });

  test('prout_preempt_abort_hook_installed_later', async () => {
    const { dev } = await twoInitiators();
    const aborted: string[][] = [];
    dev.setAbortTasksHandler(async (lun, keys) => void aborted.push([String(lun), ...keys]));
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await register(dev, I2, 0x2n));
    // No reservation: the registrations holding the key go, and their tasks with them.
    expectGood(await prout(dev, I2, ProutSa.PREEMPT_AND_ABORT, { key: 0x2n, sark: 0x1n, type: Type.WE }));
    expect(aborted).toEqual([['0', I1.key]]);
  });
});

describe('PERSISTENT RESERVE OUT: SPEC_I_PT, ALL_TG_PT, REGISTER AND MOVE', () => {
  /** TransportIDs of initiator 2 (port, format 01b) and 3 (device, format 00b). */
  const tid2 = [
    0x45, 0, 0, 0x34, ...Buffer.from('iqn.1993-08.org.debian:01:init2,i,0x23d000000002'), 0, 0, 0, 0,
  ];
  const tid3 = [0x05, 0, 0, 0x20, ...Buffer.from('iqn.1993-08.org.debian:01:init3'), 0];

  test('prout_register_spec_i_pt', async () => {
    expect(tid2.length).toBe(56);
    expect(tid3.length).toBe(36);
    const { dev } = await twoInitiators();
    const tids = [...tid2, ...tid3];
    const data = [...proutParams(0n, 0xabn, 0x08), ...be32(tids.length), ...tids];
    expectGood(await proutRaw(dev, I1, proutCdb(ProutSa.REGISTER, 0, data.length), data));
    expect((await readKeys(dev)).keys).toEqual([0xabn, 0xabn, 0xabn]);
    // The listed initiators are registered: they can reserve with the key.
    expectGood(await reserve(dev, I3, 0xabn, Type.WE));
    expectGood(await release(dev, I3, 0xabn, Type.WE));
    // Any session of initiator 3 (device TransportID) is registered.
    const i3b = itNexus(3, 1, '400000000009');
    await admit(dev, i3b);
    expectGood(await reserve(dev, i3b, 0xabn, Type.WE));
  });

  test('prout_register_spec_i_pt_errors', async () => {
    const { dev } = await twoInitiators();
    const withList = (flags: number, tids: number[], listLength = tids.length): number[] => [
      ...proutParams(0n, 0xabn, flags),
      ...be32(listLength),
      ...tids,
    ];
    // Only REGISTER takes SPEC_I_PT.
    let data = withList(0x08, tid2);
    expect(expectCheck(await proutRaw(dev, I1, proutCdb(ProutSa.REGISTER_AND_IGNORE, 0, data.length), data), 0x5, 0x26, 0x00).sks).toMatchObject({
      field: 20,
      bit: 3,
    });
    // TRANSPORTID PARAMETER DATA LENGTH disagreeing with the parameter list length.
    data = withList(0x08, tid2, 44);
    expectCheck(await proutRaw(dev, I1, proutCdb(ProutSa.REGISTER, 0, data.length), data), 0x5, 0x1a, 0x00);
    // A TransportID with a bad ADDITIONAL LENGTH.
    const bad = [...tid2];
    bad[3] = 0x2a;
    data = withList(0x08, bad);
    expect(expectCheck(await proutRaw(dev, I1, proutCdb(ProutSa.REGISTER, 0, data.length), data), 0x5, 0x26, 0x00).sks).toMatchObject({ field: 30 });
    // An already registered I_T nexus among the TransportIDs.
    expectGood(await register(dev, I2, 0x2n));
    data = withList(0x08, [...tid3, ...tid2]);
    expect(expectCheck(await proutRaw(dev, I1, proutCdb(ProutSa.REGISTER, 0, data.length), data), 0x5, 0x26, 0x00).sks).toMatchObject({ field: 64 });
    expect((await readKeys(dev)).keys).toEqual([0x2n]);
    // SPEC_I_PT from a registered I_T nexus.
    data = [...proutParams(0x2n, 0x2n, 0x08), ...be32(tid3.length), ...tid3];
    expectCheck(await proutRaw(dev, I2, proutCdb(ProutSa.REGISTER, 0, data.length), data), 0x5, 0x24, 0x00);
  });

  test('prout_register_all_tg_pt', async () => {
    const { dev } = await twoInitiators();
    const i1port2 = itNexus(1, 2); // initiator 1's session through target port 2
    await admit(dev, i1port2);
    expectGood(await register(dev, I1, 0x1n, 0x04));
    expectGood(await reserve(dev, i1port2, 0x1n, Type.EA));
    expectGood(await writeBlock(dev, I1)); // the same registration holds through both ports
    expectGood(await writeBlock(dev, i1port2));
    expectConflict(await writeBlock(dev, I2));
  });

  test('prout_register_and_move', async () => {
    const { dev } = await twoInitiators();
    expectGood(await register(dev, I1, 0x1n));
    expectGood(await reserve(dev, I1, 0x1n, Type.WE));
    const generation = (await readKeys(dev)).generation;
    // Move to initiator 2 through target port 1, unregistering initiator 1 (UNREG).
    const data = [...be32(0), ...be32(0x1), ...be32(0), ...be32(0x77), 0, 0x02, 0, 1, ...be32(tid2.length), ...tid2];
    expectGood(await proutRaw(dev, I1, proutCdb(ProutSa.REGISTER_AND_MOVE, 0, data.length), data));
    expect(await readKeys(dev)).toEqual({ generation: generation + 1, additionalLength: 8, keys: [0x77n] });
    expect(await readReservation(dev)).toMatchObject({ reserved: true, key: 0x77n, type: Type.WE });
    expectGood(await writeBlock(dev, I2));
    expectConflict(await writeBlock(dev, I1));
    // Initiator 1 no longer holds anything to move.
    expectConflict(await proutRaw(dev, I1, proutCdb(ProutSa.REGISTER_AND_MOVE, 0, data.length), data));
  });
});

describe('PERSISTENT RESERVE OUT and SCSI-2 reservations', () => {
  test('prout_conflicts_with_a_scsi2_reservation', async () => {
    const { dev } = await twoInitiators();
    expectGood(await run(dev, [0x16, 0, 0, 0, 0, 0], { nexus: I1 })); // RESERVE (6)
    expectConflict(await register(dev, I1, 0x1n)); // even from the holder
    expectConflict(await register(dev, I2, 0x2n));
    expectConflict(await run(dev, [0x5e, 0, 0, 0, 0, 0, 0, 0, 8, 0], { nexus: I1 }));
    expectGood(await run(dev, [0x17, 0, 0, 0, 0, 0], { nexus: I1 })); // RELEASE (6)
    expectGood(await register(dev, I2, 0x2n));
  });
});
