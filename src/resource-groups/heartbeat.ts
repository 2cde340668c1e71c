/**
 * The front-end heartbeat: a small authenticated UDP datagram sent every
 * `intervalMs` from this node's front-end address to the peer's, the
 * second failure-detection path next to the mirror's PeerChannel (which
 * runs over the replication links). A node leaving cleanly sends 'bye'
 * a few times so the survivor can take over without a witness.
 *
 * Wire form (codec only, no I/O in encode/decode):
 *   0  4  magic "TSHB"
 *   4  1  version (1)
 *   5  1  kind (1 beat, 2 bye)
 *   6  2  length of the sender's node id (n)
 *   8  4  sequence number
 *  12  n  sender node id (UTF-8)
 *  12+n 2  length of the resource group name (r; 0 for beat and bye)
 *  14+n r  resource group name (UTF-8)
 *  14+n+r 16 HMAC-SHA256(secret, clusterId || everything before), first 16 bytes
 *
 * Besides beat and bye, the same socket carries the planned-move handshake:
 * 'move-in' asks the peer to take a group in (resent until answered), and
 * the peer answers 'moved-in' or 'move-failed' for that group. 'hand-back'
 * asks the peer to move a group it serves back to the sender, its preferred
 * node (a node leaving maintenance, over any protocol version of the mirror
 * link: the mirror's control messages need version 2); the peer answers
 * 'handed-back' or 'hand-back-failed'. A node that does not know a kind
 * drops the datagram (decodeHeartbeat), so the requester times out.
 *
 * 'died' is never sent by a running node: the node signs one at start and
 * hands it to its guard process (guard/), which sends it when the node's
 * process has gone without a clean shutdown. It is evidence of death, not
 * a permission: the receiver's liveness counts the peer dead at once when no
 * other path vouches for it (liveness.ts), and a takeover still needs the
 * lease. It does not count as having heard the peer.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { LivenessPath } from './liveness';

export const HEARTBEAT_KINDS = { beat: 1, bye: 2, 'move-in': 3, 'moved-in': 4, 'move-failed': 5, 'hand-back': 6, 'handed-back': 7, 'hand-back-failed': 8, died: 9 } as const;
export type HeartbeatKind = keyof typeof HEARTBEAT_KINDS;

/** The requests a node makes of its peer over this socket, with the answers that end each. */
const REQUESTS = {
  'move-in': { ok: 'moved-in', failed: 'move-failed', what: (rg: string) => `take ${rg} in` },
  'hand-back': { ok: 'handed-back', failed: 'hand-back-failed', what: (rg: string) => `hand ${rg} back` },
} as const satisfies Record<string, { ok: HeartbeatKind; failed: HeartbeatKind; what: (rg: string) => string }>;
type RequestKind = keyof typeof REQUESTS;
/** Each answer kind: the request it answers and whether it says done. */
const ANSWERS: Partial<Record<HeartbeatKind, { request: RequestKind; ok: boolean }>> = Object.fromEntries(
  (Object.keys(REQUESTS) as RequestKind[]).flatMap((r) => [
    [REQUESTS[r].ok, { request: r, ok: true }],
    [REQUESTS[r].failed, { request: r, ok: false }],
  ]),
);

const MAGIC = Buffer.from('TSHB');
const VERSION = 1;
const MAC_BYTES = 16;
const HEADER_BYTES = 12;

/**
 * A request the peer never answered within its time: unlike a refusal it says
 * nothing of what the peer did (its answer may have been lost, or it may still
 * be working on the request).
 */
export class PeerNoAnswerError extends Error {
  override readonly name = 'PeerNoAnswerError';
}

export interface HeartbeatMessage {
  readonly kind: HeartbeatKind;
  readonly nodeId: string;
  readonly seq: number;
  /** The resource group of a move message ('' for beat and bye). */
  readonly rg?: string;
}

function mac(secret: string, clusterId: string, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(clusterId).update(body).digest().subarray(0, MAC_BYTES);
}

export function encodeHeartbeat(m: HeartbeatMessage, secret: string, clusterId: string): Buffer {
  const id = Buffer.from(m.nodeId, 'utf8');
  const rg = Buffer.from(m.rg ?? '', 'utf8');
  const body = Buffer.alloc(HEADER_BYTES + id.length + 2 + rg.length);
  MAGIC.copy(body, 0);
  body[4] = VERSION;
  body[5] = HEARTBEAT_KINDS[m.kind];
  body.writeUInt16BE(id.length, 6);
  body.writeUInt32BE(m.seq >>> 0, 8);
  id.copy(body, HEADER_BYTES);
  body.writeUInt16BE(rg.length, HEADER_BYTES + id.length);
  rg.copy(body, HEADER_BYTES + id.length + 2);
  return Buffer.concat([body, mac(secret, clusterId, body)]);
}

