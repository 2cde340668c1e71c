/**
 * The node's bounded event ring (paging by seq, subscribers) and its job
 * table (progress, result or error, finished jobs bounded).
 */
import { describe, expect, it } from 'vitest';
import { EventRing, JobTable } from '../../../src/resource-groups/cluster';
import { ControlError } from '../../../src/resource-groups/control';

describe('EventRing', () => {
  it('pages by seq, drops the oldest past its capacity, and feeds subscribers until they leave', () => {
    const ring = new EventRing('a', 3, () => new Date('2026-11-22T07:00:00Z'));
    const seen: number[] = [];
    const leave = ring.subscribe((e) => seen.push(e.seq));
    for (let i = 1; i <= 5; i++) ring.record('move', `event ${i}`, i % 2 ? 'rg1' : null);
    leave();
    ring.record('move', 'after leaving');
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(ring.after(0, 10).map((e) => e.seq)).toEqual([4, 5, 6]);
    expect(ring.after(4, 1)).toEqual([{ seq: 5, at: '2026-11-22T07:00:00.000Z', node: 'a', kind: 'move', message: 'event 5', subject: 'rg1' }]);
    expect(() => new EventRing('a', 0)).toThrow(RangeError);
  });

  it('keeps recording when a subscriber throws', () => {
    const ring = new EventRing('a');
    ring.subscribe(() => {
      throw new Error('bad subscriber');
    });
    const other: string[] = [];
    ring.subscribe((e) => other.push(e.kind));
    expect(ring.record('failover', 'x').seq).toBe(1);
    expect(other).toEqual(['failover']);
  });
});

describe('JobTable', () => {
  it('reports progress while running, then the result; a failure keeps its message', async () => {
    const jobs = new JobTable(1);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const done: string[] = [];
    const job = jobs.start('evacuate', 'a', async (ctx) => {
      ctx.progress(0.5);
      await gate;
      return { moved: ['rg1'] };
    }, (j) => done.push(j.state));
    await new Promise((r) => setTimeout(r, 10));
    expect(jobs.get(job.id)).toMatchObject({ state: 'running', progress: 0.5, kind: 'evacuate', subject: 'a', finishedAt: null });
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(jobs.get(job.id)).toMatchObject({ state: 'done', progress: 1, result: { moved: ['rg1'] }, error: null });
    const failed = jobs.start('verify', 'v1', async () => {
      throw new Error('not in sync');
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(jobs.get(failed.id)).toMatchObject({ state: 'failed', error: 'not in sync' });
    // Only the newest finished job is kept (keepFinished = 1).
    expect(() => jobs.get(job.id)).toThrow(ControlError);
    expect(done).toEqual(['done']);
  });
});
