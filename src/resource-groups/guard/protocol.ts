/**
 * The node guard's own messages and state, no I/O.
 *
 * The node guard is the alias guard process (src/alias-ip/guard.ts) with two
 * more duties for when the node dies without a clean shutdown: after it has
 * removed the node's alias IPs it releases the witness leases the node held,
 * then sends the peer the node's death notice. A SIGKILLed owner then costs
 * the survivor neither the lease's time to live nor the liveness dead time:
 * the survivor takes over as soon as it hears the notice, while a node that
 * is merely cut off (its process alive, its guard's pipe open) keeps its
 * lease until it runs out, as before. The alias ops (allow, hold, drop,
 * release) keep their alias-ip form on the same pipe; these are added:
 *
 *   {"op":"witness","node":"a","host":"198.18.0.1","port":6379,"keyPrefix":"twinsan:witness:"}
 *   {"op":"lease","rg":"rg-a","epoch":7}      the node holds rg-a's lease term 7
 *   {"op":"unlease","rg":"rg-a"}              it no longer does (released, lost)
 *   {"op":"notice","host":"198.18.0.2","port":7400,"from":"198.18.0.1","datagram":"<base64>"}
 *
 * The notice is a heartbeat datagram of kind 'died' the node signed itself
 * (heartbeat.ts), so the guard never holds the pair's secret. A lease is
 * released only as the term the node held (node and epoch): a term the node
 * gave up, or one a restarted node took since, is not touched.
 */
import net from 'node:net';

export const NODE_GUARD_OPS = new Set(['witness', 'lease', 'unlease', 'notice'] as const);
export type NodeGuardOp = typeof NODE_GUARD_OPS extends Set<infer T> ? T : never;

export interface WitnessAddress {
  /** The node whose lease terms these are. */
  readonly node: string;
  readonly host: string;
  readonly port: number;
  readonly keyPrefix: string | null;
}

export interface DeathNotice {
  /** Where the peer's heartbeat listens. */
  readonly host: string;
  readonly port: number;
  /** The node's front-end address, to send from (the route the heartbeat takes). */
  readonly from: string;
  readonly datagram: Buffer;
}

export type NodeGuardMessage =
  | ({ readonly op: 'witness' } & WitnessAddress)
  | { readonly op: 'lease'; readonly rg: string; readonly epoch: number }
  | { readonly op: 'unlease'; readonly rg: string }
  | ({ readonly op: 'notice' } & DeathNotice);

/** Longest datagram a notice carries (a heartbeat with a 128-byte node id is ~160 bytes). */
const MAX_NOTICE_BYTES = 512;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export class NodeGuardMessageError extends Error {}

/** One line (with its newline) for a message. */
export function encodeNodeGuardMessage(m: NodeGuardMessage): string {
  return `${JSON.stringify(m.op === 'notice' ? { ...m, datagram: m.datagram.toString('base64') } : m)}\n`;
}

type Raw = Record<string, unknown>;

function fail(op: string, what: string): never {
  throw new NodeGuardMessageError(`guard message ${op}: ${what}`);
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function host(op: string, v: unknown, field: string): string {
  if (typeof v !== 'string' || (net.isIP(v) === 0 && !HOST_NAME.test(v))) fail(op, `${field} must be an IP address or host name, got ${JSON.stringify(v)}`);
  return v;
}

function port(op: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) fail(op, `port must be 1-65535, got ${JSON.stringify(v)}`);
  return v;
}

/** Resource group names and node ids have the witness's form (witness.ts checkRgName). */
function name(op: string, v: unknown, what: string): string {
  if (typeof v !== 'string' || !NAME.test(v)) fail(op, `bad ${what} ${JSON.stringify(v)}`);
  return v;
}

/** The parser of each op's fields. */
const FIELD_PARSERS: { readonly [K in NodeGuardOp]: (raw: Raw) => Extract<NodeGuardMessage, { op: K }> } = {
  witness: (raw) => {
    const prefix = raw.keyPrefix ?? null;
    if (prefix !== null && (typeof prefix !== 'string' || prefix.length > 128)) fail('witness', 'keyPrefix must be a string of at most 128 characters');
    return { op: 'witness', node: name('witness', raw.node, 'node id'), host: host('witness', raw.host, 'host'), port: port('witness', raw.port), keyPrefix: prefix };
  },
  lease: (raw) => {
    const epoch = raw.epoch;
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 1) fail('lease', `epoch must be a positive whole number, got ${JSON.stringify(epoch)}`);
    return { op: 'lease', rg: name('lease', raw.rg, 'resource group name'), epoch };
  },
  unlease: (raw) => ({ op: 'unlease', rg: name('unlease', raw.rg, 'resource group name') }),
  notice: (raw) => {
    if (typeof raw.datagram !== 'string') fail('notice', 'datagram must be base64');
    const datagram = Buffer.from(raw.datagram, 'base64');
    if (datagram.length === 0 || datagram.length > MAX_NOTICE_BYTES) fail('notice', `datagram must be 1-${MAX_NOTICE_BYTES} bytes`);
    return { op: 'notice', host: host('notice', raw.host, 'host'), port: port('notice', raw.port), from: host('notice', raw.from, 'from'), datagram };
  },
};

/** Parses one line (without its newline); throws NodeGuardMessageError naming what is wrong. */
export function parseNodeGuardMessage(line: string): NodeGuardMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new NodeGuardMessageError(`guard message is not JSON: ${line.slice(0, 60)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new NodeGuardMessageError('guard message must be a JSON object');
  const op = (raw as Raw).op;
  if (typeof op !== 'string' || !NODE_GUARD_OPS.has(op as NodeGuardOp)) throw new NodeGuardMessageError(`guard message: unknown op ${JSON.stringify(op)}`);
  return FIELD_PARSERS[op as NodeGuardOp](raw as Raw);
}

/** What the guard does if the node dies now. */
export interface DeathDuties {
  readonly witness: WitnessAddress | null;
  /** The lease terms to release, by group. */
  readonly leases: readonly { readonly rg: string; readonly epoch: number }[];
  readonly notice: DeathNotice | null;
}

/** What the guard knows of the node's leases and peer; every change goes through apply(). */
export class NodeGuardState {
  private witness: WitnessAddress | null = null;
  private notice: DeathNotice | null = null;
  private readonly leases = new Map<string, number>();

  apply(m: NodeGuardMessage): void {
    (this.transitions[m.op] as (m: NodeGuardMessage) => void)(m);
  }

  duties(): DeathDuties {
    return { witness: this.witness, leases: [...this.leases].map(([rg, epoch]) => ({ rg, epoch })), notice: this.notice };
  }

  /** One transition per op: the only place the state changes. */
  private readonly transitions: { readonly [K in NodeGuardOp]: (m: Extract<NodeGuardMessage, { op: K }>) => void } = {
    witness: (m) => void (this.witness = { node: m.node, host: m.host, port: m.port, keyPrefix: m.keyPrefix }),
    lease: (m) => void this.leases.set(m.rg, m.epoch),
    unlease: (m) => void this.leases.delete(m.rg),
    notice: (m) => void (this.notice = { host: m.host, port: m.port, from: m.from, datagram: m.datagram }),
  };
}
