/**
 * PeerChannel end to end (src/mirror/link/peer-channel.ts, peer-link.ts,
 * link-connection.ts): two channels in this process over loopback with two
 * links each, plus a hand-written raw peer for what a real channel never
 * sends. Every test closes what it opened; timers are short and every wait
 * has a deadline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  ChannelClosedError,
  HandshakeError,
  IncomingMessage,
  LinkAddress,
  PeerChannel,
  PeerUnavailableError,
  RemoteError,
  RequestTimeoutError,
  LinkFailure,
  ReplySink,
  checkAck,
  endedByPeer,
} from '../../../../src/mirror/link';
import { Complete, PROTOCOL_VERSION, Write, encodeFrame } from '../../../../src/mirror/protocol';
import { LOOPBACK, RawPeer, allLinksUp, channelPair, newChannel, newerEnvelopeType, nextEvent, sleep, waitFor } from './helpers';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});
function track<T extends { close(): Promise<void> }>(x: T): T {
  cleanups.push(() => x.close());
  return x;
}

/** A payload whose bytes identify request `id`. */
function payloadFor(id: number, size: number): Buffer {
  const b = Buffer.alloc(size, id & 0xff);
  b.writeUInt32BE(id, 0);
  return b;
}

function expectPayloadOf(id: number, payload: Buffer[], size: number): void {
  const b = Buffer.concat(payload);
  expect(b.length).toBe(size);
  expect(b.readUInt32BE(0)).toBe(id);
  expect(b[size - 1]).toBe(id & 0xff);
}

/** A 'write' handler counting each request (by offset / 4096) and checking its payload. */
function countingWriteHandler(channel: PeerChannel, size: number, delay?: () => number): Map<number, number> {
  const seen = new Map<number, number>();
  channel.handle('write', async (w: Complete<Write>, payload) => {
    const id = w.offset / 4096;
    seen.set(id, (seen.get(id) ?? 0) + 1);
    expectPayloadOf(id, payload, size);
    if (delay) await sleep(delay());
    return { ack: { ok: true, message: `applied ${id}` } };
  });
  return seen;
}

function writeRequest(channel: PeerChannel, id: number, size: number): Promise<IncomingMessage> {
  return channel.request({ write: { volumeId: 'vol', offset: id * 4096, length: size } }, payloadFor(id, size));
}

function expectExactlyOnce(seen: Map<number, number>, n: number): void {
  expect(seen.size).toBe(n);
  const wrong = [...seen.entries()].filter(([, count]) => count !== 1);
  expect(wrong).toEqual([]);
}

