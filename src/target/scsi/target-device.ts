/**
 * The SCSI target device: a set of logical units behind one dispatcher.
 *
 * execute() runs one command:
 *   1. look the CDB up in the opcode table;
 *   2. a LUN without a logical unit answers LOGICAL UNIT NOT SUPPORTED,
 *      except for INQUIRY, REPORT LUNS and REQUEST SENSE;
 *   3. the nexus is admitted to the LU (its first command sets POWER ON,
 *      RESET...); a pending unit attention is reported and cleared unless
 *      the command is INQUIRY, REPORT LUNS or REQUEST SENSE;
 *   3a. the access gate (alua.ts), once the opcode is known to be
 *      supported: a moving LU answers BUSY, a port group
 *      in standby / unavailable / transitioning answers NOT READY with the
 *      ALUA sense, except for the commands each state allows; a LUN marked
 *      moving with no LU answers BUSY, never LOGICAL UNIT NOT SUPPORTED;
 *   4. unsupported opcode / service action, ACA task attribute, NACA or
 *      LINK in the control byte are rejected;
 *   5. inside the nexus' task set (task attribute ordering) the LU's
 *      reservations decide whether the command is in RESERVATION CONFLICT
 *      (reservations/conflicts.ts, from the row's ReservationClass), then
 *      the row parses the CDB, the data-out is checked against what the
 *      CDB calls for and trimmed to it, and the row executes;
 *   6. failures become CHECK CONDITION with sense data in the LU's format.
 */
import { AluaGroups, AluaOptions, AluaState, busyWhileMovingWithoutLu, checkAccess, LuAvailability } from './alua';
import { CommandContext, CommandResult, CommandRow, CommandTable, DataDirection, PreparedCommand } from './command-table';
import { sbcCommandTable } from './commands';
import type { CopyTargetRegistry } from './copy-registry';
import { takeBytes, totalLength } from './data';
import { invalidCdbField, ScsiFailure, SenseKey } from './failures';
import type { LogicalUnit } from './logical-unit';
import { buildSense, SenseFormat, senseForFailure } from './sense';
import { Leave, TaskOrder } from './task-order';
import { TMF_HANDLERS, TmfResponse } from './task-management';
import { ItNexus, ScsiCommand, ScsiResponse, ScsiStatus, TaskAttribute, TaskManagementFunction } from './types';
import { UnitAttention, UnitAttentionCondition } from './ua';

export const MAX_LUN = 16383;

/** What the dispatcher learnt about a command before it failed. */
interface Progress {
  /** Data-out bytes the CDB calls for, once the CDB has been parsed. */
  dataOutExpected?: number;
}

export interface ScsiTargetDeviceOptions {
  /** Target name (e.g. the iSCSI target IQN), for logs. */
  readonly name: string;
  readonly luns: ReadonlyMap<number, LogicalUnit>;
  /** Without `alua`: the id of the one target port group (default 1). */
  readonly targetPortGroup?: number;
  /** Target port groups of the pair and this node's group (default: one active/optimized group). */
  readonly alua?: AluaOptions;
  /** LUs of other targets an EXTENDED COPY may name (this device's own LUs are always reachable). */
  readonly copyTargets?: CopyTargetRegistry;
  /** The command set (defaults to sbcCommandTable()). */
  readonly commands?: CommandTable;
  /** Called with any error that is not a SCSI failure (reported as INTERNAL TARGET FAILURE). */
  readonly onInternalError?: (err: unknown, cmd: ScsiCommand) => void;
  /**
   * Abort every task of these I_T nexuses (ItNexus.key) on this LUN, as
   * ABORT TASK SET from each would, and resolve once they are gone (their
   * responses are never sent). PERSISTENT RESERVE OUT / PREEMPT AND ABORT
   * calls it for the preempted nexuses before it completes; the requester's
   * own nexus is never listed. The device cannot abort transport tasks
   * itself: without this hook their tasks simply run to completion.
   */
  readonly onAbortTasks?: AbortTasksHandler;
}

/** What ScsiTargetDevice.quiesce() found. */
export interface QuiesceOutcome {
  /** Every accepted command was answered within the bound. */
  readonly drained: boolean;
  /** Commands still running when it resolved (0 when drained). */
  readonly inFlight: number;
  readonly ms: number;
}

