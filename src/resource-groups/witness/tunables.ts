/**
 * The witness's tunables, each with its bounds, default and unit in one
 * place: LEASE_TUNABLES for the LeaseKeeper (lease timing, README.md
 * "Timing budget"), REDIS_WITNESS_TUNABLES for the Redis client.
 */
import { WitnessConfigError } from './errors';

export interface WitnessTunable {
  readonly min: number;
  readonly max: number;
  readonly default: number;
  readonly unit: 'ms' | 'replicas';
  readonly doc: string;
}

export const LEASE_TUNABLES = {
  leaseTtlMs: {
    min: 100,
    max: 600_000,
    default: 1_000,
    unit: 'ms',
    doc:
      'lease time to live on the witness (Redis PX). A peer that dies holding a lease delays takeover by up to this long, ' +
      'so it bounds failover time on peer death together with heartbeat detection',
  },
  renewIntervalMs: {
    min: 10,
    max: 200_000,
    default: 300,
    unit: 'ms',
    doc: 'a held lease is renewed this long after the start of its last successful renewal (about a third of the TTL)',
  },
  renewRetryMs: {
    min: 5,
    max: 60_000,
    default: 100,
    unit: 'ms',
    doc: 'after a failed renewal (witness unavailable), the next attempt comes this long after the failure',
  },
  safetyMarginMs: {
    min: 0,
    max: 60_000,
    default: 100,
    unit: 'ms',
    doc:
      'the serving deadline is the start of the last successful renewal + TTL - this: covers clock-rate difference ' +
      'between node and witness, Redis expiry granularity and a late timer',
  },
  stopBudgetMs: {
    min: 0,
    max: 60_000,
    default: 150,
    unit: 'ms',
    doc: "'must-stop' is emitted this long before the serving deadline: the time the owner has to drop alias IPs and refuse commands",
  },
  acquirePollMs: {
    min: 5,
    max: 60_000,
    default: 50,
    unit: 'ms',
    doc: 'waitAndAcquire asks the witness this often while another node holds the lease',
  },
} as const satisfies Record<string, WitnessTunable>;

export const REDIS_WITNESS_TUNABLES = {
  commandTimeoutMs: {
    min: 10,
    max: 60_000,
    default: 200,
    unit: 'ms',
    doc: 'a witness command not answered within this long fails with WitnessUnavailableError (the server may still have run it)',
  },
  connectTimeoutMs: {
    min: 10,
    max: 60_000,
    default: 500,
    unit: 'ms',
    doc: 'a TCP connection to Redis (or a Sentinel) not established within this long is abandoned and retried',
  },
  reconnectMaxDelayMs: {
    min: 10,
    max: 60_000,
    default: 500,
    unit: 'ms',
    doc: 'reconnect attempts back off by 50 ms per attempt up to this delay; while disconnected, commands fail at once',
  },
  replicasToAck: {
    min: 0,
    max: 16,
    default: 0,
    unit: 'replicas',
    doc:
      'after an acquire or renew, WAIT until this many replicas acknowledged it; a grant or renewal they did not ' +
      'acknowledge in time counts as failed. Set 1 with Sentinel (README.md "Sentinel")',
  },
  replicaAckTimeoutMs: {
    min: 1,
    max: 60_000,
    default: 100,
    unit: 'ms',
    doc: 'how long WAIT waits for replicasToAck replicas',
  },
} as const satisfies Record<string, WitnessTunable>;

export type LeaseTunables = { readonly [K in keyof typeof LEASE_TUNABLES]: number };
export type RedisWitnessTunables = { readonly [K in keyof typeof REDIS_WITNESS_TUNABLES]: number };

function resolve<T extends Record<string, WitnessTunable>>(
  table: T,
  what: string,
  given: Partial<Record<keyof T, number>>,
): { [K in keyof T]: number } {
  for (const name of Object.keys(given)) {
    if (!Object.prototype.hasOwnProperty.call(table, name)) throw new WitnessConfigError(`unknown ${what} tunable ${name}`);
  }
  const out: Record<string, number> = {};
  for (const [name, t] of Object.entries(table)) {
    const v = given[name as keyof T] ?? t.default;
    if (!Number.isInteger(v) || v < t.min || v > t.max) {
      throw new WitnessConfigError(`${what} tunable ${name} must be a whole number in [${t.min}, ${t.max}] ${t.unit}, got ${v}`);
    }
    out[name] = v;
  }
  return out as { [K in keyof T]: number };
}

/** The given lease timings over the defaults; throws WitnessConfigError when out of bounds or inconsistent. */
export function resolveLeaseTunables(given: Partial<LeaseTunables> = {}): LeaseTunables {
  const t = resolve(LEASE_TUNABLES, 'lease', given);
  const mustStopAfter = t.leaseTtlMs - t.safetyMarginMs - t.stopBudgetMs;
  if (mustStopAfter < 2 * t.renewIntervalMs) {
    throw new WitnessConfigError(
      `lease timings leave no room for a second renewal: TTL ${t.leaseTtlMs} - safetyMargin ${t.safetyMarginMs} - ` +
        `stopBudget ${t.stopBudgetMs} = ${mustStopAfter} ms must be at least 2 x renewInterval ${t.renewIntervalMs} ms`,
    );
  }
  if (t.renewRetryMs > t.renewIntervalMs) {
    throw new WitnessConfigError(`renewRetryMs (${t.renewRetryMs}) must not exceed renewIntervalMs (${t.renewIntervalMs})`);
  }
  return t;
}

/** The given Redis client tunables over the defaults; throws WitnessConfigError when out of bounds. */
export function resolveRedisWitnessTunables(given: Partial<RedisWitnessTunables> = {}): RedisWitnessTunables {
  return resolve(REDIS_WITNESS_TUNABLES, 'redis witness', given);
}
