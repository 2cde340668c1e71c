/**
 * A bounded ring of this node's events (failover, move, volume created,
 * configuration replicated, conflicts ...): GET /events pages it by seq, the
 * event stream subscribes. The oldest events drop off past `capacity`.
 */
import type { EventRecord } from '../control';

export const DEFAULT_EVENT_CAPACITY = 1000;

export class EventRing {
  private readonly ring: EventRecord[] = [];
  private nextSeq = 1;
  private readonly listeners = new Set<(e: EventRecord) => void>();

  constructor(
    private readonly node: string,
    private readonly capacity = DEFAULT_EVENT_CAPACITY,
    private readonly now: () => Date = () => new Date(),
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`event capacity ${capacity} is not a positive integer`);
  }

  record(kind: string, message: string, subject: string | null = null): EventRecord {
    const e: EventRecord = { seq: this.nextSeq++, at: this.now().toISOString(), node: this.node, kind, message, subject };
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.shift();
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // A failing subscriber must not stop the others or the caller.
      }
    }
    return e;
  }

  /** Events with seq > after, oldest first, at most `limit`. */
  after(after: number, limit: number): EventRecord[] {
    const out: EventRecord[] = [];
    for (const e of this.ring) {
      if (e.seq <= after) continue;
      if (out.length >= limit) break;
      out.push(e);
    }
    return out;
  }

  subscribe(listener: (e: EventRecord) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
