/**
 * One link to the peer: the connection slot of one network path. Both nodes
 * listen on their local address of the link and dial the peer's, so either
 * can bring it up; a dialer runs only while the link has no connection and
 * retries with backoff. When both dials complete, the connection dialled by
 * the lower node id (string order) is kept and the other closed; between
 * two connections dialled by the same node the newer wins (that node dials
 * again only after it gave the older one up). Both sides apply the same
 * rule, so they settle on the same connection.
 *
 * Events: 'up' when the link gets a connection, 'switch' when a connection
 * replaces another (the old one is retired right after: it sends nothing
 * more but its frames still come up until the peer's FIN, as the peer may
 * have written on it before it learnt of the replacement), 'down' when the
 * link loses its connection, 'frame' for every channel frame of the current
 * or a retiring connection, 'link-error' for handshake refusals and
 * protocol violations.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Logger } from 'pino';
import { DecodedFrame, FrameLimits } from '../protocol/frame';
import { Backoff } from './backoff';
import { HandshakeError, LinkFailure } from './errors';
import { HandshakeConfig, HandshakeRole } from './handshake';
import { LinkConnection, LinkTimers } from './link-connection';

export interface LinkAddress {
  readonly host: string;
  readonly port: number;
}

export interface PeerLinkTimers extends LinkTimers {
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
}

export interface PeerLinkOptions {
  readonly index: number;
  /** Where to listen; no listener when left out. */
  readonly local?: LinkAddress;
  /** Where to dial; may also be given to connect(). */
  readonly peer?: LinkAddress;
  readonly handshake: Omit<HandshakeConfig, 'linkIndex' | 'nonce'>;
  readonly timers: PeerLinkTimers;
  readonly limits: FrameLimits;
  readonly log: Logger;
}

export type PeerLinkEvents = {
  up: [conn: LinkConnection];
  switch: [current: LinkConnection, replaced: LinkConnection];
  down: [conn: LinkConnection, reason: Error | null];
  frame: [conn: LinkConnection, frame: DecodedFrame];
  drain: [conn: LinkConnection];
  'link-error': [error: Error];
};

export interface LinkStats {
  readonly index: number;
  readonly up: boolean;
  readonly role: HandshakeRole | null;
  readonly version: number | null;
  readonly local: LinkAddress | null;
  readonly remote: string | null;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly framesSent: number;
  readonly framesReceived: number;
  /** Bytes written to the current connection and not yet taken by the kernel. */
  readonly queuedBytes: number;
  /** Requests sent on the current connection and not answered. */
  readonly inFlight: number;
  /** Smoothed heartbeat round-trip time of the current connection. */
  readonly rttMs: number | null;
  /** Handshakes completed on this link. */
  readonly connects: number;
  readonly lastError: string | null;
}

export class PeerLink extends EventEmitter<PeerLinkEvents> {
  readonly index: number;
  private readonly opts: PeerLinkOptions;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly connections = new Set<LinkConnection>();
  private current: LinkConnection | null = null;
  /**
   * When the link last lost its connection because the peer closed it (FIN,
   * or a reset): monotonic ms; null while up, or when it was lost any other
   * way (silence, protocol error, replaced, closed here). A peer process
   * that dies closes every link at once; a partition closes none.
   */
  private closedByPeer: number | null = null;
  private dialing: LinkConnection | null = null;
  private dialTimer: NodeJS.Timeout | null = null;
  private peer: LinkAddress | null;
  private server: net.Server | null = null;
  private bound: LinkAddress | null = null;
  private closed = false;
  private connects = 0;
  private lastError: Error | null = null;
  /** Counters of connections already closed. */
  private past = { bytesSent: 0, bytesReceived: 0, framesSent: 0, framesReceived: 0 };

  constructor(opts: PeerLinkOptions) {
    super();
    this.opts = opts;
    this.index = opts.index;
    this.peer = opts.peer ?? null;
    this.log = opts.log.child({ link: opts.index });
    this.backoff = new Backoff(opts.timers.reconnectMinMs, opts.timers.reconnectMaxMs);
  }

