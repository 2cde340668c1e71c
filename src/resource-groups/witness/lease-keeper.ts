/**
 * LeaseKeeper: one per node. Keeps the leases of the RGs this node serves
 * renewed and tells the node when it must stop serving one.
 *
 * Timing, on this process's monotonic clock (README.md "Timing budget"):
 *
 *   s        a successful renewal (or the acquire) was *sent*
 *   s + renewIntervalMs                 the next renewal is sent
 *   s + TTL - safetyMargin - stopBudget 'must-stop' unless a later renewal succeeded
 *   s + TTL - safetyMargin              serving deadline: alias IPs down, commands refused
 *   >= s + TTL                          the witness lets the lease expire; only now can
 *                                       another node acquire it
 *
 * The server started the TTL after we sent the request, so counting from
 * the send time is conservative whatever the two wall clocks say; the
 * safety margin covers the clocks' rate difference and a late timer.
 *
 * A renewal that fails because the witness is unavailable is retried after
 * renewRetryMs; one that finds the lease taken (LeaseLostError with a
 * holder) is final: 'must-stop' at once, then 'lost', and the RG is no
 * longer kept. A lease found free (expired under us) is acquired again
 * with a new epoch. After 'must-stop' the keeper goes on trying (every
 * renewIntervalMs) and emits 'regained' if the lease comes back: whether
 * the node may keep serving meanwhile is the decision table's call
 * (decision.ts: a lapsed lease is kept while the peer is alive).
 */
import { EventEmitter } from 'node:events';
import { LeaseHeldByOtherError, LeaseLostError, WitnessClosedError, WitnessError, WitnessUnavailableError } from './errors';
import { LeaseTunables, resolveLeaseTunables } from './tunables';
import { FORGOTTEN_HOLDER, LeaseGrant, LeaseHolder, Witness, checkNodeId, checkRgName, monotonicNow } from './witness';

export type KeptLeaseState = 'held' | 'lapsed';

export interface LeaseStatus {
  readonly rg: string;
  readonly epoch: number;
  readonly state: KeptLeaseState;
  /** When the last successful renewal (or the acquire) was sent, monotonic ms. */
  readonly renewedAt: number;
  /** 'must-stop' time, monotonic ms. */
  readonly mustStopAt: number;
  /** Serving must have ended by then, monotonic ms. */
  readonly servingDeadline: number;
  /** Renewals failed in a row. */
  readonly failures: number;
}

export interface MustStop {
  readonly rg: string;
  readonly epoch: number;
  /** renewals-failing: the witness did not answer in time; lease-lost: another node holds it. */
  readonly reason: 'renewals-failing' | 'lease-lost';
  /** Serving must have ended by this monotonic time (already past for lease-lost). */
  readonly servingDeadline: number;
  /** When this was emitted, monotonic ms. */
  readonly at: number;
  /** The last failure, when there was one. */
  readonly cause?: Error;
}

export interface LeaseKeeperEvents {
  /** acquire() took the lease. */
  acquired: [grant: LeaseGrant];
  renewed: [grant: LeaseGrant];
  /** A renewal failed; the keeper retries. */
  'renew-failed': [rg: string, error: WitnessError];
  /** Drop the RG's alias IPs and refuse its commands before `servingDeadline` (subject to the decision table). */
  'must-stop': [info: MustStop];
  /** A lapsed lease is valid again (renewed, or acquired anew with a new epoch). */
  regained: [grant: LeaseGrant];
  /** Another node holds the lease; the keeper forgot the RG. */
  lost: [rg: string, error: LeaseLostError];
}

export interface LeaseKeeperOptions {
  readonly witness: Witness;
  readonly nodeId: string;
  readonly tunables?: Partial<LeaseTunables>;
  /** Monotonic clock, ms (default performance.now). */
  readonly now?: () => number;
}

interface Kept {
  readonly rg: string;
  epoch: number;
  state: KeptLeaseState;
  renewedAt: number;
  failures: number;
  lastError: WitnessError | undefined;
  renewTimer: NodeJS.Timeout | null;
  mustStopTimer: NodeJS.Timeout | null;
  inFlight: boolean;
}

