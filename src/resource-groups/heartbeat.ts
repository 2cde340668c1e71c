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
 *  12+n 16 HMAC-SHA256(secret, clusterId || bytes 0..12+n), first 16 bytes
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { LivenessPath } from './liveness';

export const HEARTBEAT_KINDS = { beat: 1, bye: 2 } as const;
export type HeartbeatKind = keyof typeof HEARTBEAT_KINDS;

const MAGIC = Buffer.from('TSHB');
const VERSION = 1;
const MAC_BYTES = 16;
const HEADER_BYTES = 12;

export interface HeartbeatMessage {
  readonly kind: HeartbeatKind;
  readonly nodeId: string;
  readonly seq: number;
}

function mac(secret: string, clusterId: string, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(clusterId).update(body).digest().subarray(0, MAC_BYTES);
}

export function encodeHeartbeat(m: HeartbeatMessage, secret: string, clusterId: string): Buffer {
  const id = Buffer.from(m.nodeId, 'utf8');
  const body = Buffer.alloc(HEADER_BYTES + id.length);
  MAGIC.copy(body, 0);
  body[4] = VERSION;
  body[5] = HEARTBEAT_KINDS[m.kind];
  body.writeUInt16BE(id.length, 6);
  body.writeUInt32BE(m.seq >>> 0, 8);
  id.copy(body, HEADER_BYTES);
  return Buffer.concat([body, mac(secret, clusterId, body)]);
}

/** The message, or null for anything that is not a heartbeat of this cluster signed with this secret. */
export function decodeHeartbeat(buf: Buffer, secret: string, clusterId: string): HeartbeatMessage | null {
  if (buf.length < HEADER_BYTES + MAC_BYTES || !buf.subarray(0, 4).equals(MAGIC) || buf[4] !== VERSION) return null;
  const n = buf.readUInt16BE(6);
  if (buf.length !== HEADER_BYTES + n + MAC_BYTES) return null;
  const body = buf.subarray(0, HEADER_BYTES + n);
  if (!timingSafeEqual(buf.subarray(HEADER_BYTES + n), mac(secret, clusterId, body))) return null;
  const kind = buf[5] === HEARTBEAT_KINDS.beat ? 'beat' : buf[5] === HEARTBEAT_KINDS.bye ? 'bye' : null;
  if (kind === null) return null;
  return { kind, nodeId: body.subarray(HEADER_BYTES).toString('utf8'), seq: body.readUInt32BE(8) };
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
}

/** Sends and receives front-end heartbeats; heardAt() is the time of the last valid one from the peer. */
export class FrontEndHeartbeat extends EventEmitter<HeartbeatEvents> implements LivenessPath {
  readonly name = 'front-end';
  private socket: dgram.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private lastHeard = Number.NEGATIVE_INFINITY;
  private byeSeen = false;
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

  private message(kind: HeartbeatKind): Buffer {
    const o = this.options;
    this.seq = (this.seq + 1) >>> 0;
    return encodeHeartbeat({ kind, nodeId: o.nodeId, seq: this.seq }, o.secret, o.clusterId);
  }

  private send(kind: HeartbeatKind): void {
    this.socket?.send(this.message(kind), this.options.peer.port, this.options.peer.host, () => undefined);
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
    this.lastHeard = this.now();
    if (m.kind === 'bye') {
      this.byeSeen = true;
      this.emit('bye');
    } else {
      this.byeSeen = false;
      this.emit('beat', m.seq);
    }
  }
}
