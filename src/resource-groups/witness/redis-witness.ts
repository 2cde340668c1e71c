/**
 * RedisWitness: leases kept in Redis (one server, or a Sentinel-managed
 * master), every operation one Lua script (scripts.ts), sent as EVALSHA and
 * falling back to EVAL (which also caches it) when the server answers
 * NOSCRIPT, e.g. after a restart, a failover or SCRIPT FLUSH.
 *
 * Failing fast is the point: while disconnected, commands fail at once
 * (no offline queue); a command not answered within commandTimeoutMs fails;
 * a command whose connection dropped is not re-sent on reconnect. Every
 * such failure is a WitnessUnavailableError, and the LeaseKeeper decides
 * what it means for serving. A failed acquire may still have been applied
 * by the server: the lease is then ours and expires unused after its TTL,
 * or is picked up by our next acquire (acquire succeeds when already ours).
 *
 * See README.md for persistence and Sentinel.
 */
import Redis, { type RedisOptions } from 'ioredis';
import {
  LeaseLostError,
  WitnessClosedError,
  WitnessConfigError,
  WitnessError,
  WitnessReplyError,
  WitnessUnavailableError,
} from './errors';
import { ACQUIRE, CLEAR_OUTDATED, FORGOTTEN_HOLDER, HOLDER, LuaScript, RELEASE, RENEW, leaseKeys, parseHolderReply, parseLeaseReply, parseOutdatedReply, parseReleaseReply } from './scripts';
import { RedisWitnessTunables, resolveRedisWitnessTunables } from './tunables';
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

export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** One Redis server. */
export interface RedisStandaloneConnection extends RedisAddress {
  readonly username?: string;
  readonly password?: string;
  readonly db?: number;
}

/** A Sentinel set: the client asks the sentinels for the master of `name` and follows failovers. */
export interface RedisSentinelConnection {
  readonly sentinels: readonly RedisAddress[];
  /** The master group name the sentinels monitor. */
  readonly name: string;
  readonly username?: string;
  readonly password?: string;
  readonly sentinelUsername?: string;
  readonly sentinelPassword?: string;
  readonly db?: number;
}

export type RedisWitnessConnection = RedisStandaloneConnection | RedisSentinelConnection;

export interface RedisWitnessOptions {
  readonly connection: RedisWitnessConnection;
  /** Prefix of every key (default "twinsan:witness:"); two pairs sharing a Redis need different ones. */
  readonly keyPrefix?: string;
  readonly tunables?: Partial<RedisWitnessTunables>;
  /** Monotonic clock, ms (default performance.now). */
  readonly now?: () => number;
  /** Connection name shown by CLIENT LIST (default "twinsan-witness"). */
  readonly connectionName?: string;
}

export const DEFAULT_KEY_PREFIX = 'twinsan:witness:';

/** Reply errors that mean "this server cannot take the lease write now", not a bug. */
const UNAVAILABLE_REPLIES = ['READONLY', 'LOADING', 'MASTERDOWN', 'NOREPLICAS', 'BUSY', 'TRYAGAIN', 'CLUSTERDOWN', 'MISCONF', 'OOM'];

export function isSentinelConnection(c: RedisWitnessConnection): c is RedisSentinelConnection {
  return Array.isArray((c as RedisSentinelConnection).sentinels);
}

function checkAddress(a: RedisAddress, what: string): void {
  if (typeof a?.host !== 'string' || a.host === '') throw new WitnessConfigError(`${what}: host must be a non-empty string`);
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65_535) throw new WitnessConfigError(`${what}: port must be in [1, 65535], got ${a.port}`);
}

function checkConnection(c: RedisWitnessConnection): void {
  if (isSentinelConnection(c)) {
    if (c.sentinels.length === 0) throw new WitnessConfigError('witness connection: sentinels must list at least one sentinel');
    c.sentinels.forEach((s, i) => checkAddress(s, `witness connection: sentinels[${i}]`));
    if (typeof c.name !== 'string' || c.name === '') throw new WitnessConfigError('witness connection: name (the master group) must be a non-empty string');
  } else {
    checkAddress(c, 'witness connection');
  }
}

