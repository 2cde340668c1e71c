/** Generation ids: the decision table, the transitions, and a two-replica failure model. */
import { describe, expect, it } from 'vitest';
import {
  decideSync,
  EMPTY_GENERATION,
  Generations,
  generationsProblem,
  HISTORY_LENGTH,
  initialGenerations,
  isGenerationId,
  mirrorDecision,
  newGenerationId,
  onPeerLost,
  onPromote,
  onSyncComplete,
  resolveSplitBrain,
  ResyncMode,
  Side,
  SyncContext,
  SyncDecision,
  SyncRuleName,
  SYNC_RULE_SUMMARIES,
} from '../../../src/mirror/generations';

// Readable fixed ids for the table tests.
const C1 = '00000000000000c1';
const C2 = '00000000000000c2';
const C3 = '00000000000000c3';
const A2 = '00000000000000a2';
const A3 = '00000000000000a3';
const B2 = '00000000000000b2';
const X9 = '00000000000000f9';

const g = (current: string, bitmap: string | null = null, history: string[] = []): Generations => ({ current, bitmap, history });
const clean: SyncContext = { localDirty: false, peerDirty: false, localWinsTies: true };

/** Decides from both sides, checks the two answers mirror each other, returns the local one. */
function decideBoth(local: Generations, peer: Generations, ctx: Partial<SyncContext> = {}): SyncDecision {
  const c: SyncContext = { ...clean, ...ctx };
  const mine = decideSync(local, peer, c);
  const theirs = decideSync(peer, local, {
    localDirty: c.peerDirty,
    peerDirty: c.localDirty,
    localCrashedPrimary: c.peerCrashedPrimary,
    peerCrashedPrimary: c.localCrashedPrimary,
    localConsistent: c.peerConsistent,
    peerConsistent: c.localConsistent,
    localWinsTies: !c.localWinsTies,
  });
  expect(withoutDetail(theirs)).toEqual(withoutDetail(mirrorDecision(mine)));
  return mine;
}

/** The detail text names sides from the caller's point of view; compare the rest. */
function withoutDetail(d: SyncDecision): object {
  if (d.kind === 'split-brain' || d.kind === 'unrelated') return { kind: d.kind, rule: d.rule };
  return d;
}

describe('generation ids', () => {
  it('are 16 random lowercase hex digits, never EMPTY', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = newGenerationId();
      expect(isGenerationId(id)).toBe(true);
      expect(id).not.toBe(EMPTY_GENERATION);
      ids.add(id);
    }
    expect(ids.size).toBe(1000);
  });

  it('a new volume starts EMPTY with no bitmap base and no history', () => {
    expect(initialGenerations()).toEqual({ current: EMPTY_GENERATION, bitmap: null, history: [] });
  });

  it.each([
    [g('xyz'), /current/],
    [g(C1, C1), /bitmap equals current/],
    [g(C1, EMPTY_GENERATION), /bitmap/],
    [g(C1, null, [C1]), /history contains current/],
    [g(C1, null, [EMPTY_GENERATION]), /history entry/],
    [g(C1, null, Array.from({ length: HISTORY_LENGTH + 1 }, (_, i) => (0x100 + i).toString(16).padStart(16, '0'))), /history has/],
  ])('rejects malformed generations %#', (bad, message) => {
    expect(generationsProblem(bad)).toMatch(message);
    expect(() => decideSync(bad, g(C1), clean)).toThrow(TypeError);
    expect(() => decideSync(g(C1), bad, clean)).toThrow(TypeError);
  });
});

