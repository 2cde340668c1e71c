/**
 * The receiver's record of the requests it has seen, by seq, so a request
 * resent on another link after its first link failed is not applied twice.
 *
 * A seq is `pending` while its handler runs and `done` with the encoded
 * reply once it has answered; a copy of a pending request only moves where
 * the reply goes, a copy of a done one gets the recorded reply again.
 *
 * The requester says in every Envelope (ack_floor) the lowest seq it still
 * waits for: everything below is forgotten, and a copy below the floor
 * (which a correct requester never sends) is `stale`. Besides, at most
 * `capacity` done entries are kept: when more requests have completed
 * behind the oldest unanswered one, the oldest done entries are dropped
 * and counted in `overflows` (a resend of one of those would be applied
 * again). Pending entries are never dropped. No I/O.
 */
import { IntMap } from '../../block';

export type ReplayCheck<R, V> =
  | { readonly state: 'new' }
  | { readonly state: 'pending'; readonly via: V }
  | { readonly state: 'done'; readonly reply: R }
  | { readonly state: 'stale' };

/** The answers without data, shared (one check per received request). */
const NEW = Object.freeze({ state: 'new' } as const);
const STALE = Object.freeze({ state: 'stale' } as const);

interface Entry<R, V> {
  done: boolean;
  reply: R | null;
  /** Where the reply goes: the link the latest copy of the request came on. */
  via: V;
}

export class ReplayWindow<R, V> {
  /** By seq; an IntMap, not a Map (see block/collections.ts: a Map with this churn keeps dead entries alive). */
  private readonly entries = new IntMap<Entry<R, V>>();
  private doneCount = 0;
  private floorSeq = 0;
  /** One above the highest seq begun since the last clear. */
  private highSeq = 0;
  /** trim() starts here: between the floor and it, every entry is pending. */
  private trimCursor = 0;
  /** Done entries dropped at or above the floor for want of room. */
  overflows = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`replay window capacity ${capacity}`);
  }

  get size(): number {
    return this.entries.size;
  }

  get floor(): number {
    return this.floorSeq;
  }

  check(seq: number): ReplayCheck<R, V> {
    if (seq < this.floorSeq) return STALE;
    const e = this.entries.get(seq);
    if (!e) return NEW;
    return e.done ? { state: 'done', reply: e.reply as R } : { state: 'pending', via: e.via };
  }

  /** Records a new request whose handler starts now. */
  begin(seq: number, via: V): void {
    this.entries.set(seq, { done: false, reply: null, via });
    if (seq >= this.highSeq) this.highSeq = seq + 1;
  }

  /** A copy of a pending request arrived on `via`: answer there. */
  redirect(seq: number, via: V): void {
    const e = this.entries.get(seq);
    if (e && !e.done) e.via = via;
  }

  /** The handler answered; returns where to send the reply (null when forgotten meanwhile). */
  complete(seq: number, reply: R): V | null {
    const e = this.entries.get(seq);
    if (!e || e.done) return null;
    e.done = true;
    e.reply = reply;
    this.doneCount++;
    if (seq < this.trimCursor) this.trimCursor = seq;
    this.trim();
    return e.via;
  }

  /** The requester waits for nothing below `floor` any more. */
  advanceFloor(floor: number): void {
    if (floor <= this.floorSeq) return;
    const from = this.floorSeq;
    this.floorSeq = floor;
    if (this.entries.size === 0) return;
    // Entries are only ever begun at or above the floor, so those to forget lie in [from, floor):
    // walk that range, or the entries when the jump is larger than they are many.
    const upTo = Math.min(floor, this.highSeq);
    if (upTo - from <= this.entries.size * 4) {
      for (let seq = from; seq < upTo; seq++) this.forget(seq);
    } else {
      for (const seq of this.entries.keyList()) if (seq < floor) this.forget(seq);
    }
  }

  clear(): void {
    this.entries.clear();
    this.doneCount = 0;
    this.floorSeq = 0;
    this.highSeq = 0;
    this.trimCursor = 0;
  }

  private forget(seq: number): void {
    const e = this.entries.get(seq);
    if (!e) return;
    if (e.done) this.doneCount--;
    this.entries.delete(seq);
  }

  /** Drops the oldest done entries beyond the capacity: every done entry at or above the floor is at or after the cursor. */
  private trim(): void {
    if (this.trimCursor < this.floorSeq) this.trimCursor = this.floorSeq;
    for (; this.trimCursor < this.highSeq && this.doneCount > this.capacity; this.trimCursor++) {
      const e = this.entries.get(this.trimCursor);
      if (!e || !e.done) continue;
      this.entries.delete(this.trimCursor);
      this.doneCount--;
      this.overflows++;
    }
  }
}