export class RedisWitness implements Witness {
  readonly kind = 'redis';
  readonly tunables: RedisWitnessTunables;
  readonly keyPrefix: string;
  private readonly client: Redis;
  private readonly now: () => number;
  private readonly epochs = new EpochMemory();
  private closed = false;

  constructor(options: RedisWitnessOptions) {
    checkConnection(options.connection);
    this.tunables = resolveRedisWitnessTunables(options.tunables);
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    if (/[{}]/.test(this.keyPrefix)) throw new WitnessConfigError(`key prefix ${JSON.stringify(this.keyPrefix)} must not contain { or }`);
    this.now = options.now ?? monotonicNow;
    this.client = new Redis(this.redisOptions(options));
    // Connection errors surface as failed commands; without a listener ioredis would print them.
    this.client.on('error', () => {});
  }

  private redisOptions(options: RedisWitnessOptions): RedisOptions {
    const t = this.tunables;
    const c = options.connection;
    const common: RedisOptions = {
      connectionName: options.connectionName ?? 'twinsan-witness',
      protocol: 2,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: t.commandTimeoutMs,
      connectTimeout: t.connectTimeoutMs,
      retryStrategy: (attempt: number) => Math.min(50 * attempt, t.reconnectMaxDelayMs),
      // A master demoted under us (Sentinel failover): reconnect so the sentinels name the new one; do not re-send.
      reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
      lazyConnect: false,
      username: c.username,
      password: c.password,
      db: c.db ?? 0,
    };
    if (!isSentinelConnection(c)) return { ...common, host: c.host, port: c.port };
    return {
      ...common,
      sentinels: c.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: c.name,
      sentinelUsername: c.sentinelUsername,
      sentinelPassword: c.sentinelPassword,
      sentinelCommandTimeout: t.commandTimeoutMs,
      sentinelRetryStrategy: (attempt: number) => Math.min(50 * attempt, t.reconnectMaxDelayMs),
      failoverDetector: true,
      // Sentinels may report the members' addresses as they see them; keep what they report.
      updateSentinels: true,
    };
  }