describe('decideSync rules', () => {
  type Expected = { kind: SyncDecision['kind']; rule: SyncRuleName; source?: Side; mode?: ResyncMode };
  const cases: [string, Generations, Generations, Partial<SyncContext>, Expected][] = [
    ['both newly created', g(EMPTY_GENERATION), g(EMPTY_GENERATION), {}, { kind: 'unrelated', rule: 'both-empty' }],
    ['local newly created', g(EMPTY_GENERATION), g(C1), { peerDirty: true }, { kind: 'resync', source: 'peer', mode: 'full', rule: 'local-empty' }],
    ['peer newly created', g(C1, C2), g(EMPTY_GENERATION), {}, { kind: 'resync', source: 'local', mode: 'full', rule: 'peer-empty' }],
    ['same current, clean', g(C1, null, [C2]), g(C1), {}, { kind: 'in-sync', rule: 'same-current-clean' }],
    ['same current, leftover bitmap base from an interrupted sync completion', g(C2, C1), g(C2, null, [C1]), {}, { kind: 'in-sync', rule: 'same-current-clean' }],
    ['same current, local crashed as primary', g(C1), g(C1), { localCrashedPrimary: true, localDirty: true }, { kind: 'resync', source: 'local', mode: 'bitmap', rule: 'same-current-unclean' }],
    ['same current, peer crashed as primary (no bits: still resynced)', g(C1), g(C1), { peerCrashedPrimary: true }, { kind: 'resync', source: 'peer', mode: 'bitmap', rule: 'same-current-unclean' }],
    ['same current, only peer dirty', g(C1), g(C1), { peerDirty: true }, { kind: 'resync', source: 'peer', mode: 'bitmap', rule: 'same-current-unclean' }],
    ['same current, crashed primary beats dirty', g(C1), g(C1), { localDirty: true, peerDirty: true, peerCrashedPrimary: true }, { kind: 'resync', source: 'peer', mode: 'bitmap', rule: 'same-current-unclean' }],
    ['same current, both dirty: tie winner', g(C1), g(C1), { localDirty: true, peerDirty: true, localWinsTies: false }, { kind: 'resync', source: 'peer', mode: 'bitmap', rule: 'same-current-unclean' }],
    ['same current, unfinished local target is never the source', g(C1), g(C1), { localDirty: true, localCrashedPrimary: true, localConsistent: false }, { kind: 'resync', source: 'peer', mode: 'bitmap', rule: 'same-current-unclean' }],
    ['same current, unfinished target, no bits', g(C1), g(C1), { peerConsistent: false }, { kind: 'resync', source: 'local', mode: 'bitmap', rule: 'same-current-unclean' }],
    ['local wrote alone', g(A2, C1, [C1]), g(C1), { localDirty: true, peerDirty: true }, { kind: 'resync', source: 'local', mode: 'bitmap', rule: 'local-wrote-alone' }],
    ['peer wrote alone', g(C1), g(B2, C1, [C1]), { peerDirty: true }, { kind: 'resync', source: 'peer', mode: 'bitmap', rule: 'peer-wrote-alone' }],
    ['local wrote alone across several generations (base kept)', g(A3, C1, [A2, C1]), g(C1), { localDirty: true }, { kind: 'resync', source: 'local', mode: 'bitmap', rule: 'local-wrote-alone' }],
    ['peer far behind', g(A3, A2, [A2, C2, C1]), g(C1), {}, { kind: 'resync', source: 'local', mode: 'full', rule: 'local-descends-from-peer' }],
    ['local far behind', g(C1), g(C3, null, [C2, C1]), {}, { kind: 'resync', source: 'peer', mode: 'full', rule: 'peer-descends-from-local' }],
    ['both wrote while apart', g(A2, C1, [C1]), g(B2, C1, [C1]), { localDirty: true, peerDirty: true }, { kind: 'split-brain', rule: 'split-brain' }],
    ['both wrote while apart, crashed primaries do not help', g(A2, C1, [C1]), g(B2, C1, [C1]), { localDirty: true, peerDirty: true, localCrashedPrimary: true }, { kind: 'split-brain', rule: 'split-brain' }],
    ['both promoted apart, only local wrote', g(A2, C1, [C1]), g(B2, C1, [C1]), { localDirty: true }, { kind: 'resync', source: 'local', mode: 'bitmap', rule: 'only-local-changed' }],
    ['both promoted apart, only peer wrote', g(A2, C1, [C1]), g(B2, C1, [C1]), { peerDirty: true }, { kind: 'resync', source: 'peer', mode: 'bitmap', rule: 'only-peer-changed' }],
    ['both promoted apart, the peer an unfinished target with leftover bits', g(A2, C1, [C1]), g(B2, C1, [C1]), { localDirty: true, peerDirty: true, peerConsistent: false }, { kind: 'resync', source: 'local', mode: 'bitmap', rule: 'only-local-changed' }],
    ['both promoted apart, neither wrote', g(A2, C1, [C1]), g(B2, C1, [C1]), { localWinsTies: false }, { kind: 'resync', source: 'peer', mode: 'bitmap', rule: 'neither-changed' }],
    ['diverged after a common generation', g(A3, C1, [A2, C1]), g(B2, A2, [A2, C1]), { localDirty: true, peerDirty: true }, { kind: 'split-brain', rule: 'diverged' }],
    ['diverged even without dirty bits', g(A3, C1, [A2, C1]), g(B2, A2, [A2, C1]), {}, { kind: 'split-brain', rule: 'diverged' }],
    ['unrelated volumes', g(A2, C1, [C1]), g(B2, C3, [C3]), {}, { kind: 'unrelated', rule: 'unrelated' }],
    ['source would be an unfinished target', g(A2, C1, [C1]), g(C1), { localConsistent: false }, { kind: 'unrelated', rule: 'inconsistent-source' }],
  ];

  it.each(cases)('%s', (_name, local, peer, ctx, expected) => {
    expect(decideBoth(local, peer, ctx)).toMatchObject(expected);
  });

  it('every rule is exercised by the table and documented', () => {
    const used = new Set(cases.map((c) => c[4].rule));
    for (const { name, summary } of SYNC_RULE_SUMMARIES) {
      expect(used, name).toContain(name);
      expect(summary.length).toBeGreaterThan(20);
    }
  });

  it('split brain and unrelated carry a readable detail', () => {
    const sb = decideSync(g(A2, C1, [C1]), g(B2, C1, [C1]), { ...clean, localDirty: true, peerDirty: true });
    expect(sb).toMatchObject({ kind: 'split-brain', detail: expect.stringContaining(C1) });
    const un = decideSync(g(A2), g(B2), clean);
    expect(un).toMatchObject({ kind: 'unrelated', detail: expect.stringContaining(A2) });
  });

  it('is symmetric for random related generations', () => {
    const rng = mulberry32(7);
    const pool = [C1, C2, C3, A2, A3, B2, X9];
    const pick = (): string => pool[Math.floor(rng() * pool.length)]!;
    const randomGen = (): Generations => {
      const current = pick();
      const bitmap = rng() < 0.5 ? null : pick();
      const history = [...new Set(Array.from({ length: Math.floor(rng() * 4) }, pick))].filter((h) => h !== current);
      return g(current, bitmap === current ? null : bitmap, history);
    };
    for (let i = 0; i < 5000; i++) {
      decideBoth(randomGen(), randomGen(), {
        localDirty: rng() < 0.5,
        peerDirty: rng() < 0.5,
        localCrashedPrimary: rng() < 0.3,
        peerCrashedPrimary: rng() < 0.3,
        localConsistent: rng() < 0.8,
        peerConsistent: rng() < 0.8,
        localWinsTies: rng() < 0.5,
      });
    }
  });
});