/** The message, or null for anything that is not a heartbeat of this cluster signed with this secret. */
export function decodeHeartbeat(buf: Buffer, secret: string, clusterId: string): HeartbeatMessage | null {
  if (buf.length < HEADER_BYTES + 2 + MAC_BYTES || !buf.subarray(0, 4).equals(MAGIC) || buf[4] !== VERSION) return null;
  const n = buf.readUInt16BE(6);
  if (buf.length < HEADER_BYTES + n + 2 + MAC_BYTES) return null;
  const r = buf.readUInt16BE(HEADER_BYTES + n);
  const end = HEADER_BYTES + n + 2 + r;
  if (buf.length !== end + MAC_BYTES) return null;
  const body = buf.subarray(0, end);
  if (!timingSafeEqual(buf.subarray(end), mac(secret, clusterId, body))) return null;
  const kind = (Object.keys(HEARTBEAT_KINDS) as HeartbeatKind[]).find((k) => HEARTBEAT_KINDS[k] === buf[5]);
  if (kind === undefined) return null;
  const rg = body.subarray(HEADER_BYTES + n + 2).toString('utf8');
  return { kind, nodeId: body.subarray(HEADER_BYTES, HEADER_BYTES + n).toString('utf8'), seq: body.readUInt32BE(8), ...(rg ? { rg } : {}) };
}

export interface HeartbeatOptions {
  readonly nodeId: string;
  readonly peerNodeId: string;
  readonly clusterId: string;
  readonly secret: string;
  /** Where to receive: this node's front-end address. */
  readonly local: { readonly host: string; readonly port: number };
  /** Where the peer receives. */
  readonly peer: { readonly host: string; readonly port: number };
  readonly intervalMs: number;
  /** Monotonic clock, ms (default performance.now). */
  readonly now?: () => number;
}

export interface HeartbeatEvents {
  beat: [seq: number];
  bye: [];
  /** The peer's guard says the peer's process died. */
  died: [];
  /** The peer asks this node to take `rg` in; answer with reply(). */
  'move-in': [rg: string];
  /** The peer asks this node to move `rg` back to it; answer with replyHandBack(). */
  'hand-back': [rg: string];
}

/** Sends and receives front-end heartbeats; heardAt() is the time of the last valid one from the peer. */
export class FrontEndHeartbeat extends EventEmitter<HeartbeatEvents> implements LivenessPath {
  readonly name = 'front-end';
  private socket: dgram.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private lastHeard = Number.NEGATIVE_INFINITY;
  private byeSeen = false;
  /** When the peer's death notice came (null: none since its last beat). */
  private diedAt: number | null = null;
  private readonly now: () => number;

  constructor(private readonly options: HeartbeatOptions) {
    super();
    this.now = options.now ?? (() => performance.now());
  }

  /** Monotonic ms of the last valid heartbeat from the peer (-Infinity: none yet). */
  heardAt(): number {
    return this.lastHeard;
  }

  /** The peer's last message was a 'bye' (cleared by its next beat). */
  saidBye(): boolean {
    return this.byeSeen;
  }

  /** When the peer's guard said its process died, with no beat since (liveness.ts); null otherwise. */
  deathNoticedAt(): number | null {
    return this.diedAt;
  }

  /**
   * The signed 'died' datagram for this node's guard to send the peer
   * (guard/protocol.ts): where to, from where, and the bytes.
   */
  deathNotice(): { host: string; port: number; from: string; datagram: Buffer } {
    const o = this.options;
    return { host: o.peer.host, port: o.peer.port, from: o.local.host, datagram: encodeHeartbeat({ kind: 'died', nodeId: o.nodeId, seq: 0 }, o.secret, o.clusterId) };
  }

  /** The bound local port (for tests that bind port 0). */
  port(): number {
    return this.socket?.address().port ?? 0;
  }

  async start(): Promise<void> {
    if (this.socket) return;
    const o = this.options;
    const socket = dgram.createSocket({ type: net.isIPv6(o.local.host) ? 'udp6' : 'udp4' });
    socket.on('message', (msg) => this.receive(msg));
    socket.on('error', () => undefined); // ICMP unreachable while the peer is down: expected.
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.local.port, o.local.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.socket = socket;
    this.send('beat');
    this.timer = setInterval(() => this.send('beat'), o.intervalMs);
    this.timer.unref();
  }

