/**
 * DeadlineQueue (src/mirror/volume/async-util.ts): callbacks due a fixed
 * delay after they were added, on one timer; what the write path uses for
 * degradeAfterMs instead of a timer per write.
 */
import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../../../../src/mirror/volume/async-util';

function until(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = (): void => (cond() ? resolve() : void setTimeout(poll, 2));
    poll();
  });
}

describe('DeadlineQueue', () => {
  it('fires each live entry once, in the order added, and never a cancelled one', async () => {
    const q = new DeadlineQueue(15);
    const fired: number[] = [];
    const entries = [0, 1, 2, 3, 4].map((i) => q.add(() => fired.push(i)));
    q.cancel(entries[0]!);
    q.cancel(entries[3]!);
    await until(() => q.size === 0);
    expect(fired).toEqual([1, 2, 4]);
    // Cancelling after it fired changes nothing.
    q.cancel(entries[1]!);
    expect(fired).toEqual([1, 2, 4]);
  });

  it('drops cancelled entries from the front at once, so completed writes hold nothing', () => {
    const q = new DeadlineQueue(60_000);
    const fired: number[] = [];
    const entries = Array.from({ length: 5000 }, (_, i) => q.add(() => fired.push(i)));
    for (const e of entries) q.cancel(e);
    expect(q.size).toBe(0);
    expect(fired).toEqual([]);
  });

  it('keeps a cancelled entry behind a live one until the live one leaves', async () => {
    const q = new DeadlineQueue(10);
    const fired: string[] = [];
    q.add(() => fired.push('a'));
    const b = q.add(() => fired.push('b'));
    q.cancel(b);
    expect(q.size).toBe(2);
    await until(() => q.size === 0);
    expect(fired).toEqual(['a']);
  });

  it('entries added after the queue emptied still fire', async () => {
    const q = new DeadlineQueue(5);
    const fired: number[] = [];
    q.add(() => fired.push(1));
    await until(() => fired.length === 1);
    q.add(() => fired.push(2));
    await until(() => fired.length === 2);
    expect(fired).toEqual([1, 2]);
    expect(q.size).toBe(0);
  });
});
