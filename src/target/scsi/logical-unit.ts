/**
 * A logical unit: a BackingStore presented as a direct access block device,
 * plus the per-LU state the SCSI commands act on (mode parameters, unit
 * attentions per I_T nexus, task sets, the LBA range lock).
 */
import type { BackingStore } from '../../block';
import { LuAvailability } from './alua';
import { CopyResults } from './copy-results';
import { InFlight } from './in-flight';
import { IntervalLock } from './interval-lock';
import { LuIdentity, LuIdentityOptions, resolveIdentity } from './identity';
import { ModeParameters } from './mode-pages';
import { LiveScsiState, LiveStatePusher, LiveStateReplica } from './live-state';
import { LuReservations, ReservationStore } from './reservations';
import { SenseFormat } from './sense';
import { TaskOrder } from './task-order';
import { EstablishOptions, UnitAttention, UnitAttentionCondition, UnitAttentionQueues, parseUnitAttentionSnapshot } from './ua';

export interface LogicalUnitOptions {
  readonly store: BackingStore;
  /** Logical block size in bytes: 512 or 4096. */
  readonly blockSize: number;
  readonly identity: LuIdentityOptions;
  /** Thin provisioned (defaults to store.thin): LBPRZ, provisioning type, ENOSPC → SPACE ALLOCATION FAILED. */
  readonly thin?: boolean;
  /** Every medium write fails with DATA PROTECT / WRITE PROTECTED. */
  readonly readOnly?: boolean;
  /** Physical block size in bytes, reported as LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (default max(4096, blockSize)). */
  readonly physicalBlockSize?: number;
  /** MAXIMUM TRANSFER LENGTH in bytes for one READ/WRITE (default 8 MiB). */
  readonly maxTransferBytes?: number;
  /**
   * Where persistent reservations with APTPL live across restarts (PTPL_C).
   * Without it APTPL=1 is refused and reservations end with the process.
   */
  readonly reservationStore?: ReservationStore;
}

