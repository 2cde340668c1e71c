/**
 * An iSCSI session in full feature phase: the CmdSN window, the task table,
 * data-out gathering with R2Ts, Data-In and SCSI Response generation, task
 * management, text (SendTargets) and NOP handling. It knows nothing of
 * sockets: it sends PDUs through a PduSink (the connection).
 */
import { Logger } from 'pino';
import {
  BHS_LENGTH,
  IscsiTaskAttr,
  RESERVED_TAG,
  RejectReason,
  ScsiServiceResponse,
  TmfFunction,
  TmfResponse,
} from './constants';
import {
  DataOutPdu,
  NopOutPdu,
  ScsiCommandPdu,
  SequenceFields,
  TaskMgmtPdu,
  TextPdu,
  encodeDataIn,
  encodeNopIn,
  encodeR2T,
  encodeReject,
  encodeScsiResponse,
  encodeTaskMgmtResponse,
  encodeTextResponse,
  joinData,
} from './pdu';
import { IntMap } from '../../block';
import { serialAdd, serialInWindow, serialLt } from './serial';
import { DataOutError, Task, TaskState } from './task';
import { DeviceTmfOutcome, IscsiTarget } from './target-port';
import { ItNexus, ScsiCommand, ScsiResponse, ScsiStatus, SenseKey, TaskAttribute, TaskManagementFunction, buildSense } from '../scsi';
import { SendTargetsDirectory, buildSendTargetsResponse } from './discovery';

/** Operational parameters of the session that the data path uses. */
export interface SessionDataParams {
  readonly initialR2T: boolean;
  readonly immediateData: boolean;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly maxOutstandingR2T: number;
}

/** What a session needs from its connection. */
export interface PduSink {
  /**
   * Queue a PDU for sending (header digest, padding and data digest are added
   * by the sink). `onSent` runs once the socket no longer needs `data`
   * (taken by the kernel, or dropped with the connection).
   */
  send(bhs: Buffer, data?: readonly Buffer[], dataLength?: number, onSent?: () => void): void;
  /** StatSN for a PDU that consumes one. */
  takeStatSN(): number;
  /** StatSN for a PDU that does not consume one (R2T, NOP-In ping, Data-In without status). */
  peekStatSN(): number;
  /** The initiator's MaxRecvDataSegmentLength: the largest data segment we may send. */
  readonly maxSendDataSegmentLength: number;
  /** Address and port the initiator connected to (for SendTargets). */
  readonly localAddress: string;
  readonly localPort: number;
  /** Drop the connection after a protocol error. */
  fail(reason: string): void;
  /** Called when the number of active tasks changes (for flow control). */
  tasksChanged(): void;
  /** Pings: a NOP-Out answering our NOP-In arrived. */
  pingAnswered(ttt: number): void;
}

export const SessionType = { NORMAL: 'Normal', DISCOVERY: 'Discovery' } as const;
export type SessionType = (typeof SessionType)[keyof typeof SessionType];

const TASK_ATTRIBUTE: Readonly<Record<number, TaskAttribute>> = {
  [IscsiTaskAttr.UNTAGGED]: TaskAttribute.SIMPLE,
  [IscsiTaskAttr.SIMPLE]: TaskAttribute.SIMPLE,
  [IscsiTaskAttr.ORDERED]: TaskAttribute.ORDERED,
  [IscsiTaskAttr.HEAD_OF_QUEUE]: TaskAttribute.HEAD_OF_QUEUE,
  [IscsiTaskAttr.ACA]: TaskAttribute.ACA,
};

