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
import { CommitHooks } from './bitmap';

interface ExtentState {
  /** Writes begun and not yet ended. */
  inflight: number;
  /** While the extent's activation is not yet durable: that commit. */
  activation: Promise<void> | null;
  /** Set while the extent is being evicted: resolved once it is gone. */
  evicting: { promise: Promise<void>; resolve(): void } | null;
}

export interface ActivityLogStats {
  /** Extents made hot since open. */
  readonly activations: number;
  readonly evictions: number;
}

export class ActivityLog {
  /** Hot extents, least recently used first. */
  private readonly hot = new Map<number, ExtentState>();
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
    for (const e of initialHot) this.hot.set(e, { inflight: 0, activation: null, evicting: null });
  }

  get stats(): ActivityLogStats {
    return { activations: this.activations, evictions: this.evictions };
  }

  /** The hot extents, ascending. */
  hotExtents(): number[] {
    return [...this.hot.keys()].sort((a, b) => a - b);
  }

  /** Writes begun and not ended, over all extents. */
  inflightWrites(): number {
    let n = 0;
    for (const st of this.hot.values()) n += st.inflight;
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
    const [first, last] = this.extentsOf(offset, length);
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e);
      if (!st || st.activation || st.evicting) return false;
    }
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e)!;
      st.inflight++;
      // Least recently used first: move to the end.
      this.hot.delete(e);
      this.hot.set(e, st);
    }
    return true;
  }

  /** The write over the range is complete (on both replicas). */
  endWrite(offset: number, length: number): void {
    const [first, last] = this.extentsOf(offset, length);
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e);
      if (!st || st.inflight === 0) throw new Error(`endWrite for extent ${e} without a matching beginWrite`);
    }
    for (let e = first; e <= last; e++) {
      const st = this.hot.get(e)!;
      st.inflight--;
      if (st.inflight === 0 && st.evicting) this.evict(e, st);
    }
  }

  // --- For VolumeMetadata -------------------------------------------------

  /** The hot set to write, if it changed since the last call. */
  takeChange(): number[] | null {
    if (!this.changed) return null;
    this.changed = false;
    return [...this.hot.keys()];
  }

  /** Empties the log (clean shutdown). Throws when writes are in flight. */
  clearIdle(): void {
    if (this.inflightWrites() > 0) throw new Error('activity log has writes in flight');
    if (this.hot.size > 0) this.changed = true;
    for (const [e, st] of this.hot) this.evict(e, st);
  }

  /** The volume size changed (only extentRange uses it). */
  resizeTo(sizeBytes: number): void {
    this.size = sizeBytes;
  }

  // --- Internals ----------------------------------------------------------

  private extentsOf(offset: number, length: number): [number, number] {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`range ${offset}+${length} outside the volume (0..${this.size})`);
    }
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
    const idle: [number, ExtentState][] = [];
    for (const entry of this.hot) {
      const [e, st] = entry;
      if (!mine(e) && st.inflight === 0 && !st.evicting && !st.activation) idle.push(entry);
      if (idle.length === excess) break;
    }
    if (idle.length === excess) {
      for (const [e, st] of idle) this.evict(e, st);
      return null;
    }
    // Not enough idle extents: drain the least recently used busy one.
    for (const [e, st] of this.hot) {
      if (!mine(e) && !st.evicting && st.inflight > 0) {
        let resolve!: () => void;
        const promise = new Promise<void>((res) => (resolve = res));
        st.evicting = { promise, resolve };
        return promise;
      }
    }
    // Every candidate is being evicted or activated already: wait for one of them.
    for (const [e, st] of this.hot) {
      if (mine(e)) continue;
      if (st.evicting) return st.evicting.promise;
      if (st.activation) return st.activation.catch(() => undefined);
    }
    throw new Error('activity log: no extent to evict');
  }

  private evict(e: number, st: ExtentState): void {
    this.hot.delete(e);
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
      for (const e of missing) this.hot.set(e, { inflight: 0, activation, evicting: null });
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
      // Least recently used first: move to the end.
      this.hot.delete(e);
      this.hot.set(e, st);
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
