/**
 * An in-process witness with the semantics of the Redis scripts: the
 * "server" (MemoryWitnessServer) keeps leases and epoch counters and
 * expires leases on its own clock; each node gets its own client
 * (MemoryWitness) that can be cut off, slowed down or given a different
 * clock. For unit tests of anything that uses a Witness (the LeaseKeeper,
 * the resource-group manager) and for single-host demos; it arbitrates
 * nothing between processes.
 */
import { LeaseLostError, WitnessClosedError, WitnessUnavailableError } from './errors';
import {
  AcquireOptions,
  EpochMemory,
  FORGOTTEN_HOLDER,
  LeaseGrant,
  LeaseHolder,
  Witness,
  checkEpoch,
  checkNodeId,
  checkRgName,
  checkTtl,
  monotonicNow,
} from './witness';

interface StoredLease {
  node: string;
  epoch: number;
  /** Server clock. */
  expiresAt: number;
}

export class MemoryWitnessServer {
  private readonly leases = new Map<string, StoredLease>();
  private readonly counters = new Map<string, number>();

  /** `now` is the server's clock, ms (default performance.now; fake timers fake it too). */
  constructor(readonly now: () => number = monotonicNow) {}

  /** A client for one node. */
  client(options: { now?: () => number; latencyMs?: number } = {}): MemoryWitness {
    return new MemoryWitness(this, options.now ?? this.now, options.latencyMs ?? 0);
  }

  /**
   * Lose every lease, and the epoch counters too unless `persistent`: a
   * restart of a Redis without persistence (or with it).
   */
  restart(options: { persistent: boolean }): void {
    this.leases.clear();
    if (!options.persistent) this.counters.clear();
  }

  /** The lease as the server sees it now (expired ones are gone). */
  peek(rg: string): LeaseHolder | null {
    const lease = this.live(rg);
    return lease ? { node: lease.node, epoch: lease.epoch, ttlMs: lease.expiresAt - this.now() } : null;
  }

  counter(rg: string): number {
    return this.counters.get(rg) ?? 0;
  }

  private live(rg: string): StoredLease | undefined {
    const lease = this.leases.get(rg);
    if (lease && lease.expiresAt <= this.now()) {
      this.leases.delete(rg);
      return undefined;
    }
    return lease;
  }

  /** @internal the ACQUIRE script */
  acquire(rg: string, node: string, ttlMs: number, minEpoch: number): { ok: boolean; holder: LeaseHolder } {
    const lease = this.live(rg);
    if (lease && lease.node !== node) return { ok: false, holder: { node: lease.node, epoch: lease.epoch, ttlMs: lease.expiresAt - this.now() } };
    if (!lease && minEpoch > this.counter(rg)) {
      // The amnesia fence (scripts.ts): we forgot epochs the node has seen, so wait out one TTL.
      this.counters.set(rg, minEpoch);
      this.leases.set(rg, { node: FORGOTTEN_HOLDER, epoch: minEpoch, expiresAt: this.now() + ttlMs });
      return { ok: false, holder: { node: FORGOTTEN_HOLDER, epoch: minEpoch, ttlMs } };
    }
    const epoch = Math.max(this.counter(rg), minEpoch) + 1;
    this.counters.set(rg, epoch);
    this.leases.set(rg, { node, epoch, expiresAt: this.now() + ttlMs });
    return { ok: true, holder: { node, epoch, ttlMs } };
  }

  /** @internal the RENEW script */
  renew(rg: string, node: string, epoch: number, ttlMs: number): { ok: boolean; holder: LeaseHolder | null } {
    const lease = this.live(rg);
    if (lease && lease.node === node && lease.epoch === epoch) {
      lease.expiresAt = this.now() + ttlMs;
      return { ok: true, holder: { node, epoch, ttlMs } };
    }
    return { ok: false, holder: lease ? { node: lease.node, epoch: lease.epoch, ttlMs: lease.expiresAt - this.now() } : null };
  }

  private readonly outdatedCopies = new Map<string, string>();

  /** @internal the outdated record (SET / CLEAR_OUTDATED / GET) */
  outdated(rg: string, set?: { node: string; mark: boolean }): string | null {
    if (set?.mark) this.outdatedCopies.set(rg, set.node);
    else if (set && this.outdatedCopies.get(rg) === set.node) this.outdatedCopies.delete(rg);
    return this.outdatedCopies.get(rg) ?? null;
  }

