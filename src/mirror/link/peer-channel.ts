/**
 * PeerChannel: everything this node says to its one peer, over two or more
 * links (peer-link.ts) at once.
 *
 * Requests. `request()` gives the message the next seq (1, 2, ...; unique
 * for the life of the channel), queues it, and sends it on the live link
 * with the least output left from earlier ticks (the last used among
 * equals) once the in-flight window has room. The promise settles with the peer's reply
 * (whatever body it is: an Ack{ok: false} resolves too; `checkAck` turns it
 * into a RemoteError). Messages are not ordered among themselves (they
 * travel over several links): a caller that needs A applied before B waits
 * for A's reply before it sends B. One-way messages (`send()`) are
 * neither ordered nor resent.
 *
 * Resend. When the connection that carried an unanswered request closes,
 * the request goes again, same seq, on another live link (or on the first
 * link to come back). Requests must therefore be idempotent, and the
 * receiver de-duplicates by seq (replay-window.ts): a copy of a request
 * still being handled only moves where the reply goes, a copy of one
 * already answered gets the recorded reply again, so no handler runs
 * twice for one seq. Each message carries the sender's ack floor (its
 * lowest unanswered seq) so the receiver forgets what cannot come again.
 * Replies go back on the connection the latest copy came on (a copy read
 * late from a replaced connection does not count), or on any open one when
 * that connection is no longer open.
 *
 * Unavailability. With no link up the channel is `suspended` and requests
 * wait; after `unavailableAfterMs` without a link (from connect(), or from
 * the loss of the last link) it is `down`: every queued and unanswered
 * request fails with PeerUnavailableError and new ones fail at once, until
 * a link comes up again. Such a request may or may not have been applied.
 * When a link comes up to a restarted peer (a new session id), requests
 * sent to the old incarnation fail with PeerUnavailableError
 * (EPEERRESTART) and the replay window is cleared.
 *
 * Incoming. Handlers are a table by body kind (`handle('write', fn)`); the
 * handler's result is the reply (nothing: Ack{ok: true}); a handler that
 * throws is answered Ack{ok: false, code: err.code or 'EIO'}; a request
 * whose body is unknown (a newer peer's) or has no handler is answered
 * Ack{ok: false, code: 'ENOTSUP'}, and one without its required payload
 * Ack{ok: false, code: 'EPROTO'}.
 *
 * Back-pressure: at most `maxInFlight` requests and `maxInFlightBytes` of
 * payload are out unanswered; a link with `linkHighWaterBytes` unflushed
 * takes nothing new until it drains. Payload buffers are written as given
 * and kept (not copied) until the reply comes, for resends: a caller must
 * not change them before its promise settles.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Logger } from 'pino';
import { DEFAULT_FRAME_LIMITS, DecodedFrame, FrameLimits, Payload, encodeAckFrame, encodeFrame, encodeWriteFrame, payloadLength } from '../protocol/frame';
import {
  BODY_TABLE,
  BodyKind,
  BodyMap,
  BodyRule,
  Complete,
  Envelope,
  EnvelopeOf,
  KnownEnvelope,
  OutgoingMessage,
  isBodyKind,
  kindOf,
} from '../protocol/messages';
import { OUR_VERSIONS, VersionRange, isValidRange } from '../protocol/version';
import {
  ChannelClosedError,
  LinkFailure,
  PeerUnavailableError,
  RemoteError,
  RequestTimeoutError,
  UnsupportedByPeerError,
} from './errors';
import { HandshakeRole } from './handshake';
import { LinkConnection } from './link-connection';
import { LinkAddress, LinkStats, PeerLink } from './peer-link';
import { ReplayWindow } from './replay-window';
import { Fifo } from './fifo';
import { IntMap } from '../../block';
import { ChannelTunables, resolveTunables } from './tunables';

export interface LinkConfig {
  /** Where this node listens for the link; no listener when left out. */
  readonly local?: LinkAddress;
  /** The peer's address of the link; may also be given to connect(). */
  readonly peer?: LinkAddress;
}

export interface PeerChannelOptions extends Partial<ChannelTunables> {
  readonly nodeId: string;
  readonly peerNodeId: string;
  readonly clusterId: string;
  /** The shared secret both nodes prove they know on every connection. */
  readonly secret: string | Buffer;
  /** The links to the peer, in the same order on both nodes (two or more for redundancy). */
  readonly links: readonly LinkConfig[];
  readonly log: Logger;
  /** Protocol versions spoken; this release's by default. */
  readonly versions?: VersionRange;
  readonly features?: readonly string[];
  readonly limits?: Partial<FrameLimits>;
}

