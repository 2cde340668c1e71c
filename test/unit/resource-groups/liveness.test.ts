/**
 * Peer failure detection: the front-end heartbeat codec and UDP exchange
 * over loopback, and the fold of several paths into one peer state.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { FrontEndHeartbeat, decodeHeartbeat, encodeHeartbeat } from '../../../src/resource-groups/heartbeat';
import { EventPath, LivenessPath, PeerState, PeerWatch, peerState } from '../../../src/resource-groups/liveness';

const SECRET = 'correct horse battery staple';

describe('heartbeat codec', () => {
  it('round-trips a beat and a bye', () => {
    for (const kind of ['beat', 'bye'] as const) {
      const buf = encodeHeartbeat({ kind, nodeId: 'node-a', seq: 7 }, SECRET, 'lab');
      expect(decodeHeartbeat(buf, SECRET, 'lab')).toEqual({ kind, nodeId: 'node-a', seq: 7 });
    }
  });

  it('round-trips the move messages with their resource group', () => {
    for (const kind of ['move-in', 'moved-in', 'move-failed', 'hand-back', 'handed-back', 'hand-back-failed'] as const) {
      const buf = encodeHeartbeat({ kind, nodeId: 'node-a', seq: 9, rg: 'rg1' }, SECRET, 'lab');
      expect(decodeHeartbeat(buf, SECRET, 'lab')).toEqual({ kind, nodeId: 'node-a', seq: 9, rg: 'rg1' });
    }
  });

  it('refuses another secret, another cluster, a flipped bit, a short or long datagram', () => {
    const buf = encodeHeartbeat({ kind: 'beat', nodeId: 'node-a', seq: 1 }, SECRET, 'lab');
    expect(decodeHeartbeat(buf, 'another secret of some length', 'lab')).toBeNull();
    expect(decodeHeartbeat(buf, SECRET, 'other')).toBeNull();
    const flipped = Buffer.from(buf);
    flipped[9]! ^= 1;
    expect(decodeHeartbeat(flipped, SECRET, 'lab')).toBeNull();
    expect(decodeHeartbeat(buf.subarray(0, buf.length - 1), SECRET, 'lab')).toBeNull();
    expect(decodeHeartbeat(Buffer.concat([buf, Buffer.alloc(1)]), SECRET, 'lab')).toBeNull();
    expect(decodeHeartbeat(Buffer.alloc(3), SECRET, 'lab')).toBeNull();
  });
});

describe('FrontEndHeartbeat over loopback', () => {
  const open: FrontEndHeartbeat[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((h) => h.stop()));
  });

  async function freePort(): Promise<number> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    const port = s.address().port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    return port;
  }

  async function pair(): Promise<[FrontEndHeartbeat, FrontEndHeartbeat]> {
    const common = { clusterId: 'lab', secret: SECRET, intervalMs: 20 };
    const [pa, pb] = [await freePort(), await freePort()];
    const a = new FrontEndHeartbeat({ ...common, nodeId: 'node-a', peerNodeId: 'node-b', local: { host: '127.0.0.1', port: pa }, peer: { host: '127.0.0.1', port: pb } });
    const b = new FrontEndHeartbeat({ ...common, nodeId: 'node-b', peerNodeId: 'node-a', local: { host: '127.0.0.1', port: pb }, peer: { host: '127.0.0.1', port: pa } });
    await a.start();
    open.push(a);
    await b.start();
    open.push(b);
    return [a, b];
  }

  it('each side hears the other, and a bye is seen', { timeout: 5000 }, async () => {
    const [a, b] = await pair();
    await Promise.all([new Promise<void>((resolve) => a.once('beat', () => resolve())), new Promise<void>((resolve) => b.once('beat', () => resolve()))]);
    expect(a.heardAt()).toBeGreaterThan(Number.NEGATIVE_INFINITY);
    const bye = new Promise<void>((resolve) => b.once('bye', () => resolve()));
    await a.stop(true);
    await bye;
    expect(b.saidBye()).toBe(true);
  });

  it('carries the planned-move handshake: move-in answered by moved-in or move-failed', { timeout: 5000 }, async () => {
    const [a, b] = await pair();
    b.on('move-in', (rg) => b.reply(rg, rg === 'rg1'));
    await a.requestMoveIn('rg1', 2000);
    await expect(a.requestMoveIn('rg2', 2000)).rejects.toThrow(/could not take rg2 in/);
  });

  it('carries the hand-back request: answered by handed-back or hand-back-failed, apart from a move-in of the same group', { timeout: 5000 }, async () => {
    const [a, b] = await pair();
    const asked: string[] = [];
    b.on('hand-back', (rg) => {
      asked.push(rg);
      b.replyHandBack(rg, rg === 'rg1');
    });
    // The peer answers the move-in of rg1 'failed' while it hands rg1 back: each answer ends only its own request.
    b.on('move-in', (rg) => b.reply(rg, false));
    const moveIn = expect(a.requestMoveIn('rg1', 2000)).rejects.toThrow(/could not take rg1 in/);
    await a.requestHandBack('rg1', 2000);
    await moveIn;
    await expect(a.requestHandBack('rg2', 2000)).rejects.toThrow(/could not hand rg2 back/);
    expect(asked).toContain('rg1');
    expect(asked).toContain('rg2');
  });

  it('a hand-back nobody answers times out (a peer that does not know the request drops it)', { timeout: 5000 }, async () => {
    const [a] = await pair();
    await expect(a.requestHandBack('rg1', 100)).rejects.toThrow(/did not hand rg1 back within 100 ms/);
  });

  it("the guard's death notice (signed by the node in advance) is seen as such, not as a sign of life, and a beat clears it", { timeout: 5000 }, async () => {
    const [a, b] = await pair();
    await new Promise<void>((resolve) => b.once('beat', () => resolve()));
    const notice = a.deathNotice();
    expect(decodeHeartbeat(notice.datagram, SECRET, 'lab')).toEqual({ kind: 'died', nodeId: 'node-a', seq: 0 });
    expect(notice.port).toBe(b.port());
    await a.stop();
    const heardBefore = b.heardAt();
    const died = new Promise<void>((resolve) => b.once('died', () => resolve()));
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => sock.send(notice.datagram, notice.port, notice.host, () => resolve()));
    sock.close();
    await died;
    expect(b.deathNoticedAt()).not.toBeNull();
    expect(b.heardAt()).toBe(heardBefore);
    // A forged notice (another secret) is dropped.
    const forged = encodeHeartbeat({ kind: 'died', nodeId: 'node-a', seq: 0 }, 'not the secret of this pair', 'lab');
    expect(decodeHeartbeat(forged, SECRET, 'lab')).toBeNull();
    // The node is back: its first beat clears the notice.
    await a.start();
    await new Promise<void>((resolve) => b.once('beat', () => resolve()));
    expect(b.deathNoticedAt()).toBeNull();
  });

  it('a move-in nobody answers times out', { timeout: 5000 }, async () => {
    const [a] = await pair();
    await expect(a.requestMoveIn('rg1', 100)).rejects.toThrow(/did not take rg1 in within 100 ms/);
  });
});

function path(name: string, heardAt: number, bye = false): LivenessPath {
  return { name, heardAt: () => heardAt, saidBye: () => bye };
}

describe('peerState', () => {
  const t = { suspectAfterMs: 400, deadMs: 900 };
  const cases: [string, LivenessPath[], PeerState][] = [
    ['both paths heard', [path('mirror', 1000), path('front-end', 1000)], 'alive'],
    ['one path heard', [path('mirror', 0), path('front-end', 950)], 'alive'],
    ['both silent, not long', [path('mirror', 500), path('front-end', 400)], 'suspect'],
    ['both silent long enough', [path('mirror', 0), path('front-end', 100)], 'dead'],
    ['one path only, silent long', [path('front-end', 0)], 'suspect'],
    ['bye, other path silent', [path('mirror', 0), path('front-end', 990, true)], 'shutdown'],
    ['bye, but the mirror still hears it', [path('mirror', 1000), path('front-end', 990, true)], 'alive'],
  ];
  it.each(cases)('%s', (_name, paths, expected) => {
    expect(peerState(paths, 1000, t)).toBe(expected);
  });
});

/** A replication path: heard until the peer closed it at `closedAt` (null: up, or lost otherwise). */
function links(heardAt: number, closedAt: number | null): LivenessPath {
  return { name: 'mirror', heardAt: () => heardAt, saidBye: () => false, closedByPeerAt: () => closedAt };
}

