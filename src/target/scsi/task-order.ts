/**
 * Task attribute ordering (SAM-5) for one task set. The control mode page
 * reports TST=001b, so there is one task set per I_T nexus per logical unit.
 *
 * - SIMPLE tasks run concurrently, but not before an earlier ORDERED task
 *   has completed.
 * - An ORDERED task starts once every earlier task has completed; later
 *   tasks wait for it.
 * - HEAD OF QUEUE tasks start immediately.
 * (ACA tasks are rejected before they get here: NACA is not supported.)
 */
import { TaskAttribute } from './types';

export type Leave = () => void;

interface Pending {
  readonly ordered: boolean;
  readonly start: (leave: Leave) => void;
}

export class TaskOrder {
  private running = 0;
  private orderedRunning = false;
  private readonly queue: Pending[] = [];

  /** Tasks started and not yet left (for tests). */
  get inFlight(): number {
    return this.running;
  }

  /** Synchronously enter when the attribute allows it now, else null. */
  tryEnter(attribute: TaskAttribute): Leave | null {
    if (attribute === TaskAttribute.HEAD_OF_QUEUE) return this.started(false);
    const ordered = attribute === TaskAttribute.ORDERED;
    if (this.queue.length === 0 && this.canStart(ordered)) return this.started(ordered);
    return null;
  }

  enter(attribute: TaskAttribute): Promise<Leave> {
    const now = this.tryEnter(attribute);
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => this.queue.push({ ordered: attribute === TaskAttribute.ORDERED, start: resolve }));
  }

  private canStart(ordered: boolean): boolean {
    return ordered ? this.running === 0 : !this.orderedRunning;
  }

  private started(ordered: boolean): Leave {
    this.running++;
    if (ordered) this.orderedRunning = true;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.running--;
      if (ordered) this.orderedRunning = false;
      this.drain();
    };
  }

  private drain(): void {
    while (this.queue.length > 0 && this.canStart(this.queue[0]!.ordered)) {
      const next = this.queue.shift()!;
      next.start(this.started(next.ordered));
    }
  }
}