/** Aborts the tasks of I_T nexuses on a LUN: see ScsiTargetDeviceOptions.onAbortTasks. */
export type AbortTasksHandler = (lun: number, nexusKeys: readonly string[]) => void | Promise<void>;

function checkLun(lun: number): void {
  if (!Number.isInteger(lun) || lun < 0 || lun > MAX_LUN) throw new RangeError(`LUN must be 0..${MAX_LUN}, not ${lun}`);
}

/** NACA (bit 2) and LINK (bit 0) of the control byte are not supported. */
export function checkControlByte(cdb: Buffer, cdbLength: number): void {
  const control = cdb[cdbLength - 1]!;
  if (control & 0x04) throw invalidCdbField(cdbLength - 1, 2);
  if (control & 0x01) throw invalidCdbField(cdbLength - 1, 0);
}

export class ScsiTargetDevice {
  readonly name: string;
  readonly targetPortGroup: number | undefined;
  readonly commands: CommandTable;
  readonly alua: AluaGroups;
  readonly copyTargets: CopyTargetRegistry | undefined;
  private readonly units = new Map<number, LogicalUnit>();
  /** LUNs known to be moving that have no logical unit attached: BUSY, never LOGICAL UNIT NOT SUPPORTED. */
  private readonly movingLuns = new Set<number>();
  private readonly onInternalError: ((err: unknown, cmd: ScsiCommand) => void) | undefined;
  private onAbortTasks: AbortTasksHandler | undefined;

  constructor(options: ScsiTargetDeviceOptions) {
    this.name = options.name;
    this.targetPortGroup = options.targetPortGroup;
    this.commands = options.commands ?? sbcCommandTable();
    this.alua = options.alua ? new AluaGroups(options.alua) : AluaGroups.single(options.targetPortGroup ?? 1);
    this.copyTargets = options.copyTargets;
    this.onInternalError = options.onInternalError;
    this.onAbortTasks = options.onAbortTasks;
    for (const [lun, lu] of options.luns) {
      checkLun(lun);
      this.units.set(lun, lu);
    }
  }

  /** LUN numbers, ascending. */
  luns(): number[] {
    return [...this.units.keys()].sort((a, b) => a - b);
  }

  logicalUnit(lun: number): LogicalUnit | undefined {
    return this.units.get(lun);
  }

  logicalUnits(): LogicalUnit[] {
    return this.luns().map((lun) => this.units.get(lun)!);
  }

  /** Add a logical unit; the others report REPORTED LUNS DATA HAS CHANGED. */
  addLun(lun: number, lu: LogicalUnit): void {
    checkLun(lun);
    if (this.units.has(lun)) throw new Error(`LUN ${lun} already exists`);
    for (const other of this.units.values()) other.establishUnitAttention(UnitAttention.REPORTED_LUNS_DATA_HAS_CHANGED);
    this.units.set(lun, lu);
    this.movingLuns.delete(lun);
  }

  /** Remove a logical unit; the others report REPORTED LUNS DATA HAS CHANGED. */
  removeLun(lun: number): LogicalUnit | undefined {
    const lu = this.units.get(lun);
    if (!lu) return undefined;
    this.units.delete(lun);
    if (lu.availability === LuAvailability.MOVING) this.movingLuns.add(lun);
    for (const other of this.units.values()) other.establishUnitAttention(UnitAttention.REPORTED_LUNS_DATA_HAS_CHANGED);
    return lu;
  }

  /* ---------------- ALUA and availability: the failover code's API ---------------- */

  /**
   * The one place ALUA states change: a target port group's state for every
   * logical unit (clearing per-LU states of that group), or for the LU at
   * `lun` only. Each LU whose state changed reports ASYMMETRIC ACCESS STATE
   * CHANGED to every nexus.
   */
  setAluaState(groupId: number, state: AluaState, options: { readonly lun?: number } = {}): void {
    const only = options.lun === undefined ? undefined : this.units.get(options.lun);
    if (options.lun !== undefined && !only) throw new RangeError(`no logical unit at LUN ${options.lun}`);
    for (const lu of this.alua.setState(groupId, state, this.logicalUnits(), only)) {
      lu.establishUnitAttention(UnitAttention.ASYMMETRIC_ACCESS_STATE_CHANGED);
    }
  }

