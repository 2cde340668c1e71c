/**
 * The activity log: which extents of the volume may have writes in flight.
 * After DRBD's drbd_actlog.c in spirit.
 *
 * A write is bracketed by beginWrite/endWrite. Its extents (alExtentSize
 * each, 4 MiB by default) must be "hot" — listed in the on-disk log — before
 * the write is issued. A write to hot extents costs nothing; making an
 * extent hot costs one durable write of the log (shared with concurrent
 * activations, bitmap marks and superblock updates: group commit). At most
 * `capacity` extents are hot; making room evicts the least recently used
 * extent that has no write in flight, or else waits for the least recently
 * used busy one to finish its writes (new writes to it wait meanwhile).
 *
 * After a crash the hot extents are where the two replicas may differ
 * (writes that were in flight reached one side and not the other): when the
 * metadata is opened after an unclean shutdown, those extents are folded
 * into the dirty bitmap, and stay hot.
 *
 * On disk the log is the whole hot set, written alternately to two copies
 * with a sequence number, so a torn write leaves the previous set readable.
 * A write that must not be reordered with another must wait for its
 * beginWrite before starting; callers must not hold one beginWrite while
 * waiting for another (a write needs all its extents at once).
 */
import { IntMap } from '../../block';
import { CommitHooks } from './bitmap';

interface ExtentState {
  readonly extent: number;
  /** Writes begun and not yet ended. */
  inflight: number;
  /** While the extent's activation is not yet durable: that commit. */
  activation: Promise<void> | null;
  /** Set while the extent is being evicted: resolved once it is gone. */
  evicting: { promise: Promise<void>; resolve(): void } | null;
  /** Neighbours in the recency list (older, newer). */
  older: ExtentState | null;
  newer: ExtentState | null;
}

/**
 * The hot extents: found by number, and kept in a list from least to most
 * recently used. Every write touches its extents, so the order is kept by
 * relinking long-lived entries, not by deleting and re-adding Map entries
 * (that rebuilds the Map's table every few dozen writes; see
 * block/collections.ts for what that costs).
 */
class HotSet {
  private readonly byExtent = new IntMap<ExtentState>();
  private oldest: ExtentState | null = null;
  private newest: ExtentState | null = null;

  get size(): number {
    return this.byExtent.size;
  }

  get(e: number): ExtentState | undefined {
    return this.byExtent.get(e);
  }

  has(e: number): boolean {
    return this.byExtent.has(e);
  }

  /** A new hot extent, most recently used. */
  add(e: number, activation: Promise<void> | null): ExtentState {
    const st: ExtentState = { extent: e, inflight: 0, activation, evicting: null, older: null, newer: null };
    this.byExtent.set(e, st);
    this.link(st);
    return st;
  }

  remove(st: ExtentState): void {
    if (this.byExtent.get(st.extent) !== st) return;
    this.byExtent.delete(st.extent);
    this.unlink(st);
  }

  /** `st` becomes the most recently used. */
  touch(st: ExtentState): void {
    if (st === this.newest) return;
    this.unlink(st);
    this.link(st);
  }

  /** The least recently used, then the next ones through `.newer`. */
  get first(): ExtentState | null {
    return this.oldest;
  }

  /** All of them, least recently used first (a snapshot). */
  list(): ExtentState[] {
    const out: ExtentState[] = [];
    for (let st = this.oldest; st; st = st.newer) out.push(st);
    return out;
  }

  private link(st: ExtentState): void {
    st.older = this.newest;
    st.newer = null;
    if (this.newest) this.newest.newer = st;
    else this.oldest = st;
    this.newest = st;
  }

  private unlink(st: ExtentState): void {
    if (st.older) st.older.newer = st.newer;
    else this.oldest = st.newer;
    if (st.newer) st.newer.older = st.older;
    else this.newest = st.older;
    st.older = null;
    st.newer = null;
  }
}

