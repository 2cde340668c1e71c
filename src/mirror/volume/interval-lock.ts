/**
 * Exclusive locks on byte ranges, granted in arrival order among
 * overlapping ranges (after DRBD's drbd_interval.c in purpose: conflicting
 * requests are detected by overlap, not by a global lock).
 *
 * acquire() waits for every earlier holder or waiter whose range overlaps;
 * ranges that do not overlap proceed at once. Since each waiter waits for
 * all earlier overlapping entries, overlapping requests are granted in the
 * order they asked, which is what keeps the two replicas' write order the
 * same: the primary issues overlapping writes (and resync copies) one after
 * the other, each one done on both nodes before the next starts.
 *
 * The entries are kept in one unordered list and scanned (every entry in it
 * is earlier than a new request, so order is not needed): the number in
 * flight is bounded by the SCSI queue depth plus the resync window, so a
 * linear scan beats a tree here. A SlotList, not a Set: see
 * block/collections.ts.
 */
import { SlotList } from '../../block';

interface Entry {
  readonly offset: number;
  readonly end: number;
  /** Made only when a later request has to wait for this one (most never do). */
  released: Promise<void> | null;
  release: (() => void) | null;
  done: boolean;
  /** Position in the lock's list. */
  slot: number;
}

export type Release = () => void;

function releasedOf(e: Entry): Promise<void> {
  e.released ??= new Promise<void>((resolve) => (e.release = resolve));
  return e.released;
}

export class IntervalLock {
  private readonly entries = new SlotList<Entry>();

  /** Holders and waiters. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Resolves with the release function once no earlier request overlapping
   * [offset, offset + length) is held or waiting. A zero-length range
   * conflicts with nothing. Call the release function exactly once.
   */
  acquire(offset: number, length: number): Promise<Release> {
    const end = offset + length;
    const waits: Promise<void>[] = [];
    if (length > 0) {
      for (let i = 0; i < this.entries.size; i++) {
        const e = this.entries.at(i);
        if (e.offset < end && offset < e.end) waits.push(releasedOf(e));
      }
    }
    const unlock = this.enter(offset, end);
    if (waits.length === 0) return Promise.resolve(unlock);
    return Promise.all(waits).then(() => unlock);
  }

  /**
   * The range at once when nothing earlier overlaps it (no promise, no
   * wait: the write path's common case), else null and nothing taken.
   */
  tryAcquire(offset: number, length: number): Release | null {
    const end = offset + length;
    if (length > 0) {
      for (let i = 0; i < this.entries.size; i++) {
        const e = this.entries.at(i);
        if (e.offset < end && offset < e.end) return null;
      }
    }
    return this.enter(offset, end);
  }

  private enter(offset: number, end: number): Release {
    const entry: Entry = { offset, end, released: null, release: null, done: false, slot: -1 };
    this.entries.add(entry);
    return () => {
      if (entry.done) return;
      entry.done = true;
      this.entries.remove(entry);
      entry.release?.();
    };
  }

  /** Runs `fn` holding the range. */
  async with<T>(offset: number, length: number, fn: () => Promise<T>): Promise<T> {
    const unlock = await this.acquire(offset, length);
    try {
      return await fn();
    } finally {
      unlock();
    }
  }
}