describe('PeerChannel over two loopback links', () => {
  it('round-trips 10k requests with payloads, each applied exactly once, over both links', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    const N = 10_000;
    const SIZE = 4096;
    const seen = countingWriteHandler(b, SIZE);
    const replies = await Promise.all(Array.from({ length: N }, (_, i) => writeRequest(a, i, SIZE)));
    for (const [i, r] of replies.entries()) {
      expect(r.envelope.body).toBe('ack');
      expect(r.envelope.body === 'ack' && r.envelope.ack).toEqual({ ok: true, code: '', message: `applied ${i}` });
    }
    expectExactlyOnce(seen, N);
    const links = a.stats().links;
    for (const l of links) expect(l.framesSent, `link ${l.index}`).toBeGreaterThan(N / 10);
    expect(a.stats()).toMatchObject({ inFlight: 0, queued: 0, awaitingResend: 0, state: 'up', negotiatedVersion: PROTOCOL_VERSION.MAX });
  });

  it('delivers the frames of one tick intact and in order whatever their sizes (copied together when small, as they are when large)', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    // Sizes around the 16 KiB copy limit, and enough small ones to pass the 256 KiB combined cap.
    const sizes = [512, 4096, 16 * 1024, 16 * 1024 + 1, 4096, 1 << 20, 8, ...Array.from({ length: 80 }, () => 4096), 300 * 1024, 4096];
    const seen = new Map<number, number>();
    b.handle('write', (w: Complete<Write>, payload) => {
      const id = w.offset / 4096;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      expectPayloadOf(id, payload, sizes[id]!);
      return { ack: { ok: true, message: `applied ${id}` } };
    });
    // All issued in one tick.
    const replies = await Promise.all(sizes.map((size, i) => writeRequest(a, i, size)));
    for (const [i, r] of replies.entries()) expect(r.envelope.body === 'ack' && r.envelope.ack.message).toBe(`applied ${i}`);
    expectExactlyOnce(seen, sizes.length);
  });

  it('keeps the connection dialled by the lower node id on every link', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    await waitFor(
      () => [0, 1].every((i) => a.link(i).connection?.role === 'dialer' && b.link(i).connection?.role === 'acceptor'),
      5_000,
      'node-a to be the dialer of both links',
    );
    // And it stays so: nothing flaps afterwards.
    const connIds = [0, 1].map((i) => a.link(i).connection!.id);
    await sleep(200);
    expect([0, 1].map((i) => a.link(i).connection!.id)).toEqual(connIds);
  });

  it('carries requests both ways at once (full duplex)', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    const N = 3_000;
    const SIZE = 1024;
    const seenByA = countingWriteHandler(a, SIZE);
    const seenByB = countingWriteHandler(b, SIZE);
    await Promise.all([
      ...Array.from({ length: N }, (_, i) => writeRequest(a, i, SIZE).then(checkAck)),
      ...Array.from({ length: N }, (_, i) => writeRequest(b, i, SIZE).then(checkAck)),
    ]);
    expectExactlyOnce(seenByA, N);
    expectExactlyOnce(seenByB, N);
  });

  for (const side of ['requester', 'responder'] as const) {
    it(`loses no request when one link's socket is destroyed mid-stream on the ${side} side; each is applied exactly once`, async () => {
      const { a, b } = await channelPair();
      track(a);
      track(b);
      const N = 3_000;
      const SIZE = 2048;
      // Replies come late, so many requests are in flight on the link when it dies.
      const seen = countingWriteHandler(b, SIZE, () => Math.floor(Math.random() * 5));
      const all = Promise.all(Array.from({ length: N }, (_, i) => writeRequest(a, i, SIZE).then(checkAck)));
      await waitFor(() => seen.size >= 500, 10_000, '500 requests handled');
      // Both nodes use the same TCP connection for link 0; destroy one end of it.
      expect(a.link(0).connection!.inFlight).toBeGreaterThan(0);
      const victim = side === 'requester' ? a.link(0).connection! : b.link(0).connection!;
      victim.socket.destroy();
      await all;
      expectExactlyOnce(seen, N);
      expect(a.stats().resent).toBeGreaterThan(0);
      // The link comes back by itself.
      await allLinksUp([a, b], 2);
    });
  }

  it('fails requests with PeerUnavailableError once no link has been up for unavailableAfterMs, and comes up again when the peer returns', async () => {
    const UNAVAILABLE_MS = 400;
    const { a, b, bAddrs, aAddrs } = await channelPair({ a: { unavailableAfterMs: UNAVAILABLE_MS } });
    track(a);
    const firstPeerSession = b.sessionId;
    b.handle('flush', () => new Promise<void>(() => undefined)); // never answers
    const hanging = a.request({ flush: { volumeId: 'vol' } }).catch((e: unknown) => e);
    await waitFor(() => a.stats().inFlight === 1, 2_000, 'the flush in flight');

    const downs: number[] = [];
    a.on('link-down', (i) => downs.push(i));
    const gone = Date.now();
    await b.close(); // the peer dies: every link drops and nothing answers a redial
    expect(await hanging).toBeInstanceOf(PeerUnavailableError);
    const waited = Date.now() - gone;
    expect(waited).toBeGreaterThanOrEqual(UNAVAILABLE_MS - 50);
    expect(waited).toBeLessThan(UNAVAILABLE_MS + 2_000);
    expect(a.state).toBe('down');
    expect(downs.sort()).toEqual([0, 1]);
    const err = await a.request({ flush: { volumeId: 'vol' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerUnavailableError);
    expect((err as PeerUnavailableError).code).toBe('EPEERUNAVAILABLE');

    // The peer comes back on the same addresses: a's dialers find it.
    const b2 = track(newChannel('node-b', 'node-a', 2, { links: bAddrs.map((addr) => ({ local: addr })) }));
    const up = nextEvent(a, 'up', 5_000);
    const restart = nextEvent<[string, string]>(a, 'peer-restart', 5_000);
    await b2.listen();
    b2.connect(aAddrs);
    await up;
    const [previous, current] = await restart;
    expect(previous).toBe(firstPeerSession);
    expect(current).toBe(b2.sessionId);
    expect(a.state).toBe('up');
    b2.handle('flush', () => undefined);
    expect(checkAck(await a.request({ flush: { volumeId: 'vol' } })).envelope.body).toBe('ack');
  });

  it('answers a request without a handler with ENOTSUP (RemoteError through checkAck)', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    const reply = await a.request({ resize: { volumeId: 'vol', sizeBytes: 1 << 30 } });
    expect(reply.envelope).toMatchObject({ body: 'ack', ack: { ok: false, code: 'ENOTSUP' } });
    expect(() => checkAck(reply)).toThrow(RemoteError);
    expect(() => checkAck(reply)).toThrow(/no handler for resize/);
  });

  it('turns handler failures into Ack{ok: false} with the errno-style code, or EIO', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    b.handle('flush', (f) => {
      if (f.volumeId === 'full') throw Object.assign(new Error('no space left on the replica'), { code: 'ENOSPC' });
      if (f.volumeId === 'odd') throw Object.assign(new Error('odd failure'), { code: 'not an errno' });
      throw new Error('plain failure');
    });
    const codes = await Promise.all(
      ['full', 'odd', 'plain'].map(async (v) => {
        const r = await a.request({ flush: { volumeId: v } });
        return r.envelope.body === 'ack' ? [r.envelope.ack.code, r.envelope.ack.message] : null;
      }),
    );
    expect(codes).toEqual([
      ['ENOSPC', 'no space left on the replica'],
      ['EIO', 'odd failure'],
      ['EIO', 'plain failure'],
    ]);
  });

  it('returns handler replies of any body, with a payload', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    b.handle('verifyRequest', (v) => ({ verifyDigests: { volumeId: v.volumeId, offset: v.offset, regionSize: v.regionSize, algorithm: v.algorithm, digests: Buffer.alloc(64, 7) } }));
    b.handle('resyncRequest', (r) => ({ reply: { resyncData: { volumeId: r.volumeId, offset: r.ranges[0]!.offset, length: 8192 } }, payload: [Buffer.alloc(4096, 1), Buffer.alloc(4096, 2)] }));
    const v = await a.request({ verifyRequest: { volumeId: 'vol', offset: 0, length: 1 << 21, regionSize: 1 << 20, algorithm: 'sha256' } });
    expect(v.envelope.body === 'verifyDigests' && v.envelope.verifyDigests.digests).toEqual(Buffer.alloc(64, 7));
    const r = await a.request({ resyncRequest: { volumeId: 'vol', ranges: [{ offset: 1 << 20, length: 8192 }] } });
    expect(r.envelope).toMatchObject({ body: 'resyncData', resyncData: { volumeId: 'vol', offset: 1 << 20, length: 8192 } });
    expect(Buffer.concat(r.payload)).toEqual(Buffer.concat([Buffer.alloc(4096, 1), Buffer.alloc(4096, 2)]));
  });

  it('delivers one-way messages to their handler without a reply', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    const got: string[] = [];
    b.handle('generationUpdate', (g) => {
      got.push(`${g.volumeId}:${g.generations.current}:${g.reason}`);
    });
    expect(a.send({ generationUpdate: { volumeId: 'vol', generations: { current: 'g2' }, reason: 'degraded' } })).toBe(true);
    await waitFor(() => got.length === 1, 2_000, 'the one-way message');
    expect(got).toEqual(['vol:g2:degraded']);
    expect(a.stats().inFlight).toBe(0);
  });

  it('holds requests beyond maxInFlight in the queue until replies make room', async () => {
    const { a, b } = await channelPair({ a: { maxInFlight: 4 } });
    track(a);
    track(b);
    const release: (() => void)[] = [];
    b.handle('flush', () => new Promise<void>((resolve) => release.push(resolve)));
    const all = Promise.all(Array.from({ length: 20 }, (_, i) => a.request({ flush: { volumeId: `v${i}` } })));
    await waitFor(() => release.length === 4, 2_000, 'four requests at the peer');
    await sleep(50);
    expect(release.length).toBe(4);
    expect(a.stats()).toMatchObject({ inFlight: 4, queued: 16 });
    const drainer = setInterval(() => release.splice(0).forEach((r) => r()), 5);
    await all;
    clearInterval(drainer);
    expect(a.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('fails a request unanswered for requestTimeoutMs with RequestTimeoutError', async () => {
    const { a, b } = await channelPair({ a: { requestTimeoutMs: 200 } });
    track(a);
    track(b);
    b.handle('flush', () => new Promise<void>(() => undefined));
    await expect(a.request({ flush: { volumeId: 'v' } })).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(a.stats().inFlight).toBe(0);
  });

  it('fails what is outstanding with ChannelClosedError on close()', async () => {
    const { a, b } = await channelPair();
    track(b);
    b.handle('flush', () => new Promise<void>(() => undefined));
    const outcome = a.request({ flush: { volumeId: 'v' } }).catch((e: unknown) => e);
    await waitFor(() => a.stats().inFlight === 1, 2_000, 'the request in flight');
    await a.close();
    expect(await outcome).toBeInstanceOf(ChannelClosedError);
    await expect(a.request({ flush: { volumeId: 'v' } })).rejects.toBeInstanceOf(ChannelClosedError);
    expect(a.state).toBe('closed');
  });

  it('measures the round-trip time of each link from heartbeats', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    await waitFor(() => a.stats().links.every((l) => l.rttMs !== null), 3_000, 'an RTT on both links');
    for (const l of a.stats().links) {
      expect(l.rttMs).toBeGreaterThanOrEqual(0);
      expect(l.rttMs).toBeLessThan(1_000);
      expect(l.up).toBe(true);
      expect(l.version).toBe(PROTOCOL_VERSION.MAX);
    }
  });

  it('requestWith: the sink hears the reply, or an error it could not even send, once and never before the call returns', async () => {
    const { a, b } = await channelPair();
    track(a);
    track(b);
    b.handle('write', (_w, payload) => {
      if (Buffer.concat(payload).equals(Buffer.alloc(512, 9))) return undefined;
      throw Object.assign(new Error('bad data'), { code: 'EINVAL' });
    });
    const heard = (): { sink: ReplySink; events: string[]; done: Promise<void> } => {
      const events: string[] = [];
      let finish!: () => void;
      const done = new Promise<void>((r) => (finish = r));
      const sink: ReplySink = {
        replied: (reply) => {
          events.push(`reply:${reply.envelope.body}:${reply.envelope.body === 'ack' ? String(reply.envelope.ack.ok) : ''}`);
          finish();
        },
        failed: (err) => {
          events.push(`failed:${err.message}`);
          finish();
        },
      };
      return { sink, events, done };
    };
    const ok = heard();
    a.requestWith({ write: { volumeId: 'v', offset: 0, length: 512 } }, Buffer.alloc(512, 9), ok.sink);
    expect(ok.events).toEqual([]);
    await ok.done;
    expect(ok.events).toEqual(['reply:ack:true']);
    const nack = heard();
    a.requestWith({ write: { volumeId: 'v', offset: 0, length: 512 } }, Buffer.alloc(512, 1), nack.sink);
    await nack.done;
    expect(nack.events).toEqual(['reply:ack:false']);
    const refused = heard();
    a.requestWith({ write: { volumeId: 'v', offset: 0, length: 512 } }, undefined, refused.sink);
    expect(refused.events).toEqual([]);
    await refused.done;
    expect(refused.events).toEqual(['failed:write needs a payload']);
    await new Promise((r) => setTimeout(r, 50));
    expect([ok.events.length, nack.events.length, refused.events.length]).toEqual([1, 1, 1]);
  });

  it('validates what it is asked to send', async () => {
    const { a, b } = await channelPair({ waitUp: false });
    track(a);
    track(b);
    await expect(a.request({ write: { volumeId: 'v', offset: 0, length: 512 } })).rejects.toThrow(/write needs a payload/);
    await expect(a.request({ heartbeat: { sentAtMs: 0, seq: 1 } })).rejects.toThrow(/link-level message/);
    expect(() => a.handle('hello', () => undefined)).toThrow(/handled by the link itself/);
    a.handle('flush', () => undefined);
    expect(() => a.handle('flush', () => undefined)).toThrow(/already registered/);
  });
});

