/**
 * Who serves each resource group, decided on this node: the peer's
 * liveness (liveness.ts), the witness lease (witness/), and the group's
 * ownership state (group.ts) go into the witness decision table; its
 * action is carried out here and nowhere else.
 *
 *   take-over     witness mode: acquire the RG lease first (refused: wait), then start the group
 *   stop-serving  fence the group (drop alias IPs, stop taking commands)
 *   keep-serving / wait  nothing
 *
 * At start the groups this node prefers wait for the start table
 * (start-rule.ts): they start only once this node's copy is known to be as
 * new as the peer's, or the mode says the lease (or the risky opt-in) may
 * vouch for it; until then they are 'pending' and decided again on every
 * evaluation. A group this node fences becomes pending too: when both nodes
 * are alive again the peer, seeing this node alive, waits, so it falls to
 * this node to serve the group again once the table allows. Re-evaluated when the peer state changes, when the lease
 * keeper says must-stop or lost, and on request. Planned moves (move/failback) stop
 * the group here with reason 'move', release the lease and ask the peer
 * (PeerControl) to move the group in.
 */
import { EventEmitter } from 'node:events';
import type { ResourceGroupConfig } from './config';
import type { ResourceGroup } from './group';
import type { PeerState } from './liveness';
import { DataStanding, decideStart } from './start-rule';
import { decide } from './witness/decision';
import type { Decision, LeaseView, WitnessReach } from './witness/decision';
import type { WitnessMode } from './witness/no-witness';

/** The decision rule under which a standby waits for a dead (or departed) peer's lease to run out. */
const WAIT_FOR_PEER_LEASE = 'W-sb-gone-held';
/** After the PTTL the witness reported: its key is gone by then (Redis expires on its own clock; this is the round trip). */
const LEASE_EXPIRY_SLACK_MS = 5;

export interface LeasePort {
  /** Take the RG lease; rejects when another node holds it or the witness cannot be asked. */
  acquire(rg: string): Promise<unknown>;
  /** As acquire(), retrying while the witness is not reachable yet or another node holds the lease, up to `timeoutMs`. */
  acquireWait?(rg: string, timeoutMs: number): Promise<unknown>;
  release(rg: string): Promise<unknown>;
  /**
   * The lease as this node sees it now, and whether the witness answered;
   * with lease 'peer', the remaining time of the peer's lease on the
   * witness's clock when known (so a standby asks again right when it runs out).
   */
  view(rg: string): Promise<{ lease: LeaseView; witness: WitnessReach; peerLeaseMs?: number }>;
  /**
   * Whether the witness records this node's copy of the group as outdated
   * (the peer wrote without it). Rejects when the witness cannot be asked.
   */
  outdatedHere(rg: string): Promise<boolean>;
  /**
   * Just before a takeover starts the group: when this node's copies of it
   * are not in sync with the peer's (it is about to acknowledge writes the
   * peer will not have), record the peer's copy as outdated, so that the
   * peer, returning while this node is down, does not serve a copy that
   * lacks them. Rejects when the witness cannot be asked.
   */
  markPeerOutdatedIfAlone?(rg: string): Promise<void>;
}

export interface PeerPort {
  readonly state: PeerState;
  on(event: 'change', cb: (to: PeerState, from: PeerState) => void): unknown;
}

/** Asks the peer to take a group over in a planned move (it answers once it serves it). */
export interface PeerControl {
  /** Rejects when the peer refused; with an error named 'PeerNoAnswerError' when it did not answer (it may still move the group in). */
  moveIn(rg: string): Promise<void>;
  /** Whether the peer's copy of every volume of the group is in sync (a move waits for it). */
  inSync(rg: string): Promise<boolean>;
}