/** iSCSI TMF function → SCSI device function, and whether it acts on one LUN. */
const TMF_TABLE: Readonly<Record<number, { fn: TaskManagementFunction; perLun: boolean; scope: 'task' | 'session-lun' | 'all-lun' | 'target' } | undefined>> = {
  [TmfFunction.ABORT_TASK]: { fn: TaskManagementFunction.ABORT_TASK, perLun: true, scope: 'task' },
  [TmfFunction.ABORT_TASK_SET]: { fn: TaskManagementFunction.ABORT_TASK_SET, perLun: true, scope: 'session-lun' },
  [TmfFunction.CLEAR_ACA]: { fn: TaskManagementFunction.CLEAR_ACA, perLun: true, scope: 'session-lun' },
  [TmfFunction.CLEAR_TASK_SET]: { fn: TaskManagementFunction.CLEAR_TASK_SET, perLun: true, scope: 'all-lun' },
  [TmfFunction.LOGICAL_UNIT_RESET]: { fn: TaskManagementFunction.LOGICAL_UNIT_RESET, perLun: true, scope: 'all-lun' },
  [TmfFunction.TARGET_WARM_RESET]: { fn: TaskManagementFunction.TARGET_WARM_RESET, perLun: false, scope: 'target' },
  [TmfFunction.TARGET_COLD_RESET]: { fn: TaskManagementFunction.TARGET_COLD_RESET, perLun: false, scope: 'target' },
};

const DEVICE_TMF_RESPONSE: Readonly<Record<string, number>> = {
  [DeviceTmfOutcome.COMPLETE]: TmfResponse.FUNCTION_COMPLETE,
  [DeviceTmfOutcome.LUN_DOES_NOT_EXIST]: TmfResponse.LUN_DOES_NOT_EXIST,
  [DeviceTmfOutcome.NOT_SUPPORTED]: TmfResponse.FUNCTION_NOT_SUPPORTED,
};

/** Sessions of one target that can see each other's tasks (for LUN and target resets). */
export interface SessionGroup {
  sessionsOf(targetName: string): Iterable<Session>;
  /** Close every session of a target once queued output is written (TARGET COLD RESET). */
  dropSessionsOf(targetName: string): void;
}

export interface SessionInit {
  readonly tsih: number;
  readonly isid: Buffer;
  readonly initiatorName: string;
  readonly type: SessionType;
  readonly target: IscsiTarget | null;
  readonly nexus: ItNexus | null;
  readonly params: SessionDataParams;
  readonly expCmdSN: number;
  readonly cmdWindow: number;
  /** Cap on solicited data-out bytes held per session (default 16 MiB). */
  readonly dataOutBudgetBytes?: number;
  readonly directory: SendTargetsDirectory;
  readonly group: SessionGroup;
  readonly log: Logger;
}

interface TextContinuation {
  readonly ttt: number;
  readonly remaining: Buffer;
}

export class Session {
  readonly tsih: number;
  readonly isid: Buffer;
  readonly initiatorName: string;
  readonly type: SessionType;
  readonly target: IscsiTarget | null;
  readonly nexus: ItNexus | null;
  readonly params: SessionDataParams;
  readonly log: Logger;
  private readonly directory: SendTargetsDirectory;
  private readonly group: SessionGroup;
  private readonly cmdWindow: number;
  private sink: PduSink | null = null;

  private expCmdSN: number;
  /** Highest MaxCmdSN told to the initiator. */
  private advertisedMax: number | null = null;
  /** Non-immediate PDUs that arrived ahead of ExpCmdSN, by CmdSN. */
  private readonly pendingBySN = new Map<number, () => void>();
  /** CmdSNs aborted by ABORT TASK before they arrived. */
  private readonly abortedSNs = new Set<number>();
  readonly tasks = new IntMap<Task>();
  private nextTtt = 1;
  /** Solicited data-out bytes held by unfinished tasks, and the cap on them. */
  private chargedBytes = 0;
  private readonly dataOutBudget: number;
  private readonly awaitingBudget: Task[] = [];
  private textContinuation: TextContinuation | null = null;
  private closed = false;

  constructor(init: SessionInit) {
    this.tsih = init.tsih;
    this.isid = init.isid;
    this.initiatorName = init.initiatorName;
    this.type = init.type;
    this.target = init.target;
    this.nexus = init.nexus;
    this.params = init.params;
    this.expCmdSN = init.expCmdSN;
    this.cmdWindow = init.cmdWindow;
    this.dataOutBudget = init.dataOutBudgetBytes ?? DEFAULT_DATA_OUT_BUDGET;
    this.directory = init.directory;
    this.group = init.group;
    this.log = init.log;
  }