describe('PeerChannel handshakes over sockets', () => {
  it('a wrong secret keeps every link down and reports EAUTH on both nodes', async () => {
    const { a, b } = await channelPair({ b: { secret: 'another secret' }, waitUp: false });
    track(a);
    track(b);
    const [[, errA], [, errB]] = await Promise.all([
      nextEvent<[number, Error]>(a, 'link-error', 5_000),
      nextEvent<[number, Error]>(b, 'link-error', 5_000),
    ]);
    for (const err of [errA, errB]) {
      expect(err).toBeInstanceOf(HandshakeError);
      expect((err as HandshakeError).code).toBe('EAUTH');
      expect(err.message).toMatch(/different secrets/);
    }
    await sleep(100);
    expect(a.link(0).isUp || a.link(1).isUp || b.link(0).isUp || b.link(1).isUp).toBe(false);
    expect(a.state).toBe('connecting');
    expect(a.stats().links[0]!.lastError).toMatch(/^EAUTH: /);
  });

  it('disjoint protocol versions keep every link down and report EVERSION', async () => {
    const { a, b } = await channelPair({ a: { versions: { min: 1, max: 1 } }, b: { versions: { min: 2, max: 3 } }, waitUp: false });
    track(a);
    track(b);
    const [, err] = await nextEvent<[number, Error]>(a, 'link-error', 5_000);
    expect((err as HandshakeError).code).toBe('EVERSION');
    expect(err.message).toMatch(/no common protocol version/);
    expect(err.message).toContain('"node-a" speaks [1]');
    expect(err.message).toContain('"node-b" speaks [2, 3]');
  });

  it('release N and N+1 run version N', async () => {
    const { a, b } = await channelPair({ a: { versions: { min: 1, max: 1 } }, b: { versions: { min: 1, max: 2 } } });
    track(a);
    track(b);
    expect(a.negotiatedVersion).toBe(1);
    expect(b.negotiatedVersion).toBe(1);
  });
});

