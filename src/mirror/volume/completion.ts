/**
 * When a write's activity-log extent may be released.
 *
 * The activity log says where the replicas may differ after a crash. A write
 * that completed but was not FUA may still sit in the page cache: a crash
 * (power loss, kernel panic) can lose it on one node and not the other. So
 * its extent must stay hot until the data is durable, or a crash could
 * leave a difference no bitmap covers. (DRBD gets this by flushing the data
 * device before an activity-log transaction that evicts extents.)
 *
 * So: `complete()` releases a FUA write's extents at once and queues the
 * others; the queue is released after the backing store's next fdatasync,
 * which runs at most `delayMs` after the first queued write, or with a flush
 * of the volume (`beforeFlush`/`afterFlush`). Extents thus stay busy a
 * little longer, which only matters when the log is full and must evict.
 *
 * After a failed fdatasync nothing is released any more (the kernel may
 * have dropped the pages): the extents stay hot, the next open folds them
 * into the dirty bitmap.
 */
import { BackingStore } from '../../block';

export interface Releasable {
  endWrite(offset: number, length: number): void;
}

/**
 * Completed writes waiting for an fdatasync: offsets and lengths in two
 * number arrays, not an object per write (they live ~delayMs, long enough
 * to be promoted out of the young generation at every write).
 */
export interface CompletedWrites {
  readonly offsets: readonly number[];
  readonly lengths: readonly number[];
}

export class WriteCompletion {
  private offsets: number[] = [];
  private lengths: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private failure: unknown = null;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: BackingStore,
    private readonly log: Releasable,
    private readonly delayMs: number,
    private readonly onFailure: (err: unknown) => void,
  ) {}

  /** Completed writes waiting for an fdatasync. */
  get pending(): number {
    return this.offsets.length;
  }

  /** The write over the range finished everywhere; `durable` when it was FUA. */
  complete(offset: number, length: number, durable: boolean): void {
    if (durable) {
      this.log.endWrite(offset, length);
      return;
    }
    this.offsets.push(offset);
    this.lengths.push(length);
    if (!this.timer && this.failure === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flushNow().catch(() => undefined);
      }, this.delayMs);
    }
  }

  /** Takes the writes completed so far; release them with afterFlush once a flush that started after this call succeeded. */
  beforeFlush(): CompletedWrites {
    const taken = { offsets: this.offsets, lengths: this.lengths };
    this.offsets = [];
    this.lengths = [];
    return taken;
  }

  /** A flush succeeded (true) or failed: releases `taken`, or keeps them hot for good. */
  afterFlush(taken: CompletedWrites, ok: boolean, err?: unknown): void {
    if (!ok) {
      this.fail(err);
      return;
    }
    if (this.failure !== null) return;
    for (let i = 0; i < taken.offsets.length; i++) this.log.endWrite(taken.offsets[i]!, taken.lengths[i]!);
  }

  /** fdatasyncs the store and releases what completed before; one at a time. */
  async flushNow(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.offsets.length === 0 || this.failure !== null) return;
    const taken = this.beforeFlush();
    this.flushing = this.store.flush().then(
      () => this.afterFlush(taken, true),
      (err: unknown) => {
        this.afterFlush(taken, false, err);
        throw err;
      },
    );
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  /** Stops the timer (close); what is queued stays unreleased unless flushNow() ran. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private fail(err: unknown): void {
    if (this.failure !== null) return;
    this.failure = err ?? new Error('flush failed');
    this.stop();
    this.onFailure(this.failure);
  }
}
