/**
 * One SCSI task inside an iSCSI session: its command, the data-out it is
 * gathering (immediate, unsolicited and solicited through R2Ts) and its
 * lifecycle state. The state changes only through `advance()`.
 */
import { RESERVED_TAG } from './constants';
import { ScsiCommandPdu } from './pdu';

export const TaskState = {
  /** Waiting for data-out from the initiator. */
  RECEIVING: 'receiving',
  /** Handed to the SCSI device. */
  EXECUTING: 'executing',
  /** Finished: response sent or suppressed. */
  DONE: 'done',
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

const TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  [TaskState.RECEIVING]: [TaskState.EXECUTING, TaskState.DONE],
  [TaskState.EXECUTING]: [TaskState.DONE],
  [TaskState.DONE]: [],
};

export interface OutstandingR2T {
  readonly ttt: number;
  readonly r2tSN: number;
  readonly offset: number;
  readonly length: number;
  received: number;
  /** DataSN the next Data-Out of this burst must carry (starts at 0). */
  nextDataSN: number;
}

export class DataOutError extends Error {
  override readonly name = 'DataOutError';
}

export class Task {
  readonly itt: number;
  readonly lun: number;
  /** The LUN field as the initiator sent it, echoed in Data-In and R2T. */
  readonly lunField: Buffer;
  readonly cmdSN: number;
  readonly cdb: Buffer;
  readonly edtl: number;
  readonly isWrite: boolean;
  readonly isRead: boolean;
  readonly attr: number;
  state: TaskState = TaskState.RECEIVING;
  /** Set by task management: the task finishes without a response. */
  aborted = false;

  /** Data-out slices, in buffer-offset order (DataPDUInOrder=Yes). */
  readonly segments: Buffer[] = [];
  received = 0;
  /** Bytes the initiator may send without an R2T (immediate + unsolicited Data-Out). */
  unsolicitedLimit = 0;
  /** True once the unsolicited burst is over (F bit, or nothing more allowed). */
  unsolicitedDone = true;
  /** DataSN the next unsolicited Data-Out must carry. */
  nextUnsolicitedDataSN = 0;
  /** Next buffer offset to solicit with an R2T. */
  nextSolicitOffset = 0;
  nextR2TSN = 0;
  /** R2Ts sent and not yet answered in full, by target transfer tag. */
  get r2ts(): Map<number, OutstandingR2T> {
    // Made on first use: most commands (reads, writes whose data came as immediate data) never solicit.
    return (this.r2tMap ??= new Map());
  }
  private r2tMap: Map<number, OutstandingR2T> | null = null;
  /** Data-In PDUs sent for the task (ExpDataSN of its SCSI Response). */
  dataInPdus = 0;
  /** Settles when the SCSI device has finished with the task. */
  completion: Promise<void> | null = null;

  constructor(pdu: ScsiCommandPdu) {
    this.itt = pdu.itt;
    this.lun = pdu.lun;
    // A view, not a copy: the CDB is a view of the same header already.
    this.lunField = pdu.raw.bhs.subarray(8, 16);
    this.cmdSN = pdu.cmdSN;
    this.cdb = pdu.cdb;
    this.edtl = pdu.edtl;
    this.isWrite = pdu.write;
    this.isRead = pdu.read;
    this.attr = pdu.attr;
    this.wanted = pdu.edtl;
  }

  advance(next: TaskState): void {
    if (!TRANSITIONS[this.state].includes(next)) {
      throw new Error(`task 0x${this.itt.toString(16)}: illegal transition ${this.state} -> ${next}`);
    }
    this.state = next;
  }

  /**
   * Data-out bytes the target will gather: the expected length cut to what
   * the CDB can use (the rest is never solicited, so an expected length far
   * beyond the command cannot make the target buffer it).
   */
  wanted = 0;
  /** Bytes of this task counted against the session's data-out budget. */
  charged = 0;

  /** Whether all the data-out the target will gather has arrived. */
  get dataComplete(): boolean {
    if (!this.isWrite || this.received >= this.edtl) return true;
    return this.unsolicitedDone && this.received >= this.wanted && (this.r2tMap === null || this.r2tMap.size === 0);
  }

  /**
   * Accept a data segment at `offset`. `ttt` is RESERVED_TAG for unsolicited
   * data. Returns the R2T the data belonged to when that burst is now complete.
   */
  acceptData(offset: number, data: readonly Buffer[], length: number, ttt: number, dataSN: number | null = null): OutstandingR2T | null {
    if (offset !== this.received) {
      throw new DataOutError(`data-out at offset ${offset}, expected ${this.received} (DataPDUInOrder)`);
    }
    if (this.received + length > this.edtl) {
      throw new DataOutError(`data-out runs to ${this.received + length}, past the expected length ${this.edtl}`);
    }
    let r2t: OutstandingR2T | null = null;
    if (ttt === RESERVED_TAG) {
      if (this.unsolicitedDone || this.received + length > this.unsolicitedLimit) {
        throw new DataOutError(`unsolicited data-out beyond FirstBurstLength (${this.unsolicitedLimit})`);
      }
      if (dataSN !== null) {
        if (dataSN !== this.nextUnsolicitedDataSN) throw new DataOutError(`DataSN ${dataSN}, expected ${this.nextUnsolicitedDataSN}`);
        this.nextUnsolicitedDataSN++;
      }
    } else {
      r2t = this.r2ts.get(ttt) ?? null;
      if (!r2t) throw new DataOutError(`data-out for unknown target transfer tag 0x${ttt.toString(16)}`);
      if (offset < r2t.offset || offset + length > r2t.offset + r2t.length) {
        throw new DataOutError(`data-out ${offset}+${length} outside its R2T ${r2t.offset}+${r2t.length}`);
      }
      if (dataSN !== null && dataSN !== r2t.nextDataSN) throw new DataOutError(`DataSN ${dataSN}, expected ${r2t.nextDataSN}`);
      r2t.nextDataSN++;
      r2t.received += length;
    }
    for (const d of data) this.segments.push(d);
    this.received += length;
    if (r2t && r2t.received >= r2t.length) {
      this.r2ts.delete(ttt);
      return r2t;
    }
    return null;
  }
}