describe('peerState: the "closed" rule (links closed by the peer + heartbeat silent)', () => {
  // Heartbeat every 200 ms: closed rule after 400 ms of front-end silence, a close up to 200 ms before the last beat.
  const t = { suspectAfterMs: 450, deadMs: 900, closedSilentMs: 400, closedSkewMs: 200 };
  const now = 1000;
  const cases: [string, LivenessPath[], PeerState][] = [
    ['process killed: links closed at 550, last beat 500', [links(550, 550), path('front-end', 500)], 'dead'],
    ['links closed just before the last beat in flight', [links(420, 420), path('front-end', 500)], 'dead'],
    ['links closed, heartbeat silent only 300 ms', [links(550, 550), path('front-end', 700)], 'alive'],
    ['links closed, heartbeat heard 420 ms ago: alive until suspectAfterMs', [links(600, 600), path('front-end', 580)], 'alive'],
    ['links closed, heartbeat silent 460 ms, the closing 10 ms ago', [links(990, 990), path('front-end', 540)], 'dead'],
    ['partition: links lost by silence, not closed', [links(550, null), path('front-end', 500)], 'suspect'],
    ['links closed long before the heartbeat stopped (old news)', [links(100, 100), path('front-end', 500)], 'suspect'],
    ['links closed, heartbeat still beating', [links(550, 550), path('front-end', 990)], 'alive'],
    ['bye wins over closed links', [links(550, 550), path('front-end', 500, true)], 'shutdown'],
  ];
  it.each(cases)('%s', (_name, paths, expected) => {
    expect(peerState(paths, now, t)).toBe(expected);
  });

  it('is off without closedSilentMs: the closed links then vouch as before and only deadMs kills', () => {
    const off = { suspectAfterMs: 450, deadMs: 900 };
    expect(peerState([links(600, 600), path('front-end', 500)], now, off)).toBe('alive');
    expect(peerState([links(600, 600), path('front-end', 500)], 1200, off)).toBe('suspect');
    expect(peerState([links(600, 600), path('front-end', 500)], 1500, off)).toBe('dead');
  });

  it('needs a second path: closed links alone are not enough', () => {
    expect(peerState([links(550, 550)], now, t)).toBe('suspect');
  });

  it('counts nothing before since: a close before this node watched does not make the peer dead', () => {
    expect(peerState([links(550, 550), path('front-end', 500)], now, t, 560)).toBe('suspect');
  });
});