describe('PeerChannel against a hand-written peer', () => {
  async function acceptorAlone(over: Parameters<typeof newChannel>[3] = {}): Promise<{ a: PeerChannel; addr: LinkAddress }> {
    const a = track(newChannel('node-a', 'node-b', 1, { deadMs: 5_000, ...over }));
    const [addr] = (await a.listen()) as LinkAddress[];
    return { a, addr: addr! };
  }

  it('answers a request of a message type it does not know (a newer peer) with ENOTSUP, and drops such a one-way message', async () => {
    const { a, addr } = await acceptorAlone();
    const peer = track(await RawPeer.dial(addr));
    expect(peer.handshake?.version).toBe(1);
    await waitFor(() => a.state === 'up', 2_000, 'the channel up');
    const newer = newerEnvelopeType();
    const unknownRequest = newer.encode({ seq: 1, expectsReply: true, ackFloor: 1, snapshot: { volumeId: 'vol', name: 'nightly' } }).finish();
    const unknownOneWay = newer.encode({ seq: 2, ackFloor: 1, snapshot: { volumeId: 'vol', name: 'hourly' } }).finish();
    for (const header of [unknownOneWay, unknownRequest]) {
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32BE(8 + header.length, 0);
      prefix.writeUInt32BE(header.length, 4);
      peer.write([prefix, Buffer.from(header)]);
    }
    const reply = await peer.take((f) => f.envelope.replyTo === 1);
    expect(reply.envelope).toMatchObject({ body: 'ack', ack: { ok: false, code: 'ENOTSUP' } });
    expect(reply.envelope.body === 'ack' && reply.envelope.ack.message).toMatch(/does not know this message type/);
    await waitFor(() => a.stats().unknownBodies === 2, 2_000, 'both unknown messages counted');
    // The link survives both.
    expect(peer.isClosed).toBe(false);
    expect(a.link(0).isUp).toBe(true);
  });

  it('ignores a frame whose seq is beyond 2^53 (not a key it can use) and keeps serving the link', async () => {
    const { a, addr } = await acceptorAlone();
    const peer = track(await RawPeer.dial(addr));
    let calls = 0;
    a.handle('flush', () => {
      calls++;
      return { ack: { ok: true, message: `call ${calls}` } };
    });
    await waitFor(() => a.state === 'up', 2_000, 'the channel up');
    peer.write(encodeFrame({ seq: 2 ** 60, expectsReply: true, ackFloor: 1, flush: { volumeId: 'v' } }));
    peer.write(encodeFrame({ seq: 3, expectsReply: true, ackFloor: 2 ** 62, flush: { volumeId: 'v' } }));
    peer.write(encodeFrame({ seq: 4, expectsReply: true, ackFloor: 4, flush: { volumeId: 'v' } }));
    const reply = await peer.take((f) => f.envelope.replyTo === 4);
    expect(reply.envelope).toMatchObject({ body: 'ack', ack: { ok: true, message: 'call 1' } });
    expect(calls).toBe(1);
    expect(a.stats().unknownBodies).toBe(2);
    expect(peer.isClosed).toBe(false);
  });

  it('applies a request sent twice with one seq once, answering the copy with the same reply', async () => {
    const { a, addr } = await acceptorAlone();
    const peer = track(await RawPeer.dial(addr));
    let calls = 0;
    a.handle('flush', async () => {
      calls++;
      await sleep(30);
      return { ack: { ok: true, message: `call ${calls}` } };
    });
    // Two copies in one write: the second arrives while the first is being handled.
    const copy = encodeFrame({ seq: 7, expectsReply: true, ackFloor: 7, flush: { volumeId: 'v' } });
    peer.write([...copy, ...copy]);
    const first = await peer.take((f) => f.envelope.replyTo === 7);
    peer.send({ seq: 7, expectsReply: true, ackFloor: 7, flush: { volumeId: 'v' } }); // after the reply
    const second = await peer.take((f) => f.envelope.replyTo === 7);
    expect(calls).toBe(1);
    expect(first.envelope).toMatchObject({ ack: { ok: true, message: 'call 1' } });
    expect(second.envelope).toMatchObject({ ack: { ok: true, message: 'call 1' } });
    expect(a.stats().duplicateRequests).toBe(2);
    // Once the requester's floor passes it, the seq is forgotten and a copy is ignored.
    peer.send({ seq: 8, expectsReply: true, ackFloor: 8, flush: { volumeId: 'v' } });
    await peer.take((f) => f.envelope.replyTo === 8);
    peer.send({ seq: 7, expectsReply: true, ackFloor: 9, flush: { volumeId: 'v' } });
    await waitFor(() => a.stats().duplicateRequests === 3, 2_000, 'the stale copy counted');
    expect(calls).toBe(2);
  });

  it('answers a request whose last copy came on a replaced (draining) connection on the connection that is current', async () => {
    // Seen at node start: the requester resent a request on its new connection, and the copy it had sent
    // earlier on the connection being replaced was read after it. The reply followed that late copy onto the
    // draining connection, which sends nothing, and the requester, whose connection was fine, waited forever.
    const { a, addr } = await acceptorAlone();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    a.handle('flush', async () => {
      calls++;
      await gate;
      return { ack: { ok: true, message: `call ${calls}` } };
    });
    const first = track(await RawPeer.dial(addr, {}, true, true));
    await waitFor(() => a.state === 'up', 2_000, 'the channel up');
    first.send({ seq: 7, expectsReply: true, ackFloor: 7, flush: { volumeId: 'v' } });
    await waitFor(() => calls === 1, 2_000, 'the handler running');
    // The same peer dials the link again: its newer connection replaces the first, which drains.
    const second = track(await RawPeer.dial(addr));
    await waitFor(() => a.link(0).connection?.remoteAddress === `${LOOPBACK}:${second.socket.localPort}`, 2_000, 'the second connection current');
    second.send({ seq: 7, expectsReply: true, ackFloor: 7, flush: { volumeId: 'v' } });
    await waitFor(() => a.stats().duplicateRequests === 1, 2_000, 'the copy on the current connection seen');
    first.send({ seq: 7, expectsReply: true, ackFloor: 7, flush: { volumeId: 'v' } }); // late, on the draining one
    await waitFor(() => a.stats().duplicateRequests === 2, 2_000, 'the late copy on the draining connection seen');
    release();
    const reply = await second.take((f) => f.envelope.replyTo === 7);
    expect(reply.envelope).toMatchObject({ ack: { ok: true, message: 'call 1' } });
    expect(calls).toBe(1);
  });

  it('answers EPROTO for a data message whose payload is missing or does not match its length', async () => {
    const { a, addr } = await acceptorAlone();
    const peer = track(await RawPeer.dial(addr));
    let calls = 0;
    a.handle('write', () => {
      calls++;
    });
    peer.send({ seq: 1, expectsReply: true, write: { volumeId: 'v', offset: 0, length: 512 } });
    peer.send({ seq: 2, expectsReply: true, write: { volumeId: 'v', offset: 0, length: 512 } }, Buffer.alloc(100));
    const r1 = await peer.take((f) => f.envelope.replyTo === 1);
    const r2 = await peer.take((f) => f.envelope.replyTo === 2);
    expect(r1.envelope).toMatchObject({ ack: { ok: false, code: 'EPROTO', message: 'write without its payload' } });
    expect(r2.envelope).toMatchObject({ ack: { ok: false, code: 'EPROTO', message: 'write announces 512 payload bytes and carries 100' } });
    expect(calls).toBe(0);
  });

  it('closes a link that stays silent for deadMs (EDEAD) and one that breaks the framing (EPROTO)', async () => {
    const { a, addr } = await acceptorAlone({ heartbeatMs: 20, deadMs: 300 });
    const silent = track(await RawPeer.dial(addr, {}, false));
    const [, dead] = await nextEvent<[number, Error]>(a, 'link-error', 3_000);
    expect((dead as { code?: string }).code).toBe('EDEAD');
    await waitFor(() => silent.isClosed, 2_000, 'the silent peer disconnected');

    const garbage = track(await RawPeer.dial(addr));
    const failed = nextEvent<[number, Error]>(a, 'link-error', 3_000);
    garbage.write([Buffer.from('this is not a frame at all')]);
    const [, bad] = await failed;
    expect((bad as { code?: string }).code).toBe('EPROTO');
    expect(bad.message).toMatch(/bad frame/);
  });

  it('refuses a hand-written peer with the wrong secret', async () => {
    const { a, addr } = await acceptorAlone();
    const failed = nextEvent<[number, Error]>(a, 'link-error', 3_000);
    const peer = track(await RawPeer.dial(addr, { secret: Buffer.from('guess') }));
    expect(peer.handshakeError).toBeInstanceOf(HandshakeError);
    expect((peer.handshakeError as HandshakeError).code).toBe('EAUTH');
    expect((peer.handshakeError as HandshakeError).remote).toBe(true);
    const [, err] = await failed;
    expect((err as HandshakeError).code).toBe('EAUTH');
    expect(a.link(0).isUp).toBe(false);
  });
});

