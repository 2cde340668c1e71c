/**
 * Helpers of the link tests: pairs of PeerChannels over loopback, polling
 * waits with deadlines, and a raw peer that speaks the wire protocol by hand
 * (for messages a real channel would never send).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Type, parse } from 'protobufjs';
import pino from 'pino';
import { DialerHandshake, HandshakeConfig, HandshakeResult, LinkAddress, PeerChannel, PeerChannelOptions } from '../../../../src/mirror/link';
import { DecodedFrame, FrameDecoder, OutgoingEnvelope, Payload, encodeFrame } from '../../../../src/mirror/protocol';

/** Silent unless TWINSAN_TEST_LOG names a level. */
export const testLog = pino({ level: process.env['TWINSAN_TEST_LOG'] ?? 'silent' });

export const LOOPBACK = '127.0.0.1';
export const SECRET = 'test secret';
export const CLUSTER = 'test-cluster';

/** Timers short enough for tests, long enough for a loaded two-core CI machine. */
export const FAST_TIMERS = {
  heartbeatMs: 50,
  deadMs: 2_000,
  handshakeTimeoutMs: 2_000,
  reconnectMinMs: 20,
  reconnectMaxMs: 200,
  unavailableAfterMs: 3_000,
} as const;

export type ChannelOverrides = Partial<Omit<PeerChannelOptions, 'log'>>;

export function newChannel(nodeId: string, peerNodeId: string, links: number, over: ChannelOverrides = {}): PeerChannel {
  return new PeerChannel({
    nodeId,
    peerNodeId,
    clusterId: CLUSTER,
    secret: SECRET,
    log: testLog,
    links: Array.from({ length: links }, () => ({ local: { host: LOOPBACK, port: 0 } })),
    ...FAST_TIMERS,
    ...over,
  });
}

export interface Pair {
  readonly a: PeerChannel;
  readonly b: PeerChannel;
  readonly aAddrs: LinkAddress[];
  readonly bAddrs: LinkAddress[];
}

/** node-a and node-b, listening on loopback, dialling each other; optionally waits for every link. */
export async function channelPair(opts: { links?: number; a?: ChannelOverrides; b?: ChannelOverrides; waitUp?: boolean } = {}): Promise<Pair> {
  const links = opts.links ?? 2;
  const a = newChannel('node-a', 'node-b', links, opts.a);
  const b = newChannel('node-b', 'node-a', links, opts.b);
  const aAddrs = (await a.listen()) as LinkAddress[];
  const bAddrs = (await b.listen()) as LinkAddress[];
  a.connect(bAddrs);
  b.connect(aAddrs);
  if (opts.waitUp ?? true) await allLinksUp([a, b], links);
  return { a, b, aAddrs, bAddrs };
}

export async function allLinksUp(channels: readonly PeerChannel[], links: number, timeoutMs = 5_000): Promise<void> {
  await waitFor(
    () => channels.every((c) => Array.from({ length: links }, (_, i) => c.link(i).isUp).every(Boolean)),
    timeoutMs,
    'every link up',
  );
}

/** Polls `cond` every few milliseconds; rejects naming `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The first emission of `event`, or a rejection after `timeoutMs`. */
export function nextEvent<T extends unknown[]>(
  emitter: { once(event: string, fn: (...args: T) => void): unknown; off(event: string, fn: (...args: T) => void): unknown },
  event: string,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (...args: T): void => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(event, fn);
      reject(new Error(`no '${event}' within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.once(event, fn);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A peer written by hand: dials a channel's link, runs the dialer side of
 * the handshake, then sends whatever frames a test builds and collects what
 * comes back (heartbeats are answered and not collected).
 */
export class RawPeer {
  readonly frames: DecodedFrame[] = [];
  handshake: HandshakeResult | null = null;
  handshakeError: Error | null = null;
  private readonly decoder = new FrameDecoder();
  private waiters: (() => void)[] = [];
  private closed = false;

  private constructor(
    readonly socket: net.Socket,
    private readonly dialer: DialerHandshake,
    private readonly answerHeartbeats: boolean,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** `allowHalfOpen`: the peer's FIN does not end our side, so frames can still be written after it (as a peer that wrote before it saw the FIN). */
  static async dial(addr: LinkAddress, cfg: Partial<HandshakeConfig> = {}, answerHeartbeats = true, allowHalfOpen = false): Promise<RawPeer> {
    const socket = net.connect({ host: addr.host, port: addr.port, allowHalfOpen });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const dialer = new DialerHandshake({
      nodeId: 'node-b',
      peerNodeId: 'node-a',
      clusterId: CLUSTER,
      secret: Buffer.from(SECRET),
      versions: { min: 1, max: 1 },
      linkIndex: 0,
      sessionId: 'raw-peer-session',
      ...cfg,
    });
    const peer = new RawPeer(socket, dialer, answerHeartbeats);
    peer.write(encodeFrame(dialer.start()));
    await waitFor(() => peer.handshake !== null || peer.handshakeError !== null || peer.closed, 5_000, 'the raw peer handshake');
    return peer;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(env: OutgoingEnvelope, payload?: Payload): void {
    this.write(encodeFrame(env, payload));
  }

  write(buffers: readonly Buffer[]): void {
    for (const b of buffers) this.socket.write(b);
  }

  /** The next collected frame matching `pred` (removed from `frames`). */
  async take(pred: (f: DecodedFrame) => boolean, timeoutMs = 5_000): Promise<DecodedFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.closed) throw new Error('raw peer connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`raw peer: no matching frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    for (let f = this.decoder.next(); f; f = this.decoder.next()) {
      const env = f.envelope;
      if (!this.handshake && !this.handshakeError) {
        const step = this.dialer.receive(env);
        if (step.send) this.send(step.send);
        if (step.done) this.handshake = step.done;
        if (step.error) this.handshakeError = step.error;
        continue;
      }
      if (env.body === 'heartbeat') {
        if (this.answerHeartbeats && !env.heartbeat.echo) this.send({ heartbeat: { ...env.heartbeat, echo: true } });
        continue;
      }
      this.frames.push(f);
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }
}

/** Envelope as a later release might define it: with a `snapshot` body this release does not know. */
export function newerEnvelopeType(): Type {
  const proto = fs.readFileSync(path.join(__dirname, '..', '..', '..', '..', 'src', 'mirror', 'protocol', 'replication.proto'), 'utf8');
  const source =
    proto.replace('GenerationUpdate generation_update = 26;', 'GenerationUpdate generation_update = 26;\n    Snapshot snapshot = 40;') +
    '\nmessage Snapshot { string volume_id = 1; string name = 2; }\n';
  return parse(source, { keepCase: false }).root.lookupType('twinsan.mirror.v1.Envelope');
}