  attach(sink: PduSink): void {
    this.sink = sink;
  }

  get activeTasks(): number {
    return this.tasks.size;
  }

  /** Sequence numbers for a response; `consume` takes a new StatSN. */
  seq(consume: boolean): SequenceFields {
    const sink = this.sink!;
    const maxCmdSN = this.currentMaxCmdSN();
    return { statSN: consume ? sink.takeStatSN() : sink.peekStatSN(), expCmdSN: this.expCmdSN, maxCmdSN };
  }

  /**
   * ExpCmdSN and MaxCmdSN to advertise. The window shrinks by the commands
   * queued or running, which bounds memory per session; MaxCmdSN never moves
   * backwards.
   */
  window(): { expCmdSN: number; maxCmdSN: number } {
    return { expCmdSN: this.expCmdSN, maxCmdSN: this.currentMaxCmdSN() };
  }

  private currentMaxCmdSN(): number {
    const free = Math.max(0, this.cmdWindow - this.tasks.size - this.pendingBySN.size);
    const max = serialAdd(this.expCmdSN, free - 1);
    if (this.advertisedMax === null || serialLt(this.advertisedMax, max)) this.advertisedMax = max;
    return this.advertisedMax;
  }

  /**
   * Deliver a CmdSN-bearing PDU in CmdSN order. Immediate PDUs go at once;
   * others wait for their turn; ones outside the window are dropped as RFC
   * 7143 §4.2.2.1 requires.
   */
  ordered(cmdSN: number, immediate: boolean, deliver: () => void): void {
    if (immediate) {
      deliver();
      return;
    }
    const { maxCmdSN } = this.windowForAdmission();
    // Checked first: a closed window (MaxCmdSN = ExpCmdSN - 1) admits not even CmdSN = ExpCmdSN.
    if (!serialInWindow(cmdSN, this.expCmdSN, maxCmdSN) || this.pendingBySN.has(cmdSN)) {
      this.log.warn({ cmdSN, expCmdSN: this.expCmdSN, maxCmdSN }, 'command outside the CmdSN window dropped');
      return;
    }
    if (cmdSN === this.expCmdSN) {
      this.expCmdSN = serialAdd(this.expCmdSN, 1);
      this.runIfNotAborted(cmdSN, deliver);
      for (let next = this.pendingBySN.get(this.expCmdSN); next; next = this.pendingBySN.get(this.expCmdSN)) {
        const sn = this.expCmdSN;
        this.pendingBySN.delete(sn);
        this.expCmdSN = serialAdd(this.expCmdSN, 1);
        this.runIfNotAborted(sn, next);
      }
      return;
    }
    this.pendingBySN.set(cmdSN, deliver);
  }

  /**
   * A SCSI Command in CmdSN order: what ordered() does, without a closure
   * per command when it is simply the next one expected (the common case).
   */
  orderedScsiCommand(pdu: ScsiCommandPdu): void {
    if (
      !pdu.immediate &&
      pdu.cmdSN === this.expCmdSN &&
      this.pendingBySN.size === 0 &&
      this.abortedSNs.size === 0 &&
      serialInWindow(pdu.cmdSN, this.expCmdSN, this.advertisedMax ?? this.window().maxCmdSN)
    ) {
      this.expCmdSN = serialAdd(this.expCmdSN, 1);
      this.onScsiCommand(pdu);
      return;
    }
    this.ordered(pdu.cmdSN, pdu.immediate, () => this.onScsiCommand(pdu));
  }

  /** Commands are admitted up to the MaxCmdSN we last advertised. */
  private windowForAdmission(): { maxCmdSN: number } {
    return { maxCmdSN: this.advertisedMax ?? this.window().maxCmdSN };
  }

  private runIfNotAborted(cmdSN: number, deliver: () => void): void {
    if (this.abortedSNs.delete(cmdSN)) return;
    deliver();
  }

  /* ---------------- SCSI commands ---------------- */