export const ChannelState = {
  /** Created; connect() not called yet. Requests wait. */
  IDLE: 'idle',
  /** Dialling, no link up yet. Requests wait up to unavailableAfterMs. */
  CONNECTING: 'connecting',
  /** At least one link up. */
  UP: 'up',
  /** Every link lost; requests wait up to unavailableAfterMs. */
  SUSPENDED: 'suspended',
  /** No link for unavailableAfterMs: requests fail with PeerUnavailableError. */
  DOWN: 'down',
  CLOSED: 'closed',
} as const;
export type ChannelState = (typeof ChannelState)[keyof typeof ChannelState];

const TRANSITIONS: Readonly<Record<ChannelState, readonly ChannelState[]>> = {
  [ChannelState.IDLE]: [ChannelState.CONNECTING, ChannelState.UP, ChannelState.CLOSED],
  [ChannelState.CONNECTING]: [ChannelState.UP, ChannelState.DOWN, ChannelState.CLOSED],
  [ChannelState.UP]: [ChannelState.SUSPENDED, ChannelState.CLOSED],
  [ChannelState.SUSPENDED]: [ChannelState.UP, ChannelState.DOWN, ChannelState.CLOSED],
  [ChannelState.DOWN]: [ChannelState.UP, ChannelState.CLOSED],
  [ChannelState.CLOSED]: [],
};

/** A message received from the peer: its Envelope and payload (slices of the received data). */
export interface IncomingMessage {
  readonly envelope: Envelope;
  readonly payload: Buffer[];
}

/** A handler's reply with a payload. */
export interface ReplyWithPayload {
  readonly reply: OutgoingMessage;
  readonly payload?: Payload;
}

/** Nothing (Ack{ok: true}), a message, or a message with a payload. */
export type HandlerResult = void | undefined | OutgoingMessage | ReplyWithPayload;

export type Handler<K extends BodyKind> = (
  body: Complete<BodyMap[K]>,
  payload: Buffer[],
  envelope: EnvelopeOf<K>,
) => HandlerResult | Promise<HandlerResult>;

export interface LinkUpInfo {
  readonly role: HandshakeRole;
  readonly version: number;
  readonly remote: string | null;
}

export type PeerChannelEvents = {
  up: [];
  down: [error: PeerUnavailableError];
  'link-up': [index: number, info: LinkUpInfo];
  'link-down': [index: number, reason: Error | null];
  /** A handshake refused or a protocol violation on a link (the link keeps retrying). */
  'link-error': [index: number, error: Error];
  'peer-restart': [previousSessionId: string, sessionId: string];
  state: [state: ChannelState, previous: ChannelState];
};

export interface ChannelStats {
  readonly state: ChannelState;
  readonly negotiatedVersion: number | null;
  readonly peerSessionId: string | null;
  /** Requests sent and not answered. */
  readonly inFlight: number;
  readonly inFlightBytes: number;
  /** Requests and one-way messages not sent yet. */
  readonly queued: number;
  /** Unanswered requests waiting to go again after their link failed. */
  readonly awaitingResend: number;
  /** Request copies sent again after a link failure. */
  readonly resent: number;
  /** Copies of requests received again (answered from the replay window or redirected). */
  readonly duplicateRequests: number;
  /** Replies to requests no longer waiting (a resend was answered twice, or it timed out). */
  readonly duplicateReplies: number;
  readonly unknownBodies: number;
  readonly replayEntries: number;
  readonly replayOverflows: number;
  readonly links: readonly LinkStats[];
}

interface Outgoing {
  readonly seq: number;
  readonly kind: BodyKind;
  readonly message: OutgoingMessage;
  readonly payload: Payload | undefined;
  readonly bytes: number;
  readonly oneWay: boolean;
  /** The connection the latest copy went on (null: not sent, or that connection failed). */
  conn: LinkConnection | null;
  sends: number;
  settled: boolean;
  timer: NodeJS.Timeout | null;
  sink: ReplySink;
}

/** Who hears how a request ended: its reply, or why there is none. */
export interface ReplySink {
  replied(reply: IncomingMessage): void;
  failed(err: Error): void;
}

/** The reply to a request, encoded once (kept in the replay window for copies). */
type EncodedReply = Buffer[];

const bySeq = (a: Outgoing, b: Outgoing): number => a.seq - b.seq;