  /**
   * Availability of the LU at `lun` (see alua.ts). A LUN with no LU can be
   * marked MOVING (it is on its way in, or was removed while moving): it
   * answers BUSY until addLun() or ONLINE; never LOGICAL UNIT NOT SUPPORTED.
   */
  setAvailability(lun: number, availability: LuAvailability): void {
    checkLun(lun);
    const lu = this.units.get(lun);
    if (lu) {
      lu.setAvailability(availability);
      if (availability !== LuAvailability.MOVING) this.movingLuns.delete(lun);
      return;
    }
    if (availability === LuAvailability.MOVING) this.movingLuns.add(lun);
    else if (availability === LuAvailability.ONLINE) this.movingLuns.delete(lun);
    else throw new RangeError(`LUN ${lun} has no logical unit to be ${availability}`);
  }

  /**
   * Quiesce for a move: every logical unit (or those at `luns`) becomes
   * MOVING, so new commands get BUSY (retryable, never a device-loss
   * answer), and this resolves once every command the LUs had accepted has
   * been answered, or when `timeoutMs` passes first (drained: false, with
   * what is still running; the LUs stay MOVING: resume() or go on).
   */
  async quiesce(options: { readonly timeoutMs: number; readonly luns?: readonly number[] }): Promise<QuiesceOutcome> {
    const t0 = performance.now();
    const luns = options.luns ?? this.luns();
    for (const lun of luns) this.setAvailability(lun, LuAvailability.MOVING);
    const deadline = t0 + options.timeoutMs;
    for (const lun of luns) {
      const lu = this.units.get(lun);
      if (lu) await lu.inFlight.idle(Math.max(0, deadline - performance.now()));
    }
    const inFlight = luns.reduce((n, lun) => n + (this.units.get(lun)?.inFlight.size ?? 0), 0);
    return { drained: inFlight === 0, inFlight, ms: performance.now() - t0 };
  }

  /** Undo quiesce(): the LUs (or those at `luns`) take commands again. */
  resume(luns: readonly number[] = this.luns()): void {
    for (const lun of luns) this.setAvailability(lun, LuAvailability.ONLINE);
  }

  /** The LUN is moving: BUSY for media commands, identity and REPORT LUNS unchanged. */
  markMoving(lun: number): void {
    this.setAvailability(lun, LuAvailability.MOVING);
  }

  /** Whether the LUN is marked moving (with or without a logical unit). */
  isMoving(lun: number): boolean {
    return this.movingLuns.has(lun) || this.units.get(lun)?.availability === LuAvailability.MOVING;
  }

  /**
   * How many data-out bytes the command's CDB calls for, without running it:
   * a transport solicits no more than this, so an initiator's expected
   * length cannot make the target buffer more than the command can use.
   * 0 when the command has no data-out or will fail before using any.
   */
  dataOutLength(cmd: Pick<ScsiCommand, 'nexus' | 'lun' | 'cdb'> & Partial<ScsiCommand>): number {
    const lu = this.units.get(cmd.lun) ?? null;
    const row = this.commands.lookup(cmd.cdb).row;
    if (!lu || !row || row.direction !== DataDirection.OUT || cmd.cdb.length < row.cdbLength) return 0;
    try {
      const full: ScsiCommand = { taskAttribute: TaskAttribute.SIMPLE, expectedDataTransferLength: 0, dataOut: null, ...cmd };
      return row.prepare(cmd.cdb, { device: this, cmd: full, lu }).dataOutLength;
    } catch {
      return 0;
    }
  }