  /** Stop; with `bye`, tell the peer first that this node stopped serving cleanly. */
  async stop(bye = false): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const socket = this.socket;
    if (!socket) return;
    if (bye) for (let i = 0; i < 3; i++) await this.sendAndWait('bye');
    this.socket = null;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private message(kind: HeartbeatKind, rg?: string): Buffer {
    const o = this.options;
    this.seq = (this.seq + 1) >>> 0;
    return encodeHeartbeat({ kind, nodeId: o.nodeId, seq: this.seq, ...(rg ? { rg } : {}) }, o.secret, o.clusterId);
  }

  private send(kind: HeartbeatKind, rg?: string): void {
    this.socket?.send(this.message(kind, rg), this.options.peer.port, this.options.peer.host, () => undefined);
  }

  /** Requests waiting for the peer's answer, by request kind and group. */
  private readonly waiting = new Map<string, (ok: boolean) => void>();

  /**
   * Ask the peer to take `rg` in (planned move); resent every interval until
   * it answers. Resolves on 'moved-in', rejects on 'move-failed', or with PeerNoAnswerError after `timeoutMs`.
   */
  requestMoveIn(rg: string, timeoutMs: number): Promise<void> {
    return this.request('move-in', rg, timeoutMs);
  }

  /**
   * Ask the peer to move `rg`, which it serves, back to this node; resent every
   * interval until it answers. Resolves on 'handed-back', rejects on
   * 'hand-back-failed' or after `timeoutMs` (a peer that does not know the request never answers).
   */
  requestHandBack(rg: string, timeoutMs: number): Promise<void> {
    return this.request('hand-back', rg, timeoutMs);
  }

  private request(kind: RequestKind, rg: string, timeoutMs: number): Promise<void> {
    const key = `${kind}\0${rg}`;
    const what = REQUESTS[kind].what(rg);
    if (this.waiting.has(key)) return Promise.reject(new Error(`a request to ${what} is already waiting for the peer`));
    return new Promise<void>((resolve, reject) => {
      const resend = setInterval(() => this.send(kind, rg), this.options.intervalMs);
      const timer = setTimeout(() => finish(false, new PeerNoAnswerError(`the peer did not ${what} within ${timeoutMs} ms`)), timeoutMs);
      const finish = (ok: boolean, why: Error = new Error(`the peer could not ${what}`)): void => {
        clearInterval(resend);
        clearTimeout(timer);
        this.waiting.delete(key);
        if (ok) resolve();
        else reject(why);
      };
      this.waiting.set(key, (ok) => finish(ok));
      this.send(kind, rg);
    });
  }

  /** Answer a 'move-in' request. */
  reply(rg: string, ok: boolean): void {
    this.send(ok ? REQUESTS['move-in'].ok : REQUESTS['move-in'].failed, rg);
  }

  /** Answer a 'hand-back' request. */
  replyHandBack(rg: string, ok: boolean): void {
    this.send(ok ? REQUESTS['hand-back'].ok : REQUESTS['hand-back'].failed, rg);
  }

  private sendAndWait(kind: HeartbeatKind): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.send(this.message(kind), this.options.peer.port, this.options.peer.host, () => resolve()));
  }

  private receive(buf: Buffer): void {
    const o = this.options;
    const m = decodeHeartbeat(buf, o.secret, o.clusterId);
    if (!m || m.nodeId !== o.peerNodeId) return;
    if (m.kind === 'died') {
      this.diedAt = this.now();
      this.emit('died');
      return;
    }
    this.lastHeard = this.now();
    switch (m.kind) {
      case 'bye':
        this.byeSeen = true;
        this.emit('bye');
        return;
      case 'beat':
        this.byeSeen = false;
        this.diedAt = null;
        this.emit('beat', m.seq);
        return;
      case 'move-in':
        if (m.rg) this.emit('move-in', m.rg);
        return;
      case 'hand-back':
        if (m.rg) this.emit('hand-back', m.rg);
        return;
      case 'moved-in':
      case 'move-failed':
      case 'handed-back':
      case 'hand-back-failed': {
        const answer = ANSWERS[m.kind];
        if (m.rg && answer) this.waiting.get(`${answer.request}\0${m.rg}`)?.(answer.ok);
        return;
      }
    }
  }
}