describe('transitions', () => {
  it('onPeerLost: new current, old current becomes the bitmap base and history', () => {
    const next = onPeerLost(g(C1, null, [C2]));
    expect(isGenerationId(next.current)).toBe(true);
    expect(next.current).not.toBe(C1);
    expect(next).toMatchObject({ bitmap: C1, history: [C1, C2] });
  });

  it('onPeerLost keeps an existing bitmap base (the peer has not caught up)', () => {
    const next = onPeerLost(g(A2, C1, [C1]));
    expect(next).toMatchObject({ bitmap: C1, history: [A2, C1] });
    // The peer, still at C1, gets a bitmap resync, not a full one.
    expect(decideBoth(next, g(C1), { localDirty: true })).toMatchObject({ kind: 'resync', source: 'local', mode: 'bitmap' });
  });

  it('onPeerLost refuses a newly created replica', () => {
    expect(() => onPeerLost(initialGenerations())).toThrow(RangeError);
  });

  it('history keeps the newest HISTORY_LENGTH ids', () => {
    let gen = g(C1);
    const seen = [C1];
    for (let i = 0; i < HISTORY_LENGTH + 3; i++) {
      gen = onSyncComplete(onPeerLost(gen), g(C1)).source;
      seen.unshift(gen.current);
    }
    expect(gen.history).toHaveLength(HISTORY_LENGTH);
    expect(gen.history).toEqual(seen.slice(1, HISTORY_LENGTH + 1));
  });

  it('onPromote: unchanged with a connected peer, a new generation without', () => {
    const gen = g(C1, null, [C2]);
    expect(onPromote(gen, true)).toBe(gen);
    expect(onPromote(gen, false)).toMatchObject({ bitmap: C1, history: [C1, C2] });
  });

  it('onPromote of a newly created replica makes it the initial full-sync source', () => {
    const a = onPromote(initialGenerations(), true);
    expect(a.current).not.toBe(EMPTY_GENERATION);
    expect(a.bitmap).toBeNull();
    expect(decideBoth(a, initialGenerations())).toMatchObject({ kind: 'resync', source: 'local', mode: 'full', rule: 'peer-empty' });
  });

  it('onSyncComplete: the target adopts the source current, both drop the base', () => {
    const { source, target } = onSyncComplete(g(A2, C1, [C1]), g(C1, null, [C2]));
    expect(source).toEqual(g(A2, null, [C1]));
    expect(target).toEqual(g(A2, null, [C1, C2]));
    expect(decideBoth(source, target)).toMatchObject({ kind: 'in-sync' });
  });

  it('a crash between the target and the source storing sync completion stays safe', () => {
    const oldSource = g(A2, C1, [C1]);
    const { target } = onSyncComplete(oldSource, g(C1));
    // The target stored, the source did not: equal currents.
    expect(decideBoth(oldSource, target)).toMatchObject({ kind: 'in-sync' });
    expect(decideBoth(oldSource, target, { localDirty: true })).toMatchObject({ kind: 'resync', source: 'local', mode: 'bitmap' });
    // The source then writes alone before reconnecting: a full resync, never "in sync".
    const alone = onPeerLost(oldSource);
    expect(decideBoth(alone, target, { localDirty: true })).toMatchObject({ kind: 'resync', source: 'local', mode: 'full' });
  });

  it('resolveSplitBrain with a common base: the victim rolls back to it and gets a bitmap resync', () => {
    const survivor = g(A2, C1, [C1]);
    const victim = g(B2, C1, [C1]);
    const r = resolveSplitBrain(survivor, victim);
    expect(r.mode).toBe('bitmap');
    expect(r.survivor).toBe(survivor);
    expect(r.victim).toEqual(g(C1, null, [B2]));
    // The victim keeps its dirty bits, so the union covers both sides' changes.
    expect(decideBoth(r.survivor, r.victim, { localDirty: true, peerDirty: true, peerConsistent: false })).toMatchObject({
      kind: 'resync',
      source: 'local',
      mode: 'bitmap',
      rule: 'local-wrote-alone',
    });
  });

  it('resolveSplitBrain without a common base: the victim forgets its lineage and gets a full resync', () => {
    const r = resolveSplitBrain(g(A3, C1, [A2, C1]), g(B2, A2, [A2, C1]));
    expect(r.mode).toBe('full');
    expect(r.victim.current).toBe(EMPTY_GENERATION);
    expect(decideBoth(r.survivor, r.victim, { peerConsistent: false })).toMatchObject({ kind: 'resync', source: 'local', mode: 'full' });
  });
});