describe('PeerChannel: links closed by the peer (the liveness "closed" rule)', () => {
  it('reports when the peer closed every link, and nothing while any is up', async () => {
    const { a, b } = await channelPair();
    track(a);
    expect(a.peerClosedAllAt()).toBeNull();
    const before = performance.now();
    await b.close(); // its sockets close: a reads FIN on both links, as from a killed process
    await waitFor(() => a.peerClosedAllAt() !== null, 5_000, 'a to see both links closed by b');
    expect(a.peerClosedAllAt()!).toBeGreaterThanOrEqual(before);
    expect([0, 1].map((i) => a.link(i).closedByPeerAt !== null)).toEqual([true, true]);
  });

  it('does not report links closed here', async () => {
    const { a, b } = await channelPair();
    track(b);
    await a.close();
    expect(a.peerClosedAllAt()).toBeNull();
  });
});

describe('endedByPeer', () => {
  const cases: [string, Error | null, boolean][] = [
    ['FIN from the peer', null, true],
    ['reset by the peer', new LinkFailure('ESOCKET', 'socket: read ECONNRESET', 'ECONNRESET'), true],
    ['write after the peer reset', new LinkFailure('ESOCKET', 'socket: write EPIPE', 'EPIPE'), true],
    ['keepalive timeout', new LinkFailure('ESOCKET', 'socket: read ETIMEDOUT', 'ETIMEDOUT'), false],
    ['unreachable', new LinkFailure('ESOCKET', 'socket: EHOSTUNREACH', 'EHOSTUNREACH'), false],
    ['silence', new LinkFailure('EDEAD', 'nothing received'), false],
    ['closed here', new LinkFailure('ECLOSED', 'link closed'), false],
    ['replaced', new LinkFailure('EREPLACED', 'newer connection'), false],
  ];
  it.each(cases)('%s', (_what, reason, expected) => {
    expect(endedByPeer(reason)).toBe(expected);
  });
});
