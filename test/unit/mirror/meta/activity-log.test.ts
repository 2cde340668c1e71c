/** ActivityLog hot/cold transitions, eviction, and the group committer under it. */
import { describe, expect, it } from 'vitest';
import { ActivityLog } from '../../../../src/mirror/meta/activity-log';
import { GroupCommit } from '../../../../src/mirror/meta/group-commit';

const MiB = 1024 * 1024;
const E = 4 * MiB;

/** An activity log over a fake committer that records each written hot set. */
function log(capacity: number, extents = 1000): { al: ActivityLog; written: number[][]; commits: () => number } {
  const written: number[][] = [];
  let n = 0;
  // eslint-disable-next-line prefer-const
  let al: ActivityLog;
  const committer = new GroupCommit(async () => {
    n++;
    const change = al.takeChange();
    if (change) written.push([...change].sort((a, b) => a - b));
  });
  al = new ActivityLog(E, capacity, extents * E, {
    request: () => committer.request(),
    current: () => committer.current(),
    check: () => undefined,
  });
  return { al, written, commits: () => n };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ActivityLog', () => {
  it('a write to a cold extent costs one durable log write, to a hot one nothing', async () => {
    const { al, written, commits } = log(8);
    await al.beginWrite(E + 10, 100);
    expect(written).toEqual([[1]]);
    al.endWrite(E + 10, 100);
    await al.beginWrite(E, E); // same extent, still hot
    await al.beginWrite(E + 5, 1);
    expect(commits()).toBe(1);
    al.endWrite(E, E);
    al.endWrite(E + 5, 1);
    expect(al.hotExtents()).toEqual([1]);
    expect(al.stats).toEqual({ activations: 1, evictions: 0 });
  });

  it('tryBeginWrite counts a write in at once on hot extents, and declines cold or activating ones without changing anything', async () => {
    const { al, commits } = log(8);
    expect(al.tryBeginWrite(2 * E, 4096)).toBe(false);
    expect(al.hotExtents()).toEqual([]);
    const activating = al.beginWrite(2 * E, 4096);
    expect(al.tryBeginWrite(2 * E + 8192, 4096)).toBe(false); // hot but not yet durable
    await activating;
    expect(al.tryBeginWrite(2 * E + 8192, 4096)).toBe(true);
    expect(al.tryBeginWrite(2 * E, 2 * E)).toBe(false); // spans cold extent 3
    expect(al.inflightWrites()).toBe(2);
    al.endWrite(2 * E, 4096);
    al.endWrite(2 * E + 8192, 4096);
    expect(al.inflightWrites()).toBe(0);
    expect(commits()).toBe(1);
    expect(() => al.tryBeginWrite(1000 * E, 1)).toThrow(RangeError);
  });

  it('concurrent activations share one log write', async () => {
    const { al, written, commits } = log(16);
    await Promise.all([0, 3, 5, 7].map((e) => al.beginWrite(e * E, 4096)));
    expect(commits()).toBe(1);
    expect(written).toEqual([[0, 3, 5, 7]]);
  });

  it('a write spanning extents activates all of them at once', async () => {
    const { al, written } = log(8);
    await al.beginWrite(2 * E - 1, E + 2); // extents 1, 2, 3
    expect(written).toEqual([[1, 2, 3]]);
    expect(al.inflightWrites()).toBe(3);
    al.endWrite(2 * E - 1, E + 2);
    expect(al.inflightWrites()).toBe(0);
  });

  it('a second write to an extent whose activation is not yet durable waits for it', async () => {
    const { al } = log(8);
    const first = al.beginWrite(0, 1);
    let secondDone = false;
    const second = al.beginWrite(10, 1).then(() => (secondDone = true));
    expect(secondDone).toBe(false);
    await first;
    await second;
    expect(secondDone).toBe(true);
  });

  it('evicts the least recently used idle extent', async () => {
    const { al, written } = log(7);
    for (let e = 0; e < 7; e++) {
      await al.beginWrite(e * E, 1);
      al.endWrite(e * E, 1);
    }
    await al.beginWrite(0, 1); // touch 0: now 1 is the least recently used
    al.endWrite(0, 1);
    await al.beginWrite(20 * E, 1);
    expect(written.at(-1)).toEqual([0, 2, 3, 4, 5, 6, 20]);
    expect(al.stats.evictions).toBe(1);
    al.endWrite(20 * E, 1);
  });

  it('with every extent busy, eviction waits for the least recently used one to finish', async () => {
    const { al, written } = log(7);
    for (let e = 0; e < 7; e++) await al.beginWrite(e * E, 1);
    let done = false;
    const waiting = al.beginWrite(50 * E, 1).then(() => (done = true));
    await tick();
    expect(done).toBe(false);
    // A new write to the extent being evicted waits too, rather than starving the eviction.
    let lateDone = false;
    const late = al.beginWrite(0, 1).then(() => (lateDone = true));
    al.endWrite(3 * E, 1); // not the LRU one
    await tick();
    expect(done).toBe(false);
    al.endWrite(0, 1); // extent 0 drains and leaves
    await waiting;
    expect(written.at(-1)).toContain(50);
    // Extent 0 comes back (in the same log write), evicting the idle extent 3.
    await late;
    expect(written.at(-1)).toEqual([0, 1, 2, 4, 5, 6, 50]);
    expect(lateDone).toBe(true);
    expect(al.hotExtents()).toEqual([0, 1, 2, 4, 5, 6, 50]);
  });

  it('never holds more than its capacity', async () => {
    const { al, written } = log(7, 100);
    let seed = 1;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const writes = Array.from({ length: 300 }, async (_, i) => {
      const e = Math.floor(rnd() * 40);
      await new Promise((r) => setTimeout(r, rnd() * 3));
      await al.beginWrite(e * E, 512);
      expect(al.hotExtents().length).toBeLessThanOrEqual(7);
      await new Promise((r) => setTimeout(r, rnd() * 3));
      al.endWrite(e * E, 512);
      return i;
    });
    await Promise.all(writes);
    for (const set of written) expect(set.length).toBeLessThanOrEqual(7);
    expect(al.inflightWrites()).toBe(0);
  });

  it('refuses a write wider than the log and an unmatched endWrite', async () => {
    const { al } = log(7);
    await expect(al.beginWrite(0, 8 * E)).rejects.toThrow(RangeError);
    await expect(al.beginWrite(999 * E, 2 * E)).rejects.toThrow(RangeError);
    expect(() => al.endWrite(0, 1)).toThrow(/without a matching beginWrite/);
  });

  it('starts with the recovered extents hot and evictable', async () => {
    const committer = new GroupCommit(async () => undefined);
    const hooks = { request: () => committer.request(), current: () => committer.current(), check: () => undefined };
    const al = new ActivityLog(E, 7, 100 * E, hooks, [9, 4]);
    expect(al.hotExtents()).toEqual([4, 9]);
    expect(al.extentRange(9)).toEqual({ offset: 9 * E, length: E });
    al.clearIdle();
    expect(al.hotExtents()).toEqual([]);
  });
});