  onScsiCommand(pdu: ScsiCommandPdu): void {
    const sink = this.sink!;
    if (this.type !== SessionType.NORMAL || !this.target || !this.nexus) {
      this.reject(pdu.raw.bhs, RejectReason.PROTOCOL_ERROR);
      return;
    }
    if (pdu.immediate && this.tasks.size >= this.cmdWindow) {
      // Immediate commands bypass the CmdSN window; they must not bypass the memory bound.
      this.reject(pdu.raw.bhs, RejectReason.IMMEDIATE_COMMAND_REJECT);
      return;
    }
    if (this.tasks.has(pdu.itt)) {
      this.reject(pdu.raw.bhs, RejectReason.TASK_IN_PROGRESS);
      return;
    }
    if (pdu.read && pdu.write) {
      // Bidirectional commands are not supported by any command we implement.
      this.reject(pdu.raw.bhs, RejectReason.COMMAND_NOT_SUPPORTED);
      return;
    }
    if (pdu.dataLength > 0 && !this.params.immediateData) {
      sink.fail('immediate data sent although ImmediateData=No');
      return;
    }
    if (pdu.dataLength > 0 && (!pdu.write || pdu.dataLength > pdu.edtl || pdu.dataLength > this.params.firstBurstLength)) {
      this.reject(pdu.raw.bhs, RejectReason.PROTOCOL_ERROR);
      return;
    }
    const task = new Task(pdu);
    this.tasks.set(task.itt, task);
    if (task.isWrite && task.edtl > 0) {
      // Only data still to come needs the cap (a write whose data came whole as immediate data skips the second parse).
      const usable = pdu.dataLength < task.edtl ? this.target.device.dataOutLength?.({ nexus: this.nexus, lun: task.lun, cdb: task.cdb }) : undefined;
      if (usable !== undefined) task.wanted = Math.min(task.edtl, usable);
      task.unsolicitedLimit = this.params.initialR2T ? pdu.dataLength : Math.min(this.params.firstBurstLength, task.edtl);
      // F bit on the command means no unsolicited Data-Out follows.
      task.unsolicitedDone = pdu.final || task.unsolicitedLimit <= pdu.dataLength;
      if (pdu.dataLength > 0) {
        const savedDone = task.unsolicitedDone;
        task.unsolicitedDone = false;
        try {
          task.acceptData(0, pdu.raw.data, pdu.dataLength, RESERVED_TAG);
        } catch (err) {
          this.tasks.delete(task.itt);
          sink.fail((err as Error).message);
          return;
        }
        task.unsolicitedDone = savedDone;
      }
      task.nextSolicitOffset = task.unsolicitedDone ? task.received : task.unsolicitedLimit;
      if (task.unsolicitedDone) this.solicit(task);
    }
    if (task.dataComplete) this.execute(task);
  }

  onDataOut(pdu: DataOutPdu): void {
    const task = this.tasks.get(pdu.itt);
    if (!task || task.state !== TaskState.RECEIVING) {
      // The task may have been aborted while data was in flight.
      this.log.debug({ itt: pdu.itt }, 'data-out for a task that is not receiving; discarded');
      return;
    }
    if (task.aborted) return;
    let finished;
    try {
      finished = task.acceptData(pdu.bufferOffset, pdu.raw.data, pdu.dataLength, pdu.ttt, pdu.dataSN);
    } catch (err) {
      if (err instanceof DataOutError) {
        // A broken data sequence (DataSN, offset, length) fails the command
        // and nothing is written; later Data-Out for it is discarded. The
        // connection and the other commands on it carry on.
        this.log.warn({ itt: pdu.itt, err: err.message }, 'bad data-out; command failed');
        this.finish(task);
        this.sendResponse(task, { status: ScsiStatus.CHECK_CONDITION, sense: DATA_PHASE_ERROR_SENSE, dataIn: null }, NO_RESIDUAL);
        return;
      }
      throw err;
    }
    if (pdu.ttt === RESERVED_TAG && (pdu.final || task.received >= task.unsolicitedLimit)) {
      task.unsolicitedDone = true;
      // The burst may end (F bit) short of FirstBurstLength: solicit from where it ended.
      // No R2T has been sent yet, so nothing beyond `received` is outstanding.
      task.nextSolicitOffset = task.received;
    }
    if (task.dataComplete) {
      this.execute(task);
      return;
    }
    if (finished || task.unsolicitedDone) this.solicit(task);
  }