/** A seq, replyTo or ackFloor the channel can key on. */
const isSeqNumber = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

const ERRNO_NAME = /^E[A-Z0-9_]{1,31}$/;

/** Turns a reply that is Ack{ok: false} into a RemoteError; returns the reply otherwise. */
export function checkAck(reply: IncomingMessage): IncomingMessage {
  const env = reply.envelope;
  if (env.body === 'ack' && !env.ack.ok) throw new RemoteError(env.ack.code || 'EIO', env.ack.message || env.ack.code || 'the peer failed the request');
  return reply;
}

export class PeerChannel extends EventEmitter<PeerChannelEvents> {
  readonly nodeId: string;
  readonly peerNodeId: string;
  /** This channel's random id, sent in every Hello; the peer sees a new one when we restart. */
  readonly sessionId = randomBytes(8).toString('hex');
  readonly tunables: ChannelTunables;
  private readonly log: Logger;
  private readonly links: readonly PeerLink[];
  private readonly limits: FrameLimits;
  private readonly handlers = new Map<BodyKind, Handler<BodyKind>>();
  private readonly replay: ReplayWindow<EncodedReply, LinkConnection>;

  private currentState: ChannelState = ChannelState.IDLE;
  private unavailableTimer: NodeJS.Timeout | null = null;
  private peerSession: string | null = null;
  private nextSeq = 1;
  /** Requests not answered yet, by seq. */
  private readonly outstanding = new IntMap<Outgoing>();
  /** No seq below this is outstanding (ackFloor's cursor: seqs only grow). */
  private lowSeq = 1;
  /** Not sent yet, in order. */
  private readonly queue = new Fifo<Outgoing>();
  /** Unanswered requests whose connection failed, in seq order. */
  private resendQueue: Outgoing[] = [];
  private inFlightCount = 0;
  private inFlightBytes = 0;
  /** The connection the frames of this tick go on (see pickConnection); null from the next tick. */
  private tickConn: LinkConnection | null = null;
  /** Where the round robin over links starts next tick. */
  private rr = 0;
  private pumping = false;
  private counters = { resent: 0, duplicateRequests: 0, duplicateReplies: 0, unknownBodies: 0 };
  /** One-way messages: nothing to hear but why one was dropped. */
  private readonly oneWaySink: ReplySink = {
    replied: () => undefined,
    failed: (err) => this.log.debug({ err: err.message }, 'one-way message dropped'),
  };

  constructor(opts: PeerChannelOptions) {
    super();
    if (opts.links.length === 0) throw new RangeError('a peer channel needs at least one link');
    if (opts.nodeId === opts.peerNodeId) throw new RangeError(`node id and peer node id are both "${opts.nodeId}"`);
    const versions = opts.versions ?? OUR_VERSIONS;
    if (!isValidRange(versions)) throw new RangeError(`bad protocol version range ${JSON.stringify(versions)}`);
    const secret = typeof opts.secret === 'string' ? Buffer.from(opts.secret, 'utf8') : opts.secret;
    if (secret.length === 0) throw new RangeError('the shared secret is empty');

    this.nodeId = opts.nodeId;
    this.peerNodeId = opts.peerNodeId;
    this.tunables = resolveTunables(opts);
    this.limits = { ...DEFAULT_FRAME_LIMITS, ...opts.limits };
    this.log = opts.log.child({ component: 'peer-channel', peer: opts.peerNodeId });
    this.replay = new ReplayWindow(this.tunables.replayWindow);
    const t = this.tunables;
    this.links = opts.links.map((cfg, index) => {
      const link = new PeerLink({
        index,
        ...(cfg.local ? { local: cfg.local } : {}),
        ...(cfg.peer ? { peer: cfg.peer } : {}),
        handshake: {
          nodeId: opts.nodeId,
          peerNodeId: opts.peerNodeId,
          clusterId: opts.clusterId,
          secret,
          versions,
          sessionId: this.sessionId,
          features: opts.features ?? [],
        },
        timers: {
          heartbeatMs: t.heartbeatMs,
          deadMs: t.deadMs,
          handshakeTimeoutMs: t.handshakeTimeoutMs,
          reconnectMinMs: t.reconnectMinMs,
          reconnectMaxMs: t.reconnectMaxMs,
        },
        limits: this.limits,
        log: this.log,
      });
      link.on('up', (conn) => this.onLinkUp(link, conn));
      link.on('switch', (conn, old) => this.onLinkSwitch(conn, old));
      link.on('down', (conn, reason) => this.onLinkDown(link, conn, reason));
      link.on('frame', (conn, frame) => this.onFrame(conn, frame));
      link.on('drain', () => this.pump());
      link.on('link-error', (err) => this.emit('link-error', index, err));
      return link;
    });
  }

