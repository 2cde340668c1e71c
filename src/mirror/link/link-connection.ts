/**
 * One TCP connection of a link: frames the byte stream, drives the
 * handshake (handshake.ts) over it, then passes channel frames up while it
 * answers heartbeats itself, measures the round-trip time and declares the
 * connection dead after `deadMs` without a byte from the peer.
 *
 * Writes are batched: the frames written in one tick are collected and
 * handed to the socket at the end of the tick, so they leave in one system
 * call. Buffers up to COPY_MAX_BYTES (frame heads, acks, 4 KiB payloads) are
 * copied together into one buffer: a socket write() costs more per buffer
 * than copying a few KiB does. Larger payload buffers go as they are.
 *
 * States: handshake -> open -> closed, handshake -> closed, or
 * open -> draining -> closed. 'close' is emitted once, with the reason
 * (null when the peer closed cleanly).
 *
 * Draining is how a replaced connection ends (retire()): our FIN goes after
 * what we queued, and frames keep coming up until the peer's FIN, because
 * the peer may have written on this connection before it learnt of the
 * replacement and those frames (one-way ones are never resent) must not be
 * lost. Likewise a connection whose peer sent FIN flushes what we queued
 * before it closes.
 */
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { Logger } from 'pino';
import { DecodedFrame, FrameDecoder, FrameError, FrameLimits, encodeFrame } from '../protocol/frame';
import { BODY_TABLE, OutgoingEnvelope } from '../protocol/messages';
import { HandshakeError, LinkFailure } from './errors';
import { AcceptorHandshake, DialerHandshake, HandshakeConfig, HandshakeResult, HandshakeRole, HandshakeStep } from './handshake';

export interface LinkTimers {
  /** Heartbeat interval. */
  readonly heartbeatMs: number;
  /** A connection that received nothing for this long is dead. */
  readonly deadMs: number;
  /** A handshake not complete after this long fails (ETIMEDOUT). */
  readonly handshakeTimeoutMs: number;
}

export interface LinkConnectionOptions {
  readonly socket: Socket;
  readonly role: HandshakeRole;
  readonly handshake: HandshakeConfig;
  readonly timers: LinkTimers;
  readonly limits: FrameLimits;
  readonly log: Logger;
}

export type LinkConnectionState = 'handshake' | 'open' | 'draining' | 'closed';

export type LinkConnectionEvents = {
  ready: [result: HandshakeResult];
  frame: [frame: DecodedFrame];
  /** The socket flushed what was queued. */
  drain: [];
  close: [reason: Error | null];
};

/** Buffers up to this size are copied into the tick's combined buffer; larger ones are written as they are. */
const COPY_MAX_BYTES = 16 * 1024;
/** Largest combined buffer. */
const COMBINED_MAX_BYTES = 256 * 1024;

/** Time allowed to flush a refusal, or our output after the peer's FIN, before the socket is destroyed. */
const REFUSAL_LINGER_MS = 1000;

let nextConnectionId = 1;

export class LinkConnection extends EventEmitter<LinkConnectionEvents> {
  readonly id = nextConnectionId++;
  readonly role: HandshakeRole;
  readonly socket: Socket;
  readonly log: Logger;
  state: LinkConnectionState = 'handshake';
  result: HandshakeResult | null = null;
  /** Why the connection closed (first reason wins). */
  closeReason: Error | null = null;

  bytesSent = 0;
  bytesReceived = 0;
  framesSent = 0;
  framesReceived = 0;
  /** Last heartbeat round trip, and its smoothed value (RFC 6298 style, 1/8). */
  rttMs: number | null = null;
  srttMs: number | null = null;
  lastReceivedAt = Date.now();
  /** Channel requests sent on this connection and not answered (kept by the channel). */
  inFlight = 0;