  /**
   * Send R2Ts for the rest of the data, keeping at most MaxOutstandingR2T
   * open, and no more solicited data held by the session's unfinished tasks
   * than its budget (one burst always goes out when nothing is held, so every
   * task makes progress). Tasks over budget wait in arrival order.
   */
  private solicit(task: Task): void {
    const sink = this.sink!;
    while (task.r2ts.size < this.params.maxOutstandingR2T && task.nextSolicitOffset < task.wanted) {
      const length = Math.min(this.params.maxBurstLength, task.wanted - task.nextSolicitOffset);
      if (this.chargedBytes > 0 && this.chargedBytes + length > this.dataOutBudget) {
        if (!this.awaitingBudget.includes(task)) this.awaitingBudget.push(task);
        return;
      }
      this.chargedBytes += length;
      task.charged += length;
      const ttt = this.allocateTtt();
      const r2t = { ttt, r2tSN: task.nextR2TSN, offset: task.nextSolicitOffset, length, received: 0, nextDataSN: 0 };
      task.r2ts.set(ttt, r2t);
      task.nextR2TSN++;
      task.nextSolicitOffset += length;
      sink.send(
        encodeR2T({ ...this.seq(false), itt: task.itt, lun: task.lunField, ttt, r2tSN: r2t.r2tSN, bufferOffset: r2t.offset, desiredLength: length }),
      );
    }
  }

  private allocateTtt(): number {
    const ttt = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0x7fffffff ? 1 : this.nextTtt + 1;
    return ttt;
  }

  private execute(task: Task): void {
    task.advance(TaskState.EXECUTING);
    const cmd: ScsiCommand = {
      nexus: this.nexus!,
      lun: task.lun,
      cdb: task.cdb,
      taskAttribute: TASK_ATTRIBUTE[task.attr] ?? TaskAttribute.SIMPLE,
      expectedDataTransferLength: task.edtl,
      dataOut: task.isWrite ? task.segments : null,
    };
    task.completion = this.target!.device.execute(cmd).then(
      (resp) => this.complete(task, resp),
      (err: unknown) => {
        this.log.error({ err, itt: task.itt, opcode: task.cdb[0] }, 'SCSI device failed a command');
        this.finish(task);
        if (!task.aborted) this.sendServiceFailure(task);
      },
    );
  }

  private complete(task: Task, resp: ScsiResponse): void {
    this.finish(task);
    if (task.aborted || this.closed) {
      resp.release?.();
      return;
    }
    const edtl = task.edtl;
    if (task.isRead || (!task.isWrite && resp.dataIn)) {
      const data = resp.dataIn ?? EMPTY;
      const send = Math.min(data.length, edtl);
      const overflow = data.length > edtl;
      const underflow = data.length < edtl;
      const residualCount = overflow ? data.length - edtl : edtl - data.length;
      const piggyback = resp.sense === null && send > 0;
      if (send > 0) this.sendDataIn(task, data, send, piggyback ? resp.status : null, { overflow, underflow, residualCount }, resp.release);
      else resp.release?.();
      if (!piggyback) {
        this.sendResponse(task, resp, { overflow, underflow, residualCount });
      }
      return;
    }
    if (task.isWrite) {
      const expected = resp.dataOutExpected ?? edtl;
      const overflow = expected > edtl;
      const underflow = expected < edtl;
      this.sendResponse(task, resp, { overflow, underflow, residualCount: overflow ? expected - edtl : edtl - expected });
      return;
    }
    // No data phase: any expected length is an underflow.
    this.sendResponse(task, resp, { overflow: false, underflow: edtl > 0, residualCount: edtl });
  }