describe('GroupCommit', () => {
  it('coalesces requests made while a commit runs into the next one', async () => {
    let release!: () => void;
    let runs = 0;
    const committer = new GroupCommit(async () => {
      runs++;
      if (runs === 1) await new Promise<void>((r) => (release = r));
    });
    const first = committer.request();
    await tick();
    const waiting = Array.from({ length: 50 }, () => committer.request());
    release();
    await Promise.all([first, ...waiting]);
    expect(runs).toBe(2);
  });

  it('a failure is sticky', async () => {
    const committer = new GroupCommit(
      async () => {
        throw new Error('EIO');
      },
      (err) => new Error(`failed: ${String(err)}`),
    );
    await expect(committer.request()).rejects.toThrow('failed: Error: EIO');
    await expect(committer.request()).rejects.toThrow('failed: Error: EIO');
    expect(committer.failed).toBeInstanceOf(Error);
  });

  it('exclusive sections run with no commit running', async () => {
    let running = false;
    const committer = new GroupCommit(async () => {
      running = true;
      await tick();
      running = false;
    });
    const c = committer.request();
    await tick();
    const seen = await committer.exclusive(async () => {
      const during = committer.request();
      await tick();
      const wasRunning = running;
      void during;
      return wasRunning;
    });
    expect(seen).toBe(false);
    await c;
    await committer.idle();
  });
});
