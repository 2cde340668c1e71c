/**
 * The RG ownership state machine: the transition table, and a resource
 * group driving fake resources through start, stop, rollback and moves.
 */
import { describe, expect, it } from 'vitest';
import { Resource, ResourceGroup, ResourceGroupError, StopReason } from '../../../src/resource-groups/group';
import { RG_EVENTS, RG_STATES, RgEvent, RgState, transition } from '../../../src/resource-groups/state';

describe('transition', () => {
  const cases: [RgState, RgEvent, RgState | null, boolean?][] = [
    ['stopped', 'start', 'starting'],
    ['stopped', 'move-in', 'moving-in'],
    ['stopped', 'stop', 'stopped', true],
    ['stopped', 'fence', 'stopped', true],
    ['stopped', 'move-out', null],
    ['stopped', 'started', null],
    ['starting', 'started', 'serving'],
    ['starting', 'start-failed', 'stopped'],
    ['starting', 'rollback-failed', 'failed'],
    ['starting', 'stop', null],
    ['serving', 'start', 'serving', true],
    ['serving', 'stop', 'stopping'],
    ['serving', 'fence', 'stopping'],
    ['serving', 'move-out', 'moving-out'],
    ['serving', 'stopped', null],
    ['stopping', 'stopped', 'stopped'],
    ['stopping', 'stop-failed', 'failed'],
    ['stopping', 'start', null],
    ['moving-out', 'moved-out', 'stopped'],
    ['moving-out', 'stop-failed', 'failed'],
    ['moving-out', 'move-abandoned', 'serving'],
    ['moving-out', 'start', null],
    ['moving-in', 'moved-in', 'serving'],
    ['moving-in', 'start-failed', 'stopped'],
    ['moving-in', 'rollback-failed', 'failed'],
    ['failed', 'stop', 'stopping'],
    ['failed', 'fence', 'stopping'],
    ['failed', 'start', null],
    ['failed', 'move-in', null],
  ];
  it.each(cases)('%s + %s → %s', (from, event, to, noop = false) => {
    const t = transition(from, event);
    if (to === null) {
      expect(t.ok).toBe(false);
    } else {
      expect(t).toEqual({ ok: true, next: to, noop });
    }
  });

  it('is defined for every state and event, and every state is reachable from stopped', () => {
    const reached = new Set<RgState>(['stopped']);
    let grew = true;
    while (grew) {
      grew = false;
      for (const s of [...reached]) {
        for (const e of Object.keys(RG_EVENTS) as RgEvent[]) {
          const t = transition(s, e);
          if (t.ok && !reached.has(t.next)) {
            reached.add(t.next);
            grew = true;
          }
        }
      }
    }
    expect([...reached].sort()).toEqual(Object.keys(RG_STATES).sort());
  });
});

/** A fake resource that records calls into a shared journal and fails on demand. */
class FakeResource implements Resource {
  up = false;
  failStart = false;
  failStop = false;
  constructor(
    readonly name: string,
    private readonly journal: string[],
  ) {}
  async start(): Promise<void> {
    await Promise.resolve();
    this.journal.push(`start ${this.name}`);
    if (this.failStart) throw new Error(`${this.name} refuses to start`);
    this.up = true;
  }
  async stop(reason: StopReason): Promise<void> {
    await Promise.resolve();
    this.journal.push(`stop ${this.name} (${reason})`);
    if (this.failStop) throw new Error(`${this.name} refuses to stop`);
    this.up = false;
  }
}

function group(): { rg: ResourceGroup; journal: string[]; r: Record<string, FakeResource>; states: string[] } {
  const journal: string[] = [];
  const names = ['mirror', 'scsi-state', 'alias-ips', 'announce', 'targets', 'alua'];
  const r = Object.fromEntries(names.map((n) => [n, new FakeResource(n, journal)]));
  const rg = new ResourceGroup('rg1', names.map((n) => r[n]!));
  const states: string[] = [];
  rg.on('state', (to, from, event) => states.push(`${from} -${event}-> ${to}`));
  return { rg, journal, r, states };
}