describe('failure scenarios', () => {
  const dirty = { localDirty: true, peerDirty: true };

  it('primary crash, secondary takes over, old primary returns: bitmap resync from the new primary', () => {
    const base = g(C1);
    const b = onPromote(base, false);
    expect(decideBoth(base, b, { ...dirty, localCrashedPrimary: true })).toMatchObject({ kind: 'resync', source: 'peer', mode: 'bitmap' });
  });

  it('secondary crash while the primary goes on: bitmap resync from the primary', () => {
    const a = onPeerLost(g(C1));
    expect(decideBoth(a, g(C1), { localDirty: true })).toMatchObject({ kind: 'resync', source: 'local', mode: 'bitmap' });
  });

  it('both crash: the crashed primary resyncs its activity-log regions', () => {
    expect(decideBoth(g(C1), g(C1), { localDirty: true, localCrashedPrimary: true })).toMatchObject({ kind: 'resync', source: 'local', mode: 'bitmap' });
  });

  it('failover A to B and back to A', () => {
    let a = g(C1);
    let b = g(C1);
    b = onPromote(b, false); // A crashed, B primary alone
    let d = decideBoth(a, b, { localCrashedPrimary: true, ...dirty });
    expect(d).toMatchObject({ kind: 'resync', source: 'peer' });
    ({ source: b, target: a } = onSyncComplete(b, a));
    a = onPromote(a, false); // B crashed, A primary alone
    d = decideBoth(a, b, { ...dirty, peerCrashedPrimary: true });
    expect(d).toMatchObject({ kind: 'resync', source: 'local', mode: 'bitmap' });
  });

  it('a node down through several generations of its peer', () => {
    let a = g(C1);
    for (let i = 0; i < HISTORY_LENGTH * 2; i++) a = onPromote(a, false); // crashes and restarts alone
    expect(decideBoth(a, g(C1), { localDirty: true })).toMatchObject({ kind: 'resync', source: 'local', mode: 'bitmap' });
  });
});

