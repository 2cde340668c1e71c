/**
 * Requests one node's PairControl makes of the other over the mirror's
 * control messages (topic "pair-rpc"): what the peer is (id, cluster,
 * release, protocol, what it owns and serves, its sessions), and the
 * actions only the node serving a resource group can carry out (move,
 * failback) or that run on the node they concern (maintenance jobs).
 *
 * A request is JSON `{ op, ...args }`; the reply is `{ ok: true, result }`
 * or `{ ok: false, code, message, field? }` with a ControlError code, so a
 * refusal on the peer reaches the API as the same error.
 */
import { ControlError, isControlErrorCode, type JobInfo, type NodeState, type SessionInfo } from '../control';

export const PAIR_RPC_TOPIC = 'pair-rpc';
/** How long a query of the peer may take before it counts as unreachable. */
export const PAIR_RPC_TIMEOUT_MS = 5_000;

/** What a node tells its peer about itself. */
export interface PeerSnapshot {
  readonly id: string;
  readonly clusterId: string;
  readonly release: string | null;
  readonly state: NodeState;
  readonly protocol: { readonly min: number; readonly max: number; readonly negotiated: number | null };
  readonly maintenance: boolean;
  /** Resource groups it serves now. */
  readonly owns: readonly string[];
  /** Volume names it serves now (RG-less volumes it owns and the volumes of the groups it serves). */
  readonly serves: readonly string[];
  /** Its iscsi.listen portals (where its RG-less volumes are served). */
  readonly portals: readonly string[];
  readonly sessions: readonly SessionInfo[];
  readonly configVersion: number;
}

export interface PairRpcMap {
  snapshot: { args: Record<string, never>; result: PeerSnapshot };
  move: { args: { readonly rg: string }; result: null };
  failback: { args: { readonly rg: string }; result: null };
  maintenance: { args: { readonly on: boolean }; result: JobInfo };
  job: { args: { readonly id: string }; result: JobInfo };
}
export type PairRpcOp = keyof PairRpcMap;
export const PAIR_RPC_OPS: readonly PairRpcOp[] = ['snapshot', 'move', 'failback', 'maintenance', 'job'];