export const DEFAULT_MAX_TRANSFER_BYTES = 8 * 1024 * 1024;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export class LogicalUnit {
  readonly store: BackingStore;
  readonly blockSize: number;
  readonly identity: LuIdentity;
  readonly thin: boolean;
  readonly readOnly: boolean;
  /** log2(physical block size / logical block size). */
  readonly physicalBlockExponent: number;
  /** MAXIMUM TRANSFER LENGTH in logical blocks. */
  readonly maxTransferBlocks: number;
  readonly unitAttentions = new UnitAttentionQueues();
  readonly mode = new ModeParameters();
  /** LBA range lock: shared for reads, exclusive for writes and read-modify-write. */
  readonly locks = new IntervalLock();
  /** EXTENDED COPY state of this LU's copy manager (running list ids, held statuses). */
  readonly copyResults = new CopyResults();
  /** Persistent and SCSI-2 reservations (reservations/); serialisable with snapshot() / restore(). */
  readonly reservations: LuReservations;
  /** Commands past the access gate and not yet answered (what a quiesce waits for). */
  readonly inFlight = new InFlight();
  /** Pushes the live SCSI state to a replica, when one is attached (live-state.ts). */
  private readonly live = new LiveStatePusher(() => this.liveState());
  private readonly taskSets = new Map<string, TaskOrder>();
  private availabilityState: LuAvailability = LuAvailability.ONLINE;

  constructor(options: LogicalUnitOptions) {
    if (options.blockSize !== 512 && options.blockSize !== 4096) {
      throw new RangeError(`blockSize must be 512 or 4096, not ${options.blockSize}`);
    }
    const physical = options.physicalBlockSize ?? Math.max(4096, options.blockSize);
    if (!isPowerOfTwo(physical) || physical < options.blockSize) {
      throw new RangeError(`physicalBlockSize must be a power of two >= blockSize, not ${physical}`);
    }
    const maxTransferBytes = options.maxTransferBytes ?? DEFAULT_MAX_TRANSFER_BYTES;
    if (!Number.isInteger(maxTransferBytes) || maxTransferBytes < options.blockSize) {
      throw new RangeError(`maxTransferBytes must be at least one block, not ${maxTransferBytes}`);
    }
    this.store = options.store;
    this.blockSize = options.blockSize;
    this.identity = resolveIdentity(options.identity);
    this.thin = options.thin ?? options.store.thin;
    this.readOnly = options.readOnly ?? false;
    this.physicalBlockExponent = Math.log2(physical / options.blockSize);
    this.maxTransferBlocks = Math.floor(maxTransferBytes / options.blockSize);
    this.reservations = new LuReservations(this.unitAttentions, options.reservationStore ?? null);
    // Reservation changes made by a command complete only once the replica has them;
    // unit attention changes (taken, established, forgotten) are pushed without holding anything up.
    this.reservations.onChange(() => this.live.push());
    this.unitAttentions.onChange(() => void this.live.push());
  }

  /** Reservations and pending unit attentions, as plain JSON (what a standby needs to take over). */
  liveState(): LiveScsiState {
    return { reservations: this.reservations.snapshot(), unitAttentions: this.unitAttentions.snapshot() };
  }

  /** Install the live state a previous owner replicated (on an idle logical unit, before serving it). */
  restoreLiveState(state: LiveScsiState): void {
    // All or nothing: both parts are checked before either is applied (each restore checks its own).
    if (typeof state !== 'object' || state === null) throw new Error('live SCSI state: not an object');
    const unitAttentions = parseUnitAttentionSnapshot(state.unitAttentions);
    this.reservations.restore(state.reservations);
    this.unitAttentions.restore(unitAttentions);
  }

  /**
   * Replicate the live state to `replica` on every change (null stops it).
   * Attaching pushes the current state; the returned promise resolves once
   * the replica has it.
   */
  replicateLiveState(replica: LiveStateReplica | null): Promise<void> {
    return this.live.attach(replica);
  }

  /** Push the current live state now; resolves once the replica has it (at once without a replica). */
  pushLiveState(): Promise<void> {
    return this.live.push();
  }

  /** Capacity in logical blocks (follows the store's current size). */
  get blockCount(): number {
    return Math.floor(this.store.sizeBytes / this.blockSize);
  }

  /** Read-only LU or SWP set in the control mode page. */
  get writeProtected(): boolean {
    return this.readOnly || this.mode.softwareWriteProtect;
  }

  /** Sense data format chosen by the control mode page's D_SENSE bit. */
  get senseFormat(): SenseFormat {
    return this.mode.descriptorSense ? SenseFormat.DESCRIPTOR : SenseFormat.FIXED;
  }

  /** Online, transitioning or moving (see alua.ts for what commands meet). */
  get availability(): LuAvailability {
    return this.availabilityState;
  }

  /**
   * Set by the failover code. Entering or leaving TRANSITIONING changes the
   * LU's access state on this node's ports, so every nexus gets ASYMMETRIC
   * ACCESS STATE CHANGED. Returns whether the availability changed.
   */
  setAvailability(next: LuAvailability): boolean {
    const prev = this.availabilityState;
    if (prev === next) return false;
    if (!Object.values(LuAvailability).includes(next)) throw new RangeError(`unknown availability ${String(next)}`);
    this.availabilityState = next;
    if ((prev === LuAvailability.TRANSITIONING) !== (next === LuAvailability.TRANSITIONING)) {
      this.establishUnitAttention(UnitAttention.ASYMMETRIC_ACCESS_STATE_CHANGED);
    }
    return true;
  }

  /** Queue a unit attention for every I_T nexus that has used this LU (optionally all but one). */
  establishUnitAttention(condition: UnitAttentionCondition, options: EstablishOptions = {}): void {
    this.unitAttentions.establish(condition, options);
  }

  /** Call after the store was resized online: CAPACITY DATA HAS CHANGED to every nexus. */
  notifyCapacityChanged(): void {
    this.establishUnitAttention(UnitAttention.CAPACITY_DATA_HAS_CHANGED);
  }

  /** The task set of one I_T nexus (TST=001b). */
  taskSet(nexusKey: string): TaskOrder {
    let t = this.taskSets.get(nexusKey);
    if (!t) {
      t = new TaskOrder();
      this.taskSets.set(nexusKey, t);
    }
    return t;
  }

  /**
   * Logical unit reset (SAM-5 6.3.3): mode parameters return to their
   * defaults, a SCSI-2 reservation is released (persistent reservations
   * stay) and every I_T nexus gets the reset unit attention. Aborting the
   * tasks themselves is the transport's job.
   */
  reset(condition: UnitAttentionCondition = UnitAttention.BUS_DEVICE_RESET_FUNCTION_OCCURRED): void {
    this.mode.reset();
    this.reservations.reset();
    this.establishUnitAttention(condition);
  }

  /** Forget everything kept for an I_T nexus whose session ended; its SCSI-2 reservation is released. */
  nexusLost(nexusKey: string): void {
    this.reservations.nexusLost(nexusKey);
    this.unitAttentions.forget(nexusKey);
    this.taskSets.delete(nexusKey);
    this.copyResults.forget(nexusKey);
  }
}
