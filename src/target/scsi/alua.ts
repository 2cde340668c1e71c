/**
 * Asymmetric logical unit access (SPC-4 5.15), implicit only (TPGS=01b),
 * and the availability of a logical unit during failover.
 *
 * A twinsan pair is ONE SCSI target device reached through two target port
 * groups, one per node. Each node's ScsiTargetDevice is configured with both
 * groups (so REPORT TARGET PORT GROUPS describes the whole pair) and knows
 * which one is its own (localGroup). A command's target port group is the
 * group listing the nexus' RELATIVE TARGET PORT IDENTIFIER; a port listed in
 * no group belongs to the local group. Relative target port ids and group
 * ids must therefore be unique across the pair, and each node's iSCSI
 * server must be given the relative target port id its group lists.
 *
 * State changes happen in one place: AluaGroups.setState (reached through
 * ScsiTargetDevice.setAluaState), which reports whether the state changed so
 * the device raises ASYMMETRIC ACCESS STATE CHANGED on the affected logical
 * units (every I_T nexus: implicit transitions have no requester to skip).
 * A group-wide state applies to every logical unit; a per-LU state (for one
 * volume owned by one node) overrides it until the next group-wide change.
 *
 * What a command meets (checkAccess), in this order:
 *   1. LU availability MOVING: BUSY, except the commands that work in every
 *      state (INQUIRY, REPORT LUNS, REQUEST SENSE, REPORT TARGET PORT GROUPS,
 *      REPORT SUPPORTED OPERATION CODES / TASK MANAGEMENT FUNCTIONS);
 *   2. the effective access state of the port's group for that LU (an LU in
 *      availability TRANSITIONING is transitioning on this node's ports):
 *      - active/optimized, active/non-optimized: everything runs;
 *      - transitioning: NOT READY, ASYMMETRIC ACCESS STATE TRANSITION (04h/0Ah)
 *        except the commands above;
 *      - standby: NOT READY, TARGET PORT IN STANDBY STATE (04h/0Bh) except the
 *        SPC-4 5.15.2.4.4 list (above plus MODE SENSE/SELECT, LOG SENSE/SELECT,
 *        PERSISTENT RESERVE IN/OUT, diagnostics, SET TARGET PORT GROUPS, echo
 *        buffer READ/WRITE BUFFER);
 *      - unavailable: NOT READY, TARGET PORT IN UNAVAILABLE STATE (04h/0Ch)
 *        except the SPC-4 5.15.2.4.5 list (standby's minus MODE and PR).
 * All of these answers are retryable. A logical unit that exists but is busy
 * or moving never answers LOGICAL UNIT NOT SUPPORTED: ESXi takes 05h/25h/00h
 * as permanent device loss.
 */
import type { FailureReason } from './failures';
import { MaintenanceIn, Opcode } from './opcodes';

/** Asymmetric access states a target port group can be in. */
export const AluaState = {
  ACTIVE_OPTIMIZED: 'active/optimized',
  ACTIVE_NON_OPTIMIZED: 'active/non-optimized',
  STANDBY: 'standby',
  UNAVAILABLE: 'unavailable',
  TRANSITIONING: 'transitioning',
} as const;
export type AluaState = (typeof AluaState)[keyof typeof AluaState];

/** ASYMMETRIC ACCESS STATE field values (SPC-4 table 166). */
export const ALUA_STATE_CODE: Readonly<Record<AluaState, number>> = {
  [AluaState.ACTIVE_OPTIMIZED]: 0x0,
  [AluaState.ACTIVE_NON_OPTIMIZED]: 0x1,
  [AluaState.STANDBY]: 0x2,
  [AluaState.UNAVAILABLE]: 0x3,
  [AluaState.TRANSITIONING]: 0xf,
};

/** Supported-state bits of an RTPG descriptor: T_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP (no O_SUP, LBD_SUP). */
export const SUPPORTED_STATES_BITS = 0x80 | 0x08 | 0x04 | 0x02 | 0x01;

