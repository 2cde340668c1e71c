/**
 * SCSI state snapshots (persistent reservations, unit attentions ...) sent
 * to the peer, which keeps them for a takeover. The mirror does not look
 * inside: a snapshot is a kind and JSON bytes.
 *
 * The latest snapshot of each kind is kept and sent again after every
 * handshake, so a peer that was away catches up. Each carries a version,
 * increasing per volume (seeded from the clock, so a restarted sender
 * usually continues above its old numbers); the receiver drops a snapshot
 * not newer than the last one of its kind (the channel does not order
 * messages), and forgets what it saw at every handshake.
 */
import { Complete, ScsiState } from '../protocol';
import { MirrorError } from '../errors';

export type ScsiStateListener = (kind: string, json: Buffer) => void;

export interface Snapshot {
  readonly json: Buffer;
  readonly version: number;
}

export class ScsiStateReplication {
  private readonly latest = new Map<string, Snapshot>();
  private version = Date.now() * 1000;
  private readonly seen = new Map<string, number>();
  private readonly listeners = new Set<ScsiStateListener>();

  /**
   * @param send sends one snapshot to the peer; it must not throw (failures are the next handshake's business).
   * @param onListenerError reports a listener that threw.
   */
  constructor(
    private readonly send: (kind: string, snapshot: Snapshot) => Promise<void>,
    private readonly onListenerError: (kind: string, err: unknown) => void,
  ) {}

  /** Records a local snapshot; sends it when `connected`. The caller's buffer is copied. */
  async publish(kind: string, json: Buffer, connected: boolean): Promise<void> {
    if (kind.length === 0) throw new MirrorError('EINVAL', 'SCSI state kind is empty');
    const snapshot = { json: Buffer.from(json), version: ++this.version };
    this.latest.set(kind, snapshot);
    if (connected) await this.send(kind, snapshot);
  }

  /** A new session: the peer's versions start over, and it gets our latest snapshots. */
  sessionStarted(connected: boolean): void {
    this.seen.clear();
    if (!connected) return;
    for (const [kind, snapshot] of this.latest) void this.send(kind, snapshot);
  }

  subscribe(cb: ScsiStateListener): () => void {
    this.listeners.add(cb);
    return () => void this.listeners.delete(cb);
  }

  /** A snapshot from the peer. */
  received(body: Complete<ScsiState>): void {
    const last = this.seen.get(body.kind);
    if (last !== undefined && body.version <= last) return;
    this.seen.set(body.kind, body.version);
    const json = Buffer.from(body.json);
    for (const cb of this.listeners) {
      try {
        cb(body.kind, json);
      } catch (err) {
        this.onListenerError(body.kind, err);
      }
    }
  }
}