  private readonly decoder: FrameDecoder;
  private readonly handshake: DialerHandshake | AcceptorHandshake;
  private readonly timers: LinkTimers;
  private readonly limits: FrameLimits;
  /** The buffers of the frames written this tick, handed to the socket at its end (flushTick). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly flushTick = (): void => this.flushPending();
  private handshakeTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private heartbeatSeq = 0;
  private closeEmitted = false;

  constructor(opts: LinkConnectionOptions) {
    super();
    this.role = opts.role;
    this.socket = opts.socket;
    this.timers = opts.timers;
    this.limits = opts.limits;
    this.log = opts.log.child({ conn: this.id, role: opts.role });
    this.decoder = new FrameDecoder(opts.limits);
    this.handshake = opts.role === 'dialer' ? new DialerHandshake(opts.handshake) : new AcceptorHandshake(opts.handshake);

    const s = this.socket;
    s.setNoDelay(true);
    s.setKeepAlive(true, Math.max(1000, this.timers.deadMs));
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('drain', () => this.emit('drain'));
    s.on('error', (err) => this.fail(new LinkFailure('ESOCKET', `socket: ${err.message}`, (err as NodeJS.ErrnoException).code)));
    s.on('close', () => this.finish());
    s.on('end', () => this.onPeerEnd());

    this.handshakeTimer = setTimeout(() => {
      this.fail(new HandshakeError('ETIMEDOUT', `handshake not complete after ${this.timers.handshakeTimeoutMs} ms`, false));
    }, this.timers.handshakeTimeoutMs);
    if (this.handshake instanceof DialerHandshake) this.writeEnvelope(this.handshake.start());
  }

  isClosed(): boolean {
    return this.state === 'closed';
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Replaced: sends nothing more, still passes up what the peer sent before it saw our FIN. */
  get isDraining(): boolean {
    return this.state === 'draining';
  }

  /** The negotiated protocol version (0 before the handshake completes). */
  get version(): number {
    return this.result?.version ?? 0;
  }

  /** Bytes written and not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  /** Of queuedBytes, those left from earlier ticks: output the kernel has not taken yet. */
  get backlogBytes(): number {
    return this.socket.writableLength;
  }

  get remoteAddress(): string | null {
    const a = this.socket.remoteAddress;
    return a ? `${a}:${this.socket.remotePort}` : null;
  }

  /** Writes one frame's buffers (from encodeFrame) at the end of this tick. Ignored once closed. */
  writeFrame(buffers: readonly Buffer[]): void {
    if (this.state === 'closed' || this.state === 'draining' || this.socket.destroyed || !this.socket.writable) return;
    if (this.pending.length === 0) process.nextTick(this.flushTick);
    for (const b of buffers) {
      this.pending.push(b);
      this.pendingBytes += b.length;
      this.bytesSent += b.length;
    }
    this.framesSent++;
  }