/** STATUS CODE of an RTPG descriptor. */
export const AluaStatusCode = { NONE: 0x00, ALTERED_BY_STPG: 0x01, ALTERED_IMPLICITLY: 0x02 } as const;

/** Availability of a logical unit, set by the failover code. */
export const LuAvailability = {
  /** Serving commands per its group's ALUA state. */
  ONLINE: 'online',
  /** Being taken over or handed back: this node's ports are transitioning for it (NOT READY 04h/0Ah). */
  TRANSITIONING: 'transitioning',
  /** Quiesced while it moves between nodes or backends: BUSY. */
  MOVING: 'moving',
} as const;
export type LuAvailability = (typeof LuAvailability)[keyof typeof LuAvailability];

export interface AluaGroupOptions {
  /** TARGET PORT GROUP identifier, 1..65535. */
  readonly id: number;
  /** Relative target port ids in the group (1..65535). */
  readonly ports: readonly number[];
  /** Initial state (default active/optimized). */
  readonly state?: AluaState;
  /** PREF bit: the preferred group for I/O. */
  readonly preferred?: boolean;
}

export interface AluaOptions {
  readonly groups: readonly AluaGroupOptions[];
  /** The group of this node's ports (and of any port no group lists). */
  readonly localGroup: number;
  /** IMPLICIT TRANSITION TIME in seconds reported in the extended RTPG header (0: not specified). */
  readonly implicitTransitionSeconds?: number;
}

/** One group as RTPG reports it. */
export interface AluaGroupView {
  readonly id: number;
  readonly ports: readonly number[];
  readonly preferred: boolean;
}

interface GroupEntry {
  readonly id: number;
  readonly ports: readonly number[];
  readonly preferred: boolean;
  state: AluaState;
  statusCode: number;
}

const STATES: ReadonlySet<string> = new Set(Object.values(AluaState));

function checkId(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 0xffff) throw new RangeError(`${what} must be 1..65535, not ${n}`);
}

function checkState(state: string): asserts state is AluaState {
  if (!STATES.has(state)) throw new RangeError(`unknown ALUA state ${JSON.stringify(state)}`);
}

/** The target port groups of a device and their states. */
export class AluaGroups {
  readonly localGroup: number;
  readonly implicitTransitionSeconds: number;
  private readonly entries: GroupEntry[] = [];
  private readonly portGroup = new Map<number, number>();
  /** Per-LU states (keyed by the LogicalUnit object), overriding the group state. */
  private readonly overrides = new WeakMap<object, Map<number, AluaState>>();

  constructor(options: AluaOptions) {
    if (options.groups.length === 0) throw new RangeError('ALUA needs at least one target port group');
    for (const g of options.groups) {
      checkId('target port group id', g.id);
      if (this.entries.some((e) => e.id === g.id)) throw new RangeError(`target port group ${g.id} defined twice`);
      const state = g.state ?? AluaState.ACTIVE_OPTIMIZED;
      checkState(state);
      for (const p of g.ports) {
        checkId('relative target port id', p);
        if (this.portGroup.has(p)) throw new RangeError(`relative target port ${p} is in two target port groups`);
        this.portGroup.set(p, g.id);
      }
      this.entries.push({ id: g.id, ports: [...g.ports], preferred: g.preferred ?? false, state, statusCode: AluaStatusCode.NONE });
    }
    if (!this.entries.some((e) => e.id === options.localGroup)) throw new RangeError(`local group ${options.localGroup} is not among the groups`);
    const itt = options.implicitTransitionSeconds ?? 0;
    if (!Number.isInteger(itt) || itt < 0 || itt > 0xff) throw new RangeError(`implicitTransitionSeconds must be 0..255, not ${itt}`);
    this.localGroup = options.localGroup;
    this.implicitTransitionSeconds = itt;
  }

  /** A device that is alone: one active/optimized group holding every port. */
  static single(groupId = 1): AluaGroups {
    return new AluaGroups({ groups: [{ id: groupId, ports: [] }], localGroup: groupId });
  }