export class LeaseKeeper extends EventEmitter<LeaseKeeperEvents> {
  readonly nodeId: string;
  readonly tunables: LeaseTunables;
  readonly witness: Witness;
  private readonly now: () => number;
  private readonly kept = new Map<string, Kept>();
  private readonly acquiring = new Map<string, Promise<LeaseGrant>>();
  private closed = false;

  constructor(options: LeaseKeeperOptions) {
    super();
    checkNodeId(options.nodeId);
    this.nodeId = options.nodeId;
    this.witness = options.witness;
    this.tunables = resolveLeaseTunables(options.tunables);
    this.now = options.now ?? monotonicNow;
  }

  /**
   * Take the lease of `rg` and keep it renewed. Resolves with the grant
   * (the current one if already held); rejects with LeaseHeldByOtherError,
   * WitnessUnavailableError, WitnessClosedError.
   */
  acquire(rg: string): Promise<LeaseGrant> {
    checkRgName(rg);
    if (this.closed) return Promise.reject(new WitnessClosedError(`acquire ${rg}`));
    const k = this.kept.get(rg);
    if (k && k.state === 'held') return Promise.resolve(this.grantOf(k));
    let pending = this.acquiring.get(rg);
    if (!pending) {
      pending = this.doAcquire(rg).finally(() => this.acquiring.delete(rg));
      this.acquiring.set(rg, pending);
    }
    return pending;
  }

  /**
   * acquire() until it succeeds, asking every acquirePollMs while another
   * node holds the lease or the witness is unavailable. Rejects with the
   * last error once `timeoutMs` passed or `signal` aborted.
   */
  async waitAndAcquire(rg: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<LeaseGrant> {
    const until = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : this.now() + options.timeoutMs;
    for (;;) {
      try {
        return await this.acquire(rg);
      } catch (e) {
        if (!(e instanceof LeaseHeldByOtherError || e instanceof WitnessUnavailableError)) throw e;
        if (options.signal?.aborted || this.now() + this.tunables.acquirePollMs > until) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, this.tunables.acquirePollMs));
    }
  }

  /**
   * Stop renewing `rg` and release its lease at the witness. The keeper
   * forgets the RG first, whatever the witness says; rejects with
   * WitnessUnavailableError if the release could not be sent (the lease
   * then expires after its TTL). Resolves false when the lease was not ours
   * any more (or not kept).
   */
  async release(rg: string): Promise<boolean> {
    const k = this.kept.get(rg);
    if (!k) return false;
    this.drop(k);
    return this.witness.release(rg, this.nodeId, k.epoch);
  }

  /** Stop renewing `rg` without telling the witness (the lease expires after its TTL). */
  forget(rg: string): void {
    const k = this.kept.get(rg);
    if (k) this.drop(k);
  }