  /* ---------------- lifecycle ---------------- */

  get state(): ChannelState {
    return this.currentState;
  }

  /**
   * Monotonic ms when the peer closed the last of the links, when every link
   * lost its connection because the peer closed it (FIN or reset: its process
   * is gone, or it shut the links); null while any link is up or any was lost
   * another way (silence: a partition closes nothing).
   */
  peerClosedAllAt(): number | null {
    let latest = Number.NEGATIVE_INFINITY;
    for (const l of this.links) {
      const at = l.closedByPeerAt;
      if (at === null) return null;
      latest = Math.max(latest, at);
    }
    return this.links.length > 0 ? latest : null;
  }

  /** The protocol version of the links that are up (the lowest, should they differ); null with none up. */
  get negotiatedVersion(): number | null {
    let v: number | null = null;
    for (const l of this.links) {
      const c = l.connection;
      if (c && (v === null || c.version < v)) v = c.version;
    }
    return v;
  }

  /** The peer's session id, once a link has been up. */
  get peerSessionId(): string | null {
    return this.peerSession;
  }

  /** Link `index` (for its stats and connection). */
  link(index: number): PeerLink {
    const l = this.links[index];
    if (!l) throw new RangeError(`no link ${index} (the channel has ${this.links.length})`);
    return l;
  }

  /** Starts the listeners of the links that have a local address; resolves with the bound addresses. */
  async listen(): Promise<(LinkAddress | null)[]> {
    return Promise.all(this.links.map((l) => (l.listenable ? l.listen() : Promise.resolve(null))));
  }

  /** Starts dialling every link (peer addresses from the options, or given here in link order). */
  connect(peers?: readonly (LinkAddress | null | undefined)[]): void {
    if (this.currentState === ChannelState.CLOSED) throw new ChannelClosedError('the channel is closed');
    this.links.forEach((l, i) => l.connect(peers?.[i] ?? undefined));
    if (this.currentState === ChannelState.IDLE) this.transition(ChannelState.CONNECTING);
  }

  /** listen() then connect(). */
  async start(): Promise<(LinkAddress | null)[]> {
    const bound = await this.listen();
    this.connect();
    return bound;
  }

  /** Fails everything outstanding with ChannelClosedError and closes every link. */
  async close(): Promise<void> {
    if (this.currentState !== ChannelState.CLOSED) {
      this.transition(ChannelState.CLOSED);
      this.failAll(new ChannelClosedError('the channel is closed'), () => true);
    }
    await Promise.all(this.links.map((l) => l.close()));
  }

  /* ---------------- sending ---------------- */

