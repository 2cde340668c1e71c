/**
 * The live SCSI state of a logical unit that a standby copy must have to
 * take it over: every reservation (persistent and SCSI-2, not only APTPL)
 * and the pending unit attentions. The target layer only says when it
 * changed and what it is; where it goes (the mirror's peer) is the
 * caller's business, behind LiveStateReplica.
 *
 * Pushes are coalesced: a push requested while one is under way is folded
 * into the next one, which snapshots the state when it starts, so each
 * request is covered by a push that began after it.
 */
import type { ReservationSnapshot } from './reservations';
import type { UnitAttentionSnapshot } from './ua';

export interface LiveScsiState {
  readonly reservations: ReservationSnapshot;
  readonly unitAttentions: UnitAttentionSnapshot;
}

/** Where a logical unit's live state is replicated (e.g. the mirror peer). */
export interface LiveStateReplica {
  /** Resolves once the replica holds `state` (or at once when it cannot be reached and will catch up later). */
  replicate(state: LiveScsiState): Promise<void>;
  /** A push failed (it is not retried here: the replica catches up on its next push or reconnect). */
  onError?(err: unknown): void;
}

export class LiveStatePusher {
  private requested = 0;
  private pushed = 0;
  private running: Promise<void> | null = null;

  constructor(
    private readonly snapshot: () => LiveScsiState,
    private replica: LiveStateReplica | null = null,
  ) {}

  /** Attach (or detach, with null) the replica; attaching pushes the current state. */
  attach(replica: LiveStateReplica | null): Promise<void> {
    this.replica = replica;
    return replica ? this.push() : Promise.resolve();
  }

  get attached(): boolean {
    return this.replica !== null;
  }

  /** Push the current state; resolves once a push that began after this call has finished. */
  push(): Promise<void> {
    if (!this.replica) return Promise.resolve();
    const want = ++this.requested;
    return this.until(want);
  }

  private async until(want: number): Promise<void> {
    while (this.pushed < want) {
      if (!this.running) {
        const replica = this.replica;
        if (!replica) return;
        const covers = this.requested;
        this.running = replica
          .replicate(this.snapshot())
          .catch((err: unknown) => replica.onError?.(err))
          .finally(() => {
            this.pushed = Math.max(this.pushed, covers);
            this.running = null;
          });
      }
      await this.running;
    }
  }
}
