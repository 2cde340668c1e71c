/**
 * Reservation state of one logical unit as plain data: persistent
 * reservations (SPC-4 5.13) and the SCSI-2 reservation (SPC-2 RESERVE).
 *
 * The state never refers to sessions or other in-memory objects: an I_T
 * nexus is named by its initiator port and relative target port identifier
 * (transport-id.ts), a reservation key is 16 lower-case hex digits. So the
 * same value is the snapshot the mirror replicates to the peer, what a
 * takeover restores there, and what APTPL writes to disk.
 */
import { initiatorMatches, initiatorsOverlap, NexusIdentity } from './transport-id';

/** Persistent reservation TYPE codes (SPC-4 table "Persistent reservation type codes"). */
export const PrType = {
  WRITE_EXCLUSIVE: 0x1,
  EXCLUSIVE_ACCESS: 0x3,
  WRITE_EXCLUSIVE_REGISTRANTS_ONLY: 0x5,
  EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: 0x6,
  WRITE_EXCLUSIVE_ALL_REGISTRANTS: 0x7,
  EXCLUSIVE_ACCESS_ALL_REGISTRANTS: 0x8,
} as const;
export type PrType = (typeof PrType)[keyof typeof PrType];

/** The only SCOPE SPC-4 keeps: the whole logical unit. */
export const PR_SCOPE_LU = 0x0;

/** What a type restricts: writes only, or all medium access. */
export const PrAccess = { WRITE_EXCLUSIVE: 'write-exclusive', EXCLUSIVE_ACCESS: 'exclusive-access' } as const;
export type PrAccess = (typeof PrAccess)[keyof typeof PrAccess];

/** Who the type lets through besides the holder: nobody, registrants, or every registrant is a holder. */
export const PrHolders = { HOLDER: 'holder', REGISTRANTS_ONLY: 'registrants-only', ALL_REGISTRANTS: 'all-registrants' } as const;
export type PrHolders = (typeof PrHolders)[keyof typeof PrHolders];

export interface PrTypeInfo {
  readonly name: string;
  readonly access: PrAccess;
  readonly holders: PrHolders;
  /** Bit in REPORT CAPABILITIES' PERSISTENT RESERVATION TYPE MASK (bytes 4..5 as a big-endian 16-bit value). */
  readonly typeMaskBit: number;
}

export const PR_TYPES: ReadonlyMap<number, PrTypeInfo> = new Map<number, PrTypeInfo>([
  [PrType.WRITE_EXCLUSIVE, { name: 'WRITE EXCLUSIVE', access: PrAccess.WRITE_EXCLUSIVE, holders: PrHolders.HOLDER, typeMaskBit: 0x0200 }],
  [PrType.EXCLUSIVE_ACCESS, { name: 'EXCLUSIVE ACCESS', access: PrAccess.EXCLUSIVE_ACCESS, holders: PrHolders.HOLDER, typeMaskBit: 0x0800 }],
  [
    PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY,
    { name: 'WRITE EXCLUSIVE - REGISTRANTS ONLY', access: PrAccess.WRITE_EXCLUSIVE, holders: PrHolders.REGISTRANTS_ONLY, typeMaskBit: 0x2000 },
  ],
  [
    PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY,
    { name: 'EXCLUSIVE ACCESS - REGISTRANTS ONLY', access: PrAccess.EXCLUSIVE_ACCESS, holders: PrHolders.REGISTRANTS_ONLY, typeMaskBit: 0x4000 },
  ],
  [
    PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS,
    { name: 'WRITE EXCLUSIVE - ALL REGISTRANTS', access: PrAccess.WRITE_EXCLUSIVE, holders: PrHolders.ALL_REGISTRANTS, typeMaskBit: 0x8000 },
  ],
  [
    PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS,
    { name: 'EXCLUSIVE ACCESS - ALL REGISTRANTS', access: PrAccess.EXCLUSIVE_ACCESS, holders: PrHolders.ALL_REGISTRANTS, typeMaskBit: 0x0001 },
  ],
]);

export function prTypeInfo(type: number): PrTypeInfo {
  const info = PR_TYPES.get(type);
  if (!info) throw new Error(`unknown persistent reservation type ${type}`);
  return info;
}