  /**
   * Sends a request and resolves with the peer's reply. Rejects with
   * PeerUnavailableError, RequestTimeoutError, ChannelClosedError or
   * UnsupportedByPeerError; never because one link failed.
   */
  request(message: OutgoingMessage, payload?: Payload): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const out = this.prepare(message, payload, false, { replied: resolve, failed: reject });
      if (out instanceof Error) reject(out);
      else this.enqueueRequest(out);
    });
  }

  /**
   * request() for the write path: `sink` hears the reply or the error
   * exactly once, never before this returns; no promise is made.
   */
  requestWith(message: OutgoingMessage, payload: Payload | undefined, sink: ReplySink): void {
    const out = this.prepare(message, payload, false, sink);
    if (out instanceof Error) queueMicrotask(() => sink.failed(out));
    else this.enqueueRequest(out);
  }

  /**
   * Sends a message that expects no reply. Not resent when its link fails.
   * False when it was refused (channel down or closed, or a bad message).
   */
  send(message: OutgoingMessage, payload?: Payload): boolean {
    const out = this.prepare(message, payload, true, this.oneWaySink);
    if (out instanceof Error) {
      this.oneWaySink.failed(out);
      return false;
    }
    this.queue.push(out);
    this.pump();
    return true;
  }

  private enqueueRequest(out: Outgoing): void {
    this.outstanding.set(out.seq, out);
    if (this.tunables.requestTimeoutMs > 0) {
      out.timer = setTimeout(() => {
        this.settle(out, new RequestTimeoutError(`no reply to ${out.kind} #${out.seq} from "${this.peerNodeId}" in ${this.tunables.requestTimeoutMs} ms`));
      }, this.tunables.requestTimeoutMs);
    }
    this.queue.push(out);
    this.pump();
  }

  /* ---------------- incoming ---------------- */

  /** Registers the handler of a body kind (one per kind). */
  handle<K extends BodyKind>(kind: K, handler: Handler<K>): this {
    if (BODY_TABLE[kind].scope === 'link') throw new TypeError(`${kind} is handled by the link itself`);
    if (this.handlers.has(kind)) throw new Error(`a handler for ${kind} is already registered`);
    this.handlers.set(kind, handler as unknown as Handler<BodyKind>);
    return this;
  }

  unhandle(kind: BodyKind): this {
    this.handlers.delete(kind);
    return this;
  }

  stats(): ChannelStats {
    return {
      state: this.currentState,
      negotiatedVersion: this.negotiatedVersion,
      peerSessionId: this.peerSession,
      inFlight: this.inFlightCount,
      inFlightBytes: this.inFlightBytes,
      queued: this.queue.length,
      awaitingResend: this.resendQueue.length,
      ...this.counters,
      replayEntries: this.replay.size,
      replayOverflows: this.replay.overflows,
      links: this.links.map((l) => l.stats()),
    };
  }

  /* ---------------- internals: state ---------------- */

  private transition(to: ChannelState): void {
    const from = this.currentState;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`peer channel: no transition ${from} -> ${to}`);
    this.currentState = to;
    if (this.unavailableTimer) {
      clearTimeout(this.unavailableTimer);
      this.unavailableTimer = null;
    }
    if (to === ChannelState.CONNECTING || to === ChannelState.SUSPENDED) {
      const ms = this.tunables.unavailableAfterMs;
      this.unavailableTimer = setTimeout(() => {
        this.unavailableTimer = null;
        this.transition(ChannelState.DOWN);
      }, ms);
    }
    this.log.info({ from, to }, 'peer channel state');
    this.emit('state', to, from);
    if (to === ChannelState.UP) this.emit('up');
    if (to === ChannelState.DOWN) {
      const err = new PeerUnavailableError(
        'EPEERUNAVAILABLE',
        `no link to "${this.peerNodeId}" has been up for ${this.tunables.unavailableAfterMs} ms`,
      );
      this.failAll(err, () => true);
      this.emit('down', err);
    }
  }

  private onLinkUp(link: PeerLink, conn: LinkConnection): void {
    if (this.currentState === ChannelState.CLOSED) return;
    this.checkPeerSession(conn);
    this.emit('link-up', link.index, { role: conn.role, version: conn.version, remote: conn.remoteAddress });
    if (this.currentState !== ChannelState.UP) this.transition(ChannelState.UP);
    this.pump();
  }

  private onLinkSwitch(conn: LinkConnection, old: LinkConnection): void {
    if (this.currentState === ChannelState.CLOSED) return;
    this.checkPeerSession(conn);
    this.connectionLost(old);
  }

  private onLinkDown(link: PeerLink, conn: LinkConnection, reason: Error | null): void {
    if (this.currentState === ChannelState.CLOSED) return;
    this.emit('link-down', link.index, reason);
    if (this.currentState === ChannelState.UP && !this.links.some((l) => l.isUp)) this.transition(ChannelState.SUSPENDED);
    this.connectionLost(conn);
  }

  /** Requests that went on `conn` and are unanswered go again elsewhere. */
  private connectionLost(conn: LinkConnection): void {
    if (this.tickConn === conn) this.tickConn = null;
    let moved = 0;
    for (const out of this.outstanding.values()) {
      if (out.conn !== conn) continue;
      out.conn = null;
      this.resendQueue.push(out);
      moved++;
    }
    conn.inFlight = 0;
    if (moved > 0) {
      this.resendQueue.sort((a, b) => a.seq - b.seq);
      this.log.info({ requests: moved, conn: conn.id }, 'resending the unanswered requests of a failed link connection');
    }
    this.pump();
  }

  /** A link came up: a new peer session means the peer restarted. */
  private checkPeerSession(conn: LinkConnection): void {
    const sid = conn.result!.peerSessionId;
    const previous = this.peerSession;
    this.peerSession = sid;
    if (previous === null || previous === sid) return;
    this.log.warn({ previous, session: sid }, 'the peer restarted');
    const err = new PeerUnavailableError('EPEERRESTART', `"${this.peerNodeId}" restarted while the request was outstanding`);
    this.failAll(err, (o) => o.sends > 0);
    this.replay.clear();
    for (const l of this.links) {
      const c = l.connection;
      if (c && c !== conn && c.result?.peerSessionId !== sid) c.close(new LinkFailure('EREPLACED', 'connection to a previous incarnation of the peer'));
    }
    this.emit('peer-restart', previous, sid);
  }

  /* ---------------- internals: sending ---------------- */

  private prepare(
    message: OutgoingMessage,
    payload: Payload | undefined,
    oneWay: boolean,
    sink: ReplySink,
  ): Outgoing | Error {
    if (this.currentState === ChannelState.CLOSED) {
      return new ChannelClosedError('the channel is closed');
    }
    if (this.currentState === ChannelState.DOWN) {
      return new PeerUnavailableError('EPEERUNAVAILABLE', `"${this.peerNodeId}" is unavailable (no link up)`);
    }
    let kind: BodyKind;
    try {
      kind = kindOf(message);
    } catch (err) {
      return err as Error;
    }
    const rule: BodyRule = BODY_TABLE[kind];
    const bytes = payloadLength(payload);
    if (rule.scope === 'link') {
      return new TypeError(`${kind} is a link-level message`);
    }
    if (bytes > this.limits.maxPayloadBytes) {
      return new RangeError(`payload of ${bytes} bytes exceeds the ${this.limits.maxPayloadBytes}-byte frame limit`);
    }
    if (rule.payload === 'required' && bytes === 0) {
      return new TypeError(`${kind} needs a payload`);
    }
    return {
      seq: this.nextSeq++,
      kind,
      message,
      payload,
      bytes,
      oneWay,
      conn: null,
      sends: 0,
      settled: false,
      timer: null,
      sink,
    };
  }

  /** Lowest seq still waiting for a reply, or the next seq when none is. */
  private ackFloor(): number {
    while (this.lowSeq < this.nextSeq && !this.outstanding.has(this.lowSeq)) this.lowSeq++;
    return this.lowSeq;
  }

  /** Sends what the window and the links allow: resends first, then the queue. */
  private pump(): void {
    if (this.pumping || this.currentState === ChannelState.CLOSED) return;
    this.pumping = true;
    try {
      for (;;) {
        const fromResend = this.resendQueue.length > 0;
        const next = fromResend ? this.resendQueue[0]! : this.queue.peek();
        if (!next) break;
        if (next.settled) {
          if (fromResend) this.resendQueue.shift();
          else this.queue.shift();
          continue;
        }
        if (!fromResend && !next.oneWay) {
          const t = this.tunables;
          if (this.inFlightCount >= t.maxInFlight) break;
          if (this.inFlightCount > 0 && this.inFlightBytes + next.bytes > t.maxInFlightBytes) break;
        }
        const conn = this.pickConnection();
        if (!conn) break;
        if (fromResend) this.resendQueue.shift();
        else this.queue.shift();
        this.transmit(next, conn);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * The open connection below the high-water mark with the least output
   * left from earlier ticks; among equals the one this tick already chose,
   * else the next in round robin. So the frames of one tick go out together
   * in one writev on one link (every writev wakes the peer: alternating
   * links per frame doubled the writes and the wake-ups on both nodes),
   * successive ticks spread over the links, and a link that falls behind
   * (its kernel buffer full) gets nothing until the others have a backlog too.
   */
  private pickConnection(): LinkConnection | null {
    const n = this.links.length;
    const start = this.tickConn ? 0 : this.rr % n;
    let best: LinkConnection | null = null;
    for (let i = 0; i < n; i++) {
      const c = this.links[(start + i) % n]!.connection;
      if (!c || !c.isOpen || c.queuedBytes >= this.tunables.linkHighWaterBytes) continue;
      if (!best || c.backlogBytes < best.backlogBytes || (c.backlogBytes === best.backlogBytes && c === this.tickConn)) best = c;
    }
    if (best && this.tickConn === null) {
      this.rr++;
      process.nextTick(() => (this.tickConn = null));
    }
    if (best) this.tickConn = best;
    return best;
  }

  private transmit(out: Outgoing, conn: LinkConnection): void {
    if (BODY_TABLE[out.kind].since > conn.version) {
      this.settle(out, new UnsupportedByPeerError(`${out.kind} needs protocol version ${BODY_TABLE[out.kind].since}; the link runs ${conn.version}`));
      return;
    }
    let frame: Buffer[];
    try {
      const m = out.message;
      frame =
        'write' in m && m.write !== undefined && !out.oneWay
          ? encodeWriteFrame(out.seq, this.ackFloor(), m.write, out.payload ?? [], this.limits)
          : encodeFrame({ seq: out.seq, expectsReply: !out.oneWay, ackFloor: this.ackFloor(), ...m }, out.payload, this.limits);
    } catch (err) {
      this.settle(out, err as Error);
      return;
    }
    conn.writeFrame(frame);
    if (out.oneWay) {
      out.settled = true;
      return;
    }
    if (out.sends === 0) {
      this.inFlightCount++;
      this.inFlightBytes += out.bytes;
    } else {
      this.counters.resent++;
    }
    out.sends++;
    out.conn = conn;
    conn.inFlight++;
  }

  /** Settles a request once: with its reply, or with an error. */
  private settle(out: Outgoing, result: IncomingMessage | Error): void {
    if (out.settled) return;
    out.settled = true;
    if (!out.oneWay) this.outstanding.delete(out.seq);
    if (out.timer) clearTimeout(out.timer);
    out.timer = null;
    if (out.sends > 0 && !out.oneWay) {
      this.inFlightCount--;
      this.inFlightBytes -= out.bytes;
    }
    if (out.conn) out.conn.inFlight--;
    out.conn = null;
    if (result instanceof Error) out.sink.failed(result);
    else out.sink.replied(result);
  }

  /** Fails the requests (and drops the one-way messages) `which` selects. */
  private failAll(err: Error, which: (o: Outgoing) => boolean): void {
    for (const out of this.outstanding.values().sort(bySeq)) if (which(out)) this.settle(out, err);
    for (const out of this.queue) if (out.oneWay && !out.settled && which(out)) out.settled = true;
    this.queue.retain((o) => !o.settled);
    this.resendQueue = this.resendQueue.filter((o) => !o.settled);
  }

  /* ---------------- internals: receiving ---------------- */

  private onFrame(conn: LinkConnection, frame: DecodedFrame): void {
    if (this.currentState === ChannelState.CLOSED) return;
    const env = frame.envelope;
    if (!isSeqNumber(env.seq) || !isSeqNumber(env.replyTo) || !isSeqNumber(env.ackFloor)) {
      // protobufjs turns a uint64 beyond 2^53 into an inexact number; no release of ours sends one.
      this.counters.unknownBodies++;
      this.log.warn({ seq: env.seq, replyTo: env.replyTo, ackFloor: env.ackFloor }, 'frame with a sequence number beyond 2^53 ignored');
      return;
    }
    if (env.ackFloor > 0) this.replay.advanceFloor(env.ackFloor);
    if (env.replyTo > 0) this.onReply(env, frame);
    else if (env.expectsReply) this.onRequest(conn, env, frame);
    else this.onOneWay(env, frame);
  }

  private onReply(env: Envelope, frame: DecodedFrame): void {
    const out = this.outstanding.get(env.replyTo);
    if (!out) {
      this.counters.duplicateReplies++;
      return;
    }
    this.settle(out, { envelope: env, payload: frame.payload });
    this.pump();
  }

  private onRequest(conn: LinkConnection, env: Envelope, frame: DecodedFrame): void {
    const seq = env.seq;
    const seen = this.replay.check(seq);
    switch (seen.state) {
      case 'stale':
        this.counters.duplicateRequests++;
        this.log.debug({ seq, floor: this.replay.floor }, 'copy of a request below the ack floor ignored');
        return;
      case 'pending':
        this.counters.duplicateRequests++;
        // A late copy read from a replaced connection (draining: it sends nothing) must not take the reply
        // away from the open connection a newer copy came on.
        if (conn.isOpen) this.replay.redirect(seq, conn);
        return;
      case 'done':
        this.counters.duplicateRequests++;
        this.sendReply(conn, seen.reply);
        return;
      case 'new':
        break;
    }
    this.replay.begin(seq, conn);
    this.dispatch(env, frame, (r) => this.answer(seq, r));
  }

  /** Sends the reply to request `seq` and records it for copies of the request. */
  private answer(seq: number, result: ReplyWithPayload): void {
    let reply: Buffer[];
    try {
      const r = result.reply;
      reply =
        'ack' in r && r.ack !== undefined && result.payload === undefined
          ? encodeAckFrame(seq, this.ackFloor(), r.ack, this.limits)
          : encodeFrame({ replyTo: seq, ackFloor: this.ackFloor(), ...r }, result.payload, this.limits);
    } catch (err) {
      reply = encodeFrame({ replyTo: seq, ack: { ok: false, code: 'EIO', message: `reply not encodable: ${(err as Error).message}` } });
    }
    const via = this.replay.complete(seq, reply);
    if (via) this.sendReply(via, reply);
  }

  /**
   * Sends a reply where the latest copy of its request came from, or, when that connection is no longer
   * open (replaced or failed), on any open one: the requester matches replies by seq whatever link they
   * come on, and it resends only when its own connection fails, which may not be this one.
   */
  private sendReply(via: LinkConnection, reply: Buffer[]): void {
    if (this.currentState === ChannelState.CLOSED) return;
    if (via.isOpen) {
      via.writeFrame(reply);
      return;
    }
    // Any open link, whatever its backlog: a reply is small, and one not sent leaves the requester waiting.
    const conn = this.pickConnection() ?? this.links.map((l) => l.connection).find((c) => c?.isOpen === true);
    conn?.writeFrame(reply);
  }

  private onOneWay(env: Envelope, frame: DecodedFrame): void {
    this.dispatch(env, frame, (result) => {
      const r = result.reply;
      if ('ack' in r && r.ack.ok === false) this.log.warn({ seq: env.seq, body: env.body, code: r.ack.code, err: r.ack.message }, 'one-way message failed');
    });
  }

  /**
   * Runs the handler of a message and hands `done` the reply to send: at
   * once when the handler answered synchronously (or the message was
   * refused), else when its promise settles. `done` runs exactly once and
   * never throws back into the handler.
   */
  private dispatch(env: Envelope, frame: DecodedFrame, done: (reply: ReplyWithPayload) => void): void {
    if (env.body === undefined || !isBodyKind(env.body)) {
      this.counters.unknownBodies++;
      done(nack('ENOTSUP', `"${this.nodeId}" does not know this message type (sent by a newer release?)`));
      return;
    }
    const known = env as KnownEnvelope;
    const kind = known.body;
    const rule: BodyRule = BODY_TABLE[kind];
    if (rule.scope === 'link') return done(nack('EPROTO', `${kind} is a link-level message`));
    if (rule.payload === 'required' && frame.payloadLength === 0) return done(nack('EPROTO', `${kind} without its payload`));
    const body = (known as unknown as Record<string, unknown>)[kind] as never;
    if (rule.payloadLength && rule.payloadLength(body) !== frame.payloadLength) {
      return done(nack('EPROTO', `${kind} announces ${rule.payloadLength(body)} payload bytes and carries ${frame.payloadLength}`));
    }
    const handler = this.handlers.get(kind);
    if (!handler) return done(nack('ENOTSUP', `"${this.nodeId}" has no handler for ${kind}`));
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = handler(body, frame.payload, known as never);
    } catch (err) {
      return done(this.handlerFailed(env.seq, kind, err));
    }
    if (!(result instanceof Promise)) return done(this.replyOrFailure(env.seq, kind, result));
    result.then(
      (r: HandlerResult) => done(this.replyOrFailure(env.seq, kind, r)),
      (err: unknown) => done(this.handlerFailed(env.seq, kind, err)),
    );
  }

  /** The reply a handler's result makes, or the failure when it makes none. */
  private replyOrFailure(seq: number, kind: BodyKind, result: HandlerResult): ReplyWithPayload {
    try {
      return replyOf(result);
    } catch (err) {
      return this.handlerFailed(seq, kind, err);
    }
  }

  private handlerFailed(seq: number, kind: BodyKind, err: unknown): ReplyWithPayload {
    const e = err as { code?: unknown; message?: unknown };
    const code = typeof e?.code === 'string' && ERRNO_NAME.test(e.code) ? e.code : 'EIO';
    const message = typeof e?.message === 'string' ? e.message : String(err);
    this.log.debug({ seq, body: kind, code, err: message }, 'handler failed');
    return nack(code, message);
  }
}

/** The reply Ack{ok: true}, shared (encoding only reads it). */
const OK_REPLY: ReplyWithPayload = Object.freeze({ reply: Object.freeze({ ack: Object.freeze({ ok: true }) }) });

function nack(code: string, message: string): ReplyWithPayload {
  return { reply: { ack: { ok: false, code, message } } };
}

/** A handler's result as the reply to send; throws when it is not one message. */
function replyOf(result: HandlerResult): ReplyWithPayload {
  if (result === undefined || result === null) return OK_REPLY;
  if ('reply' in result) {
    kindOf(result.reply);
    return result;
  }
  kindOf(result);
  return { reply: result };
}