// ---------------------------------------------------------------------------
// A tiny model of two replicas under random failures.

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** TWINSAN_MODEL_SEEDS / TWINSAN_MODEL_STEPS run a longer soak locally. */
const MODEL_SEEDS = Number(process.env.TWINSAN_MODEL_SEEDS ?? 2000);
const MODEL_STEPS = Number(process.env.TWINSAN_MODEL_STEPS ?? 60);
const REGIONS = 6;
const AL_SIZE = 2;

interface Replica {
  readonly name: 'A' | 'B';
  data: number[];
  gens: Generations;
  /** Dirty bitmap as held in memory. */
  bits: Set<number>;
  /** Bits cleared in memory but not yet written: they come back after a crash. */
  lazy: Set<number>;
  /** The activity log on disk: recently written regions, plus any write in flight. */
  al: number[];
  alive: boolean;
  primary: boolean;
  wasPrimary: boolean;
  consistent: boolean;
  crashedPrimary: boolean;
  /** Ground truth since the last sync point: writes acknowledged without the peer. */
  ackedAlone: number;
  /** Ground truth since the last sync point: started a new generation without the peer. */
  rotatedAlone: boolean;
}

class Model {
  readonly A: Replica;
  readonly B: Replica;
  link = true;
  connected = true;
  private value = 0;
  readonly log: string[] = [];
  readonly rules = new Map<string, number>();

  constructor(private readonly rng: () => number) {
    const start = g(newGenerationId());
    const replica = (name: 'A' | 'B', primary: boolean): Replica => ({
      name,
      data: new Array<number>(REGIONS).fill(0),
      gens: start,
      bits: new Set(),
      lazy: new Set(),
      al: [],
      alive: true,
      primary,
      wasPrimary: false,
      consistent: true,
      crashedPrimary: false,
      ackedAlone: 0,
      rotatedAlone: false,
    });
    this.A = replica('A', true);
    this.B = replica('B', false);
  }

  private chance(p: number): boolean {
    return this.rng() < p;
  }
  private region(): number {
    return Math.floor(this.rng() * REGIONS);
  }
  private other(r: Replica): Replica {
    return r === this.A ? this.B : this.A;
  }
  private touchAl(r: Replica, region: number): void {
    r.al = [region, ...r.al.filter((x) => x !== region)].slice(0, AL_SIZE);
  }
  private rotate(r: Replica, gens: Generations): void {
    r.gens = gens;
    r.rotatedAlone = true;
  }
  private clearBit(r: Replica, region: number): void {
    if (r.bits.delete(region)) r.lazy.add(region);
  }

