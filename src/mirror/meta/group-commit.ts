/**
 * Group commit: many callers, one write + fdatasync.
 *
 * `request()` promises a commit that starts after the call. While a commit
 * runs, every new request joins the single next one, so N concurrent
 * requests cost at most two commits. The first commit starts on the next
 * microtask, so requests made in the same synchronous stretch share it.
 *
 * The commit function reads what to write when it starts: state changed
 * before that point is in it. A failed commit fails every later request too
 * (sticky): after a failed fdatasync nothing written since can be trusted.
 * `exclusive(fn)` runs fn with no commit running or starting meanwhile.
 */

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting (a commit requested only for its side effects).
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export class GroupCommit {
  /** Settles (never rejects) when the running commit ends. */
  private running: Promise<void> | null = null;
  /** The running commit's outcome, as its requesters see it. */
  private runningBatch: Deferred | null = null;
  private next: Deferred | null = null;
  private scheduled = false;
  private exclusiveQueue: Promise<void> = Promise.resolve();
  private exclusiveHeld = false;
  private failure: unknown = null;

  /**
   * @param commitOnce writes whatever is pending and makes it durable.
   * @param toFailure turns a commit's error into the sticky error later callers get.
   */
  constructor(
    private readonly commitOnce: () => Promise<void>,
    private readonly toFailure: (err: unknown) => unknown = (err) => err,
  ) {}

  /** The sticky failure, or null. */
  get failed(): unknown {
    return this.failure;
  }

  /** Resolves after a commit that started after this call. */
  request(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    this.next ??= deferred();
    this.schedule();
    return this.next.promise;
  }

  /** The commit in progress, if any (it includes everything changed before it started). */
  current(): Promise<void> | null {
    return this.runningBatch?.promise ?? null;
  }

  /** Waits until no commit is running or requested. */
  async idle(): Promise<void> {
    while (this.running || this.next) {
      await (this.running ?? this.next?.promise.catch(() => undefined));
    }
  }

  /** Runs `fn` while no commit runs; requests made meanwhile wait for it. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusiveQueue.then(async () => {
      this.exclusiveHeld = true;
      try {
        while (this.running) await this.running;
        if (this.failure !== null) throw this.failure;
        return await fn();
      } finally {
        this.exclusiveHeld = false;
        this.schedule();
      }
    });
    this.exclusiveQueue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Marks the committer failed (for failures outside commitOnce, e.g. in exclusive sections). */
  fail(err: unknown): unknown {
    this.failure ??= this.toFailure(err);
    return this.failure;
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.exclusiveHeld || !this.next) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.start();
    });
  }

  private start(): void {
    if (this.running || this.exclusiveHeld || !this.next) return;
    const batch = this.next;
    this.next = null;
    if (this.failure !== null) {
      batch.reject(this.failure);
      return;
    }
    const run = this.commitOnce().then(
      () => batch.resolve(),
      (err: unknown) => {
        batch.reject(this.fail(err));
      },
    );
    this.running = run;
    this.runningBatch = batch;
    void run.then(() => {
      this.running = null;
      this.runningBatch = null;
      if (this.next && this.failure !== null) {
        const waiting = this.next;
        this.next = null;
        waiting.reject(this.failure);
        return;
      }
      this.schedule();
    });
  }
}