  /**
   * Execute one command on any LUN number, present or not. Never rejects.
   *
   * Not an async function: the checks up to the command's own work run
   * synchronously, and a command whose task set and reservations let it start
   * at once (the common case) costs one promise reaction on top of its own
   * I/O, instead of an async frame per layer (see docs/performance.md).
   */
  execute(cmd: ScsiCommand): Promise<ScsiResponse> {
    const lu = this.units.get(cmd.lun) ?? null;
    const format = lu ? lu.senseFormat : SenseFormat.FIXED;
    const progress: Progress = {};
    let row: CommandRow;
    let ctx: CommandContext;
    try {
      const found = this.commands.lookup(cmd.cdb);
      const maybeRow = found.row;
      if (!lu && this.movingLuns.has(cmd.lun) && busyWhileMovingWithoutLu(cmd.cdb)) return Promise.resolve(BUSY);
      if (!lu && !maybeRow?.allowedWithoutLun) throw new ScsiFailure('lun-not-supported');
      if (lu) {
        lu.unitAttentions.admit(cmd.nexus.key);
        lu.reservations.observe(cmd.nexus);
        if (!maybeRow?.allowedWithPendingUa) {
          const ua = lu.unitAttentions.take(cmd.nexus.key);
          if (ua) return Promise.resolve(unitAttentionResponse(ua, format));
        }
      }
      if (!maybeRow) throw found.failure;
      row = maybeRow;
      if (lu) {
        const access = checkAccess(this.alua, lu, cmd.nexus.relativeTargetPortId, cmd.cdb);
        if (access === 'busy') return Promise.resolve(BUSY);
        if (access !== 'run') throw new ScsiFailure(access);
      }
      if (cmd.cdb.length < row.cdbLength) throw invalidCdbField(0, 7);
      if (cmd.taskAttribute === TaskAttribute.ACA) throw new ScsiFailure('invalid-message-error');
      checkControlByte(cmd.cdb, row.cdbLength);
      ctx = { device: this, cmd, lu };
      if (!lu) return this.settle(this.run(row, ctx, progress), cmd, format, progress, null);
    } catch (err) {
      return Promise.resolve(this.failureResponse(err, cmd, format, progress));
    }
    // Past the gate: a quiesce waits for this command's answer.
    lu.inFlight.enter();
    const taskSet = lu.taskSet(cmd.nexus.key);
    const leave = taskSet.tryEnter(cmd.taskAttribute);
    if (leave === null || !lu.reservations.ready) return this.admitThenRun(row, ctx, progress, lu, taskSet, leave, format);
    return this.runAdmitted(row, ctx, progress, lu, leave, format);
  }

  /** The slow start: wait for the task set (task attribute ordering) and for the reservations to be loaded. */
  private async admitThenRun(
    row: CommandRow,
    ctx: CommandContext,
    progress: Progress,
    lu: LogicalUnit,
    taskSet: TaskOrder,
    entered: Leave | null,
    format: SenseFormat,
  ): Promise<ScsiResponse> {
    let leave = entered;
    try {
      leave ??= await taskSet.enter(ctx.cmd.taskAttribute);
      if (!lu.reservations.ready) await lu.reservations.whenReady();
    } catch (err) {
      leave?.();
      lu.inFlight.leave();
      return this.failureResponse(err, ctx.cmd, format, progress);
    }
    return this.runAdmitted(row, ctx, progress, lu, leave, format);
  }

  /** Run a command inside its task set; leaves the task set and the in-flight count once its response is built. */
  private runAdmitted(row: CommandRow, ctx: CommandContext, progress: Progress, lu: LogicalUnit, leave: Leave, format: SenseFormat): Promise<ScsiResponse> {
    let outcome: Promise<CommandResult> | CommandResult;
    try {
      if (lu.reservations.conflicts(ctx.cmd.nexus, row.reservation, ctx.cmd.cdb)) {
        leave();
        lu.inFlight.leave();
        return Promise.resolve(RESERVATION_CONFLICT);
      }
      outcome = this.run(row, ctx, progress);
    } catch (err) {
      leave();
      lu.inFlight.leave();
      return Promise.resolve(this.failureResponse(err, ctx.cmd, format, progress));
    }
    return this.settle(outcome, ctx.cmd, format, progress, () => {
      leave();
      lu.inFlight.leave();
    });
  }

  /** The response for a command's outcome; `done` runs once it is known (before the response is handed on). */
  private settle(
    outcome: Promise<CommandResult> | CommandResult,
    cmd: ScsiCommand,
    format: SenseFormat,
    progress: Progress,
    done: (() => void) | null,
  ): Promise<ScsiResponse> {
    if (!isPromise(outcome)) {
      done?.();
      return Promise.resolve(goodResponse(outcome, progress));
    }
    return outcome.then(
      (result) => {
        done?.();
        return goodResponse(result, progress);
      },
      (err: unknown) => {
        done?.();
        return this.failureResponse(err, cmd, format, progress);
      },
    );
  }