  step(): void {
    const ops: [number, () => void][] = [
      [4, () => this.write(this.A)],
      [4, () => this.write(this.B)],
      [1, () => this.disconnect()],
      [2, () => this.reconnect()],
      [1, () => this.crash(this.A)],
      [1, () => this.crash(this.B)],
      [2, () => this.restart(this.A)],
      [2, () => this.restart(this.B)],
      [1, () => this.failover(this.A)],
      [1, () => this.failover(this.B)],
      [1, () => this.flushLazy()],
    ];
    let n = this.rng() * ops.reduce((s, [w]) => s + w, 0);
    for (const [w, op] of ops) {
      n -= w;
      if (n < 0) {
        op();
        break;
      }
    }
    this.checkInvariants();
  }

  private write(r: Replica): void {
    if (!r.alive || !r.primary) return;
    const region = this.region();
    const v = ++this.value;
    this.log.push(`write ${r.name} r${region}=${v}${this.connected ? ' (mirrored)' : ' (alone)'}`);
    this.touchAl(r, region);
    if (this.connected) {
      this.A.data[region] = v;
      this.B.data[region] = v;
      return;
    }
    expect(r.gens.bitmap, 'writes alone only after a new generation').not.toBeNull();
    r.bits.add(region);
    r.data[region] = v;
    r.ackedAlone++;
  }

  /** The connection drops; the primary (if any) may have one write in flight. */
  private loseConnection(crashed: Replica | null): void {
    if (!this.connected) return;
    this.connected = false;
    const primary = [this.A, this.B].find((r) => r.primary && r.alive);
    if (!primary) return;
    const peer = this.other(primary);
    const inFlight = this.chance(0.5) ? this.region() : null;
    const v = ++this.value;
    if (inFlight !== null) this.touchAl(primary, inFlight);
    if (crashed === primary) {
      // Not acknowledged; it may have reached either side, and lies in the primary's activity log.
      if (inFlight !== null) {
        if (this.chance(0.5)) primary.data[inFlight] = v;
        if (this.chance(0.5)) peer.data[inFlight] = v;
        this.log.push(`  in flight r${inFlight}=${v}: A=${this.A.data[inFlight]} B=${this.B.data[inFlight]}`);
      }
      return;
    }
    // The primary survives: it marks the unacknowledged write, starts a new generation, completes it.
    this.rotate(primary, onPeerLost(primary.gens));
    this.log.push(`  ${primary.name} goes on alone: ${JSON.stringify(primary.gens)}`);
    if (inFlight !== null) {
      primary.bits.add(inFlight);
      if (this.chance(0.5)) peer.data[inFlight] = v;
      primary.data[inFlight] = v;
      primary.ackedAlone++;
      this.log.push(`  in flight r${inFlight}=${v}: A=${this.A.data[inFlight]} B=${this.B.data[inFlight]}`);
    }
  }

  private disconnect(): void {
    if (!this.link) return;
    this.log.push('disconnect');
    this.link = false;
    this.loseConnection(null);
  }

  private reconnect(): void {
    if (!this.link) this.log.push('reconnect');
    this.link = true;
    if (this.A.alive && this.B.alive && !this.connected) this.handshake(0);
  }

  private crash(r: Replica): void {
    if (!r.alive) return;
    this.log.push(`crash ${r.name}${r.primary ? ' (primary)' : ''}`);
    if (this.connected) {
      this.loseConnection(r);
    } else if (r.primary && this.chance(0.5)) {
      // Alone: the region is marked before the write is issued.
      const region = this.region();
      r.bits.add(region);
      this.touchAl(r, region);
      if (this.chance(0.5)) r.data[region] = ++this.value;
    }
    r.alive = false;
    r.wasPrimary = r.primary;
    r.primary = false;
    for (const x of r.lazy) r.bits.add(x);
    r.lazy.clear();
  }