  /** Resolves once connected (and, with Sentinel, connected to the master); rejects after `timeoutMs`. */
  async ready(timeoutMs = 5_000): Promise<void> {
    if (this.closed) throw new WitnessClosedError('ready');
    if (this.client.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new WitnessUnavailableError('connect', `not connected within ${timeoutMs} ms (status ${this.client.status})`));
      }, timeoutMs);
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onEnd = (): void => {
        cleanup();
        reject(new WitnessUnavailableError('connect', 'the connection ended'));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('end', onEnd);
      };
      this.client.on('ready', onReady);
      this.client.on('end', onEnd);
    });
  }

  /** True while connected and ready for commands. */
  get connected(): boolean {
    return this.client.status === 'ready';
  }

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
    const operation = `acquire ${rg}`;
    const keys = leaseKeys(this.keyPrefix, rg);
    const sentAt = this.now();
    const reply = parseLeaseReply(await this.run(ACQUIRE, [keys.lease, keys.epoch], [nodeId, ttlMs, this.epochs.get(rg), FORGOTTEN_HOLDER], operation), operation);
    if (reply.holder) this.epochs.note(rg, reply.holder.epoch);
    if (!reply.ok) return null;
    if (!reply.holder || reply.holder.node !== nodeId) throw new WitnessReplyError(operation, 'granted without naming us as holder');
    const epoch = reply.holder.epoch;
    try {
      await this.awaitReplicas(operation);
    } catch (e) {
      // Not replicated: a failover could forget this grant and hand the same epoch out again. Give it back.
      await this.run(RELEASE, [keys.lease], [nodeId, epoch], `release ${rg}`).catch(() => undefined);
      throw e;
    }
    return { rg, node: nodeId, epoch, ttlMs, expiresAt: sentAt + ttlMs };
  }

  async renew(rg: string, nodeId: string, epoch: number, ttlMs: number): Promise<LeaseGrant> {
    checkRgName(rg);
    checkNodeId(nodeId);
    checkEpoch(epoch);
    checkTtl(ttlMs);
    const operation = `renew ${rg}`;
    const keys = leaseKeys(this.keyPrefix, rg);
    const sentAt = this.now();
    const reply = parseLeaseReply(await this.run(RENEW, [keys.lease], [nodeId, epoch, ttlMs], operation), operation);
    if (reply.holder) this.epochs.note(rg, reply.holder.epoch);
    if (!reply.ok) throw new LeaseLostError(rg, nodeId, epoch, reply.holder);
    await this.awaitReplicas(operation);
    return { rg, node: nodeId, epoch, ttlMs, expiresAt: sentAt + ttlMs };
  }

  async release(rg: string, nodeId: string, epoch: number): Promise<boolean> {
    checkRgName(rg);
    checkNodeId(nodeId);
    checkEpoch(epoch);
    const operation = `release ${rg}`;
    const keys = leaseKeys(this.keyPrefix, rg);
    return parseReleaseReply(await this.run(RELEASE, [keys.lease], [nodeId, epoch], operation), operation);
  }

  async holder(rg: string): Promise<LeaseHolder | null> {
    checkRgName(rg);
    const operation = `holder ${rg}`;
    const keys = leaseKeys(this.keyPrefix, rg);
    const reply = parseHolderReply(await this.run(HOLDER, [keys.lease, keys.epoch], [], operation), operation);
    this.epochs.note(rg, reply.counter);
    if (reply.holder) this.epochs.note(rg, reply.holder.epoch);
    return reply.holder;
  }

  async markOutdated(rg: string, nodeId: string): Promise<void> {
    checkRgName(rg);
    checkNodeId(nodeId);
    const operation = `mark-outdated ${rg}`;
    await this.command(operation, () => this.client.set(leaseKeys(this.keyPrefix, rg).outdated, nodeId));
    await this.awaitReplicas(operation);
  }

  async clearOutdated(rg: string, nodeId: string): Promise<void> {
    checkRgName(rg);
    checkNodeId(nodeId);
    await this.run(CLEAR_OUTDATED, [leaseKeys(this.keyPrefix, rg).outdated], [nodeId], `clear-outdated ${rg}`);
  }

  async outdated(rg: string): Promise<string | null> {
    checkRgName(rg);
    const operation = `outdated ${rg}`;
    return parseOutdatedReply(await this.command(operation, () => this.client.get(leaseKeys(this.keyPrefix, rg).outdated)), operation);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // disconnect(), not quit(): quit waits for an answer a cut-off server never sends.
    this.client.disconnect();
  }

  /** WAIT for the configured number of replicas; WitnessUnavailableError when fewer acknowledged in time. */
  private async awaitReplicas(operation: string): Promise<void> {
    const want = this.tunables.replicasToAck;
    if (want === 0) return;
    let acked: number;
    try {
      acked = await this.client.wait(want, this.tunables.replicaAckTimeoutMs);
    } catch (e) {
      throw this.translate(e, operation);
    }
    if (acked < want) {
      throw new WitnessUnavailableError(operation, `only ${acked} of ${want} replicas acknowledged within ${this.tunables.replicaAckTimeoutMs} ms`);
    }
  }

  /** One plain command, its errors translated as the scripts' are. */
  private async command<T>(operation: string, send: () => Promise<T>): Promise<T> {
    if (this.closed) throw new WitnessClosedError(operation);
    try {
      return await send();
    } catch (e) {
      throw this.translate(e, operation);
    }
  }

  /** EVALSHA, then EVAL when the server does not have the script cached. */
  private async run(script: LuaScript, keys: string[], args: (string | number)[], operation: string): Promise<unknown> {
    if (this.closed) throw new WitnessClosedError(operation);
    try {
      return await this.client.evalsha(script.sha1, script.numKeys, ...keys, ...args);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw this.translate(e, operation);
    }
    try {
      return await this.client.eval(script.lua, script.numKeys, ...keys, ...args);
    } catch (e) {
      throw this.translate(e, operation);
    }
  }

  private translate(e: unknown, operation: string): WitnessError {
    if (this.closed) return new WitnessClosedError(operation);
    if (e instanceof WitnessError) return e;
    const message = e instanceof Error ? e.message : String(e);
    // A reply error (the server answered) whose first word is not a "try later" condition is a bug or a foreign key.
    if (e instanceof Error && e.name === 'ReplyError' && !UNAVAILABLE_REPLIES.some((p) => message.startsWith(p))) {
      return new WitnessReplyError(operation, message, { cause: e });
    }
    return new WitnessUnavailableError(operation, message, { cause: e });
  }
}
