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
  private readonly entries = new Map<number, Entry<R, V>>();
  private doneCount = 0;
  private floorSeq = 0;
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
    this.trim();
    return e.via;
  }

  /** The requester waits for nothing below `floor` any more. */
  advanceFloor(floor: number): void {
    if (floor <= this.floorSeq) return;
    this.floorSeq = floor;
    // Seqs arrive nearly in order, so the entries below the floor are at the front.
    for (const [seq, e] of this.entries) {
      if (seq >= floor) break;
      if (e.done) this.doneCount--;
      this.entries.delete(seq);
    }
  }

  clear(): void {
    this.entries.clear();
    this.doneCount = 0;
    this.floorSeq = 0;
  }

  private trim(): void {
    if (this.doneCount <= this.capacity) return;
    for (const [seq, e] of this.entries) {
      if (this.doneCount <= this.capacity) break;
      if (!e.done) continue;
      this.entries.delete(seq);
      this.doneCount--;
      if (seq >= this.floorSeq) this.overflows++;
    }
  }
}
