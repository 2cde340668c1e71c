/**
 * Is the peer alive? The evidence of several independent paths (the
 * mirror's PeerChannel over the replication links, the front-end UDP
 * heartbeat), folded into one PeerState for the witness decision table:
 *
 *   shutdown  the peer said 'bye' on some path and nothing since says otherwise
 *   alive     some path heard the peer within suspectAfterMs
 *   dead      the peer's guard said its process died (a 'died' notice on some
 *             path, newer than anything else heard there) and no other path
 *             vouches for it (heard within suspectAfterMs and not closed by
 *             the peer): the node is gone, its guard has removed its alias IPs
 *             and released its leases;
 *             or every path silent for deadMs, and there are at least two paths;
 *             or sooner, "closed": every path that can tell reports the peer
 *             closed it (the replication links: FIN/reset from the peer's
 *             kernel, its process is gone) and every other path has been
 *             silent for closedSilentMs (two front-end heartbeat intervals),
 *             the closing no earlier than closedSkewMs before the last
 *             heartbeat heard (a close long before the silence is old news)
 *   suspect   otherwise (silent everywhere but not long enough, or too few paths to call it dead)
 *
 * The "closed" rule needs both kinds of evidence: a dead process closes its
 * sockets at once, a network partition closes nothing, so a partition still
 * waits the full deadMs. It only makes the peer 'dead' sooner; the witness
 * decision is unchanged: a takeover still needs the lease, which the dead
 * peer's last renewal keeps until it expires on the witness.
 *
 * peerState() is pure given the clock; PeerWatch polls it and emits the changes.
 *
 * Silence is counted from `since` at the earliest (PeerWatch: its creation).
 * A node that has just started has heard nothing yet on any path; that is
 * no evidence of a dead peer. Without it a restarted node would find its
 * peer 'dead' at once and take over (risky mode) or try the lease (witness
 * mode) before its mirror or heartbeat had a chance to hear the peer.
 */
import { EventEmitter } from 'node:events';

/** As the witness decision table's PeerState (witness/decision.ts PEER_STATES). */
export type PeerState = 'alive' | 'suspect' | 'dead' | 'shutdown';

export interface LivenessPath {
  readonly name: string;
  /** Monotonic ms of the latest evidence that the peer is up (-Infinity: never). */
  heardAt(): number;
  /** The peer announced a clean shutdown on this path and has not been heard since. */
  saidBye(): boolean;
  /**
   * Paths over connections only: monotonic ms when the peer closed them all
   * (FIN/reset), null while up or lost otherwise. Datagram paths leave it out.
   */
  closedByPeerAt?(): number | null;
  /** Paths the peer's guard can reach: monotonic ms of its notice that the peer's process died, null without one since the last sign of life. */
  deathNoticedAt?(): number | null;
}

export interface LivenessTimings {
  readonly suspectAfterMs: number;
  readonly deadMs: number;
  /** The "closed" rule: the other paths' silence it needs (unset: no such rule, only deadMs). */
  readonly closedSilentMs?: number;
  /** The "closed" rule: how long before the last thing heard on the other paths the closing may be. Default closedSilentMs / 2. */
  readonly closedSkewMs?: number;
  /**
   * Whether the notice rule applies (default true). A notice is the same
   * bytes every time a node dies, so a recorded one can be replayed: only
   * where a takeover still needs the lease the dead node's guard released
   * (witness mode) may it make the peer dead; the risky no-witness mode
   * takes over on 'dead' alone and must not trust it.
   */
  readonly noticeRule?: boolean;
}

/** Defaults: the front-end heartbeat every 200 ms, dead after 900 ms of silence on every path. */
export const DEFAULT_HEARTBEAT = { intervalMs: 200, deadMs: 900 } as const;