/** The type of each argument of each request: a request from the peer is checked against it before its handler runs. */
const PAIR_RPC_ARGS: { readonly [K in PairRpcOp]: { readonly [A in keyof PairRpcMap[K]['args']]-?: 'string' | 'boolean' } } = {
  snapshot: {},
  move: { rg: 'string' },
  failback: { rg: 'string' },
  maintenance: { on: 'boolean' },
  job: { id: 'string' },
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A result checker: null when `v` fits, else what is wrong, naming the path `at` within the result. */
type Check = (v: unknown, at: string) => string | null;
const join = (at: string, key: string | number): string => (typeof key === 'number' ? `${at}[${key}]` : at === '' ? key : `${at}.${key}`);
const typed =
  (type: 'string' | 'number' | 'boolean', nullable = false): Check =>
  (v, at) => (typeof v === type || (nullable && v === null) ? null : `${at} must be a ${type}${nullable ? ' or null' : ''}`);
const oneOf =
  (values: readonly string[]): Check =>
  (v, at) => (typeof v === 'string' && values.includes(v) ? null : `${at} must be one of ${values.join(', ')}`);
const listOf =
  (item: Check): Check =>
  (v, at) => {
    if (!Array.isArray(v)) return `${at} is not a list`;
    for (const [i, x] of v.entries()) {
      const problem = item(x, join(at, i));
      if (problem) return problem;
    }
    return null;
  };
const objectOf =
  (fields: Readonly<Record<string, Check>>): Check =>
  (v, at) => {
    if (!isRecord(v)) return `${at === '' ? 'the result' : at} is not an object`;
    for (const [key, check] of Object.entries(fields)) {
      const problem = check(v[key], join(at, key));
      if (problem) return problem;
    }
    return null;
  };

const NODE_STATES: { readonly [S in NodeState]: S } = { up: 'up', down: 'down', maintenance: 'maintenance', evacuating: 'evacuating', unknown: 'unknown' };
const SESSION_INFO: { readonly [F in keyof SessionInfo]-?: Check } = {
  node: typed('string'),
  initiator: typed('string'),
  target: typed('string'),
  volume: typed('string'),
  portal: typed('string'),
  remote: typed('string'),
  connections: typed('number'),
  since: typed('string'),
};
const PEER_SNAPSHOT: { readonly [F in keyof PeerSnapshot]-?: Check } = {
  id: typed('string'),
  clusterId: typed('string'),
  release: typed('string', true),
  state: oneOf(Object.values(NODE_STATES)),
  protocol: objectOf({ min: typed('number'), max: typed('number'), negotiated: typed('number', true) }),
  maintenance: typed('boolean'),
  owns: listOf(typed('string')),
  serves: listOf(typed('string')),
  portals: listOf(typed('string')),
  sessions: listOf(objectOf(SESSION_INFO)),
  configVersion: typed('number'),
};

/** The shape of each result the peer returns, checked before it is used (a bad one is the peer's fault, not a 500 here). */
const PAIR_RPC_RESULTS: { readonly [K in PairRpcOp]?: Check } = {
  snapshot: objectOf(PEER_SNAPSHOT),
};

/** The request's op and its arguments (only the declared ones); ControlError('invalid') naming what is wrong. */
function parseRequest(data: Buffer): { op: PairRpcOp; args: Record<string, unknown> } {
  let req: unknown;
  try {
    req = JSON.parse(data.toString('utf8'));
  } catch {
    throw new ControlError('invalid', 'the pair request is not JSON');
  }
  if (!isRecord(req)) throw new ControlError('invalid', 'the pair request is not a JSON object');
  const op = req.op;
  if (typeof op !== 'string' || !(PAIR_RPC_OPS as readonly string[]).includes(op)) throw new ControlError('invalid', `unknown pair request ${JSON.stringify(op)}`, { field: 'op' });
  const args: Record<string, unknown> = {};
  for (const [name, type] of Object.entries(PAIR_RPC_ARGS[op as PairRpcOp])) {
    if (typeof req[name] !== type) throw new ControlError('invalid', `pair request ${op}: ${name} must be a ${type}`, { field: name });
    args[name] = req[name];
  }
  return { op: op as PairRpcOp, args };
}

/** The peer's reply, checked for shape; ControlError('peer-unavailable') when it is not a reply. */
function parseReply(raw: Buffer): Reply {
  let reply: unknown;
  try {
    reply = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ControlError('peer-unavailable', 'the peer answered something that is not JSON');
  }
  if (isRecord(reply) && reply.ok === true) return { ok: true, result: reply.result };
  if (isRecord(reply) && reply.ok === false && typeof reply.code === 'string' && typeof reply.message === 'string') {
    return { ok: false, code: reply.code, message: reply.message, ...(typeof reply.field === 'string' ? { field: reply.field } : {}) };
  }
  throw new ControlError('peer-unavailable', 'the peer answered something that is not a pair reply');
}

export type PairRpcHandlers = { readonly [K in PairRpcOp]: (args: PairRpcMap[K]['args']) => Promise<PairRpcMap[K]['result']> };

type Reply = { ok: true; result: unknown } | { ok: false; code: string; message: string; field?: string };

export interface ControlSender {
  sendControl(topic: string, data: Buffer): Promise<Buffer>;
}

/** Calls `op` on the peer; ControlError('peer-unavailable') when it cannot be reached or its result is malformed, the peer's ControlError when it refuses. */
export async function callPeer<K extends PairRpcOp>(port: ControlSender, op: K, args: PairRpcMap[K]['args'], timeoutMs = PAIR_RPC_TIMEOUT_MS): Promise<PairRpcMap[K]['result']> {
  let raw: Buffer;
  let timer: NodeJS.Timeout | undefined;
  try {
    raw = await Promise.race([
      port.sendControl(PAIR_RPC_TOPIC, Buffer.from(JSON.stringify({ op, ...args }))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    throw new ControlError('peer-unavailable', `the peer cannot be reached: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  const reply = parseReply(raw);
  if (reply.ok) {
    const problem = PAIR_RPC_RESULTS[op]?.(reply.result, '') ?? null;
    if (problem !== null) throw new ControlError('peer-unavailable', `the peer's ${op} answer is malformed: ${problem}`);
    return reply.result as PairRpcMap[K]['result'];
  }
  const code = isControlErrorCode(reply.code) ? reply.code : 'precondition-failed';
  throw new ControlError(code, `${reply.message}`, reply.field !== undefined ? { field: reply.field } : {});
}

/** The handler of the peer's requests, to register with onControl(PAIR_RPC_TOPIC, ...). */
export function servePairRpc(handlers: PairRpcHandlers): (data: Buffer) => Promise<Buffer> {
  return async (data) => {
    let reply: Reply;
    try {
      const { op, args } = parseRequest(data);
      const handler = handlers[op] as (a: unknown) => Promise<unknown>;
      reply = { ok: true, result: await handler(args) };
    } catch (err) {
      const e = err as Partial<ControlError> & Error;
      reply =
        err instanceof ControlError
          ? { ok: false, code: err.code, message: err.message, ...(typeof err.details.field === 'string' ? { field: err.details.field } : {}) }
          : { ok: false, code: 'precondition-failed', message: e.message ?? String(err) };
    }
    return Buffer.from(JSON.stringify(reply));
  };
}
