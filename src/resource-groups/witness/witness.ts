/**
 * The witness contract: per-resource-group leases with a fencing epoch.
 *
 * A lease says "node N may serve RG R until the witness lets it expire".
 * Every acquire starts a new lease term with a new epoch, taken from a
 * per-RG counter that only ever grows; renew extends the current term and
 * keeps its epoch; release ends it. Expiry is decided by the witness's own
 * clock (Redis key TTL), never by comparing wall clocks across machines:
 * the holder measures its own "serve until" deadline on its local monotonic
 * clock from the moment it *sent* the successful renewal (see LeaseKeeper).
 *
 * Implementations: RedisWitness (Redis or a Sentinel set), MemoryWitness
 * (one process: tests and single-host demos), NoWitness (risky opt-in:
 * grants everything, arbitrates nothing).
 */
import { WitnessConfigError } from './errors';

/** A lease granted (acquire) or extended (renew). */
export interface LeaseGrant {
  readonly rg: string;
  readonly node: string;
  /** Fencing epoch of this lease term: higher than every epoch granted before for this RG. */
  readonly epoch: number;
  /**
   * Local monotonic time (ms, the clock of `monotonicNow`) before which the
   * witness cannot have let the lease expire: the time the request was sent
   * plus the TTL. Not a wall-clock time; meaningless in another process.
   */
  readonly expiresAt: number;
  /** The TTL asked for, ms. */
  readonly ttlMs: number;
}

/** Who holds a lease now, as the witness sees it. */
export interface LeaseHolder {
  readonly node: string;
  readonly epoch: number;
  /** Remaining time to live on the witness's clock, ms (server-side PTTL). */
  readonly ttlMs: number;
}

export interface AcquireOptions {
  /**
   * The new epoch is greater than this (and than the witness's counter, and
   * than every epoch this client has seen for the RG). Lets a node carry its
   * knowledge across a witness that lost its data.
   */
  readonly minEpoch?: number;
}

export interface Witness {
  /** 'redis', 'memory', 'none': for logs and status. */
  readonly kind: string;

  /**
   * Take the lease of `rg` for `nodeId` when it is free or already held by
   * `nodeId`, as a new term with a new, higher epoch. Resolves null when
   * another node holds it, or when the witness turns out to have forgotten
   * epochs this client has seen (it then keeps the lease free of holders for
   * one TTL: FORGOTTEN_HOLDER). Rejects with WitnessUnavailableError when
   * the witness cannot be asked.
   */
  acquire(rg: string, nodeId: string, ttlMs: number, options?: AcquireOptions): Promise<LeaseGrant | null>;

  /**
   * Extend the lease term (`nodeId`, `epoch`) by `ttlMs` from now. Rejects
   * with LeaseLostError when the lease is free or is another term (another
   * node, or our own older/newer epoch), WitnessUnavailableError when the
   * witness cannot be asked.
   */
  renew(rg: string, nodeId: string, epoch: number, ttlMs: number): Promise<LeaseGrant>;

  /**
   * End the lease term (`nodeId`, `epoch`). True when it was ours and is now
   * free; false when it was not (already expired, or another term): release
   * is idempotent. The epoch counter is untouched.
   */
  release(rg: string, nodeId: string, epoch: number): Promise<boolean>;

  /** The current holder of `rg`'s lease, or null when it is free. */
  holder(rg: string): Promise<LeaseHolder | null>;

  /** The highest epoch of `rg` this client has seen granted, refused or reported (0 if none). */
  highestEpochSeen(rg: string): number;

  /**
   * Tell the client of an epoch of `rg` learnt elsewhere (persisted node
   * state, the peer's data path): later acquires grant above it.
   */
  observeEpoch(rg: string, epoch: number): void;

  /**
   * Record that `nodeId`'s copy of `rg` is outdated: the owner is about to
   * write (or writes) without it. The standby checks this before it takes
   * the group over (README.md "Outdated copies"). Idempotent.
   */
  markOutdated(rg: string, nodeId: string): Promise<void>;

  /** Remove the record if it names `nodeId` (its copy is in sync again). Idempotent. */
  clearOutdated(rg: string, nodeId: string): Promise<void>;

  /** The node whose copy of `rg` is recorded outdated, or null. */
  outdated(rg: string): Promise<string | null>;

  /** Disconnect; later calls reject with WitnessClosedError. Idempotent. */
  close(): Promise<void>;
}

/** Milliseconds on this process's monotonic clock (performance.now: never jumps with NTP or date changes). */
export function monotonicNow(): number {
  // Looked up at each call, so that fake timers installed later take effect.
  return globalThis.performance.now();
}

/**
 * Holder name of the amnesia fence (scripts.ts): the witness forgot epochs
 * a node had seen and parks the lease for one TTL. Never a valid node id
 * (those start with a letter or digit).
 */
export const FORGOTTEN_HOLDER = '!witness-forgot';

/** RG names and node ids: short, printable, and free of the characters used in key names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function checkRgName(rg: string): void {
  if (typeof rg !== 'string' || !NAME.test(rg)) {
    throw new WitnessConfigError(`resource group name ${JSON.stringify(rg)} must be 1-128 of [A-Za-z0-9._:-], starting with a letter or digit`);
  }
}

export function checkNodeId(nodeId: string): void {
  if (typeof nodeId !== 'string' || !NAME.test(nodeId)) {
    throw new WitnessConfigError(`node id ${JSON.stringify(nodeId)} must be 1-128 of [A-Za-z0-9._:-], starting with a letter or digit`);
  }
}

/**
 * Epochs stay below 10^14: Redis's Lua (5.1) turns larger numbers into
 * strings in exponent form, which would corrupt the lease hash.
 */
export const MAX_EPOCH = 1e14 - 1;

export function checkEpoch(epoch: number, what = 'epoch'): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw new WitnessConfigError(`${what} must be a whole number in [0, ${MAX_EPOCH}], got ${epoch}`);
  }
}

/** Lease TTLs are whole milliseconds in [1, 1 day] (Redis PEXPIRE takes integers). */
export function checkTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > 86_400_000) {
    throw new WitnessConfigError(`lease ttl must be a whole number of ms in [1, 86400000], got ${ttlMs}`);
  }
}

/** Per-RG highest epoch seen by a client: the floor of its next acquire. */
export class EpochMemory {
  private readonly highest = new Map<string, number>();

  get(rg: string): number {
    return this.highest.get(rg) ?? 0;
  }

  note(rg: string, epoch: number): void {
    if (epoch > this.get(rg)) this.highest.set(rg, epoch);
  }
}