  private sendDataIn(
    task: Task,
    data: Buffer,
    length: number,
    status: number | null,
    residual: { overflow: boolean; underflow: boolean; residualCount: number },
    release: (() => void) | undefined,
  ): void {
    const sink = this.sink!;
    const mrdsl = sink.maxSendDataSegmentLength;
    const burst = this.params.maxBurstLength;
    let dataSN = 0;
    for (let offset = 0; offset < length; ) {
      const burstEnd = Math.min(length, (Math.floor(offset / burst) + 1) * burst);
      const n = Math.min(mrdsl, burstEnd - offset);
      const last = offset + n >= length;
      const endOfBurst = offset + n >= burstEnd;
      const withStatus = last && status !== null;
      // seq() without its object: this runs for every Data-In.
      const maxCmdSN = this.currentMaxCmdSN();
      sink.send(
        encodeDataIn({
          statSN: withStatus ? sink.takeStatSN() : sink.peekStatSN(),
          expCmdSN: this.expCmdSN,
          maxCmdSN,
          overflow: residual.overflow,
          underflow: residual.underflow,
          residualCount: residual.residualCount,
          itt: task.itt,
          lun: task.lunField,
          final: endOfBurst,
          status: withStatus ? status : null,
          dataSN: dataSN++,
          bufferOffset: offset,
          dataLength: n,
        }),
        [data.subarray(offset, offset + n)],
        n,
        // Writes complete in order: once the last PDU's data is taken, all of it is.
        last ? release : undefined,
      );
      offset += n;
    }
    task.dataInPdus = dataSN;
  }

  private sendResponse(task: Task, resp: ScsiResponse, residual: { overflow: boolean; underflow: boolean; residualCount: number }): void {
    let data: Buffer[] = [];
    let dataLength = 0;
    if (resp.sense) {
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(resp.sense.length, 0);
      data = [len, resp.sense];
      dataLength = 2 + resp.sense.length;
    }
    const sink = this.sink!;
    // seq(true) without its object: this runs for every command.
    const maxCmdSN = this.currentMaxCmdSN();
    sink.send(
      encodeScsiResponse({
        statSN: sink.takeStatSN(),
        expCmdSN: this.expCmdSN,
        maxCmdSN,
        overflow: residual.overflow,
        underflow: residual.underflow,
        residualCount: residual.residualCount,
        itt: task.itt,
        response: ScsiServiceResponse.COMMAND_COMPLETED,
        status: resp.status,
        expDataSN: task.dataInPdus,
        dataLength,
      }),
      data,
      dataLength,
    );
  }

  private sendServiceFailure(task: Task): void {
    this.sink!.send(
      encodeScsiResponse({
        ...this.seq(true),
        overflow: false,
        underflow: false,
        residualCount: 0,
        itt: task.itt,
        response: ScsiServiceResponse.TARGET_FAILURE,
        status: ScsiStatus.GOOD,
        expDataSN: 0,
        dataLength: 0,
      }),
    );
  }

  private finish(task: Task): void {
    if (task.state !== TaskState.DONE) task.advance(TaskState.DONE);
    if (this.tasks.get(task.itt) === task) this.tasks.delete(task.itt);
    this.release(task);
    this.sink?.tasksChanged();
  }

  /** Return a finished task's data-out budget and let waiting tasks solicit. */
  private release(task: Task): void {
    const i = this.awaitingBudget.indexOf(task);
    if (i >= 0) this.awaitingBudget.splice(i, 1);
    if (task.charged === 0) return;
    this.chargedBytes -= task.charged;
    task.charged = 0;
    while (this.awaitingBudget.length > 0 && !this.closed) {
      const next = this.awaitingBudget.shift()!;
      if (next.state !== TaskState.RECEIVING || next.aborted) continue;
      this.solicit(next);
      if (this.awaitingBudget.includes(next)) break;
    }
  }

  /* ---------------- task management ---------------- */

