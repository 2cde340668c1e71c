import { describe, expect, test } from 'vitest';
import { IntervalLock, LockMode } from '../../../src/target/scsi';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('LBA range lock', () => {
  test('interval_lock_uncontended_is_synchronous', () => {
    const l = new IntervalLock();
    const r = l.tryAcquire(0, 8, LockMode.EXCLUSIVE);
    expect(r).not.toBeNull();
    expect(l.heldCount).toBe(1);
    r!();
    r!(); // idempotent
    expect(l.heldCount).toBe(0);
  });

  test('interval_lock_shared_ranges_overlap', () => {
    const l = new IntervalLock();
    expect(l.tryAcquire(0, 8, LockMode.SHARED)).not.toBeNull();
    expect(l.tryAcquire(4, 12, LockMode.SHARED)).not.toBeNull();
    expect(l.tryAcquire(4, 5, LockMode.EXCLUSIVE)).toBeNull();
  });

  test('interval_lock_disjoint_exclusive_ranges_run_together', () => {
    const l = new IntervalLock();
    expect(l.tryAcquire(0, 8, LockMode.EXCLUSIVE)).not.toBeNull();
    expect(l.tryAcquire(8, 16, LockMode.EXCLUSIVE)).not.toBeNull();
    expect(l.tryAcquire(7, 9, LockMode.SHARED)).toBeNull();
  });

  test('interval_lock_empty_range_needs_no_lock', () => {
    const l = new IntervalLock();
    l.tryAcquire(0, 100, LockMode.EXCLUSIVE);
    expect(l.tryAcquire(5, 5, LockMode.EXCLUSIVE)).not.toBeNull();
  });

  test('interval_lock_exclusive_waits_for_shared_holder', async () => {
    const l = new IntervalLock();
    const reader = l.tryAcquire(0, 8, LockMode.SHARED)!;
    let granted = false;
    const writer = l.acquire(2, 4, LockMode.EXCLUSIVE).then((rel) => {
      granted = true;
      return rel;
    });
    await tick();
    expect(granted).toBe(false);
    reader();
    (await writer)();
    expect(granted).toBe(true);
    expect(l.heldCount).toBe(0);
  });

  test('interval_lock_later_reader_does_not_overtake_waiting_writer', async () => {
    const l = new IntervalLock();
    const order: string[] = [];
    const first = l.tryAcquire(0, 8, LockMode.SHARED)!;
    const w = l.acquire(0, 8, LockMode.EXCLUSIVE).then((rel) => {
      order.push('writer');
      return rel;
    });
    // A new reader overlapping the waiting writer must queue behind it.
    expect(l.tryAcquire(0, 1, LockMode.SHARED)).toBeNull();
    const r = l.acquire(0, 1, LockMode.SHARED).then((rel) => {
      order.push('reader');
      return rel;
    });
    first();
    const wr = await w;
    await tick();
    expect(order).toEqual(['writer']);
    wr();
    (await r)();
    expect(order).toEqual(['writer', 'reader']);
  });

  test('interval_lock_overlapping_writes_granted_in_arrival_order', async () => {
    const l = new IntervalLock();
    const order: number[] = [];
    const hold = l.tryAcquire(0, 10, LockMode.EXCLUSIVE)!;
    const waits = [1, 2, 3].map((n) =>
      l.acquire(n, n + 5, LockMode.EXCLUSIVE).then((rel) => {
        order.push(n);
        rel();
      }),
    );
    expect(l.waitingCount).toBe(3);
    hold();
    await Promise.all(waits);
    expect(order).toEqual([1, 2, 3]);
  });

  test('interval_lock_waiter_not_blocked_by_unrelated_waiter', async () => {
    const l = new IntervalLock();
    const a = l.tryAcquire(0, 4, LockMode.EXCLUSIVE)!;
    const waitA = l.acquire(0, 4, LockMode.EXCLUSIVE);
    // Disjoint from both the holder and the waiter: granted at once.
    expect(l.tryAcquire(100, 104, LockMode.EXCLUSIVE)).not.toBeNull();
    a();
    (await waitA)();
  });
});
