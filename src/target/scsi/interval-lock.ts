/**
 * A reader/writer lock over ranges of logical blocks, for one logical unit.
 *
 * Reads take shared ranges, writes and read-modify-write paths (WRITE AND
 * VERIFY now, COMPARE AND WRITE later) take exclusive ranges, so an
 * exclusive holder is atomic against every other command touching its
 * blocks. Waiters are granted in arrival order among overlapping requests:
 * a request waits for every overlapping, conflicting holder AND every
 * earlier overlapping, conflicting waiter, so neither side starves and
 * overlapping writes complete in the order they arrived.
 *
 * Uncontended acquisition is synchronous (tryAcquire): a shared range with
 * no exclusive holder and no waiter is granted without looking at the other
 * ranges; otherwise it costs one scan of the held ranges and the waiters.
 */
import { SlotList } from '../../block';

export const LockMode = { SHARED: 'shared', EXCLUSIVE: 'exclusive' } as const;
export type LockMode = (typeof LockMode)[keyof typeof LockMode];

/** Releases a granted range; calling it twice is harmless. */
export type Release = () => void;

interface Range {
  readonly start: number;
  readonly end: number; // exclusive
  readonly mode: LockMode;
}

/** A granted range; `slot` is its place among the held (a SlotList, not a Set: see block/collections.ts). */
interface Held extends Range {
  slot: number;
}

interface Waiter extends Range {
  readonly grant: (release: Release) => void;
}

function conflicts(a: Range, b: Range): boolean {
  if (a.mode === LockMode.SHARED && b.mode === LockMode.SHARED) return false;
  return a.start < b.end && b.start < a.end;
}

const NOOP: Release = () => {};

export class IntervalLock {
  private readonly held = new SlotList<Held>();
  private readonly waiting: Waiter[] = [];
  /** Exclusive ranges among `held`: with none held and nobody waiting, a shared request needs no scan. */
  private exclusiveHeld = 0;

  /** Number of ranges currently held (for tests and metrics). */
  get heldCount(): number {
    return this.held.size;
  }

  /** Number of requests waiting. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Take [start, end) at once if nothing conflicts, else return null.
   * An empty range needs no lock.
   */
  tryAcquire(start: number, end: number, mode: LockMode): Release | null {
    if (end <= start) return NOOP;
    const r: Held = { start, end, mode, slot: -1 };
    const fast = mode === LockMode.SHARED && this.exclusiveHeld === 0 && this.waiting.length === 0;
    if (!fast && this.blocked(r, this.waiting.length)) return null;
    return this.grant(r);
  }

  /** Take [start, end), waiting behind conflicting holders and earlier waiters. */
  acquire(start: number, end: number, mode: LockMode): Promise<Release> {
    const now = this.tryAcquire(start, end, mode);
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => this.waiting.push({ start, end, mode, grant: resolve }));
  }

  private blocked(r: Range, waitersBefore: number): boolean {
    for (let i = 0; i < this.held.size; i++) if (conflicts(this.held.at(i), r)) return true;
    for (let i = 0; i < waitersBefore; i++) if (conflicts(this.waiting[i]!, r)) return true;
    return false;
  }

  private grant(r: Held): Release {
    this.held.add(r);
    if (r.mode === LockMode.EXCLUSIVE) this.exclusiveHeld++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held.remove(r);
      if (r.mode === LockMode.EXCLUSIVE) this.exclusiveHeld--;
      if (this.waiting.length > 0) this.wake();
    };
  }

  private wake(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i]!;
      if (this.blocked(w, i)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      w.grant(this.grant({ start: w.start, end: w.end, mode: w.mode, slot: -1 }));
    }
  }
}