  /** Groups in configuration order. */
  groups(): readonly AluaGroupView[] {
    return this.entries;
  }

  has(groupId: number): boolean {
    return this.entries.some((e) => e.id === groupId);
  }

  /** The group a relative target port belongs to. */
  groupOfPort(relativeTargetPortId: number): number {
    return this.portGroup.get(relativeTargetPortId) ?? this.localGroup;
  }

  /** State of a group, for one logical unit when given (its own state if it has one). */
  state(groupId: number, lu?: object): AluaState {
    const own = lu ? this.overrides.get(lu)?.get(groupId) : undefined;
    return own ?? this.entry(groupId).state;
  }

  statusCode(groupId: number): number {
    return this.entry(groupId).statusCode;
  }

  /**
   * Set a group's state for every logical unit (clearing per-LU states of
   * that group), or for the given ones only. Returns the logical units whose
   * state for this group changed (all of `allLus` for a group-wide change
   * that changed anything).
   */
  setState<L extends object>(groupId: number, state: AluaState, allLus: readonly L[], only?: L): L[] {
    checkState(state);
    const entry = this.entry(groupId);
    const targets = only ? [only] : allLus;
    const changed = targets.filter((lu) => this.state(groupId, lu) !== state);
    if (only) {
      let own = this.overrides.get(only);
      if (!own) {
        own = new Map();
        this.overrides.set(only, own);
      }
      own.set(groupId, state);
    } else {
      entry.state = state;
      for (const lu of allLus) this.overrides.get(lu)?.delete(groupId);
    }
    if (changed.length > 0) entry.statusCode = AluaStatusCode.ALTERED_IMPLICITLY;
    return changed;
  }

  private entry(groupId: number): GroupEntry {
    const e = this.entries.find((x) => x.id === groupId);
    if (!e) throw new RangeError(`no target port group ${groupId}`);
    return e;
  }
}

/* ---------------- the access gate ---------------- */

/** A command, as the access tables name it. */
interface CommandMatch {
  readonly opcode: number;
  readonly serviceAction?: number;
  /** Extra condition on the CDB (e.g. echo buffer mode). */
  readonly when?: (cdb: Buffer) => boolean;
}

const LOG_SELECT = 0x4c;
const LOG_SENSE = 0x4d;
const RECEIVE_DIAGNOSTIC_RESULTS = 0x1c;
const SEND_DIAGNOSTIC = 0x1d;
const WRITE_BUFFER = 0x3b;
const READ_BUFFER = 0x3c;
const SET_TARGET_PORT_GROUPS = 0x0a; // MAINTENANCE OUT service action
const echoBufferMode = (cdb: Buffer): boolean => ((cdb[1] ?? 0) & 0x1f) === 0x0a || ((cdb[1] ?? 0) & 0x1f) === 0x0b;

/** Work in every state, transitioning and moving included (SPC-4 5.15.2.4.6). */
const ALWAYS: readonly CommandMatch[] = [
  { opcode: Opcode.INQUIRY },
  { opcode: Opcode.REPORT_LUNS },
  { opcode: Opcode.REQUEST_SENSE },
  { opcode: Opcode.MAINTENANCE_IN, serviceAction: MaintenanceIn.REPORT_TARGET_PORT_GROUPS },
  // Not in the SPC-4 lists, but they describe the device server, not the medium.
  { opcode: Opcode.MAINTENANCE_IN, serviceAction: MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES },
  { opcode: Opcode.MAINTENANCE_IN, serviceAction: MaintenanceIn.REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS },
];

/** Unavailable (SPC-4 5.15.2.4.5). */
const UNAVAILABLE_ALLOWED: readonly CommandMatch[] = [
  ...ALWAYS,
  { opcode: LOG_SELECT },
  { opcode: LOG_SENSE },
  { opcode: RECEIVE_DIAGNOSTIC_RESULTS },
  { opcode: SEND_DIAGNOSTIC },
  { opcode: Opcode.MAINTENANCE_OUT, serviceAction: SET_TARGET_PORT_GROUPS },
  { opcode: READ_BUFFER, when: echoBufferMode },
  { opcode: WRITE_BUFFER, when: echoBufferMode },
];

