/**
 * PERSISTENT RESERVE OUT service actions (SPC-4 5.13.7 - 5.13.11) as pure
 * functions of the state: (state, requesting nexus, request) → the next
 * state and its side effects (unit attentions, tasks to abort), or a
 * reservation conflict. Nothing here touches queues, the store or tasks;
 * lu-reservations.ts applies the outcome.
 *
 * Checks that need no state (CDB fields, parameter list layout) are made
 * by persistent-reserve-out.ts before this runs; state-dependent field
 * errors are thrown here as ScsiFailure.
 */
import { invalidParameterField, ScsiFailure } from '../failures';
import { UnitAttention, UnitAttentionCondition } from '../ua';
import {
  covers,
  holderKey,
  isAllRegistrants,
  isHolder,
  nextGeneration,
  overlaps,
  PrState,
  PrType,
  prTypeInfo,
  PrHolders,
  RegistrantRef,
  RegistrationRecord,
  registrationOf,
  ReservationKey,
  sameRegistrant,
  ZERO_KEY,
} from './state';
import type { NexusIdentity } from './transport-id';

/** PERSISTENT RESERVE OUT service action codes. */
export const ProutAction = {
  REGISTER: 0x00,
  RESERVE: 0x01,
  RELEASE: 0x02,
  CLEAR: 0x03,
  PREEMPT: 0x04,
  PREEMPT_AND_ABORT: 0x05,
  REGISTER_AND_IGNORE_EXISTING_KEY: 0x06,
  REGISTER_AND_MOVE: 0x07,
} as const;
export type ProutAction = (typeof ProutAction)[keyof typeof ProutAction];

/** A TransportID from the parameter list, with where it was (for the field pointer). */
export interface ListedInitiator {
  readonly initiator: string;
  readonly offset: number;
}

/** Byte offsets in the basic PERSISTENT RESERVE OUT parameter list, for field pointers. */
export const ProutField = {
  RESERVATION_KEY: 0,
  SERVICE_ACTION_RESERVATION_KEY: 8,
  /** SPEC_I_PT (bit 3), ALL_TG_PT (bit 2), APTPL (bit 0). */
  FLAGS: 20,
  /** REGISTER AND MOVE: UNREG (bit 1), APTPL (bit 0). */
  MOVE_FLAGS: 17,
  MOVE_RELATIVE_TARGET_PORT_ID: 18,
} as const;

export type ProutRequest =
  | {
      readonly action: typeof ProutAction.REGISTER | typeof ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY;
      readonly key: ReservationKey;
      readonly serviceActionKey: ReservationKey;
      readonly aptpl: boolean;
      readonly allTargetPorts: boolean;
      /** SPEC_I_PT=1: the TransportIDs to register as well (REGISTER only). */
      readonly specifiedInitiators: readonly ListedInitiator[] | null;
    }
  | {
      readonly action: typeof ProutAction.RESERVE | typeof ProutAction.RELEASE;
      readonly key: ReservationKey;
      readonly type: PrType;
      readonly scope: number;
    }
  | { readonly action: typeof ProutAction.CLEAR; readonly key: ReservationKey }
  | {
      readonly action: typeof ProutAction.PREEMPT | typeof ProutAction.PREEMPT_AND_ABORT;
      readonly key: ReservationKey;
      readonly serviceActionKey: ReservationKey;
      readonly type: PrType;
      readonly scope: number;
    }
  | {
      readonly action: typeof ProutAction.REGISTER_AND_MOVE;
      readonly key: ReservationKey;
      readonly serviceActionKey: ReservationKey;
      readonly aptpl: boolean;
      readonly unregister: boolean;
      readonly relativeTargetPortId: number;
      readonly destination: ListedInitiator;
    };

/** A unit attention for the I_T nexuses a set of registrations covers, except the requesting one. */
export interface RegistrantNotice {
  readonly condition: UnitAttentionCondition;
  readonly to: readonly RegistrantRef[];
}

export interface ProutEffects {
  readonly notices: readonly RegistrantNotice[];
  /** PREEMPT AND ABORT: abort the tasks of the I_T nexuses these registrations covered. */
  readonly abort: readonly RegistrantRef[];
}

