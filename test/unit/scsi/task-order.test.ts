import { describe, expect, test } from 'vitest';
import { TaskAttribute, TaskOrder } from '../../../src/target/scsi';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('task attribute ordering', () => {
  test('task_order_simple_tasks_run_concurrently', () => {
    const t = new TaskOrder();
    expect(t.tryEnter(TaskAttribute.SIMPLE)).not.toBeNull();
    expect(t.tryEnter(TaskAttribute.SIMPLE)).not.toBeNull();
    expect(t.inFlight).toBe(2);
  });

  test('task_order_ordered_waits_for_earlier_and_blocks_later', async () => {
    const t = new TaskOrder();
    const events: string[] = [];
    const s1 = t.tryEnter(TaskAttribute.SIMPLE)!;
    const ordered = t.enter(TaskAttribute.ORDERED).then((leave) => {
      events.push('ordered');
      return leave;
    });
    const later = t.enter(TaskAttribute.SIMPLE).then((leave) => {
      events.push('later');
      return leave;
    });
    await tick();
    expect(events).toEqual([]);
    s1();
    const leaveOrdered = await ordered;
    await tick();
    expect(events).toEqual(['ordered']);
    leaveOrdered();
    (await later)();
    expect(events).toEqual(['ordered', 'later']);
    expect(t.inFlight).toBe(0);
  });

  test('task_order_head_of_queue_starts_immediately', () => {
    const t = new TaskOrder();
    t.tryEnter(TaskAttribute.SIMPLE);
    void t.enter(TaskAttribute.ORDERED);
    expect(t.tryEnter(TaskAttribute.SIMPLE)).toBeNull();
    expect(t.tryEnter(TaskAttribute.HEAD_OF_QUEUE)).not.toBeNull();
  });

  test('task_order_leave_is_idempotent', async () => {
    const t = new TaskOrder();
    const a = t.tryEnter(TaskAttribute.SIMPLE)!;
    const b = t.tryEnter(TaskAttribute.SIMPLE)!;
    const o = t.enter(TaskAttribute.ORDERED);
    a();
    a();
    expect(t.inFlight).toBe(1);
    b();
    (await o)();
    expect(t.inFlight).toBe(0);
  });
});
