/**
 * Which commands a reservation lets through: the tables, and the one
 * function the dispatcher asks before running a command.
 *
 * Persistent reservations: PR_ACCESS is SPC-4 table "SPC commands that are
 * allowed in the presence of various reservations" and SBC-3 table "SBC-3
 * commands that are allowed in the presence of various reservations",
 * folded by the command row's ReservationClass. Its columns are the
 * table's: the WRITE EXCLUSIVE and EXCLUSIVE ACCESS types as seen from any
 * I_T nexus other than the holder, then the registrants-only and
 * all-registrants types as seen from a registered and from an unregistered
 * I_T nexus. The holder (every registrant, for all-registrants types) is
 * never in conflict. A few commands' class depends on CDB fields
 * (CDB_CLASS_RULES).
 *
 * SCSI-2 reservations (RESERVE(6)/(10)): every command from another I_T
 * nexus conflicts except SCSI2_ALLOWED_FROM_OTHERS (SPC-2 5.5.1), and
 * PERSISTENT RESERVE IN/OUT conflict even from the holder (SPC-3 6.11,
 * 6.12: "when RESERVE(10) or RESERVE(6) logical unit reservations are
 * active"). RESERVE and RELEASE against persistent reservations follow
 * the CRH rules in the commands themselves (reserve-release.ts).
 */
import { ReservationClass } from '../command-table';
import { MaintenanceIn, Opcode } from '../opcodes';
import type { NexusIdentity } from './transport-id';
import { isHolder, PrAccess, PrHolders, PrState, prTypeInfo, registrationOf, Scsi2Reservation } from './state';

/** Opcodes the reservation rules name that the block device does not implement. */
export const ReservationOpcode = {
  RESERVE_10: 0x56,
  RELEASE_10: 0x57,
  LOG_SENSE: 0x4d,
} as const;

const A = true; // allowed
const C = false; // RESERVATION CONFLICT

/** Column order of PR_ACCESS rows. */
export const PR_ACCESS_COLUMNS = [
  'write-exclusive',
  'exclusive-access',
  'registered/write-exclusive',
  'registered/exclusive-access',
  'unregistered/write-exclusive',
  'unregistered/exclusive-access',
] as const;
export type PrAccessColumn = (typeof PR_ACCESS_COLUMNS)[number];

type AccessRow = readonly [boolean, boolean, boolean, boolean, boolean, boolean];

/**
 *                     from any nexus    RO/AR types, registered   RO/AR types, not registered
 *                      WE     EA           WE     EA                  WE     EA
 */
export const PR_ACCESS: Readonly<Record<ReservationClass, AccessRow>> = {
  [ReservationClass.ALLOWED]: [A, A, A, A, A, A],
  [ReservationClass.READ]: [A, C, A, A, A, C],
  [ReservationClass.WRITE]: [C, C, A, A, C, C],
  [ReservationClass.CONFLICT]: [C, C, A, A, C, C],
};

/** A command, optionally narrowed by service action and CDB fields. */
export interface CdbRule {
  readonly name: string;
  readonly opcode: number;
  readonly serviceAction?: number;
  readonly when?: (cdb: Buffer) => boolean;
}

const preventIsZero = (cdb: Buffer): boolean => ((cdb[4] ?? 0) & 0x03) === 0;

/** SBC-3: these commands are allowed under any reservation when their CDB asks for nothing that changes the medium. */
export const CDB_CLASS_RULES: readonly (CdbRule & { readonly reservation: ReservationClass })[] = [
  {
    name: 'START STOP UNIT with START=1 and POWER CONDITION=0',
    opcode: Opcode.START_STOP_UNIT,
    when: (cdb) => ((cdb[4] ?? 0) & 0xf1) === 0x01,
    reservation: ReservationClass.ALLOWED,
  },
  { name: 'PREVENT ALLOW MEDIUM REMOVAL with PREVENT=0', opcode: Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, when: preventIsZero, reservation: ReservationClass.ALLOWED },
];