  async onTaskManagement(pdu: TaskMgmtPdu): Promise<void> {
    const row = TMF_TABLE[pdu.func];
    let response: number;
    if (pdu.func === TmfFunction.TASK_REASSIGN) {
      response = TmfResponse.REASSIGNMENT_NOT_SUPPORTED;
    } else if (!row || this.type !== SessionType.NORMAL || !this.target || !this.nexus) {
      response = TmfResponse.FUNCTION_NOT_SUPPORTED;
    } else if (row.perLun && !this.target.device.luns().includes(pdu.lun) && !(this.target.device.isMoving?.(pdu.lun) ?? false)) {
      // A LUN that is moving between nodes exists: never tell the initiator otherwise.
      response = TmfResponse.LUN_DOES_NOT_EXIST;
    } else {
      response = await this.performTmf(pdu, row);
    }
    if (this.closed) return;
    this.sink!.send(encodeTaskMgmtResponse({ ...this.seq(true), itt: pdu.itt, response }));
    if (pdu.func === TmfFunction.TARGET_COLD_RESET && response === TmfResponse.FUNCTION_COMPLETE) {
      // RFC 7143 §11.5.1: after a cold reset the target drops every connection of every session.
      this.group.dropSessionsOf(this.target!.name);
    }
  }

  private async performTmf(
    pdu: TaskMgmtPdu,
    row: { fn: TaskManagementFunction; scope: 'task' | 'session-lun' | 'all-lun' | 'target' },
  ): Promise<number> {
    const victims: Task[] = [];
    switch (row.scope) {
      case 'task': {
        const task = this.tasks.get(pdu.referencedTaskTag);
        if (task && task.lun === pdu.lun) {
          victims.push(task);
        } else if (!task && serialInWindow(pdu.refCmdSN, this.expCmdSN, this.windowForAdmission().maxCmdSN) && serialLt(pdu.refCmdSN, pdu.cmdSN)) {
          // Not yet received: consider it received and aborted, it must never run (RFC 7143 §11.5.1).
          this.abortedSNs.add(pdu.refCmdSN);
          return TmfResponse.FUNCTION_COMPLETE;
        } else {
          // Already completed (or never sent): nothing to abort.
          return TmfResponse.TASK_DOES_NOT_EXIST;
        }
        break;
      }
      case 'session-lun':
        for (const t of this.tasks.values()) if (t.lun === pdu.lun && t.itt !== pdu.itt) victims.push(t);
        break;
      case 'all-lun':
        for (const s of this.group.sessionsOf(this.target!.name)) {
          for (const t of s.tasks.values()) if (t.lun === pdu.lun) victims.push(t);
        }
        break;
      case 'target':
        for (const s of this.group.sessionsOf(this.target!.name)) for (const t of s.tasks.values()) victims.push(t);
        break;
    }
    await Promise.all(victims.map((t) => this.abortTask(t)));
    const outcome = this.target!.device.taskManagement(row.fn, this.nexus!, pdu.lun);
    return DEVICE_TMF_RESPONSE[outcome] ?? TmfResponse.FUNCTION_REJECTED;
  }

  /** Abort every task of this session on `lun` without responses (PREEMPT AND ABORT from another nexus). */
  async abortTasksOnLun(lun: number): Promise<void> {
    await Promise.all([...this.tasks.values()].filter((t) => t.lun === lun).map((t) => this.abortTask(t)));
  }

  /** Abort a task (ours or another session's): no response is sent for it. */
  private async abortTask(task: Task): Promise<void> {
    task.aborted = true;
    if (task.state === TaskState.RECEIVING) {
      task.advance(TaskState.DONE);
      task.r2ts.clear();
      for (const s of this.group.sessionsOf(this.target!.name)) {
        if (s.tasks.get(task.itt) === task) {
          s.tasks.delete(task.itt);
          s.release(task);
          s.sink?.tasksChanged();
        }
      }
      return;
    }
    if (task.completion) await task.completion;
  }

  /* ---------------- NOP, text, reject ---------------- */

