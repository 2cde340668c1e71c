/**
 * The engine's pure and in-memory parts: interval lock, resync throttle,
 * write completion, the volume decision (handshake.ts) and its wire form,
 * verify digests, payload splitting, dirty ranges, addresses, tunables,
 * error codes.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBackingStore } from '../../../../src/block';
import { MIRROR_ERROR_CODES, MIRROR_TUNABLES, parseHostPort, formatHostPort, resolveMirrorTunables } from '../../../../src/mirror';
import { EMPTY_GENERATION, Generations, newGenerationId, onPeerLost } from '../../../../src/mirror/generations';
import { DirtyBitmap } from '../../../../src/mirror/meta';
import { WriteCompletion } from '../../../../src/mirror/volume/completion';
import { HelloState, decideVolume, decodeHello, encodeHello, mirrorVolumeDecision } from '../../../../src/mirror/volume/handshake';
import { IntervalLock } from '../../../../src/mirror/volume/interval-lock';
import { dirtyRanges } from '../../../../src/mirror/volume/resync';
import { ResyncThrottle } from '../../../../src/mirror/volume/throttle';
import { differingRegions, regionDigests, regionsToRanges } from '../../../../src/mirror/volume/verify';
import { splitPayload } from '../../../../src/mirror/volume/write-path';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('IntervalLock', () => {
  it('grants non-overlapping ranges at once and overlapping ones in arrival order', async () => {
    const lock = new IntervalLock();
    const order: string[] = [];
    const a = await lock.acquire(0, 100);
    const b = await lock.acquire(100, 100); // adjacent, not overlapping
    const c = lock.acquire(50, 100).then((rel) => (order.push('c'), rel));
    const d = lock.acquire(0, 10).then((rel) => (order.push('d'), rel));
    const e = lock.acquire(60, 1).then((rel) => (order.push('e'), rel));
    await tick();
    expect(order).toEqual([]);
    a();
    await tick();
    // d overlaps only a; c overlaps a and b; e overlaps a and c (earlier).
    expect(order).toEqual(['d']);
    b();
    await tick();
    expect(order).toEqual(['d', 'c']);
    (await c)();
    await tick();
    expect(order).toEqual(['d', 'c', 'e']);
    (await d)();
    (await e)();
    expect(lock.size).toBe(0);
  });

  it('tryAcquire takes a free range at once, refuses an overlapping one, and queues later acquires behind it', async () => {
    const lock = new IntervalLock();
    const a = lock.tryAcquire(0, 100)!;
    expect(a).toBeTypeOf('function');
    expect(lock.tryAcquire(99, 10)).toBeNull();
    expect(lock.size).toBe(1); // the refusal took nothing
    const b = lock.tryAcquire(100, 10)!;
    let granted = false;
    const c = lock.acquire(50, 60).then((rel) => ((granted = true), rel));
    await tick();
    expect(granted).toBe(false);
    a();
    await tick();
    expect(granted).toBe(false); // still behind b
    b();
    await tick();
    expect(granted).toBe(true);
    (await c)();
    expect(lock.size).toBe(0);
  });

  it('zero-length ranges conflict with nothing; release is idempotent', async () => {
    const lock = new IntervalLock();
    const a = await lock.acquire(0, 100);
    const z = await lock.acquire(50, 0);
    z();
    a();
    a();
    expect(lock.size).toBe(0);
  });
});

describe('ResyncThrottle', () => {
  function fake(): { now: () => number; sleep: (ms: number) => Promise<void>; advance(ms: number): void; slept: number[] } {
    let t = 0;
    const slept: number[] = [];
    return {
      now: () => t,
      sleep: async (ms) => {
        slept.push(ms);
        t += ms;
      },
      advance: (ms) => void (t += ms),
      slept,
    };
  }

  it('paces to the allowed rate', async () => {
    const c = fake();
    const th = new ResyncThrottle({ minBytesPerSec: 1000, maxBytesPerSec: 100_000, latencyTargetMs: 10, now: c.now, sleep: c.sleep });
    await th.take(10_000); // first one free
    await th.take(10_000);
    expect(c.slept).toEqual([100]);
  });

  it('halves while foreground writes are slow, never below the minimum, and grows back when they are fast', async () => {
    const c = fake();
    const th = new ResyncThrottle({ minBytesPerSec: 10_000, maxBytesPerSec: 100_000, latencyTargetMs: 10, now: c.now, sleep: c.sleep });
    for (let i = 0; i < 6; i++) {
      th.noteWriteLatency(50);
      c.advance(250);
      await th.take(1);
    }
    expect(th.allowedBytesPerSec).toBe(10_000);
    for (let i = 0; i < 10; i++) {
      th.noteWriteLatency(1);
      c.advance(250);
      await th.take(1);
    }
    expect(th.allowedBytesPerSec).toBe(100_000);
  });

  it('measures the copied rate over the last seconds', () => {
    const c = fake();
    const th = new ResyncThrottle({ minBytesPerSec: 1, maxBytesPerSec: 1e9, latencyTargetMs: 10, now: c.now, sleep: c.sleep });
    th.record(1000);
    c.advance(500);
    th.record(1000);
    c.advance(500);
    expect(th.measuredBytesPerSec()).toBe(2000);
    c.advance(5000);
    expect(th.measuredBytesPerSec()).toBe(0);
  });
});

describe('WriteCompletion', () => {
  function setup(failFlush = false) {
    const ended: [number, number][] = [];
    let flushes = 0;
    const store = new MemoryBackingStore(1 << 20);
    store.flush = async () => {
      flushes++;
      if (failFlush) throw new Error('EIO');
    };
    const failures: unknown[] = [];
    const c = new WriteCompletion(store, { endWrite: (o, l) => ended.push([o, l]) }, 10, (e) => failures.push(e));
    return { c, ended, flushes: () => flushes, failures };
  }

  it('releases FUA writes at once and the others after the next fdatasync', async () => {
    const { c, ended, flushes } = setup();
    c.complete(0, 4096, true);
    expect(ended).toEqual([[0, 4096]]);
    c.complete(8192, 4096, false);
    c.complete(16384, 4096, false);
    expect(ended.length).toBe(1);
    await new Promise((r) => setTimeout(r, 40));
    expect(flushes()).toBe(1);
    expect(ended).toEqual([
      [0, 4096],
      [8192, 4096],
      [16384, 4096],
    ]);
  });

  it('an explicit flush releases what completed before it; a failed fdatasync releases nothing ever again', async () => {
    const { c, ended } = setup();
    c.complete(0, 1, false);
    const taken = c.beforeFlush();
    c.complete(1, 1, false);
    c.afterFlush(taken, true);
    expect(ended).toEqual([[0, 1]]);
    c.stop();

    const failing = setup(true);
    failing.c.complete(0, 1, false);
    await expect(failing.c.flushNow()).rejects.toThrow('EIO');
    failing.c.complete(1, 1, true);
    expect(failing.ended).toEqual([[1, 1]]);
    expect(failing.failures.length).toBe(1);
  });
});

describe('decideVolume', () => {
  const base = newGenerationId();
  const alone = onPeerLost({ current: base, bitmap: null, history: [] });
  const alone2 = onPeerLost({ current: base, bitmap: null, history: [] });
  const gens: Generations[] = [
    { current: EMPTY_GENERATION, bitmap: null, history: [] },
    { current: base, bitmap: null, history: [] },
    alone,
    alone2,
    { current: newGenerationId(), bitmap: null, history: [base] },
    { current: newGenerationId(), bitmap: null, history: [] },
  ];
  function hello(g: Generations, role: 'primary' | 'secondary', dirty: number, consistent: boolean, crashed: boolean): HelloState {
    return { volumeId: 'v', sizeBytes: 1 << 20, regionSize: 65536, role, generations: g, dirtyBytes: dirty, consistent, primaryCrashed: crashed };
  }

  it('reaches mirror-image decisions on both nodes for every combination', () => {
    let checked = 0;
    for (const ga of gens)
      for (const gb of gens)
        for (const ra of ['primary', 'secondary'] as const)
          for (const rb of ['primary', 'secondary'] as const)
            for (const da of [0, 65536])
              for (const db of [0, 65536])
                for (const ca of [true, false])
                  for (const cb of [true, false])
                    for (const xa of [false, true]) {
                      const a = hello(ga, ra, da, ca, xa);
                      const b = hello(gb, rb, db, cb, false);
                      const fromA = decideVolume(a, b, true);
                      const fromB = decideVolume(b, a, false);
                      // Details name sides and rules come in local/peer pairs: compare what each node does.
                      const act = (d: object): object => {
                        const x = d as { kind: string; source?: string; mode?: string; code?: string };
                        return { kind: x.kind, source: x.source, mode: x.mode, code: x.code };
                      };
                      expect(act(fromB)).toEqual(act(mirrorVolumeDecision(fromA)));
                      // Never a primary as resync target.
                      if (fromA.kind === 'resync') {
                        const target = fromA.source === 'local' ? b : a;
                        expect(target.role).toBe('secondary');
                      }
                      checked++;
                    }
    expect(checked).toBe(gens.length ** 2 * 128);
  });

  it('makes the primary the source when either side would do', () => {
    const sec = hello(alone, 'secondary', 65536, true, false);
    const pri = hello(alone, 'primary', 0, true, false);
    const d = decideVolume(pri, sec, false);
    expect(d).toMatchObject({ kind: 'resync', source: 'local', rule: 'same-current-unclean' });
  });

  it('refuses a primary as target, two primaries, and different geometries; reports split brain before dual primary', () => {
    const promotedAlone = hello(alone, 'secondary', 65536, true, false);
    const stale = hello({ current: base, bitmap: null, history: [] }, 'primary', 0, true, false);
    expect(decideVolume(stale, promotedAlone, true)).toMatchObject({ kind: 'refused', code: 'ETARGETPRIMARY' });
    const p1 = hello(alone, 'primary', 0, true, false);
    const p2 = hello(alone, 'primary', 0, true, false);
    expect(decideVolume(p1, p2, true)).toMatchObject({ kind: 'refused', code: 'EDUALPRIMARY' });
    expect(decideVolume(p1, { ...p2, sizeBytes: 2 << 20 }, true)).toMatchObject({ kind: 'refused', code: 'EMISMATCH' });
    const sb1 = hello(alone, 'primary', 65536, true, false);
    const sb2 = hello(alone2, 'primary', 65536, true, false);
    expect(decideVolume(sb1, sb2, true)).toMatchObject({ kind: 'split-brain' });
  });

  it('round-trips a hello through its wire form; a hello without the extension is a protocol error', () => {
    const h = hello(alone, 'primary', 131072, false, true);
    const { hello: wire, payload } = encodeHello(h);
    const decoded = decodeHello({ ...wire, generations: { current: wire.generations.current, bitmap: wire.generations.bitmap ?? '', history: [...(wire.generations.history ?? [])] }, blockSize: 0 } as never, [payload]);
    expect(decoded).toEqual(h);
    expect(() => decodeHello(wire as never, [])).toThrow(expect.objectContaining({ code: 'EPROTO' }));
  });
});

describe('verify digests', () => {
  it('digests regions (the last one short) and finds the differing ones', async () => {
    const a = new MemoryBackingStore(10_000);
    const b = new MemoryBackingStore(10_000);
    await b.writev(4100, [Buffer.from([1])]);
    await b.writev(9999, [Buffer.from([1])]);
    for (const algorithm of ['sha256', 'crc32c'] as const) {
      const da = await regionDigests(a, 0, 10_000, 4096, algorithm);
      const db = await regionDigests(b, 0, 10_000, 4096, algorithm);
      expect(da.length).toBe(3 * (algorithm === 'sha256' ? 32 : 4));
      expect(differingRegions(da, db, algorithm)).toEqual([1, 2]);
    }
  });

  it('merges regions into ranges clipped to the volume', () => {
    expect(regionsToRanges([0, 1, 3, 4, 5, 9], 100, 950)).toEqual([
      { offset: 0, length: 200 },
      { offset: 300, length: 300 },
      { offset: 900, length: 50 },
    ]);
    expect(regionsToRanges([], 100, 950)).toEqual([]);
  });
});

describe('payloads and ranges', () => {
  it('splits gathered buffers into bounded pieces without copying', () => {
    const x = Buffer.alloc(10, 1);
    const y = Buffer.alloc(7, 2);
    const pieces = splitPayload([x, y], 8);
    expect(pieces.map((p) => p.length)).toEqual([8, 8, 1]);
    expect(pieces[0]!.buffers[0]!.buffer).toBe(x.buffer);
    expect(Buffer.concat(pieces.flatMap((p) => p.buffers)).equals(Buffer.concat([x, y]))).toBe(true);
    expect(splitPayload([x], 100)[0]!.buffers[0]).toBe(x);
  });

  it('lists dirty regions as merged, bounded byte ranges', async () => {
    const bm = DirtyBitmap.inMemory(10 * 65536 + 100, 65536);
    await bm.markRegions(1, 3);
    await bm.markRegions(10, 1);
    expect(dirtyRanges(bm)).toEqual([
      { offset: 65536, length: 3 * 65536 },
      { offset: 10 * 65536, length: 100 },
    ]);
    expect(dirtyRanges(bm, 2 * 65536).map((r) => r.length)).toEqual([2 * 65536, 65536, 100]);
  });
});

describe('configuration', () => {
  it('parses and formats link addresses', () => {
    expect(parseHostPort('10.0.0.1:7789')).toEqual({ host: '10.0.0.1', port: 7789 });
    expect(parseHostPort('[fe80::1]:7789')).toEqual({ host: 'fe80::1', port: 7789 });
    expect(formatHostPort({ host: 'fe80::1', port: 1 })).toBe('[fe80::1]:1');
    expect(() => parseHostPort('nohost')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => parseHostPort('h:70000')).toThrow();
  });

  it('resolves tunables over their defaults and checks bounds, names and consistency', () => {
    const t = resolveMirrorTunables({ degradeAfterMs: 100, heartbeatMs: 20 });
    expect(t.degradeAfterMs).toBe(100);
    expect(t.heartbeatMs).toBe(20);
    expect(t.resyncWindow).toBe(MIRROR_TUNABLES.resyncWindow.default);
    expect(() => resolveMirrorTunables({ degradeAfterMs: 1 })).toThrow(RangeError);
    expect(() => resolveMirrorTunables({ nope: 1 } as never)).toThrow(/unknown/);
    expect(() => resolveMirrorTunables({ resyncMinBytesPerSec: 1 << 30, resyncMaxBytesPerSec: 1 << 20 })).toThrow(/exceeds/);
    for (const [name, tn] of Object.entries(MIRROR_TUNABLES)) {
      expect(tn.default, name).toBeGreaterThanOrEqual(tn.min);
      expect(tn.default, name).toBeLessThanOrEqual(tn.max);
      expect(tn.doc.length, name).toBeGreaterThan(10);
    }
  });

  it('has errno-style, documented error codes (they travel in Ack.code)', () => {
    for (const [code, doc] of Object.entries(MIRROR_ERROR_CODES)) {
      expect(code).toMatch(/^E[A-Z0-9_]{1,31}$/);
      expect(doc.length).toBeGreaterThan(10);
    }
  });
});