export type ProutOutcome =
  | { readonly conflict: true }
  | { readonly conflict: false; readonly state: PrState; readonly effects: ProutEffects; readonly changed: boolean };

export interface ProutOptions {
  /** The logical unit can persist through power loss (a ReservationStore is configured): PTPL_C. */
  readonly ptplCapable: boolean;
}

const CONFLICT: ProutOutcome = { conflict: true };
/** Registrations one logical unit keeps; more get INSUFFICIENT REGISTRATION RESOURCES (memory stays bounded). */
export const MAX_REGISTRATIONS = 4096;
const NO_EFFECTS: ProutEffects = { notices: [], abort: [] };

function unchanged(state: PrState): ProutOutcome {
  return { conflict: false, state, effects: NO_EFFECTS, changed: false };
}

function done(state: PrState, effects: ProutEffects = NO_EFFECTS): ProutOutcome {
  return { conflict: false, state, effects, changed: true };
}

function notice(condition: UnitAttentionCondition, to: readonly RegistrantRef[]): RegistrantNotice[] {
  return to.length > 0 ? [{ condition, to }] : [];
}

/** Apply one PERSISTENT RESERVE OUT service action (throws ScsiFailure for an invalid release). */
export function persistentReserveOut(pr: PrState, id: NexusIdentity, req: ProutRequest, options: ProutOptions): ProutOutcome {
  const mine = registrationOf(pr, id);
  if (req.action === ProutAction.REGISTER || req.action === ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY) {
    return register(pr, id, mine, req, options);
  }
  // Every other service action needs a registered I_T nexus presenting its key.
  if (!mine || req.key !== mine.key) return CONFLICT;
  switch (req.action) {
    case ProutAction.RESERVE:
      return reserve(pr, mine, req.type, req.scope);
    case ProutAction.RELEASE:
      return release(pr, mine, req.type, req.scope);
    case ProutAction.CLEAR:
      return clear(pr, mine);
    case ProutAction.PREEMPT:
    case ProutAction.PREEMPT_AND_ABORT:
      return preempt(pr, mine, req.serviceActionKey, req.type, req.scope, req.action === ProutAction.PREEMPT_AND_ABORT);
    case ProutAction.REGISTER_AND_MOVE:
      return registerAndMove(pr, id, mine, req, options);
  }
}

/* ---------------- REGISTER, REGISTER AND IGNORE EXISTING KEY ---------------- */

function register(
  pr: PrState,
  id: NexusIdentity,
  mine: RegistrationRecord | undefined,
  req: Extract<ProutRequest, { action: 0x00 | 0x06 }>,
  options: ProutOptions,
): ProutOutcome {
  const ignoreKey = req.action === ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY;
  if (!mine) {
    if (!ignoreKey && req.key !== ZERO_KEY) return CONFLICT;
    if (req.serviceActionKey === ZERO_KEY) return unchanged(pr); // nothing to register, nothing to unregister
    if (req.aptpl && !options.ptplCapable) throw invalidParameterField(ProutField.FLAGS, 0);
    const own: RegistrationRecord = {
      initiator: id.initiator,
      relativeTargetPortId: req.allTargetPorts ? null : id.relativeTargetPortId,
      key: req.serviceActionKey,
    };
    // ALL_TG_PT=1 would also cover this initiator port's registrations at other target ports.
    if (pr.registrations.some((r) => overlaps(r, own))) throw invalidParameterField(ProutField.FLAGS, 2);
    const added: RegistrationRecord[] = [own];
    for (const listed of req.specifiedInitiators ?? []) {
      const reg: RegistrationRecord = { initiator: listed.initiator, relativeTargetPortId: own.relativeTargetPortId, key: req.serviceActionKey };
      if (sameRegistrant(reg, own) || added.some((a) => sameRegistrant(a, reg) && a !== own)) continue;
      if (added.some((a) => overlaps(a, reg)) || pr.registrations.some((r) => overlaps(r, reg))) {
        throw invalidParameterField(listed.offset, 7);
      }
      added.push(reg);
    }
    if (pr.registrations.length + added.length > MAX_REGISTRATIONS) throw new ScsiFailure('insufficient-registration-resources');
    return done({ ...pr, registrations: [...pr.registrations, ...added], generation: nextGeneration(pr.generation), aptpl: req.aptpl });
  }
  if (!ignoreKey && req.key !== mine.key) return CONFLICT;
  if (req.specifiedInitiators !== null) throw new ScsiFailure('invalid-field-in-cdb');
  if (req.aptpl && !options.ptplCapable) throw invalidParameterField(ProutField.FLAGS, 0);
  if (req.serviceActionKey === ZERO_KEY) return unregister(pr, mine, req.aptpl);
  const registrations = pr.registrations.map((r) => (r === mine ? { ...r, key: req.serviceActionKey } : r));
  return done({ ...pr, registrations, generation: nextGeneration(pr.generation), aptpl: req.aptpl });
}

