/**
 * The Lua scripts that make every lease operation one atomic step on the
 * Redis server, and the parsing of their replies. No I/O here.
 *
 * Keys of a resource group (both in one hash slot thanks to the {rg} tag):
 *   <prefix>{<rg>}:lease   hash {node, epoch}, with a PX expiry: the lease
 *   <prefix>{<rg>}:epoch   integer, no expiry: the highest epoch ever granted
 *   <prefix>{<rg>}:outdated  string, no expiry: the node whose copy is outdated (absent: none)
 *
 * The epoch counter never goes backwards: acquire sets it to
 * max(counter, minEpoch) + 1, where minEpoch is the highest epoch the
 * asking node has seen. Expiry and release delete only the lease key.
 *
 * Amnesia fence: a free lease whose counter is below minEpoch means the
 * witness forgot (restarted without persistence, or failed over to a
 * replica that missed writes), so some node may still hold a lease the
 * witness no longer knows. Instead of granting, acquire then parks the
 * lease under FORGOTTEN_HOLDER for one TTL: nobody gets it until any lease
 * granted before the loss has run out.
 */
import { createHash } from 'node:crypto';
import { WitnessReplyError } from './errors';
import { FORGOTTEN_HOLDER, type LeaseHolder } from './witness';

export { FORGOTTEN_HOLDER };

export interface LeaseKeys {
  readonly lease: string;
  readonly epoch: string;
  readonly outdated: string;
}

export function leaseKeys(prefix: string, rg: string): LeaseKeys {
  return { lease: `${prefix}{${rg}}:lease`, epoch: `${prefix}{${rg}}:epoch`, outdated: `${prefix}{${rg}}:outdated` };
}

export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  readonly sha1: string;
  readonly numKeys: number;
}

function script(name: string, numKeys: number, lua: string): LuaScript {
  return { name, lua, numKeys, sha1: createHash('sha1').update(lua).digest('hex') };
}

/**
 * KEYS: lease, epoch. ARGV: node, ttlMs, minEpoch, fenceHolder.
 * Reply: {1, node, epoch, ttlMs} granted; {0, holder, holderEpoch, pttl}
 * refused (held by another node, or by the amnesia fence just set).
 */
export const ACQUIRE = script(
  'acquire',
  2,
  `local holder = redis.call('HGET', KEYS[1], 'node')
if holder and holder ~= ARGV[1] then
  return {0, holder, tonumber(redis.call('HGET', KEYS[1], 'epoch')) or 0, redis.call('PTTL', KEYS[1])}
end
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local floor = tonumber(ARGV[3])
if floor > counter then
  redis.call('SET', KEYS[2], floor)
  if not holder then
    redis.call('HSET', KEYS[1], 'node', ARGV[4], 'epoch', floor)
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {0, ARGV[4], floor, tonumber(ARGV[2])}
  end
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, ARGV[1], epoch, tonumber(ARGV[2])}
`,
);

/**
 * KEYS: lease. ARGV: node, epoch, ttlMs.
 * Reply: {1, node, epoch, ttlMs} renewed; {0, holder|false, holderEpoch, pttl} not ours.
 */
export const RENEW = script(
  'renew',
  1,
  `local h = redis.call('HMGET', KEYS[1], 'node', 'epoch')
if h[1] == ARGV[1] and h[2] == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])}
end
if not h[1] then return {0, false, 0, -2} end
return {0, h[1], tonumber(h[2]) or 0, redis.call('PTTL', KEYS[1])}
`,
);

/** KEYS: lease. ARGV: node, epoch. Reply: 1 released, 0 not ours (or already free). */
export const RELEASE = script(
  'release',
  1,
  `local h = redis.call('HMGET', KEYS[1], 'node', 'epoch')
if h[1] == ARGV[1] and h[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`,
);

/**
 * KEYS: lease, epoch. ARGV: none.
 * Reply: {holder|false, holderEpoch, pttl, counter}.
 */
export const HOLDER = script(
  'holder',
  2,
  `local h = redis.call('HMGET', KEYS[1], 'node', 'epoch')
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
if not h[1] then return {false, 0, -2, counter} end
return {h[1], tonumber(h[2]) or 0, redis.call('PTTL', KEYS[1]), counter}
`,
);

export const SCRIPTS = [ACQUIRE, RENEW, RELEASE, HOLDER] as const;

// ---- replies ----

/** A reply of ACQUIRE or RENEW: ok, and the holder now (null when free). */
export interface LeaseReply {
  readonly ok: boolean;
  readonly holder: LeaseHolder | null;
}

function int(value: unknown, operation: string, what: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new WitnessReplyError(operation, `${what} is ${JSON.stringify(value)}, not an integer`);
  return n;
}

function holderOf(node: unknown, epoch: unknown, pttl: unknown, operation: string): LeaseHolder | null {
  // Lua false comes back as a null bulk string.
  if (node === null || node === undefined || node === false) return null;
  const name = Buffer.isBuffer(node) ? node.toString('utf8') : node;
  if (typeof name !== 'string') throw new WitnessReplyError(operation, `holder is ${JSON.stringify(node)}`);
  const ttl = int(pttl, operation, 'ttl');
  // -1: a lease key without expiry is nobody's doing but an operator's; report it as never expiring.
  return { node: name, epoch: int(epoch, operation, 'epoch'), ttlMs: ttl < 0 ? Number.POSITIVE_INFINITY : ttl };
}

function array(reply: unknown, length: number, operation: string): unknown[] {
  if (!Array.isArray(reply) || reply.length !== length) throw new WitnessReplyError(operation, `expected an array of ${length}, got ${JSON.stringify(reply)}`);
  return reply;
}

export function parseLeaseReply(reply: unknown, operation: string): LeaseReply {
  const [ok, node, epoch, ttl] = array(reply, 4, operation);
  return { ok: int(ok, operation, 'status') === 1, holder: holderOf(node, epoch, ttl, operation) };
}

export function parseReleaseReply(reply: unknown, operation: string): boolean {
  return int(reply, operation, 'status') === 1;
}

export interface HolderReply {
  readonly holder: LeaseHolder | null;
  /** The RG's epoch counter: the highest epoch granted so far. */
  readonly counter: number;
}

export function parseHolderReply(reply: unknown, operation: string): HolderReply {
  const [node, epoch, ttl, counter] = array(reply, 4, operation);
  return { holder: holderOf(node, epoch, ttl, operation), counter: int(counter, operation, 'counter') };
}

/** KEYS: outdated. ARGV: node. Deletes the record only if it names the node. Reply: 1 deleted, 0 not. */
export const CLEAR_OUTDATED = script(
  'clear-outdated',
  1,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`,
);

/** The GET of the outdated record: a node id, or null. */
export function parseOutdatedReply(reply: unknown, operation: string): string | null {
  if (reply === null) return null;
  if (typeof reply !== 'string' || reply === '') throw new WitnessReplyError(operation, `outdated record ${JSON.stringify(reply)} is not a node id`);
  return reply;
}