export interface ActivityLogStats {
  /** Extents made hot since open. */
  readonly activations: number;
  readonly evictions: number;
}

export class ActivityLog {
  /** Hot extents, least recently used first. */
  private readonly hot = new HotSet();
  private changed = false;
  private size: number;
  private activations = 0;
  private evictions = 0;

  constructor(
    readonly extentSize: number,
    readonly capacity: number,
    sizeBytes: number,
    private readonly hooks: CommitHooks,
    initialHot: readonly number[] = [],
  ) {
    this.size = sizeBytes;
    if (initialHot.length > capacity) throw new RangeError(`${initialHot.length} hot extents exceed the capacity ${capacity}`);
    for (const e of initialHot) if (!this.hot.has(e)) this.hot.add(e, null);
  }

  get stats(): ActivityLogStats {
    return { activations: this.activations, evictions: this.evictions };
  }

  /** The hot extents, ascending. */
  hotExtents(): number[] {
    return this.hot
      .list()
      .map((st) => st.extent)
      .sort((a, b) => a - b);
  }

  /** Writes begun and not ended, over all extents. */
  inflightWrites(): number {
    let n = 0;
    for (let st = this.hot.first; st; st = st.newer) n += st.inflight;
    return n;
  }

  /** The bytes of the volume extent `e` covers (the last one may be short). */
  extentRange(e: number): { offset: number; length: number } {
    const offset = e * this.extentSize;
    return { offset, length: Math.max(0, Math.min(this.extentSize, this.size - offset)) };
  }

  /**
   * Resolves when every extent of the range is durably hot; the write may
   * then be issued. Pair each resolved beginWrite with one endWrite of the
   * same range; after a rejection, do not call endWrite.
   */
  async beginWrite(offset: number, length: number): Promise<void> {
    this.hooks.check();
    const [first, last] = this.extentsOf(offset, length);
    if (last < first) return;
    if (last - first + 1 > this.capacity) {
      throw new RangeError(`a write over ${last - first + 1} extents exceeds the activity log capacity ${this.capacity}`);
    }
    for (;;) {
      const evicting = this.evictingIn(first, last);
      if (evicting) {
        await evicting;
        continue;
      }
      const missing: number[] = [];
      for (let e = first; e <= last; e++) if (!this.hot.has(e)) missing.push(e);
      // From here to enter() nothing awaits, so no one else changes the hot set in between.
      const wait = missing.length > 0 ? this.makeRoom(missing.length, first, last) : null;
      if (wait) {
        await wait;
        continue;
      }
      return this.enter(first, last, missing);
    }
  }