  /** @internal the RELEASE script */
  release(rg: string, node: string, epoch: number): boolean {
    const lease = this.live(rg);
    if (!lease || lease.node !== node || lease.epoch !== epoch) return false;
    this.leases.delete(rg);
    return true;
  }
}

export class MemoryWitness implements Witness {
  readonly kind = 'memory';
  /** While false, every call fails with WitnessUnavailableError (after the latency): the node is cut off. */
  available = true;
  private readonly epochs = new EpochMemory();
  private closed = false;

  constructor(
    readonly server: MemoryWitnessServer,
    private readonly now: () => number,
    /** Every call answers after this long (setTimeout), ms. */
    public latencyMs: number,
  ) {}

  highestEpochSeen(rg: string): number {
    return this.epochs.get(rg);
  }

  observeEpoch(rg: string, epoch: number): void {
    checkRgName(rg);
    checkEpoch(epoch);
    this.epochs.note(rg, epoch);
  }

  async acquire(rg: string, nodeId: string, ttlMs: number, options: AcquireOptions = {}): Promise<LeaseGrant | null> {
    checkRgName(rg);
    checkNodeId(nodeId);
    checkTtl(ttlMs);
    if (options.minEpoch !== undefined) this.observeEpoch(rg, options.minEpoch);
    const sentAt = this.now();
    const reply = await this.call(`acquire ${rg}`, () => this.server.acquire(rg, nodeId, ttlMs, this.epochs.get(rg)));
    this.epochs.note(rg, reply.holder.epoch);
    return reply.ok ? { rg, node: nodeId, epoch: reply.holder.epoch, ttlMs, expiresAt: sentAt + ttlMs } : null;
  }

  async renew(rg: string, nodeId: string, epoch: number, ttlMs: number): Promise<LeaseGrant> {
    checkRgName(rg);
    checkNodeId(nodeId);
    checkEpoch(epoch);
    checkTtl(ttlMs);
    const sentAt = this.now();
    const reply = await this.call(`renew ${rg}`, () => this.server.renew(rg, nodeId, epoch, ttlMs));
    if (reply.holder) this.epochs.note(rg, reply.holder.epoch);
    if (!reply.ok) throw new LeaseLostError(rg, nodeId, epoch, reply.holder);
    return { rg, node: nodeId, epoch, ttlMs, expiresAt: sentAt + ttlMs };
  }

  async release(rg: string, nodeId: string, epoch: number): Promise<boolean> {
    checkRgName(rg);
    checkNodeId(nodeId);
    checkEpoch(epoch);
    return this.call(`release ${rg}`, () => this.server.release(rg, nodeId, epoch));
  }

  async holder(rg: string): Promise<LeaseHolder | null> {
    checkRgName(rg);
    const reply = await this.call(`holder ${rg}`, () => ({ holder: this.server.peek(rg), counter: this.server.counter(rg) }));
    this.epochs.note(rg, reply.counter);
    return reply.holder;
  }

  async markOutdated(rg: string, nodeId: string): Promise<void> {
    checkRgName(rg);
    checkNodeId(nodeId);
    await this.call(`mark-outdated ${rg}`, () => this.server.outdated(rg, { node: nodeId, mark: true }));
  }

  async clearOutdated(rg: string, nodeId: string): Promise<void> {
    checkRgName(rg);
    checkNodeId(nodeId);
    await this.call(`clear-outdated ${rg}`, () => this.server.outdated(rg, { node: nodeId, mark: false }));
  }

  async outdated(rg: string): Promise<string | null> {
    checkRgName(rg);
    return this.call(`outdated ${rg}`, () => this.server.outdated(rg));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The request reaches the server halfway through the latency, the reply comes back at its end. */
  private async call<T>(operation: string, apply: () => T): Promise<T> {
    if (this.closed) throw new WitnessClosedError(operation);
    if (!this.available) {
      await this.delay(this.latencyMs);
      throw new WitnessUnavailableError(operation, 'cut off from the (in-memory) witness');
    }
    await this.delay(this.latencyMs / 2);
    if (!this.available) throw new WitnessUnavailableError(operation, 'cut off from the (in-memory) witness');
    const result = apply();
    await this.delay(this.latencyMs / 2);
    if (this.closed) throw new WitnessClosedError(operation);
    // Cut off while the reply was on its way: the server did it, the node never learns.
    if (!this.available) throw new WitnessUnavailableError(operation, 'the reply was lost (cut off from the in-memory witness)');
    return result;
  }

  private delay(ms: number): Promise<void> {
    return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
  }
}