/** Remove a registration; the reservation goes with the holder's (SPC-4 5.13.11.2.3). */
function unregister(pr: PrState, mine: RegistrationRecord, aptpl: boolean): ProutOutcome {
  const registrations = pr.registrations.filter((r) => r !== mine);
  let reservation = pr.reservation;
  let notices: RegistrantNotice[] = [];
  if (reservation && isHolder(pr, mine)) {
    const holders = prTypeInfo(reservation.type).holders;
    if (holders !== PrHolders.ALL_REGISTRANTS || registrations.length === 0) {
      // A registrants-only reservation released this way is announced to the remaining registrants.
      if (holders === PrHolders.REGISTRANTS_ONLY) notices = notice(UnitAttention.RESERVATIONS_RELEASED, registrations);
      reservation = null;
    }
  }
  return done({ ...pr, registrations, reservation, generation: nextGeneration(pr.generation), aptpl }, { notices, abort: [] });
}

/* ---------------- RESERVE, RELEASE, CLEAR ---------------- */

function reserve(pr: PrState, mine: RegistrationRecord, type: PrType, scope: number): ProutOutcome {
  const res = pr.reservation;
  if (res) {
    // Only the holder may "reserve" again, and only with the same type and scope (nothing changes).
    if (!isHolder(pr, mine) || res.type !== type || res.scope !== scope) return CONFLICT;
    return unchanged(pr);
  }
  const holder = isAllRegistrants(type) ? null : { initiator: mine.initiator, relativeTargetPortId: mine.relativeTargetPortId };
  return done({ ...pr, reservation: { type, scope, holder } });
}

function release(pr: PrState, mine: RegistrationRecord, type: PrType, scope: number): ProutOutcome {
  const res = pr.reservation;
  // No reservation, or a nexus that does not hold it: GOOD, nothing released.
  if (!res || !isHolder(pr, mine)) return unchanged(pr);
  // SPC-4 5.13.11.2.2: the holder releasing with another type or scope.
  if (res.type !== type || res.scope !== scope) throw new ScsiFailure('invalid-release-of-persistent-reservation');
  const announce = prTypeInfo(res.type).holders !== PrHolders.HOLDER;
  const others = pr.registrations.filter((r) => r !== mine);
  return done({ ...pr, reservation: null }, { notices: announce ? notice(UnitAttention.RESERVATIONS_RELEASED, others) : [], abort: [] });
}

function clear(pr: PrState, mine: RegistrationRecord): ProutOutcome {
  const others = pr.registrations.filter((r) => r !== mine);
  return done(
    { generation: nextGeneration(pr.generation), aptpl: false, registrations: [], reservation: null },
    // The requester's own registration covers its other I_T nexuses too (ALL_TG_PT): they are told as well.
    { notices: notice(UnitAttention.RESERVATIONS_PREEMPTED, [...others, mine]), abort: [] },
  );
}

/* ---------------- PREEMPT, PREEMPT AND ABORT ---------------- */