  onNopOut(pdu: NopOutPdu): void {
    const sink = this.sink!;
    if (pdu.itt === RESERVED_TAG) {
      if (pdu.ttt !== RESERVED_TAG) sink.pingAnswered(pdu.ttt);
      return;
    }
    if (pdu.dataLength > sink.maxSendDataSegmentLength) {
      // The echo would exceed the initiator's MaxRecvDataSegmentLength; answering
      // with less than the ping data is no answer either (as LIO: protocol error).
      this.log.warn({ itt: pdu.itt, dataLength: pdu.dataLength, max: sink.maxSendDataSegmentLength }, 'NOP-Out ping data longer than the initiator can receive back');
      this.reject(pdu.raw.bhs, RejectReason.PROTOCOL_ERROR);
      return;
    }
    const data = pdu.raw.data;
    sink.send(
      encodeNopIn({ ...this.seq(true), itt: pdu.itt, ttt: RESERVED_TAG, lun: pdu.raw.bhs.subarray(8, 16), dataLength: pdu.dataLength }),
      data,
      pdu.dataLength,
    );
  }

  /** Send a NOP-In ping carrying `ttt`; the initiator must answer with a NOP-Out. */
  ping(ttt: number): void {
    this.sink!.send(encodeNopIn({ ...this.seq(false), itt: RESERVED_TAG, ttt, lun: 0, dataLength: 0 }));
  }

  onText(pdu: TextPdu): void {
    const sink = this.sink!;
    let payload: Buffer;
    if (pdu.ttt !== RESERVED_TAG) {
      const cont = this.textContinuation;
      if (!cont || cont.ttt !== pdu.ttt) {
        this.reject(pdu.raw.bhs, RejectReason.INVALID_PDU_FIELD);
        return;
      }
      payload = cont.remaining;
      this.textContinuation = null;
    } else {
      if (pdu.cont) {
        // Requests spanning PDUs are not needed by any key we answer in full feature phase.
        this.reject(pdu.raw.bhs, RejectReason.PROTOCOL_ERROR);
        return;
      }
      try {
        payload = buildSendTargetsResponse(joinData(pdu.raw), {
          sessionType: this.type,
          sessionTarget: this.target?.name ?? null,
          initiatorName: this.initiatorName,
          localAddress: sink.localAddress,
          localPort: sink.localPort,
          directory: this.directory,
        });
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'malformed text request');
        this.reject(pdu.raw.bhs, RejectReason.PROTOCOL_ERROR);
        return;
      }
    }
    const max = sink.maxSendDataSegmentLength;
    const chunk = payload.subarray(0, max);
    const more = payload.length > max;
    let ttt = RESERVED_TAG;
    if (more) {
      ttt = this.allocateTtt();
      this.textContinuation = { ttt, remaining: payload.subarray(max) };
    }
    sink.send(
      encodeTextResponse({ ...this.seq(true), itt: pdu.itt, ttt, lun: 0, final: !more, cont: more, dataLength: chunk.length }),
      chunk.length ? [chunk] : [],
      chunk.length,
    );
  }

  reject(bhs: Buffer, reason: RejectReason): void {
    this.sink!.send(encodeReject({ ...this.seq(true), reason, dataSN: 0 }), [bhs.subarray(0, BHS_LENGTH)], BHS_LENGTH);
  }

  /** Wait for every task the device is working on (graceful logout or shutdown). */
  async drain(): Promise<void> {
    const running = [...this.tasks.values()].map((t) => t.completion).filter((c): c is Promise<void> => c !== null);
    await Promise.all(running);
  }

  /** The connection is gone: abort what is left and forget the nexus. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.tasks.values()) t.aborted = true;
    this.pendingBySN.clear();
    // Forget the nexus at once: a reinstating session with the same nexus may log in next.
    if (this.target && this.nexus) this.target.device.nexusLost(this.nexus);
    await this.drain().catch(() => undefined);
    this.tasks.clear();
  }
}

const EMPTY = Buffer.alloc(0);
const DEFAULT_DATA_OUT_BUDGET = 16 * 1024 * 1024;
const NO_RESIDUAL = { overflow: false, underflow: false, residualCount: 0 } as const;
/** ABORTED COMMAND, DATA PHASE ERROR: the initiator's data-out sequence was broken. */
const DATA_PHASE_ERROR_SENSE = buildSense({ key: SenseKey.ABORTED_COMMAND, asc: 0x4b, ascq: 0x00 });