  /**
   * beginWrite without waiting, for the common case: true (the write is
   * counted in, pair it with endWrite) when every extent of the range is
   * already durably hot and none is being evicted; false, with nothing
   * changed, when beginWrite must be used. Throws as beginWrite rejects.
   */
  tryBeginWrite(offset: number, length: number): boolean {
    this.hooks.check();
    this.checkRange(offset, length);
    if (length === 0) return true;
    const first = Math.floor(offset / this.extentSize);
    const last = Math.floor((offset + length - 1) / this.extentSize);
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e);
      if (!st || st.activation || st.evicting) return false;
    }
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e)!;
      st.inflight++;
      this.hot.touch(st);
    }
    return true;
  }

  /** The write over the range is complete (on both replicas). */
  endWrite(offset: number, length: number): void {
    this.checkRange(offset, length);
    if (length === 0) return;
    const first = Math.floor(offset / this.extentSize);
    const last = Math.floor((offset + length - 1) / this.extentSize);
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e);
      if (!st || st.inflight === 0) throw new Error(`endWrite for extent ${e} without a matching beginWrite`);
    }
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e)!;
      st.inflight--;
      if (st.inflight === 0 && st.evicting) this.evict(st);
    }
  }

  // --- For VolumeMetadata -------------------------------------------------

  /** The hot set to write, if it changed since the last call. */
  takeChange(): number[] | null {
    if (!this.changed) return null;
    this.changed = false;
    return this.hot.list().map((st) => st.extent);
  }

  /** Empties the log (clean shutdown). Throws when writes are in flight. */
  clearIdle(): void {
    if (this.inflightWrites() > 0) throw new Error('activity log has writes in flight');
    if (this.hot.size > 0) this.changed = true;
    for (const st of this.hot.list()) this.evict(st);
  }

  /** The volume size changed (only extentRange uses it). */
  resizeTo(sizeBytes: number): void {
    this.size = sizeBytes;
  }

  // --- Internals ----------------------------------------------------------

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`range ${offset}+${length} outside the volume (0..${this.size})`);
    }
  }

  private extentsOf(offset: number, length: number): [number, number] {
    this.checkRange(offset, length);
    if (length === 0) return [0, -1];
    return [Math.floor(offset / this.extentSize), Math.floor((offset + length - 1) / this.extentSize)];
  }

  private evictingIn(first: number, last: number): Promise<void> | null {
    for (let e = first; e <= last; e++) {
      const ev = this.hot.get(e)?.evicting;
      if (ev) return ev.promise;
    }
    return null;
  }

  /**
   * Makes room for `needed` more hot extents without evicting [first, last],
   * synchronously when idle extents allow; otherwise starts draining the
   * least recently used busy extent and returns what to wait for (the caller
   * then looks again).
   */
  private makeRoom(needed: number, first: number, last: number): Promise<void> | null {
    const excess = this.hot.size + needed - this.capacity;
    if (excess <= 0) return null;
    const mine = (e: number): boolean => e >= first && e <= last;
    const idle: ExtentState[] = [];
    for (let st = this.hot.first; st && idle.length < excess; st = st.newer) {
      if (!mine(st.extent) && st.inflight === 0 && !st.evicting && !st.activation) idle.push(st);
    }
    if (idle.length === excess) {
      for (const st of idle) this.evict(st);
      return null;
    }
    // Not enough idle extents: drain the least recently used busy one.
    for (let st = this.hot.first; st; st = st.newer) {
      if (!mine(st.extent) && !st.evicting && st.inflight > 0) {
        let resolve!: () => void;
        const promise = new Promise<void>((res) => (resolve = res));
        st.evicting = { promise, resolve };
        return promise;
      }
    }
    // Every candidate is being evicted or activated already: wait for one of them.
    for (let st = this.hot.first; st; st = st.newer) {
      if (mine(st.extent)) continue;
      if (st.evicting) return st.evicting.promise;
      if (st.activation) return st.activation.catch(() => undefined);
    }
    throw new Error('activity log: no extent to evict');
  }

  private evict(st: ExtentState): void {
    this.hot.remove(st);
    this.changed = true;
    this.evictions++;
    st.evicting?.resolve();
  }

  /** Adds the missing extents, counts the write in, and waits for every activation it depends on. */
  private async enter(first: number, last: number, missing: readonly number[]): Promise<void> {
    let commit: Promise<void> | null = null;
    if (missing.length > 0) {
      commit = this.hooks.request();
      const activation = commit;
      for (const e of missing) this.hot.add(e, activation);
      this.changed = true;
      this.activations += missing.length;
      activation.then(
        () => {
          for (const e of missing) {
            const st = this.hot.get(e);
            if (st?.activation === activation) st.activation = null;
          }
        },
        () => undefined,
      );
    }
    const waits = new Set<Promise<void>>();
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e)!;
      st.inflight++;
      this.hot.touch(st);
      if (st.activation) waits.add(st.activation);
    }
    if (waits.size === 0) return;
    try {
      await Promise.all(waits);
    } catch (err) {
      for (let e = first; e <= last; e++) {
        const st = this.hot.get(e);
        if (st && st.inflight > 0) st.inflight--;
      }
      throw err;
    }
  }
}