function preempt(pr: PrState, mine: RegistrationRecord, victimKey: ReservationKey, type: PrType, scope: number, abort: boolean): ProutOutcome {
  const res = pr.reservation;
  const allRegistrants = res !== null && isAllRegistrants(res.type);
  if (victimKey === ZERO_KEY && !allRegistrants) throw invalidParameterField(ProutField.SERVICE_ACTION_RESERVATION_KEY, 7);
  const preemptsReservation = res !== null && (allRegistrants ? victimKey === ZERO_KEY : holderKey(pr) === victimKey);

  if (!preemptsReservation) {
    // Remove the registrations holding the key; the reservation (if any) stays (SPC-4 5.13.11.4.4).
    if (!pr.registrations.some((r) => r.key === victimKey)) return CONFLICT;
    const removed = pr.registrations.filter((r) => r.key === victimKey && r !== mine);
    const registrations = pr.registrations.filter((r) => !removed.includes(r));
    return done(
      { ...pr, registrations, generation: nextGeneration(pr.generation) },
      { notices: notice(UnitAttention.REGISTRATIONS_PREEMPTED, removed), abort: abort ? removed : [] },
    );
  }

  // Take the reservation over (SPC-4 5.13.11.4.3): the holder's (or, for
  // all-registrants, every other registrant's) registrations go, the
  // requester holds a new reservation of the requested type and scope.
  const removed = pr.registrations.filter((r) => r !== mine && (victimKey === ZERO_KEY || r.key === victimKey));
  const registrations = pr.registrations.filter((r) => !removed.includes(r));
  const holder = isAllRegistrants(type) ? null : { initiator: mine.initiator, relativeTargetPortId: mine.relativeTargetPortId };
  const notices = notice(UnitAttention.REGISTRATIONS_PREEMPTED, removed);
  if (res.type !== type || res.scope !== scope) {
    notices.push(...notice(UnitAttention.RESERVATIONS_RELEASED, registrations.filter((r) => r !== mine)));
  }
  return done(
    { ...pr, registrations, reservation: { type, scope, holder }, generation: nextGeneration(pr.generation) },
    { notices, abort: abort ? removed : [] },
  );
}

/* ---------------- REGISTER AND MOVE ---------------- */

function registerAndMove(
  pr: PrState,
  id: NexusIdentity,
  mine: RegistrationRecord,
  req: Extract<ProutRequest, { action: 0x07 }>,
  options: ProutOptions,
): ProutOutcome {
  const res = pr.reservation;
  // Only the holder of a reservation that has one holder can move it (SPC-4 5.13.8).
  if (!res || res.holder === null || !isHolder(pr, mine)) return CONFLICT;
  if (req.serviceActionKey === ZERO_KEY) throw invalidParameterField(ProutField.SERVICE_ACTION_RESERVATION_KEY, 7);
  if (req.aptpl && !options.ptplCapable) throw invalidParameterField(ProutField.MOVE_FLAGS, 0);
  const target: NexusIdentity = { initiator: req.destination.initiator, relativeTargetPortId: req.relativeTargetPortId };
  // The destination must be another I_T nexus than the one the command came on.
  if (covers(mine, target) || (target.initiator === id.initiator && target.relativeTargetPortId === id.relativeTargetPortId)) {
    throw invalidParameterField(req.destination.offset, 7);
  }
  const existing = pr.registrations.find((r) => covers(r, target));
  let registrations: RegistrationRecord[];
  let destination: RegistrantRef;
  if (existing) {
    registrations = pr.registrations.map((r) => (r === existing ? { ...r, key: req.serviceActionKey } : r));
    destination = existing;
  } else {
    const added: RegistrationRecord = { initiator: target.initiator, relativeTargetPortId: target.relativeTargetPortId, key: req.serviceActionKey };
    if (pr.registrations.some((r) => overlaps(r, added))) throw invalidParameterField(req.destination.offset, 7);
    if (pr.registrations.length + 1 > MAX_REGISTRATIONS) throw new ScsiFailure('insufficient-registration-resources');
    registrations = [...pr.registrations, added];
    destination = added;
  }
  if (req.unregister) registrations = registrations.filter((r) => !sameRegistrant(r, mine));
  return done({
    generation: nextGeneration(pr.generation),
    aptpl: req.aptpl,
    registrations,
    reservation: { type: res.type, scope: res.scope, holder: { initiator: destination.initiator, relativeTargetPortId: destination.relativeTargetPortId } },
  });
}
