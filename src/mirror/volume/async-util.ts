/** Small async helpers of the volume: a serial task queue, deadlines, idle tracking. */
import { MirrorError } from '../errors';

/** Runs tasks one at a time, in submission order. */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private count = 0;

  /** A task is running or waiting. */
  get busy(): boolean {
    return this.count > 0;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.count++;
    const result = this.tail.then(task);
    this.tail = result.then(
      () => void this.count--,
      () => void this.count--,
    );
    return result;
  }
}

/** `p`, or a MirrorError ETIMEDOUT once `deadline` (Date.now() ms) passes. `p` keeps running. */
export function beforeDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const ms = deadline - Date.now();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new MirrorError('ETIMEDOUT', `${what}: no answer in time`)), Math.max(0, ms));
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Counts operations in flight and requests outstanding; `whenIdle` resolves
 * when both are zero (true) or the deadline passed (false).
 */
export class InFlight {
  private ops = 0;
  /** Requests tracked and not settled (a count: track() runs once per replicated write). */
  private requests = 0;
  private waiters: (() => boolean)[] = [];

  get idle(): boolean {
    return this.ops === 0 && this.requests === 0;
  }

  get operations(): number {
    return this.ops;
  }

  /** Counts one operation; call the result once when it is over. */
  begin(): () => void {
    this.ops++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.ops--;
      this.check();
    };
  }

  /** Tracks `p` until it settles; returns it. */
  track<T>(p: Promise<T>): Promise<T> {
    this.requestStarted();
    const forget = (): void => this.requestEnded();
    p.then(forget, forget);
    return p;
  }

  /** Counts a request without a promise; call requestEnded() once when it settles. */
  requestStarted(): void {
    this.requests++;
  }

  requestEnded(): void {
    this.requests--;
    this.check();
  }

  /** Resolves true once nothing (with `opsOnly`: no operation) is in flight, false at the deadline. */
  whenIdle(deadline: number, opsOnly = false): Promise<boolean> {
    const done = (): boolean => (opsOnly ? this.ops === 0 : this.idle);
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = (): boolean => {
        if (!done()) return false;
        clearTimeout(timer);
        resolve(true);
        return true;
      };
      const timer = setTimeout(
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        },
        Math.max(0, Math.min(deadline - Date.now(), 2 ** 31 - 1)),
      );
      this.waiters.push(waiter);
    });
  }

  /** Wakes the waiters whose condition holds now. */
  private check(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => !w());
  }
}

/** A promise with its resolve function exposed. */
export interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

export function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The errno-style code of an error (RemoteError, MirrorError, BlockIoError ...), or undefined. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An entry of a DeadlineQueue: `fire` runs at `at` unless cancelled (then null). */
export interface Deadline {
  readonly at: number;
  fire: (() => void) | null;
}

/**
 * Callbacks due a fixed delay after they were added, on one timer. With one
 * delay for all, entries fall due in the order they were added, so a FIFO
 * and a timer for its head do; this replaces a setTimeout and a
 * clearTimeout per replicated write (each write waits at most
 * degradeAfterMs for the peer). Cancelled entries leave the front at once.
 */
export class DeadlineQueue {
  private items: (Deadline | undefined)[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly delayMs: number) {}

  /** Entries not yet due nor cancelled, or cancelled behind a live one. */
  get size(): number {
    return this.items.length - this.head;
  }

  add(fire: () => void): Deadline {
    const d: Deadline = { at: performance.now() + this.delayMs, fire };
    this.items.push(d);
    if (!this.timer) this.arm(d.at);
    return d;
  }

  cancel(d: Deadline): void {
    d.fire = null;
    this.dropCancelled();
  }

  private arm(at: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(0, Math.ceil(at - performance.now())));
  }

  private expire(): void {
    this.timer = null;
    const now = performance.now();
    for (;;) {
      const d = this.items[this.head];
      if (!d || d.at > now) break;
      this.shift();
      const fire = d.fire;
      d.fire = null;
      fire?.();
    }
    this.dropCancelled();
  }

  private shift(): void {
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Drops cancelled entries from the front; the timer follows the new head (none when empty). */
  private dropCancelled(): void {
    let d = this.items[this.head];
    while (d && d.fire === null) {
      this.shift();
      d = this.items[this.head];
    }
    if (!d) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    } else if (!this.timer) {
      this.arm(d.at);
    }
  }
}