/** Standby (SPC-4 5.15.2.4.4). */
const STANDBY_ALLOWED: readonly CommandMatch[] = [
  ...UNAVAILABLE_ALLOWED,
  { opcode: Opcode.MODE_SELECT_6 },
  { opcode: Opcode.MODE_SELECT_10 },
  { opcode: Opcode.MODE_SENSE_6 },
  { opcode: Opcode.MODE_SENSE_10 },
  { opcode: Opcode.PERSISTENT_RESERVE_IN },
  { opcode: Opcode.PERSISTENT_RESERVE_OUT },
];

/** Per state: the commands that still run, and the answer for the rest. */
const ACCESS_RULES: Readonly<Record<AluaState, { readonly allowed: readonly CommandMatch[] | 'all'; readonly failure: FailureReason | null }>> = {
  [AluaState.ACTIVE_OPTIMIZED]: { allowed: 'all', failure: null },
  [AluaState.ACTIVE_NON_OPTIMIZED]: { allowed: 'all', failure: null },
  [AluaState.TRANSITIONING]: { allowed: ALWAYS, failure: 'alua-transitioning' },
  [AluaState.STANDBY]: { allowed: STANDBY_ALLOWED, failure: 'alua-standby' },
  [AluaState.UNAVAILABLE]: { allowed: UNAVAILABLE_ALLOWED, failure: 'alua-unavailable' },
};

function matches(list: readonly CommandMatch[], cdb: Buffer): boolean {
  const opcode = cdb[0] ?? 0;
  const sa = (cdb[1] ?? 0) & 0x1f;
  return list.some((m) => m.opcode === opcode && (m.serviceAction === undefined || m.serviceAction === sa) && (!m.when || m.when(cdb)));
}

/** Whether a command works in every state (so also on a moving or transitioning LU). */
export function runsInEveryState(cdb: Buffer): boolean {
  return matches(ALWAYS, cdb);
}

/** What the gate decided: run the command, answer BUSY, or fail with a reason. */
export type AccessDecision = 'run' | 'busy' | FailureReason;

/** What the gate needs of a logical unit. */
export interface AccessSubject {
  readonly availability: LuAvailability;
}

/** The access state of a port's group for one LU, availability included. */
export function effectiveState(alua: AluaGroups, lu: AccessSubject, groupId: number): AluaState {
  if (lu.availability === LuAvailability.TRANSITIONING && groupId === alua.localGroup) return AluaState.TRANSITIONING;
  return alua.state(groupId, lu);
}

/** Decide whether `cdb`, received through `relativeTargetPortId`, may run on `lu`. */
export function checkAccess(alua: AluaGroups, lu: AccessSubject, relativeTargetPortId: number, cdb: Buffer): AccessDecision {
  if (lu.availability === LuAvailability.MOVING) return runsInEveryState(cdb) ? 'run' : 'busy';
  const rule = ACCESS_RULES[effectiveState(alua, lu, alua.groupOfPort(relativeTargetPortId))];
  if (rule.allowed === 'all' || matches(rule.allowed, cdb)) return 'run';
  return rule.failure ?? 'run';
}

/** Whether the medium of `lu` is accessible through the port (for a copy manager reaching other LUs). */
export function mediumAccessible(alua: AluaGroups, lu: AccessSubject, relativeTargetPortId: number): boolean {
  if (lu.availability === LuAvailability.MOVING) return false;
  return ACCESS_RULES[effectiveState(alua, lu, alua.groupOfPort(relativeTargetPortId))].allowed === 'all';
}

/**
 * A LUN known to be moving but with no logical unit attached answers BUSY
 * to everything but REPORT LUNS (which describes the target, not the LUN).
 */
export function busyWhileMovingWithoutLu(cdb: Buffer): boolean {
  return (cdb[0] ?? 0) !== Opcode.REPORT_LUNS;
}