export function isAllRegistrants(type: number): boolean {
  return prTypeInfo(type).holders === PrHolders.ALL_REGISTRANTS;
}

/** A reservation key: 16 lower-case hex digits. Zero means "no key". */
export type ReservationKey = string;
export const ZERO_KEY: ReservationKey = '0000000000000000';

/** Which I_T nexuses a registration covers: one initiator (port, or device = all its ports) at one target port or all. */
export interface RegistrantRef {
  readonly initiator: string;
  /** Relative target port identifier, or null when registered with ALL_TG_PT=1 (every target port). */
  readonly relativeTargetPortId: number | null;
}

export interface RegistrationRecord extends RegistrantRef {
  readonly key: ReservationKey;
}

export interface PersistentReservationRecord {
  readonly type: PrType;
  readonly scope: number;
  /** The holding registration; null for the all-registrants types, where every registrant holds it. */
  readonly holder: RegistrantRef | null;
}

/** Persistent reservation state: what APTPL keeps across power loss. */
export interface PrState {
  /** PRGENERATION (32-bit, wraps). */
  readonly generation: number;
  /** Persist through power loss, as last set by a registering command. */
  readonly aptpl: boolean;
  /** In registration order (READ KEYS and READ FULL STATUS report them in this order). */
  readonly registrations: readonly RegistrationRecord[];
  readonly reservation: PersistentReservationRecord | null;
}

/** A SCSI-2 (RESERVE(6)/(10)) reservation: held by one I_T nexus. */
export type Scsi2Reservation = NexusIdentity;

/** The serialisable form of a logical unit's reservations (plain JSON). */
export interface ReservationSnapshot extends PrState {
  readonly version: 1;
  readonly scsi2: Scsi2Reservation | null;
}

export const EMPTY_PR_STATE: PrState = { generation: 0, aptpl: false, registrations: [], reservation: null };

export function nextGeneration(generation: number): number {
  return (generation + 1) >>> 0;
}

export function sameRegistrant(a: RegistrantRef, b: RegistrantRef): boolean {
  return a.initiator === b.initiator && a.relativeTargetPortId === b.relativeTargetPortId;
}

/** Whether the registration covers the I_T nexus. */
export function covers(reg: RegistrantRef, id: NexusIdentity): boolean {
  return (reg.relativeTargetPortId === null || reg.relativeTargetPortId === id.relativeTargetPortId) && initiatorMatches(reg.initiator, id.initiator);
}

/** Whether some I_T nexus is covered by both registrations. */
export function overlaps(a: RegistrantRef, b: RegistrantRef): boolean {
  const ports = a.relativeTargetPortId === null || b.relativeTargetPortId === null || a.relativeTargetPortId === b.relativeTargetPortId;
  return ports && initiatorsOverlap(a.initiator, b.initiator);
}

/** The registration of an I_T nexus, if it is registered. */
export function registrationOf(pr: PrState, id: NexusIdentity): RegistrationRecord | undefined {
  return pr.registrations.find((r) => covers(r, id));
}

/**
 * The registrations through relative target port `from` moved to port `to`
 * (their I_T nexuses now reach the logical unit through `to`). A moved
 * registration that would overlap one already at `to` is dropped in its
 * favour, and a reservation it held passes to that one. Returns `pr` itself
 * when nothing was at `from`.
 */
export function movePort(pr: PrState, from: number, to: number): PrState {
  if (!pr.registrations.some((r) => r.relativeTargetPortId === from)) return pr;
  const registrations: RegistrationRecord[] = [];
  for (const r of pr.registrations) {
    const moved = r.relativeTargetPortId === from ? { ...r, relativeTargetPortId: to } : r;
    if (registrations.some((k) => overlaps(k, moved)) || pr.registrations.some((k) => k !== r && k.relativeTargetPortId !== from && overlaps(k, moved))) continue;
    registrations.push(moved);
  }
  let reservation = pr.reservation;
  const holder = reservation?.holder;
  if (reservation && holder && holder.relativeTargetPortId === from) {
    const moved = { initiator: holder.initiator, relativeTargetPortId: to };
    const now = registrations.find((r) => overlaps(r, moved));
    reservation = now ? { ...reservation, holder: { initiator: now.initiator, relativeTargetPortId: now.relativeTargetPortId } } : null;
  }
  if (reservation && reservation.holder === null && registrations.length === 0) reservation = null;
  return { generation: pr.generation, aptpl: pr.aptpl, registrations, reservation };
}

