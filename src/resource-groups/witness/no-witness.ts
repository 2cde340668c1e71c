/**
 * Running without a witness, and the explicit opt-in to the risky mode.
 *
 * Without a witness nothing can tell a dead peer from a partitioned one.
 * The default ('no-witness') is therefore to never take over a resource
 * group on a partition: only when the peer announced a clean shutdown, or
 * when an operator forces it (after making sure the peer is down).
 *
 * `allowTakeoverWithoutWitness: true` ('no-witness-risky') takes over when
 * the peer's heartbeats stop on every path. RISKY: on a partition (both
 * nodes alive, every heartbeat path cut) BOTH nodes serve the same RG, the
 * replicas diverge and an operator must resolve the split brain, discarding
 * one side's writes. Use it only where the heartbeat paths cannot fail
 * together (e.g. a back-to-back cable and a switched network) and
 * availability is worth that risk.
 *
 * NoWitness is the Witness of the risky mode, so that the LeaseKeeper and
 * the manager run the same code in every mode: it grants every acquire and
 * renewal and arbitrates nothing. Its epochs grow per process only (a node
 * restart starts again from the epochs it is told of with observeEpoch).
 */
import { LeaseLostError, WitnessClosedError, WitnessConfigError } from './errors';
import { RedisWitness, RedisWitnessConnection, RedisWitnessOptions } from './redis-witness';
import {
  AcquireOptions,
  EpochMemory,
  LeaseGrant,
  LeaseHolder,
  Witness,
  checkEpoch,
  checkNodeId,
  checkRgName,
  checkTtl,
  monotonicNow,
} from './witness';

/** How the pair decides takeover on a partition (see decide() in decision.ts). */
export type WitnessMode = 'witness' | 'no-witness' | 'no-witness-risky';

export const WITNESS_MODES: Readonly<Record<WitnessMode, string>> = {
  witness: 'a witness arbitrates: take over only while holding the RG lease; a node that loses peer and witness stops serving',
  'no-witness': 'no witness, the default: never take over on a partition; only after a clean peer shutdown or when the operator forces it',
  'no-witness-risky': 'no witness, allowTakeoverWithoutWitness: take over when the peer is silent on every path. On a partition BOTH nodes serve',
};

export class NoWitness implements Witness {
  readonly kind = 'none';
  private readonly epochs = new EpochMemory();
  private readonly held = new Map<string, { node: string; epoch: number }>();
  private readonly outdatedCopies = new Map<string, string>();
  private closed = false;

  constructor(
    options: { readonly allowTakeoverWithoutWitness: boolean },
    private readonly now: () => number = monotonicNow,
  ) {
    if (options?.allowTakeoverWithoutWitness !== true) {
      throw new WitnessConfigError(
        'NoWitness arbitrates nothing: it exists only for the risky mode, allowTakeoverWithoutWitness: true ' +
          '(on a partition both nodes may serve). Without a witness the safe default needs no Witness object.',
      );
    }
  }

  highestEpochSeen(rg: string): number {
    return this.epochs.get(rg);
  }

  observeEpoch(rg: string, epoch: number): void {
    checkRgName(rg);
    checkEpoch(epoch);
    this.epochs.note(rg, epoch);
  }

  async acquire(rg: string, nodeId: string, ttlMs: number, options: AcquireOptions = {}): Promise<LeaseGrant> {
    this.check('acquire', rg, nodeId);
    checkTtl(ttlMs);
    if (options.minEpoch !== undefined) this.observeEpoch(rg, options.minEpoch);
    const epoch = this.epochs.get(rg) + 1;
    this.epochs.note(rg, epoch);
    this.held.set(rg, { node: nodeId, epoch });
    return { rg, node: nodeId, epoch, ttlMs, expiresAt: this.now() + ttlMs };
  }

  async renew(rg: string, nodeId: string, epoch: number, ttlMs: number): Promise<LeaseGrant> {
    this.check('renew', rg, nodeId);
    checkEpoch(epoch);
    checkTtl(ttlMs);
    const held = this.held.get(rg);
    if (!held || held.node !== nodeId || held.epoch !== epoch) {
      throw new LeaseLostError(rg, nodeId, epoch, held ? { node: held.node, epoch: held.epoch, ttlMs: Number.POSITIVE_INFINITY } : null);
    }
    return { rg, node: nodeId, epoch, ttlMs, expiresAt: this.now() + ttlMs };
  }

  async release(rg: string, nodeId: string, epoch: number): Promise<boolean> {
    this.check('release', rg, nodeId);
    const held = this.held.get(rg);
    if (!held || held.node !== nodeId || held.epoch !== epoch) return false;
    this.held.delete(rg);
    return true;
  }

  /** Only what this process holds: NoWitness knows nothing of the peer. */
  async holder(rg: string): Promise<LeaseHolder | null> {
    this.check('holder', rg);
    const held = this.held.get(rg);
    return held ? { node: held.node, epoch: held.epoch, ttlMs: Number.POSITIVE_INFINITY } : null;
  }

  /** Kept in this process only: without a witness the peer never learns it (the risky mode's known hole). */
  async markOutdated(rg: string, nodeId: string): Promise<void> {
    this.check('mark-outdated', rg, nodeId);
    this.outdatedCopies.set(rg, nodeId);
  }

  async clearOutdated(rg: string, nodeId: string): Promise<void> {
    this.check('clear-outdated', rg, nodeId);
    if (this.outdatedCopies.get(rg) === nodeId) this.outdatedCopies.delete(rg);
  }

  async outdated(rg: string): Promise<string | null> {
    this.check('outdated', rg);
    return this.outdatedCopies.get(rg) ?? null;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private check(operation: string, rg: string, nodeId?: string): void {
    if (this.closed) throw new WitnessClosedError(`${operation} ${rg}`);
    checkRgName(rg);
    if (nodeId !== undefined) checkNodeId(nodeId);
  }
}

/** The witness part of a node's configuration. */
export interface WitnessConfig {
  /** Redis (or a Sentinel set) arbitrating takeovers; absent: no witness. */
  readonly redis?: RedisWitnessConnection;
  readonly keyPrefix?: string;
  readonly redisTunables?: RedisWitnessOptions['tunables'];
  /** Without a witness, take over when the peer is silent on every path. RISKY: see WITNESS_MODES. */
  readonly allowTakeoverWithoutWitness?: boolean;
}

/**
 * The mode and Witness of a configuration: a RedisWitness when one is
 * configured, NoWitness in the risky mode, none in the safe default.
 */
export function createWitness(config: WitnessConfig): { mode: WitnessMode; witness: Witness | null } {
  if (config.redis) {
    if (config.allowTakeoverWithoutWitness) {
      throw new WitnessConfigError('allowTakeoverWithoutWitness applies only without a witness: remove it or the redis witness');
    }
    return {
      mode: 'witness',
      witness: new RedisWitness({ connection: config.redis, keyPrefix: config.keyPrefix, tunables: config.redisTunables }),
    };
  }
  if (config.allowTakeoverWithoutWitness === true) return { mode: 'no-witness-risky', witness: new NoWitness({ allowTakeoverWithoutWitness: true }) };
  return { mode: 'no-witness', witness: null };
}