  /** Hands the tick's buffers to the socket: small ones copied together, large ones as they are, in order, corked. */
  private flushPending(): void {
    const bufs = this.pending;
    if (bufs.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    const s = this.socket;
    if (s.destroyed || !s.writable) return;
    if (bufs.length === 1) {
      s.write(bufs[0]!);
      return;
    }
    s.cork();
    let i = 0;
    while (i < bufs.length) {
      // A run of small buffers becomes one; a large one goes alone.
      let j = i;
      let bytes = 0;
      while (j < bufs.length && bufs[j]!.length <= COPY_MAX_BYTES && bytes + bufs[j]!.length <= COMBINED_MAX_BYTES) bytes += bufs[j++]!.length;
      if (j - i > 1) {
        const combined = Buffer.allocUnsafe(bytes);
        let at = 0;
        for (; i < j; i++) at += bufs[i]!.copy(combined, at);
        s.write(combined);
      } else {
        s.write(bufs[i++]!);
      }
    }
    s.uncork();
  }

  /** Closes at once (destroys the socket); `reason` is what 'close' reports. */
  close(reason: Error | null): void {
    if (this.closeReason === null) this.closeReason = reason;
    this.enterClosed();
    this.socket.destroy();
  }

  /**
   * Ends a connection another one replaced: FIN after what is queued, then
   * frames still come up until the peer's FIN (or `deadMs`, if the peer
   * never sends one). A connection not open yet closes at once.
   */
  retire(reason: Error): void {
    if (this.state !== 'open') {
      this.close(reason);
      return;
    }
    if (this.closeReason === null) this.closeReason = reason;
    this.state = 'draining';
    this.clearTimer('heartbeat');
    this.flushPending();
    this.socket.end();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), this.timers.deadMs);
  }

  private writeEnvelope(env: OutgoingEnvelope): void {
    this.writeFrame(encodeFrame(env, undefined, this.limits));
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.lastReceivedAt = Date.now();
    this.bytesReceived += chunk.length;
    this.decoder.push(chunk);
    // A frame handler may close the connection: check again before each frame.
    while (!this.isClosed()) {
      let frame: DecodedFrame | null;
      try {
        frame = this.decoder.next();
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        this.close(new LinkFailure('EPROTO', `bad frame from the peer: ${err.message}`));
        return;
      }
      if (!frame) return;
      this.framesReceived++;
      if (this.state === 'handshake') this.onHandshakeFrame(frame);
      else this.onOpenFrame(frame);
    }
  }

  private onHandshakeFrame(frame: DecodedFrame): void {
    const result: HandshakeStep = this.handshake.receive(frame.envelope);
    if (result.send) this.writeEnvelope(result.send);
    if (result.error) {
      if (result.send) this.endAfterFlush(result.error);
      else this.close(result.error);
      return;
    }
    if (result.done) {
      this.result = result.done;
      this.state = 'open';
      this.clearTimer('handshake');
      this.startHeartbeats();
      this.log.debug({ version: result.done.version, peer: result.done.peerNodeId }, 'link connection ready');
      this.emit('ready', result.done);
    }
  }

  private onOpenFrame(frame: DecodedFrame): void {
    const env = frame.envelope;
    if (env.body === 'heartbeat') {
      const hb = env.heartbeat;
      if (this.state === 'draining') return;
      if (!hb.echo) {
        this.writeEnvelope({ heartbeat: { sentAtMs: hb.sentAtMs, seq: hb.seq, echo: true } });
      } else {
        const rtt = Math.max(0, Date.now() - hb.sentAtMs);
        this.rttMs = rtt;
        this.srttMs = this.srttMs === null ? rtt : this.srttMs + (rtt - this.srttMs) / 8;
      }
      return;
    }
    if (env.body !== undefined && BODY_TABLE[env.body].scope === 'link') {
      this.close(new LinkFailure('EPROTO', `${env.body} after the handshake`));
      return;
    }
    if (env.body === 'ack' && !env.ack.ok && env.seq === 0 && env.replyTo === 0) {
      // The peer refused the link after we considered it open (it found our Welcome wrong).
      this.close(new HandshakeError('EPROTO', `the peer refused the link: ${env.ack.code} ${env.ack.message}`, true));
      return;
    }
    this.emit('frame', frame);
  }

  private startHeartbeats(): void {
    this.heartbeatTimer = setInterval(() => {
      if (this.state !== 'open') return;
      const silentMs = Date.now() - this.lastReceivedAt;
      if (silentMs > this.timers.deadMs) {
        this.close(new LinkFailure('EDEAD', `nothing received for ${silentMs} ms (dead after ${this.timers.deadMs} ms)`));
        return;
      }
      this.writeEnvelope({ heartbeat: { sentAtMs: Date.now(), seq: ++this.heartbeatSeq } });
    }, this.timers.heartbeatMs);
  }

  /** Lets a refusal reach the peer: FIN after the queued bytes, destroy if the peer lingers. */
  private endAfterFlush(reason: Error): void {
    if (this.closeReason === null) this.closeReason = reason;
    this.enterClosed();
    this.flushPending();
    this.socket.end();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), REFUSAL_LINGER_MS);
  }

  /**
   * The peer's FIN: nothing more comes. What we queued still goes (it may
   * be frames written before the FIN was read), then the socket closes.
   */
  private onPeerEnd(): void {
    if (this.state === 'draining') {
      this.socket.destroy();
      return;
    }
    this.enterClosed();
    this.flushPending();
    this.socket.end();
    if (!this.lingerTimer) this.lingerTimer = setTimeout(() => this.socket.destroy(), REFUSAL_LINGER_MS);
  }

  /** A socket error. */
  private fail(reason: Error | null): void {
    if (this.closeReason === null) this.closeReason = reason;
    this.enterClosed();
    this.socket.destroy();
  }

  private enterClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearTimer('handshake');
    this.clearTimer('heartbeat');
  }

  private finish(): void {
    this.enterClosed();
    this.clearTimer('linger');
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close', this.closeReason);
  }

  private clearTimer(which: 'handshake' | 'heartbeat' | 'linger'): void {
    if (which === 'handshake' && this.handshakeTimer) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    } else if (which === 'heartbeat' && this.heartbeatTimer) {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
    } else if (which === 'linger' && this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
  }
}