  private restart(r: Replica): void {
    if (r.alive) return;
    this.log.push(`restart ${r.name}`);
    r.alive = true;
    for (const x of r.al) r.bits.add(x);
    r.crashedPrimary ||= r.wasPrimary;
  }

  private failover(r: Replica): void {
    if (!r.alive || r.primary || !r.consistent) return;
    const peer = this.other(r);
    if (this.connected) {
      this.log.push(`switchover to ${r.name}`);
      peer.primary = false;
      r.primary = true;
      expect(onPromote(r.gens, true)).toBe(r.gens);
      return;
    }
    this.rotate(r, onPromote(r.gens, false));
    r.primary = true;
    this.log.push(`failover to ${r.name} alone: ${JSON.stringify(r.gens)}`);
  }

  private flushLazy(): void {
    this.A.lazy.clear();
    this.B.lazy.clear();
  }

  private context(me: Replica, other: Replica, wins: boolean): SyncContext {
    return {
      localDirty: me.bits.size > 0,
      peerDirty: other.bits.size > 0,
      localCrashedPrimary: me.crashedPrimary,
      peerCrashedPrimary: other.crashedPrimary,
      localConsistent: me.consistent,
      peerConsistent: other.consistent,
      localWinsTies: wins,
    };
  }

  private syncPoint(): void {
    for (const r of [this.A, this.B]) {
      r.ackedAlone = 0;
      r.rotatedAlone = false;
    }
  }

  private handshake(depth: number): void {
    const { A, B } = this;
    const d = decideSync(A.gens, B.gens, this.context(A, B, true));
    expect(withoutDetail(decideSync(B.gens, A.gens, this.context(B, A, false))), 'both nodes agree').toEqual(withoutDetail(mirrorDecision(d)));
    this.rules.set(d.rule, (this.rules.get(d.rule) ?? 0) + 1);
    this.log.push(`  handshake: A=${JSON.stringify(A.gens)} bits=${[...A.bits]} B=${JSON.stringify(B.gens)} bits=${[...B.bits]} -> ${JSON.stringify(d)}`);

    if (A.ackedAlone > 0 && B.ackedAlone > 0) expect(d.kind, 'both wrote while apart').toBe('split-brain');
    expect(d.rule).not.toBe('inconsistent-source');
    expect(d.rule).not.toBe('both-empty');

    switch (d.kind) {
      case 'in-sync': {
        expect(A.data, 'in sync means equal data').toEqual(B.data);
        A.gens = onSyncComplete(A.gens, B.gens).source;
        B.gens = onSyncComplete(B.gens, A.gens).source;
        if (A.primary && B.primary) B.primary = false;
        this.connected = true;
        this.syncPoint();
        return;
      }
      case 'resync': {
        const src = d.source === 'local' ? A : B;
        const tgt = this.other(src);
        expect(src.consistent, 'the source is consistent').toBe(true);
        expect(tgt.ackedAlone, 'no acknowledged write of the target is overwritten').toBe(0);
        tgt.primary = false;
        const regions = d.mode === 'full' ? [...Array(REGIONS).keys()] : [...new Set([...src.bits, ...tgt.bits])];
        if (this.chance(0.15)) {
          // Interrupted part way: the target is left inconsistent, with its old generations.
          const done = regions.slice(0, Math.floor(this.rng() * regions.length));
          for (const x of done) {
            tgt.data[x] = src.data[x]!;
            if (d.mode === 'bitmap') {
              this.clearBit(src, x);
              this.clearBit(tgt, x);
            }
          }
          tgt.consistent = false;
          this.log.push(`  resync ${src.name}->${tgt.name} interrupted after ${done.join(',')}`);
          return;
        }
        for (const x of regions) tgt.data[x] = src.data[x]!;
        expect(tgt.data, 'after the resync both hold the same data').toEqual(src.data);
        const done = onSyncComplete(src.gens, tgt.gens);
        tgt.gens = done.target;
        for (const r of [src, tgt]) {
          for (const x of [...r.bits]) this.clearBit(r, x);
        }
        tgt.consistent = true;
        this.syncPoint();
        if (this.chance(0.05)) {
          // The source crashes after the target stored completion but before it did.
          this.log.push(`  resync ${src.name}->${tgt.name} complete on the target only`);
          this.crash(src);
          return;
        }
        src.gens = done.source;
        src.crashedPrimary = false;
        tgt.crashedPrimary = false;
        this.connected = true;
        this.log.push(`  resync ${src.name}->${tgt.name} complete`);
        return;
      }
      case 'split-brain':
      case 'unrelated': {
        if (d.kind === 'split-brain') expect(A.rotatedAlone && B.rotatedAlone, 'split brain only after both went on alone').toBe(true);
        else expect(d.rule).toBe('unrelated');
        expect(depth, 'a resolution always leads to a resync').toBe(0);
        if (this.chance(0.3)) return; // left for the operator
        // The operator keeps a consistent replica (an unfinished resync target has no usable data).
        const survivor = !B.consistent || (A.consistent && this.chance(0.5)) ? A : B;
        expect(survivor.consistent).toBe(true);
        const victim = this.other(survivor);
        const r = resolveSplitBrain(survivor.gens, victim.gens);
        this.log.push(`  operator keeps ${survivor.name}: victim ${JSON.stringify(r.victim)} (${r.mode})`);
        victim.gens = r.victim;
        victim.consistent = false;
        victim.primary = false;
        victim.ackedAlone = 0; // discarded by the operator's decision
        const next = decideSync(survivor.gens, victim.gens, this.context(survivor, victim, true));
        expect(next).toMatchObject({ kind: 'resync', source: 'local', mode: r.mode });
        this.handshake(depth + 1);
        return;
      }
    }
  }