export function peerState(paths: readonly LivenessPath[], now: number, t: LivenessTimings, since = Number.NEGATIVE_INFINITY): PeerState {
  // Heard: real evidence. Counted silence: from `since` at the earliest, so that only real silence makes the peer dead.
  const counted = (p: LivenessPath): number => now - Math.max(p.heardAt(), since);
  if (paths.some((p) => p.saidBye()) && paths.every((p) => p.saidBye() || counted(p) >= t.suspectAfterMs)) return 'shutdown';
  // A connection the peer closed is no sign of life since (with the "closed" rule on): only the other paths vouch.
  const vouching = t.closedSilentMs === undefined ? paths : paths.filter((p) => (p.closedByPeerAt?.() ?? null) === null);
  if (t.noticeRule !== false && noticedDead(paths, now, t, since)) return 'dead';
  if (vouching.length > 0 && Math.min(...vouching.map((p) => now - p.heardAt())) < t.suspectAfterMs) return 'alive';
  if (paths.length >= 2 && Math.min(...paths.map(counted)) >= t.deadMs) return 'dead';
  if (paths.length >= 2 && closedByPeer(paths, t, since, counted)) return 'dead';
  return 'suspect';
}

/** The notice rule (see the header): a death notice, and no other path heard the peer lately over a link it did not close. */
function noticedDead(paths: readonly LivenessPath[], now: number, t: LivenessTimings, since: number): boolean {
  const noticing = paths.filter((p) => {
    const at = p.deathNoticedAt?.() ?? null;
    return at !== null && at >= since;
  });
  if (noticing.length === 0) return false;
  return paths.every((p) => noticing.includes(p) || (p.closedByPeerAt?.() ?? null) !== null || now - p.heardAt() >= t.suspectAfterMs);
}

/** The "closed" rule (see the header): every connection path closed by the peer, every other path silent long enough. */
function closedByPeer(paths: readonly LivenessPath[], t: LivenessTimings, since: number, counted: (p: LivenessPath) => number): boolean {
  if (t.closedSilentMs === undefined) return false;
  const closing = paths.filter((p) => p.closedByPeerAt !== undefined);
  const others = paths.filter((p) => p.closedByPeerAt === undefined);
  if (closing.length === 0 || others.length === 0) return false;
  const closedAt = closing.map((p) => p.closedByPeerAt!());
  if (closedAt.some((at) => at === null || at < since)) return false;
  if (others.some((p) => counted(p) < t.closedSilentMs!)) return false;
  const lastHeard = Math.max(...others.map((p) => p.heardAt()));
  const skew = t.closedSkewMs ?? t.closedSilentMs / 2;
  return Math.min(...(closedAt as number[])) >= lastHeard - skew;
}

/** A path fed by up/down events (the mirror's 'peer' event): while up, heard "now". */
export class EventPath implements LivenessPath {
  private up = false;
  private lastUp = Number.NEGATIVE_INFINITY;
  constructor(
    readonly name: string,
    private readonly now: () => number = () => performance.now(),
  ) {}
  set(state: 'up' | 'down'): void {
    if (this.up && state === 'down') this.lastUp = this.now();
    this.up = state === 'up';
    if (this.up) this.lastUp = this.now();
  }
  heardAt(): number {
    return this.up ? this.now() : this.lastUp;
  }
  saidBye(): boolean {
    return false;
  }
}

export interface PeerWatchEvents {
  change: [to: PeerState, from: PeerState];
}

export class PeerWatch extends EventEmitter<PeerWatchEvents> {
  private current: PeerState;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  /** Silence counts from here: nothing heard yet just after start is not death. */
  private readonly since: number;

  constructor(
    private readonly paths: readonly LivenessPath[],
    private readonly timings: LivenessTimings & { readonly pollMs: number },
    now?: () => number,
  ) {
    super();
    this.now = now ?? (() => performance.now());
    this.since = this.now();
    this.current = peerState(paths, this.now(), timings, this.since);
  }

  get state(): PeerState {
    return this.current;
  }

  /** Re-evaluate now (also called by the timer and by path events). */
  poll(): PeerState {
    const next = peerState(this.paths, this.now(), this.timings, this.since);
    if (next !== this.current) {
      const from = this.current;
      this.current = next;
      this.emit('change', next, from);
    }
    return next;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.poll(), this.timings.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