  /** Release every kept lease (best effort), e.g. for a clean shutdown. */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.kept.keys()].map((rg) => this.release(rg).catch(() => false)));
  }

  /** The RGs whose leases are kept. */
  rgs(): string[] {
    return [...this.kept.keys()];
  }

  status(rg: string): LeaseStatus | undefined {
    const k = this.kept.get(rg);
    if (!k) return undefined;
    return {
      rg,
      epoch: k.epoch,
      state: k.state,
      renewedAt: k.renewedAt,
      mustStopAt: this.mustStopAt(k),
      servingDeadline: this.deadlineOf(k),
      failures: k.failures,
    };
  }

  /**
   * The epoch of the kept lease term, for the data path to stamp on writes
   * (a replica can refuse writes that carry an epoch older than one it has
   * seen). Undefined when the RG's lease is not kept.
   */
  fencingToken(rg: string): number | undefined {
    return this.kept.get(rg)?.epoch;
  }

  /**
   * The monotonic time (ms, `now`'s clock) by which the node must have
   * stopped serving `rg` unless a renewal succeeds first: the send time of
   * the last successful renewal + TTL - safety margin. Undefined when not kept.
   */
  servingDeadline(rg: string): number | undefined {
    const k = this.kept.get(rg);
    return k ? this.deadlineOf(k) : undefined;
  }

  /** True while the lease is held and its must-stop time has not come. */
  canServe(rg: string): boolean {
    const k = this.kept.get(rg);
    return k !== undefined && k.state === 'held' && this.now() < this.mustStopAt(k);
  }

  /** Stop every timer; leases are not released (see releaseAll). No events after this. */
  close(): void {
    this.closed = true;
    for (const k of [...this.kept.values()]) this.drop(k);
    this.removeAllListeners();
  }

  // ---- internals ----

  private mustStopAt(k: Kept): number {
    return this.deadlineOf(k) - this.tunables.stopBudgetMs;
  }

  private deadlineOf(k: Kept): number {
    return k.renewedAt + this.tunables.leaseTtlMs - this.tunables.safetyMarginMs;
  }

  private grantOf(k: Kept): LeaseGrant {
    return { rg: k.rg, node: this.nodeId, epoch: k.epoch, ttlMs: this.tunables.leaseTtlMs, expiresAt: k.renewedAt + this.tunables.leaseTtlMs };
  }

  private async doAcquire(rg: string): Promise<LeaseGrant> {
    const sentAt = this.now();
    const grant = await this.witness.acquire(rg, this.nodeId, this.tunables.leaseTtlMs);
    if (!grant) {
      const holder: LeaseHolder | null = await this.witness.holder(rg).catch(() => null);
      throw new LeaseHeldByOtherError(rg, this.nodeId, holder);
    }
    if (this.closed) {
      await this.witness.release(rg, this.nodeId, grant.epoch).catch(() => false);
      throw new WitnessClosedError(`acquire ${rg}`);
    }
    const old = this.kept.get(rg);
    if (old) this.drop(old);
    const k: Kept = {
      rg,
      epoch: grant.epoch,
      state: 'held',
      renewedAt: sentAt,
      failures: 0,
      lastError: undefined,
      renewTimer: null,
      mustStopTimer: null,
      inFlight: false,
    };
    if (this.now() >= this.mustStopAt(k)) {
      // The answer came too late to serve on: give the lease back rather than serve past its deadline.
      await this.witness.release(rg, this.nodeId, grant.epoch).catch(() => false);
      throw new WitnessUnavailableError(`acquire ${rg}`, `answered after ${Math.round(this.now() - sentAt)} ms, too late to serve on the lease`);
    }
    this.kept.set(rg, k);
    this.schedule(k, sentAt + this.tunables.renewIntervalMs);
    this.armMustStop(k);
    this.emit('acquired', this.grantOf(k));
    return this.grantOf(k);
  }

  private drop(k: Kept): void {
    if (k.renewTimer) clearTimeout(k.renewTimer);
    if (k.mustStopTimer) clearTimeout(k.mustStopTimer);
    k.renewTimer = null;
    k.mustStopTimer = null;
    if (this.kept.get(k.rg) === k) this.kept.delete(k.rg);
  }

  private isCurrent(k: Kept): boolean {
    return !this.closed && this.kept.get(k.rg) === k;
  }

  private schedule(k: Kept, at: number): void {
    if (k.renewTimer) clearTimeout(k.renewTimer);
    k.renewTimer = setTimeout(() => {
      k.renewTimer = null;
      void this.attempt(k);
    }, Math.max(0, at - this.now()));
  }

  private armMustStop(k: Kept): void {
    if (k.mustStopTimer) clearTimeout(k.mustStopTimer);
    k.mustStopTimer = null;
    if (k.state !== 'held') return;
    const delay = this.mustStopAt(k) - this.now();
    if (delay <= 0) {
      this.lapse(k, 'renewals-failing');
      return;
    }
    k.mustStopTimer = setTimeout(() => {
      k.mustStopTimer = null;
      if (this.isCurrent(k) && k.state === 'held') this.lapse(k, 'renewals-failing');
    }, delay);
  }

  private lapse(k: Kept, reason: MustStop['reason']): void {
    k.state = 'lapsed';
    if (k.mustStopTimer) clearTimeout(k.mustStopTimer);
    k.mustStopTimer = null;
    const info: MustStop = {
      rg: k.rg,
      epoch: k.epoch,
      reason,
      servingDeadline: reason === 'lease-lost' ? Math.min(this.now(), this.deadlineOf(k)) : this.deadlineOf(k),
      at: this.now(),
      ...(k.lastError ? { cause: k.lastError } : {}),
    };
    this.emit('must-stop', info);
  }

  private async attempt(k: Kept): Promise<void> {
    if (!this.isCurrent(k) || k.inFlight) return;
    k.inFlight = true;
    const sentAt = this.now();
    try {
      const grant = await this.witness.renew(k.rg, this.nodeId, k.epoch, this.tunables.leaseTtlMs);
      if (this.isCurrent(k)) this.renewed(k, sentAt, grant.epoch, false);
    } catch (e) {
      if (this.isCurrent(k)) await this.failed(k, e);
    } finally {
      k.inFlight = false;
    }
  }

  /** `newTerm`: re-acquired with a new epoch, reported as 'regained' even if the old term had not lapsed. */
  private renewed(k: Kept, sentAt: number, epoch: number, newTerm: boolean): void {
    const wasLapsed = k.state === 'lapsed';
    k.epoch = epoch;
    k.renewedAt = sentAt;
    k.failures = 0;
    k.lastError = undefined;
    this.schedule(k, sentAt + this.tunables.renewIntervalMs);
    if (this.now() >= this.mustStopAt(k)) {
      // Renewed, but the answer came after the must-stop time it set.
      if (!wasLapsed) this.lapse(k, 'renewals-failing');
      return;
    }
    k.state = 'held';
    this.armMustStop(k);
    this.emit(wasLapsed || newTerm ? 'regained' : 'renewed', this.grantOf(k));
  }

  private async failed(k: Kept, e: unknown): Promise<void> {
    if (e instanceof LeaseLostError && e.current === null) {
      // Expired (or released) under us; nobody took it yet: take it again, as a new term.
      await this.reacquire(k, e);
      return;
    }
    if (e instanceof LeaseLostError && e.current?.node !== FORGOTTEN_HOLDER) {
      this.lost(k, e);
      return;
    }
    // Unavailable, or the witness's amnesia fence (it forgot our lease and parks it for one TTL): retry until the deadline.
    const error = e instanceof WitnessError ? e : new WitnessUnavailableError(`renew ${k.rg}`, String(e), { cause: e });
    k.failures += 1;
    k.lastError = error;
    this.emit('renew-failed', k.rg, error);
    if (!this.isCurrent(k)) return;
    this.schedule(k, this.now() + (k.state === 'held' ? this.tunables.renewRetryMs : this.tunables.renewIntervalMs));
    if (k.state === 'held' && this.now() >= this.mustStopAt(k)) this.lapse(k, 'renewals-failing');
  }

  private async reacquire(k: Kept, lostError: LeaseLostError): Promise<void> {
    const sentAt = this.now();
    let grant: LeaseGrant | null;
    try {
      grant = await this.witness.acquire(k.rg, this.nodeId, this.tunables.leaseTtlMs);
    } catch (e) {
      if (this.isCurrent(k)) await this.failed(k, e);
      return;
    }
    if (!this.isCurrent(k)) return;
    if (!grant) {
      const holder = await this.witness.holder(k.rg).catch(() => null);
      // Refused because the witness forgot (the fence now parks the lease): a failure to retry, not a loss.
      if (this.isCurrent(k)) await this.failed(k, new LeaseLostError(k.rg, this.nodeId, lostError.epoch, holder ?? { node: FORGOTTEN_HOLDER, epoch: 0, ttlMs: 0 }));
      return;
    }
    this.renewed(k, sentAt, grant.epoch, true);
  }

  private lost(k: Kept, error: LeaseLostError): void {
    if (k.state === 'held') {
      k.lastError = error;
      this.lapse(k, 'lease-lost');
    }
    this.drop(k);
    this.emit('lost', k.rg, error);
  }
}