  /** Where the data differ, some dirty bitmap or activity log says so, whenever the ids claim a relation. */
  private checkInvariants(): void {
    const { A, B } = this;
    if (this.connected) expect(A.data, 'connected replicas are equal').toEqual(B.data);
    const related =
      A.gens.current === B.gens.current || (A.gens.bitmap !== null && A.gens.bitmap === B.gens.current) || (B.gens.bitmap !== null && B.gens.bitmap === A.gens.current);
    if (!related) return;
    const covered = new Set([...A.bits, ...B.bits, ...A.lazy, ...B.lazy]);
    if (!A.alive) for (const x of A.al) covered.add(x);
    if (!B.alive) for (const x of B.al) covered.add(x);
    for (let x = 0; x < REGIONS; x++) {
      if (A.data[x] !== B.data[x]) expect(covered.has(x), `region ${x} differs but no bitmap covers it`).toBe(true);
    }
  }
}

describe('two-replica model under random failures', () => {
  it('in sync only with equal data; both writing apart is always split brain; resyncs never lose acknowledged writes', () => {
    const totals = new Map<string, number>();
    for (let seed = 1; seed <= MODEL_SEEDS; seed++) {
      const model = new Model(mulberry32(seed));
      try {
        for (let i = 0; i < MODEL_STEPS; i++) model.step();
      } catch (err) {
        throw new Error(`seed ${seed}:\n${model.log.join('\n')}\n${String(err)}`);
      }
      for (const [rule, n] of model.rules) totals.set(rule, (totals.get(rule) ?? 0) + n);
    }
    if (process.env.TWINSAN_MODEL_STATS) console.log(totals);
    for (const rule of [
      'same-current-clean',
      'same-current-unclean',
      'local-wrote-alone',
      'peer-wrote-alone',
      'local-descends-from-peer',
      'peer-descends-from-local',
      'split-brain',
      'only-local-changed',
      'only-peer-changed',
      'neither-changed',
      'local-empty',
      'peer-empty',
    ]) {
      expect(totals.get(rule) ?? 0, `rule ${rule} reached in the model (${JSON.stringify([...totals])})`).toBeGreaterThan(0);
    }
  });
});