  /** Parse, check the data-out against the CDB, execute. Throws synchronously or returns the row's (maybe pending) result. */
  private run(row: CommandRow, ctx: CommandContext, progress: Progress): Promise<CommandResult> | CommandResult {
    let prepared: PreparedCommand = row.prepare(ctx.cmd.cdb, ctx);
    let dataOut: readonly Buffer[] = NO_DATA;
    if (row.direction === DataDirection.OUT) {
      const expected = prepared.dataOutLength;
      progress.dataOutExpected = expected;
      const supplied = ctx.cmd.dataOut ?? NO_DATA;
      const suppliedBytes = totalLength(supplied);
      if (suppliedBytes < expected) {
        // Less data than the CDB asks for: do what the data allows (whole
        // blocks of a media write), or nothing and say why.
        const shorter = prepared.shorten?.(suppliedBytes) ?? null;
        if (!shorter) throw new ScsiFailure('invalid-field-in-command-iu');
        prepared = shorter;
      }
      dataOut = takeBytes(supplied, prepared.dataOutLength);
    }
    return prepared.execute(dataOut);
  }

  private failureResponse(err: unknown, cmd: ScsiCommand, format: SenseFormat, progress: Progress): ScsiResponse {
    let failure: ScsiFailure;
    if (err instanceof ScsiFailure) {
      failure = err;
    } else {
      this.onInternalError?.(err, cmd);
      failure = new ScsiFailure('internal-target-failure');
    }
    return {
      status: ScsiStatus.CHECK_CONDITION,
      sense: senseForFailure(failure.reason, failure.detail, format),
      dataIn: null,
      ...(progress.dataOutExpected === undefined ? {} : { dataOutExpected: progress.dataOutExpected }),
    };
  }

  /**
   * Perform a task management function's device-side effects. `lun` is
   * ignored by the target-wide functions.
   */
  taskManagement(fn: TaskManagementFunction, _nexus: ItNexus, lun: number): TmfResponse {
    const handler = TMF_HANDLERS[fn];
    if (!handler) return TmfResponse.NOT_SUPPORTED;
    return handler({ lu: this.units.get(lun), all: this.logicalUnits() });
  }

  /**
   * Abort the tasks of other I_T nexuses on a LUN through the transport's
   * onAbortTasks hook (PREEMPT AND ABORT); a no-op without the hook.
   */
  async abortTasks(lun: number, nexusKeys: readonly string[]): Promise<void> {
    if (nexusKeys.length > 0) await this.onAbortTasks?.(lun, nexusKeys);
  }

  /** Install (or remove) the onAbortTasks hook after construction, e.g. when a transport starts serving the device. */
  setAbortTasksHandler(handler: AbortTasksHandler | undefined): void {
    this.onAbortTasks = handler;
  }

  /** The I_T nexus is gone (session ended): forget its unit attentions and task sets, release its SCSI-2 reservations. */
  nexusLost(nexus: ItNexus): void {
    for (const lu of this.units.values()) lu.nexusLost(nexus.key);
  }
}

const NO_DATA: readonly Buffer[] = [];

function isPromise<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

const BUSY: ScsiResponse = { status: ScsiStatus.BUSY, sense: null, dataIn: null };
const RESERVATION_CONFLICT: ScsiResponse = { status: ScsiStatus.RESERVATION_CONFLICT, sense: null, dataIn: null };

function goodResponse(result: CommandResult, progress: Progress): ScsiResponse {
  // Built without a conditional spread: this runs for every command.
  const status = result.status ?? ScsiStatus.GOOD;
  const dataIn = result.dataIn ?? null;
  if (progress.dataOutExpected === undefined) return { status, sense: null, dataIn, release: result.release };
  return { status, sense: null, dataIn, release: result.release, dataOutExpected: progress.dataOutExpected };
}

function unitAttentionResponse(ua: UnitAttentionCondition, format: SenseFormat): ScsiResponse {
  return {
    status: ScsiStatus.CHECK_CONDITION,
    sense: buildSense({ key: SenseKey.UNIT_ATTENTION, asc: ua.asc, ascq: ua.ascq }, format),
    dataIn: null,
  };
}