/** Commands another I_T nexus's SCSI-2 reservation does not stop (SPC-2 5.5.1). */
export const SCSI2_ALLOWED_FROM_OTHERS: readonly CdbRule[] = [
  { name: 'INQUIRY', opcode: Opcode.INQUIRY },
  { name: 'REQUEST SENSE', opcode: Opcode.REQUEST_SENSE },
  { name: 'REPORT LUNS', opcode: Opcode.REPORT_LUNS },
  { name: 'LOG SENSE', opcode: ReservationOpcode.LOG_SENSE },
  { name: 'RELEASE (6)', opcode: Opcode.RELEASE_6 },
  { name: 'RELEASE (10)', opcode: ReservationOpcode.RELEASE_10 },
  { name: 'REPORT TARGET PORT GROUPS', opcode: Opcode.MAINTENANCE_IN, serviceAction: MaintenanceIn.REPORT_TARGET_PORT_GROUPS },
  { name: 'PREVENT ALLOW MEDIUM REMOVAL with PREVENT=0', opcode: Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, when: preventIsZero },
];

/** Commands a SCSI-2 reservation stops from every I_T nexus, its holder included. */
export const SCSI2_CONFLICT_FOR_ALL: readonly CdbRule[] = [
  { name: 'PERSISTENT RESERVE IN', opcode: Opcode.PERSISTENT_RESERVE_IN },
  { name: 'PERSISTENT RESERVE OUT', opcode: Opcode.PERSISTENT_RESERVE_OUT },
];

function byOpcode<R extends CdbRule>(rules: readonly R[]): ReadonlyMap<number, readonly R[]> {
  const map = new Map<number, R[]>();
  for (const r of rules) map.set(r.opcode, [...(map.get(r.opcode) ?? []), r]);
  return map;
}

const CDB_CLASS_BY_OPCODE = byOpcode(CDB_CLASS_RULES);
const SCSI2_ALLOWED_BY_OPCODE = byOpcode(SCSI2_ALLOWED_FROM_OTHERS);
const SCSI2_CONFLICT_BY_OPCODE = byOpcode(SCSI2_CONFLICT_FOR_ALL);

function ruleMatches(rule: CdbRule, cdb: Buffer): boolean {
  if (rule.serviceAction !== undefined && ((cdb[1] ?? 0) & 0x1f) !== rule.serviceAction) return false;
  return rule.when ? rule.when(cdb) : true;
}

function anyMatch(table: ReadonlyMap<number, readonly CdbRule[]>, cdb: Buffer): boolean {
  return table.get(cdb[0] ?? 0)?.some((r) => ruleMatches(r, cdb)) ?? false;
}

/** The command's reservation class: the row's, unless a CDB rule narrows it. */
export function reservationClassOf(rowClass: ReservationClass, cdb: Buffer): ReservationClass {
  return CDB_CLASS_BY_OPCODE.get(cdb[0] ?? 0)?.find((r) => ruleMatches(r, cdb))?.reservation ?? rowClass;
}

/** Which PR_ACCESS column applies to a nexus that does not hold the reservation. */
export function prAccessColumn(type: number, registered: boolean): number {
  const info = prTypeInfo(type);
  const exclusiveAccess = info.access === PrAccess.EXCLUSIVE_ACCESS ? 1 : 0;
  if (info.holders === PrHolders.HOLDER) return exclusiveAccess;
  return (registered ? 2 : 4) + exclusiveAccess;
}

/**
 * Whether a command from this I_T nexus is in RESERVATION CONFLICT with the
 * logical unit's reservations. `rowClass` is the command row's class.
 */
export function reservationConflict(
  pr: PrState,
  scsi2: Scsi2Reservation | null,
  id: NexusIdentity,
  rowClass: ReservationClass,
  cdb: Buffer,
): boolean {
  if (scsi2) {
    if (anyMatch(SCSI2_CONFLICT_BY_OPCODE, cdb)) return true;
    const holder = scsi2.initiator === id.initiator && scsi2.relativeTargetPortId === id.relativeTargetPortId;
    if (!holder && !anyMatch(SCSI2_ALLOWED_BY_OPCODE, cdb)) return true;
  }
  const res = pr.reservation;
  if (!res) return false;
  const reg = registrationOf(pr, id);
  if (reg && isHolder(pr, reg)) return false;
  return !PR_ACCESS[reservationClassOf(rowClass, cdb)][prAccessColumn(res.type, reg !== undefined)];
}