/** Whether the registration holds the persistent reservation (every registrant does for all-registrants types). */
export function isHolder(pr: PrState, reg: RegistrantRef): boolean {
  const res = pr.reservation;
  if (!res) return false;
  return res.holder === null || sameRegistrant(res.holder, reg);
}

/** The reservation key of the holder, or null (no reservation, or an all-registrants type). */
export function holderKey(pr: PrState): ReservationKey | null {
  const holder = pr.reservation?.holder;
  if (!holder) return null;
  return pr.registrations.find((r) => sameRegistrant(r, holder))?.key ?? null;
}

/* ---------------- snapshot validation ---------------- */

function fail(what: string): never {
  throw new Error(`invalid reservation snapshot: ${what}`);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function port(x: unknown, nullable: boolean, what: string): number | null {
  if (x === null && nullable) return null;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > 0xffff) fail(`${what} must be a relative target port identifier 1..65535`);
  return x;
}

function text(x: unknown, what: string): string {
  if (typeof x !== 'string' || x.length === 0) fail(`${what} must be a non-empty string`);
  return x;
}

function registrant(x: unknown, what: string): RegistrantRef {
  if (!isRecord(x)) fail(`${what} must be an object`);
  return { initiator: text(x['initiator'], `${what}.initiator`), relativeTargetPortId: port(x['relativeTargetPortId'], true, `${what}.relativeTargetPortId`) };
}

/** Check an untrusted value (a file, the peer) and return it as a snapshot. */
export function parseSnapshot(x: unknown): ReservationSnapshot {
  if (!isRecord(x)) fail('not an object');
  if (x['version'] !== 1) fail(`unsupported version ${String(x['version'])}`);
  const generation = x['generation'];
  if (typeof generation !== 'number' || !Number.isInteger(generation) || generation < 0 || generation > 0xffffffff) fail('generation');
  if (typeof x['aptpl'] !== 'boolean') fail('aptpl');
  const regs = x['registrations'];
  if (!Array.isArray(regs)) fail('registrations must be an array');
  const registrations = regs.map((r: unknown, i): RegistrationRecord => {
    const ref = registrant(r, `registrations[${i}]`);
    const key = (r as Record<string, unknown>)['key'];
    if (typeof key !== 'string' || !/^[0-9a-f]{16}$/.test(key) || key === ZERO_KEY) fail(`registrations[${i}].key`);
    return { ...ref, key };
  });
  registrations.forEach((a, i) => {
    if (registrations.some((b, j) => j < i && overlaps(a, b))) fail(`registrations[${i}] overlaps an earlier registration`);
  });
  let reservation: PersistentReservationRecord | null = null;
  const res = x['reservation'];
  if (res !== null) {
    if (!isRecord(res)) fail('reservation');
    const type = res['type'];
    if (typeof type !== 'number' || !PR_TYPES.has(type)) fail('reservation.type');
    if (res['scope'] !== PR_SCOPE_LU) fail('reservation.scope');
    const holder = res['holder'] === null ? null : registrant(res['holder'], 'reservation.holder');
    if (isAllRegistrants(type) !== (holder === null)) fail('reservation.holder must be null exactly for the all-registrants types');
    if (holder && !registrations.some((r) => sameRegistrant(r, holder))) fail('reservation.holder is not registered');
    if (!holder && registrations.length === 0) fail('an all-registrants reservation needs registrants');
    reservation = { type: type as PrType, scope: PR_SCOPE_LU, holder };
  }
  let scsi2: Scsi2Reservation | null = null;
  const s2 = x['scsi2'];
  if (s2 !== null) {
    if (!isRecord(s2)) fail('scsi2');
    scsi2 = { initiator: text(s2['initiator'], 'scsi2.initiator'), relativeTargetPortId: port(s2['relativeTargetPortId'], false, 'scsi2.relativeTargetPortId')! };
  }
  return { version: 1, generation, aptpl: x['aptpl'], registrations, reservation, scsi2 };
}