  /** The open connection carrying the link's traffic, if any. */
  /** Monotonic ms when the peer closed the link's connection (see closedByPeer); null otherwise. */
  get closedByPeerAt(): number | null {
    return this.current ? null : this.closedByPeer;
  }

  get connection(): LinkConnection | null {
    return this.current;
  }

  get isUp(): boolean {
    return this.current !== null;
  }

  /** Whether the link has a local address to listen on. */
  get listenable(): boolean {
    return this.opts.local !== undefined;
  }

  get localAddress(): LinkAddress | null {
    return this.bound;
  }

  /** Starts the listener on the local address; resolves with the bound address. */
  listen(): Promise<LinkAddress> {
    const local = this.opts.local;
    if (!local) return Promise.reject(new Error(`link ${this.index} has no local address to listen on`));
    if (this.server) return Promise.resolve(this.bound!);
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(local.port, local.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err }, 'link listener failed'));
        const a = server.address() as net.AddressInfo;
        this.bound = { host: a.address, port: a.port };
        this.log.debug({ address: this.bound }, 'link listening');
        resolve(this.bound);
      });
    });
  }

  /** Starts dialling the peer (and redialling whenever the link is down). */
  connect(peer?: LinkAddress): void {
    if (peer) this.peer = peer;
    if (!this.peer) throw new Error(`link ${this.index} has no peer address to dial`);
    this.dial();
  }

  /** Closes the listener and every connection; resolves when all are closed. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.dialTimer) clearTimeout(this.dialTimer);
    this.dialTimer = null;
    const closing = [...this.connections].map(
      (c) =>
        new Promise<void>((resolve) => {
          // Every tracked connection has yet to emit 'close' (onClose untracks it).
          c.once('close', () => resolve());
          c.close(new LinkFailure('ECLOSED', 'link closed'));
        }),
    );
    const server = this.server;
    this.server = null;
    const serverClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...closing, serverClosed]);
  }

  stats(): LinkStats {
    const c = this.current;
    let { bytesSent, bytesReceived, framesSent, framesReceived } = this.past;
    for (const conn of this.connections) {
      bytesSent += conn.bytesSent;
      bytesReceived += conn.bytesReceived;
      framesSent += conn.framesSent;
      framesReceived += conn.framesReceived;
    }
    return {
      index: this.index,
      up: c !== null,
      role: c?.role ?? null,
      version: c?.version ?? null,
      local: this.bound,
      remote: c?.remoteAddress ?? null,
      bytesSent,
      bytesReceived,
      framesSent,
      framesReceived,
      queuedBytes: c?.queuedBytes ?? 0,
      inFlight: c?.inFlight ?? 0,
      rttMs: c?.srttMs ?? null,
      connects: this.connects,
      lastError: this.lastError ? `${(this.lastError as { code?: string }).code ?? this.lastError.name}: ${this.lastError.message}` : null,
    };
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.track(socket, 'acceptor');
  }

  private dial(): void {
    if (this.closed || !this.peer || this.current || this.dialing || this.dialTimer) return;
    const socket = net.connect({ host: this.peer.host, port: this.peer.port });
    this.dialing = this.track(socket, 'dialer');
  }

  private scheduleDial(): void {
    if (this.closed || !this.peer || this.current || this.dialing || this.dialTimer) return;
    const delay = this.backoff.next();
    this.dialTimer = setTimeout(() => {
      this.dialTimer = null;
      this.dial();
    }, delay);
  }

  private track(socket: net.Socket, role: HandshakeRole): LinkConnection {
    const conn = new LinkConnection({
      socket,
      role,
      handshake: { ...this.opts.handshake, linkIndex: this.index },
      timers: this.opts.timers,
      limits: this.opts.limits,
      log: this.log,
    });
    this.connections.add(conn);
    conn.on('ready', () => this.onReady(conn));
    conn.on('frame', (frame) => {
      if (conn === this.current || conn.isDraining) this.emit('frame', conn, frame);
    });
    conn.on('drain', () => {
      if (conn === this.current) this.emit('drain', conn);
    });
    conn.on('close', (reason) => this.onClose(conn, reason));
    return conn;
  }

  private onReady(conn: LinkConnection): void {
    if (conn === this.dialing) this.dialing = null;
    if (this.closed) {
      conn.close(new LinkFailure('ECLOSED', 'link closed'));
      return;
    }
    this.backoff.reset();
    this.connects++;
    const old = this.current;
    if (!old) {
      this.current = conn;
      this.log.info({ role: conn.role, version: conn.version, remote: conn.remoteAddress }, 'link up');
      this.emit('up', conn);
      return;
    }
    const keep = this.preferred(old, conn);
    if (keep === old) {
      this.log.debug({ kept: old.id, dropped: conn.id }, 'duplicate link connection closed');
      // The peer may have taken this one as current first and written on it.
      conn.retire(new LinkFailure('EREPLACED', `duplicate connection; keeping the one dialled by ${this.dialledBy(old)}`));
      return;
    }
    this.current = conn;
    this.log.debug({ kept: conn.id, dropped: old.id }, 'link connection replaced');
    this.emit('switch', conn, old);
    old.retire(new LinkFailure('EREPLACED', `replaced by the connection dialled by ${this.dialledBy(conn)}`));
  }

  private dialledBy(conn: LinkConnection): string {
    return conn.role === 'dialer' ? this.opts.handshake.nodeId : this.opts.handshake.peerNodeId;
  }

  /** Which of two open connections the link keeps (the same choice on both nodes). */
  private preferred(current: LinkConnection, incoming: LinkConnection): LinkConnection {
    const a = this.dialledBy(current);
    const b = this.dialledBy(incoming);
    if (a === b) return incoming;
    const { nodeId, peerNodeId } = this.opts.handshake;
    const lower = nodeId < peerNodeId ? nodeId : peerNodeId;
    return a === lower ? current : incoming;
  }

  private onClose(conn: LinkConnection, reason: Error | null): void {
    this.connections.delete(conn);
    this.past.bytesSent += conn.bytesSent;
    this.past.bytesReceived += conn.bytesReceived;
    this.past.framesSent += conn.framesSent;
    this.past.framesReceived += conn.framesReceived;
    if (conn === this.dialing) this.dialing = null;
    const reportable = reason instanceof HandshakeError || (reason instanceof LinkFailure && (reason.code === 'EPROTO' || reason.code === 'EDEAD'));
    if (reportable) {
      const repeated = this.lastError?.message === reason.message;
      this.lastError = reason;
      if (repeated) this.log.debug({ err: reason }, 'link connection failed again');
      else this.log.warn({ code: (reason as HandshakeError | LinkFailure).code, err: reason.message }, 'link connection failed');
      this.emit('link-error', reason);
    } else if (reason && conn.result === null) {
      this.log.debug({ role: conn.role, err: reason.message }, 'link connection attempt failed');
    }
    if (conn === this.current) {
      this.current = null;
      this.closedByPeer = endedByPeer(reason) ? performance.now() : null;
      this.log.info({ reason: reason?.message ?? 'closed by the peer' }, 'link down');
      this.emit('down', conn, reason);
    }
    this.scheduleDial();
  }
}

/** Socket errors that only the peer's kernel sends: a reset (its process died or closed with unread data). */
const PEER_RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);

/** The connection ended because the peer closed it: its FIN (no reason) or a reset; not silence, not a local close. */
export function endedByPeer(reason: Error | null): boolean {
  if (reason === null) return true;
  return reason instanceof LinkFailure && reason.code === 'ESOCKET' && reason.sysCode !== undefined && PEER_RESET_CODES.has(reason.sysCode);
}