/** The front-end path with the guard's death notice received at `noticedAt` (null: none). */
function noticed(heardAt: number, noticedAt: number | null): LivenessPath {
  return { name: 'front-end', heardAt: () => heardAt, saidBye: () => false, deathNoticedAt: () => noticedAt };
}

describe("peerState: the notice rule (the peer's guard says its process died)", () => {
  const t = { suspectAfterMs: 450, deadMs: 900, closedSilentMs: 400, closedSkewMs: 200 };
  const now = 1000;
  const cases: [string, LivenessPath[], PeerState][] = [
    ['notice, links closed by the peer, last beat 10 ms ago', [links(985, 985), noticed(990, 995)], 'dead'],
    ['notice, links lost otherwise and silent', [links(400, null), noticed(990, 995)], 'dead'],
    ['notice, but a link is up and heard now (the process lives)', [links(1000, null), noticed(990, 995)], 'alive'],
    ['notice with the closed rule off', [links(985, 985), noticed(990, 995)], 'dead'],
    ['no notice, links closed, beat 10 ms ago', [links(985, 985), noticed(990, null)], 'alive'],
  ];
  it.each(cases)('%s', (name, paths, expected) => {
    const timings = name.includes('rule off') ? { suspectAfterMs: 450, deadMs: 900 } : t;
    expect(peerState(paths, now, timings)).toBe(expected);
  });

  it('is off where a takeover would not need the lease (noticeRule false): a replayed notice then proves nothing', () => {
    expect(peerState([links(985, 985), noticed(990, 995)], now, { ...t, noticeRule: false })).toBe('alive');
    expect(peerState([links(50, null), noticed(60, 995)], now, { ...t, noticeRule: false })).toBe('dead'); // deadMs of silence, as before
  });

  it('counts no notice from before the watch started', () => {
    expect(peerState([links(985, 985), noticed(990, 995)], now, t, 996)).toBe('alive');
  });
});

describe('EventPath and PeerWatch', () => {
  it('a peer never heard since the watch started is suspect, not dead, until the dead time has passed', () => {
    let now = 10_000;
    const clock = (): number => now;
    const never = (name: string): LivenessPath => ({ name, heardAt: () => Number.NEGATIVE_INFINITY, saidBye: () => false });
    const watch = new PeerWatch([never('mirror'), never('front-end')], { suspectAfterMs: 400, deadMs: 900, pollMs: 50 }, clock);
    expect(watch.state).toBe('suspect');
    now = 10_400;
    expect(watch.poll()).toBe('suspect');
    now = 10_899;
    expect(watch.poll()).toBe('suspect');
    now = 10_900;
    expect(watch.poll()).toBe('dead');
    // Without the start time, the same paths are dead at once.
    expect(peerState([never('mirror'), never('front-end')], 10_000, { suspectAfterMs: 400, deadMs: 900 })).toBe('dead');
  });

  it('declares the peer dead only when every path has been silent for the dead time', () => {
    let now = 0;
    const clock = (): number => now;
    const mirror = new EventPath('mirror', clock);
    const fe = { name: 'front-end', last: 0, heardAt: () => fe.last, saidBye: () => false };
    mirror.set('up');
    const watch = new PeerWatch([mirror, fe], { suspectAfterMs: 400, deadMs: 900, pollMs: 50 }, clock);
    const changes: string[] = [];
    watch.on('change', (to, from) => changes.push(`${from}→${to}`));
    now = 2000;
    expect(watch.poll()).toBe('alive'); // mirror up, front-end silent
    mirror.set('down');
    now = 2500;
    expect(watch.poll()).toBe('suspect');
    now = 2899;
    expect(watch.poll()).toBe('suspect');
    now = 2900;
    expect(watch.poll()).toBe('dead');
    fe.last = 2950;
    now = 3000;
    expect(watch.poll()).toBe('alive');
    expect(changes).toEqual(['alive→suspect', 'suspect→dead', 'dead→alive']);
  });
});