describe('ResourceGroup', () => {
  it('starts in order and stops in reverse', async () => {
    const { rg, journal, states } = group();
    await rg.start();
    expect(rg.state).toBe('serving');
    await rg.stop();
    expect(rg.state).toBe('stopped');
    expect(journal).toEqual([
      'start mirror',
      'start scsi-state',
      'start alias-ips',
      'start announce',
      'start targets',
      'start alua',
      'stop alua (stop)',
      'stop targets (stop)',
      'stop announce (stop)',
      'stop alias-ips (stop)',
      'stop scsi-state (stop)',
      'stop mirror (stop)',
    ]);
    expect(states).toEqual(['stopped -start-> starting', 'starting -started-> serving', 'serving -stop-> stopping', 'stopping -stopped-> stopped']);
  });

  it('resources marked startsAlongside start together with the one before them; the next waits for all', async () => {
    const journal: string[] = [];
    const gate: { open?: () => void } = {};
    const slow: Resource = {
      name: 'slow',
      start: () => new Promise<void>((resolve) => (gate.open = () => (journal.push('slow up'), resolve()))),
      stop: async () => void journal.push('stop slow'),
    };
    const beside = Object.assign(new FakeResource('beside', journal), { startsAlongside: true });
    const after = new FakeResource('after', journal);
    const rg = new ResourceGroup('rg1', [slow, beside, after]);
    const started = rg.start();
    await new Promise((r) => setTimeout(r, 10));
    // 'beside' is up while 'slow' is still starting; 'after' has not begun.
    expect(journal).toEqual(['start beside']);
    gate.open!();
    await started;
    expect(journal).toEqual(['start beside', 'slow up', 'start after']);
  });

  it('a failure inside a stage rolls back every resource of the stage and those before it', async () => {
    const journal: string[] = [];
    const first = new FakeResource('first', journal);
    const a = new FakeResource('a', journal);
    const b = Object.assign(new FakeResource('b', journal), { startsAlongside: true });
    const c = new FakeResource('c', journal);
    a.failStart = true;
    const rg = new ResourceGroup('rg1', [first, a, b, c]);
    await expect(rg.start()).rejects.toMatchObject({ code: 'RG_START_FAILED' });
    expect(journal).toEqual(['start first', 'start a', 'start b', 'stop b (rollback)', 'stop a (rollback)', 'stop first (rollback)']);
    expect(rg.state).toBe('stopped');
  });

  it('a second start or stop is a no-op', async () => {
    const { rg, journal } = group();
    expect((await rg.stop()).noop).toBe(true);
    await rg.start();
    const n = journal.length;
    expect((await rg.start()).noop).toBe(true);
    expect(journal.length).toBe(n);
    await rg.stop();
    expect((await rg.stop()).noop).toBe(true);
    expect(journal.length).toBe(2 * n);
  });

  it('rolls back a partial start: the failing resource and those before it are stopped in reverse', async () => {
    const { rg, journal, r } = group();
    r['alias-ips']!.failStart = true;
    const err = await rg.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceGroupError);
    expect((err as ResourceGroupError).code).toBe('RG_START_FAILED');
    expect(rg.state).toBe('stopped');
    expect(journal).toEqual([
      'start mirror',
      'start scsi-state',
      'start alias-ips',
      'stop alias-ips (rollback)',
      'stop scsi-state (rollback)',
      'stop mirror (rollback)',
    ]);
    expect(Object.values(r).every((x) => !x.up)).toBe(true);
    // The fault cleared, a new start succeeds.
    r['alias-ips']!.failStart = false;
    await rg.start();
    expect(rg.state).toBe('serving');
  });

  it('a failed rollback leaves the group failed until a stop succeeds', async () => {
    const { rg, r } = group();
    r['targets']!.failStart = true;
    r['mirror']!.failStop = true;
    await expect(rg.start()).rejects.toThrow(/targets failed to start and the rollback failed/);
    expect(rg.state).toBe('failed');
    await expect(rg.start()).rejects.toMatchObject({ code: 'RG_TRANSITION_REFUSED' });
    await expect(rg.stop()).rejects.toMatchObject({ code: 'RG_STOP_FAILED' });
    expect(rg.state).toBe('failed');
    r['mirror']!.failStop = false;
    await rg.stop();
    expect(rg.state).toBe('stopped');
  });

  it('a stop tries every resource even when one fails', async () => {
    const { rg, journal, r } = group();
    await rg.start();
    journal.length = 0;
    r['announce']!.failStop = true;
    await expect(rg.stop()).rejects.toThrow(/announce failed to stop/);
    expect(journal.filter((j) => j.startsWith('stop'))).toHaveLength(6);
    expect(rg.state).toBe('failed');
  });

  it('a move out stops with reason move; a move in starts', async () => {
    const { rg, journal, states } = group();
    await rg.moveIn();
    expect(rg.state).toBe('serving');
    journal.length = 0;
    await rg.moveOut();
    expect(rg.state).toBe('stopped');
    expect(journal[0]).toBe('stop alua (move)');
    expect(states).toContain('serving -move-out-> moving-out');
    expect(states).toContain('moving-out -moved-out-> stopped');
  });

  it('a fence requested during a start runs after it and stops everything', async () => {
    const { rg, journal, r } = group();
    const started = rg.start();
    const fenced = rg.fence();
    await started;
    await fenced;
    expect(rg.state).toBe('stopped');
    expect(journal.at(-1)).toBe('stop mirror (fence)');
    expect(Object.values(r).every((x) => !x.up)).toBe(true);
  });
});