export interface ControllerOptions {
  readonly nodeId: string;
  readonly mode: WitnessMode;
  readonly groups: readonly { readonly config: ResourceGroupConfig; readonly group: ResourceGroup }[];
  readonly peer: PeerPort;
  /** Null without a witness (no-witness modes). */
  readonly lease: LeasePort | null;
  readonly peerControl?: PeerControl;
  /** This node's copies of a group's volumes against the peer's, from the mirror's handshake (start-rule.ts). */
  readonly standing: (rg: string) => DataStanding;
  /** How long the preferred owner waits for its lease at start (default 10 s). */
  readonly startLeaseWaitMs?: number;
  readonly log?: { info(o: object, m: string): void; error(o: object, m: string): void };
}

export interface ControllerEvents {
  decision: [rg: string, decision: Decision];
}

export class ResourceGroupController extends EventEmitter<ControllerEvents> {
  private readonly forced = new Set<string>();
  private readonly busy = new Map<string, Promise<void>>();
  /**
   * Groups this node should serve once the start table allows it: the ones
   * it prefers, after its start, and one it fenced while the peer may have
   * been up (otherwise, with both nodes alive again, nobody would serve it).
   */
  private readonly pendingStart = new Map<string, { readonly reason: 'node start' | 'fenced' | 'unanswered move'; rule: string }>();
  /** The last reason a takeover was refused for an outdated copy, per group (logged once). */
  private readonly refusals = new Map<string, string>();
  /** An evaluation queued behind a running operation, per group. */
  private readonly queuedEvaluations = new Map<string, Promise<void>>();
  /** Per group waiting out a dead peer's lease: the one-shot re-evaluation at its expiry. */
  private readonly leaseExpiryChecks = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly o: ControllerOptions) {
    super();
    o.peer.on('change', () => void this.evaluateAll());
  }

  private entry(rg: string): { config: ResourceGroupConfig; group: ResourceGroup } {
    const e = this.o.groups.find((g) => g.config.name === rg);
    if (!e) throw new RangeError(`no resource group ${rg}`);
    return e;
  }

  /**
   * The groups this node prefers become pending: each starts once the start
   * table allows it (see evaluate()); the others wait for a decision.
   */
  async start(): Promise<void> {
    for (const { config } of this.o.groups) if (config.preferredNode === this.o.nodeId) this.pendingStart.set(config.name, { reason: 'node start', rule: '' });
    await this.evaluateAll();
  }

  /** Whether some preferred group still waits for the start table (the node evaluates again every tick then). */
  hasPendingStart(): boolean {
    return this.pendingStart.size > 0;
  }

  /** Decide again for every group. */
  async evaluateAll(): Promise<void> {
    await Promise.all(this.o.groups.map((g) => this.evaluate(g.config.name)));
  }

  /** Called on the lease keeper's must-stop / lost: decide again now. */
  onLeaseTrouble(rg: string): Promise<void> {
    return this.evaluate(rg);
  }

  /** Decide again for one group. A call while one is already queued for the group joins it (ticks do not pile up). */
  evaluate(rg: string): Promise<void> {
    const queued = this.queuedEvaluations.get(rg);
    if (queued) return queued;
    const run = this.serialize(rg, async () => {
      this.queuedEvaluations.delete(rg);
      if (this.closed) return;
      const { group } = this.entry(rg);
      if (this.pendingStart.has(rg)) {
        await this.preferredStart(rg);
        if (this.pendingStart.has(rg)) return;
      }
      const serving = group.state === 'serving';
      if (!serving && group.state !== 'stopped') return; // a start, stop or move is running, or failed: nothing to decide
      const view = this.o.lease ? await this.o.lease.view(rg) : { lease: 'unknown' as const, witness: 'unreachable' as const };
      const d = decide({ mode: this.o.mode, serving, peer: this.o.peer.state, witness: view.witness, lease: view.lease, forced: this.forced.has(rg) });
      this.emit('decision', rg, d);
      // The peer is gone but its lease still runs: decide again the moment the witness lets it expire,
      // not at the next tick. The decision stays the table's; this only chooses when to ask.
      if (d.rule === WAIT_FOR_PEER_LEASE && 'peerLeaseMs' in view && view.peerLeaseMs !== undefined) this.recheckAfter(rg, view.peerLeaseMs);
      if (d.action === 'take-over') await this.takeOver(rg, d.why);
      else if (d.action === 'stop-serving') {
        this.o.log?.info({ rg, rule: d.rule }, `fencing ${rg}: ${d.why}`);
        await group.fence().then(
          () => this.pendingStart.set(rg, { reason: 'fenced', rule: '' }),
          (err: unknown) => this.o.log?.error({ rg, err }, `fencing ${rg} failed`),
        );
      }
    });
    this.queuedEvaluations.set(rg, run);
    return run;
  }

  private recheckAfter(rg: string, ms: number): void {
    // A lease without a sane expiry (PTTL -1, or beyond any TTL we use) is left to the regular ticks.
    if (this.leaseExpiryChecks.has(rg) || this.closed || !(ms > 0 && ms <= 60_000)) return;
    const timer = setTimeout(() => {
      this.leaseExpiryChecks.delete(rg);
      void this.evaluate(rg);
    }, ms + LEASE_EXPIRY_SLACK_MS);
    timer.unref();
    this.leaseExpiryChecks.set(rg, timer);
  }

  /** A pending group: the start table decides (start-rule.ts); the operator's force or a move-in ends it. */
  private async preferredStart(rg: string): Promise<void> {
    const { group } = this.entry(rg);
    const pending = this.pendingStart.get(rg)!;
    if (group.state !== 'stopped' || this.forced.has(rg)) {
      this.pendingStart.delete(rg);
      return;
    }
    const standing = this.o.standing(rg);
    const d = decideStart({ mode: this.o.mode, standing, peer: this.o.peer.state });
    if (pending.rule !== d.rule) this.o.log?.info({ rg, rule: d.rule, standing, peer: this.o.peer.state }, `${rg} (${pending.reason}): ${d.action}, ${d.why}`);
    pending.rule = d.rule;
    if (d.action === 'wait') return;
    this.pendingStart.delete(rg);
    // At node start the witness connection may still be coming up: wait a little for the lease.
    const waitMs = pending.reason === 'node start' ? (this.o.startLeaseWaitMs ?? 10_000) : 0;
    if (d.action !== 'start') return;
    await this.takeOver(rg, `${pending.reason}, ${d.rule}`, waitMs);
    // Not started (no lease, the witness did not answer in time, or it records our copy as outdated) while the
    // peer is alive: the decision table would only wait, so the start table is asked again next time. With the
    // peer gone, the failover table goes on trying.
    const started = (group.state as string) === 'serving';
    if (!started && this.o.peer.state === 'alive' && !this.closed && !this.pendingStart.has(rg)) this.pendingStart.set(rg, { reason: pending.reason, rule: '' });
  }

  private async takeOver(rg: string, why: string, waitMs = 0): Promise<void> {
    const { group } = this.entry(rg);
    if (group.state === 'serving') return;
    if (this.o.lease && this.o.mode === 'witness') {
      try {
        // At start-up the witness connection may still be coming up: wait a little for it.
        await (waitMs > 0 && this.o.lease.acquireWait ? this.o.lease.acquireWait(rg, waitMs) : this.o.lease.acquire(rg));
      } catch (err) {
        this.o.log?.info({ rg, err }, `not serving ${rg}: no lease`);
        return;
      }
      // The peer recorded that it wrote without us: our copy lacks acknowledged writes. Only the operator may serve it.
      if (!this.forced.has(rg)) {
        const outdated = await this.o.lease.outdatedHere(rg).catch(() => null);
        if (outdated !== false) {
          const why = outdated
            ? `not serving ${rg}: the witness records this node's copy as outdated (the peer wrote without it); force the group to serve it anyway`
            : `not serving ${rg}: cannot ask the witness whether this node's copy is outdated`;
          // Decided again every tick while the peer is away: say it once per reason.
          if (this.refusals.get(rg) !== why) this.o.log?.error({ rg }, why);
          this.refusals.set(rg, why);
          await this.o.lease.release(rg).catch(() => undefined);
          return;
        }
        this.refusals.delete(rg);
      }
      try {
        await this.o.lease.markPeerOutdatedIfAlone?.(rg);
      } catch (err) {
        this.o.log?.error({ rg, err }, `not serving ${rg}: cannot record the peer's copy as outdated on the witness before writing without it`);
        await this.o.lease.release(rg).catch(() => undefined);
        return;
      }
    }
    const t0 = performance.now();
    try {
      await group.start();
      this.forced.delete(rg);
      this.o.log?.info({ rg, ms: Math.round(performance.now() - t0) }, `serving ${rg} (${why})`);
    } catch (err) {
      this.o.log?.error({ rg, err }, `cannot serve ${rg}`);
      if (this.o.lease) await this.o.lease.release(rg).catch(() => undefined);
    }
  }

  /** Operator: take the group over even though the decision table would wait. */
  force(rg: string): Promise<void> {
    this.entry(rg);
    this.forced.add(rg);
    return this.evaluate(rg);
  }

  /**
   * Planned switchover to the peer: the peer must be in sync; the group
   * stops here with reason 'move' (new commands BUSY, accepted ones drain,
   * the final SCSI state goes to the peer, then targets, IPs and the
   * primary role go; a drain past its bound abandons the move and the group
   * serves on here), the copies must still be in sync (every acknowledged
   * write is on the peer), the lease is released, and the peer moves the
   * group in. The time of each phase is logged.
   */
  move(rg: string): Promise<void> {
    return this.serialize(rg, async () => {
      const { group } = this.entry(rg);
      const control = this.o.peerControl;
      if (!control) throw new Error('no peer control channel: a planned move needs one');
      if (group.state !== 'serving') throw new Error(`${rg} is ${group.state} here, not serving`);
      if (this.o.peer.state !== 'alive') throw new Error(`the peer is ${this.o.peer.state}`);
      if (!(await control.inSync(rg))) throw new Error(`the peer's copy of ${rg} is not in sync`);
      const phases: Record<string, number> = {};
      let t = performance.now();
      const lap = (name: string): void => {
        const now = performance.now();
        phases[name] = Math.round((now - t) * 10) / 10;
        t = now;
      };
      await group.moveOut();
      lap('drainAndStop');
      if (!(await control.inSync(rg))) {
        // The mirror left sync while draining: the peer may lack an acknowledged write.
        this.o.log?.error({ rg }, `the peer's copy of ${rg} left sync during the move; serving it here again`);
        await this.serveAgain(rg, 'move aborted: peer out of sync');
        throw new Error(`the peer's copy of ${rg} left sync during the move`);
      }
      lap('syncCheck');
      if (this.o.lease) await this.o.lease.release(rg);
      lap('leaseRelease');
      try {
        await control.moveIn(rg);
        lap('peerMoveIn');
      } catch (err) {
        if (!this.leaseSettles() && (err as Error).name === 'PeerNoAnswerError') {
          // No lease can say which node serves it, and a peer that did not answer may still move it in:
          // serving it here again could make two servers. Let go of it; the start rule decides when
          // this node may serve it again (not while the peer's copy serves), or an operator forces it.
          this.o.log?.error({ rg, err }, `the peer did not answer the move of ${rg}; not serving it here again without a witness to settle who does`);
          this.pendingStart.set(rg, { reason: 'unanswered move', rule: '' });
          await group.handedOver().catch((e: unknown) => this.o.log?.error({ rg, err: e }, `cannot let go of ${rg}'s alias IPs`));
          throw err;
        }
        // The peer could not take it: serve it here again rather than leave it down.
        this.o.log?.error({ rg, err }, `the peer did not take ${rg}; serving it here again`);
        await this.serveAgain(rg, 'move refused by the peer');
        throw err;
      }
      await group.handedOver();
      lap('handedOver');
      this.o.log?.info({ rg, phases }, `moved ${rg} to the peer`);
    });
  }

  /**
   * A move that cannot complete: serve the group here again. If that fails
   * too (say the peer did take the lease after all), let go of what the
   * move kept (the alias IPs): a group not served here holds nothing here.
   */
  private async serveAgain(rg: string, why: string): Promise<void> {
    const { group } = this.entry(rg);
    await this.takeOver(rg, why);
    if (group.state !== 'serving') await group.handedOver();
  }

  /** Whether a witness lease decides who serves (witness mode): then a second server is impossible whatever the peer did. */
  private leaseSettles(): boolean {
    return this.o.lease !== null && this.o.mode === 'witness';
  }

  /** The peer's half of move(): take the group in (lease first). */
  moveIn(rg: string): Promise<void> {
    return this.serialize(rg, async () => {
      const { group } = this.entry(rg);
      if (this.leaseSettles()) await this.o.lease!.acquire(rg);
      this.pendingStart.delete(rg);
      await group.moveIn();
    });
  }

  /** Move the group back to its preferred node, if that is the peer and this node serves it. */
  async failback(rg: string): Promise<boolean> {
    const { config, group } = this.entry(rg);
    if (config.preferredNode === this.o.nodeId || group.state !== 'serving') return false;
    await this.move(rg);
    return true;
  }

  /** Automatic failback: for each group with failback 'auto' that this node serves for the peer. */
  async autoFailback(): Promise<void> {
    for (const { config, group } of this.o.groups) {
      if (config.failback !== 'auto' || config.preferredNode === this.o.nodeId || group.state !== 'serving') continue;
      if (this.o.peer.state !== 'alive' || !this.o.peerControl || !(await this.o.peerControl.inSync(config.name))) continue;
      await this.failback(config.name).catch((err: unknown) => this.o.log?.error({ rg: config.name, err }, 'failback failed'));
    }
  }

  status(): { name: string; state: string; preferredNode: string; failback: string }[] {
    return this.o.groups.map(({ config, group }) => ({ name: config.name, state: group.state, preferredNode: config.preferredNode, failback: config.failback }));
  }

  /** Stop every group this node serves (clean shutdown), releasing the leases. */
  async stop(): Promise<void> {
    this.closed = true;
    for (const timer of this.leaseExpiryChecks.values()) clearTimeout(timer);
    this.leaseExpiryChecks.clear();
    for (const { config, group } of [...this.o.groups].reverse()) {
      await this.serialize(config.name, async () => {
        await group.stop();
        if (this.o.lease) await this.o.lease.release(config.name).catch(() => undefined);
      });
    }
  }

  /**
   * A group added to the groups list at run time (cluster configuration): from now on it is
   * decided like the others; this node starts it when it prefers it and the start table allows.
   */
  groupAdded(rg: string): Promise<void> {
    const { config } = this.entry(rg);
    if (config.preferredNode === this.o.nodeId) this.pendingStart.set(rg, { reason: 'node start', rule: '' });
    return this.evaluate(rg);
  }

  /** Before a group leaves the groups list at run time: it stops here (if served) and its lease goes. */
  retire(rg: string): Promise<void> {
    this.pendingStart.delete(rg);
    this.forced.delete(rg);
    this.refusals.delete(rg);
    return this.serialize(rg, async () => {
      const { group } = this.entry(rg);
      await group.stop();
      if (this.o.lease) await this.o.lease.release(rg).catch(() => undefined);
    });
  }

  /**
   * A group changed at run time (cluster configuration): `op` swaps its config in the groups list
   * and changes what must change in place, between this group's decisions and moves. The new
   * preferred node and failback mode count from the next evaluation (autoFailback moves a group
   * with failback 'auto' to its new preferred node once in sync).
   */
  reconfigure(rg: string, op: () => Promise<void>): Promise<void> {
    this.entry(rg);
    return this.serialize(rg, op);
  }

  private serialize(rg: string, op: () => Promise<void>): Promise<void> {
    const prev = this.busy.get(rg) ?? Promise.resolve();
    const run = prev.then(op, op);
    const tail = run.catch(() => undefined);
    this.busy.set(rg, tail);
    return run;
  }
}
