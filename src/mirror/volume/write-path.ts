/**
 * The primary's write path: MirroredBackingStore, the BackingStore the SCSI
 * layer writes through. DRBD protocol C: a write is acknowledged when it is
 * complete on both nodes, or, without the peer, when it is complete locally
 * and its regions are durably marked in the dirty bitmap.
 *
 * A write (writev, writeZeroes, discard), in order:
 *   1. waits while a volume handshake holds writes back (the gate), then
 *      takes the interval lock of its range: overlapping writes go one at a
 *      time, in arrival order, each complete on both nodes before the next
 *      starts, so the two replicas see them in the same order (the SCSI
 *      layer's own ordering is not relied on);
 *   2. activity log beginWrite (the extents are durably hot);
 *   3. the message to the peer and the local write in parallel (block
 *      payloads are the caller's Buffers, handed to the channel, not copied;
 *      writes above MAX_REPLICATED_BYTES go as several messages);
 *   4. the acknowledgement waits for both. If the peer fails the request, is
 *      unavailable, or does not answer within degradeAfterMs, the outcome
 *      there is unknown: the range is marked dirty and the generations move
 *      on (onPeerLost, once per disconnection), both durably, before the
 *      write completes, and the volume stops replicating (degraded). Writes
 *      issued while not replicating do the same without the network;
 *   5. activity log endWrite when both sides are done (the peer's answer may
 *      come after a degraded acknowledgement), and the data is durable
 *      (completion.ts).
 *
 * Flush: the local fdatasync and a replicated Flush in parallel (the peer
 * answers after its own fdatasync). FUA: written FUA on both nodes.
 *
 * Write-order fidelity: a write the initiator issues after another completed
 * is issued to both replicas after that one is on both, so dependent writes
 * keep their order on each replica; independent in-flight writes may
 * complete in different orders on the two, which SCSI allows.
 *
 * Buffers: the BackingStore contract lends write buffers until the promise
 * settles. After a degraded acknowledgement the channel may still hold them
 * for a resend; what such a resend carries no longer matters (the range is
 * dirty, and the next resync starts only after every such request settled).
 */
import { AllocationExtent, BackingStore, BlockIoError, WriteOptions } from '../../block';
import { IncomingMessage, ReplySink, checkAck } from '../link';
import { OutgoingMessage, Payload } from '../protocol';
import { VolumeMetadata } from '../meta';
import { WriteCompletion } from './completion';
import { Deadline, DeadlineQueue } from './async-util';
import { IntervalLock } from './interval-lock';

/** Largest payload of one replicated Write (the frame limit is 16 MiB). */
export const MAX_REPLICATED_BYTES = 4 * 1024 * 1024;

/** What the write path needs from its volume. */
export interface WriteHost {
  readonly volumeId: string;
  readonly local: BackingStore;
  readonly meta: VolumeMetadata;
  readonly lock: IntervalLock;
  readonly completion: WriteCompletion;
  readonly degradeAfterMs: number;
  /** Throws BlockIoError when writes through this node are not allowed now (secondary: EROFS, closed: EBADF). */
  checkWritable(): void;
  /** Throws BlockIoError when the volume is closed. */
  checkOpen(): void;
  /** A promise while a handshake holds writes back, else null. */
  gate(): Promise<void> | null;
  /** Counts an operation in flight; call the result when it is over. */
  begin(): () => void;
  /** True when a write issued now must go to the peer too. */
  replicating(): boolean;
  /** Sends a request about this volume (tracked until it settles). */
  request(message: OutgoingMessage, payload?: Payload): Promise<IncomingMessage>;
  /** request() without a promise: `sink` hears the end once, never before this returns. */
  requestWith(message: OutgoingMessage, payload: Payload | undefined, sink: ReplySink): void;
  /** The peer did not take a write: stop replicating (idempotent). */
  replicationFailed(reason: unknown): void;
  /** onPeerLost once per disconnection, durably. */
  ensurePeerLost(): Promise<void>;
  /** A foreground write took `ms` from issue to acknowledgement. */
  noteWriteLatency(ms: number): void;
  /** A failure with nobody waiting for it (bookkeeping after the acknowledgement). */
  internalError(err: unknown): void;
}

type WriteOp =
  | { readonly kind: 'write'; readonly offset: number; readonly length: number; readonly buffers: readonly Buffer[]; readonly fua: boolean }
  | { readonly kind: 'zeroes'; readonly offset: number; readonly length: number }
  | { readonly kind: 'discard'; readonly offset: number; readonly length: number };

const TIMEOUT = Symbol('timeout');
/** Not replicated (not replicating now): the range is marked dirty instead. */
const ALONE = Symbol('alone');

type Outcome = 'ok' | typeof TIMEOUT | { error: unknown };

/** Settles with 'ok', the error, or TIMEOUT once the queue's delay (degradeAfterMs) passed. */
function outcomeWithin(p: Promise<unknown>, deadlines: DeadlineQueue): Promise<Outcome> {
  return new Promise((resolve) => {
    const deadline = deadlines.add(() => resolve(TIMEOUT));
    p.then(
      () => {
        deadlines.cancel(deadline);
        resolve('ok');
      },
      (error: unknown) => {
        deadlines.cancel(deadline);
        resolve({ error });
      },
    );
  });
}

function asIoError(err: unknown, what: string): unknown {
  if (err instanceof BlockIoError) return err;
  return new BlockIoError('EIO', `${what}: ${(err as Error)?.message ?? String(err)}`);
}

export class MirroredBackingStore implements BackingStore {
  readonly description: string;
  /** The degradeAfterMs deadline of each write and flush sent to the peer, on one timer. */
  private readonly deadlines: DeadlineQueue;

  /** What each ReplicatedWrite uses of this store (one object, not one per write). */
  private readonly jobs: JobContext;

  constructor(private readonly host: WriteHost) {
    this.description = `mirror:${host.volumeId}(${host.local.description})`;
    this.deadlines = new DeadlineQueue(host.degradeAfterMs);
    this.jobs = {
      host,
      deadlines: this.deadlines,
      conclude: (op, started, local, outcome) => this.conclude(op, started, local, true, outcome),
    };
  }

  get sizeBytes(): number {
    return this.host.local.sizeBytes;
  }

  get thin(): boolean {
    return this.host.local.thin;
  }

  read(offset: number, length: number): Promise<Buffer> {
    this.host.checkOpen();
    return this.host.local.read(offset, length);
  }

  readv(offset: number, buffers: readonly Buffer[]): Promise<void> {
    this.host.checkOpen();
    return this.host.local.readv(offset, buffers);
  }

  allocationStatus(offset: number, maxLength: number): Promise<AllocationExtent> {
    this.host.checkOpen();
    return this.host.local.allocationStatus(offset, maxLength);
  }

  writev(offset: number, buffers: readonly Buffer[], options?: WriteOptions): Promise<void> {
    let length = 0;
    for (const b of buffers) length += b.length;
    return this.execute({ kind: 'write', offset, length, buffers, fua: options?.fua ?? false });
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.execute({ kind: 'zeroes', offset, length });
  }

  discard(offset: number, length: number): Promise<void> {
    return this.execute({ kind: 'discard', offset, length });
  }

  async flush(): Promise<void> {
    const host = this.host;
    host.checkOpen();
    const gate = host.gate();
    if (gate) await gate;
    host.checkOpen();
    const end = host.begin();
    try {
      const taken = host.completion.beforeFlush();
      const local = host.local.flush();
      const remote = host.replicating() ? host.request({ flush: { volumeId: host.volumeId } }).then(checkAck) : null;
      if (remote) {
        const outcome = await outcomeWithin(remote, this.deadlines);
        if (outcome !== 'ok') host.replicationFailed(outcome === TIMEOUT ? new Error('flush not acknowledged in time') : outcome.error);
      }
      try {
        await local;
      } catch (err) {
        host.completion.afterFlush(taken, false, err);
        throw asIoError(err, `${this.description}: flush`);
      }
      host.completion.afterFlush(taken, true);
    } finally {
      end();
    }
  }

  /** Resizing a mirrored volume is not supported by this engine yet. */
  async resize(_newSizeBytes: number): Promise<void> {
    throw new BlockIoError('EOPNOTSUPP', `${this.description}: resizing a mirrored volume is not supported`);
  }

  /** The volume owns the local store; MirroredVolume.close() closes it. This only checks it is open. */
  async close(): Promise<void> {
    return undefined;
  }

  private checkRange(op: WriteOp): void {
    const size = this.host.local.sizeBytes;
    if (!Number.isSafeInteger(op.offset) || !Number.isSafeInteger(op.length) || op.offset < 0 || op.length < 0 || op.offset + op.length > size) {
      throw new BlockIoError('ERANGE', `${this.description}: range ${op.offset}+${op.length} outside 0..${size}`);
    }
  }

  private execute(op: WriteOp): Promise<void> {
    const host = this.host;
    const started = performance.now();
    try {
      host.checkWritable();
      this.checkRange(op);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.tryFast(op, started) ?? this.executeWaiting(op, started);
  }

  /**
   * Steps 1 and 2 without waiting, the common case: no gate, the range free,
   * its extents hot. Null (nothing taken) when any of them would wait.
   */
  private tryFast(op: WriteOp, started: number): Promise<void> | null {
    const host = this.host;
    if (host.gate() !== null) return null;
    const unlock = host.lock.tryAcquire(op.offset, op.length);
    if (!unlock) return null;
    let hot: boolean;
    try {
      hot = host.meta.activityLog.tryBeginWrite(op.offset, op.length);
    } catch {
      hot = false;
    }
    if (!hot) {
      unlock();
      return null;
    }
    const end = host.begin();
    const release = (): void => {
      unlock();
      end();
    };
    try {
      return this.issue(op, started, release);
    } catch (err) {
      release();
      return Promise.reject(err);
    }
  }

  /** Steps 1 and 2, waiting for the gate, the range and the extents as needed. */
  private async executeWaiting(op: WriteOp, started: number): Promise<void> {
    const host = this.host;
    const gate = host.gate();
    if (gate) await gate;
    host.checkWritable();
    const end = host.begin();
    try {
      const unlock = host.lock.tryAcquire(op.offset, op.length) ?? (await host.lock.acquire(op.offset, op.length));
      try {
        const al = host.meta.activityLog;
        try {
          if (!al.tryBeginWrite(op.offset, op.length)) await al.beginWrite(op.offset, op.length);
        } catch (err) {
          throw asIoError(err, `${this.description}: activity log`);
        }
        await this.issue(op, started);
      } finally {
        unlock();
      }
    } finally {
      end();
    }
  }

  /**
   * Steps 3 to 5 of the header, holding the range with its extents hot;
   * `started` is when the caller issued the write; `settled` (if any) runs
   * just before the returned promise settles, either way. A replicated
   * write is followed by one ReplicatedWrite; everything but both sides
   * answering in time and well ends in conclude().
   */
  private issue(op: WriteOp, started: number, settled: (() => void) | null = null): Promise<void> {
    const host = this.host;
    const replicate = op.length > 0 && host.replicating();
    if (replicate) return new Promise<void>((resolve, reject) => this.startReplicated(new ReplicatedWrite(this.jobs, op, started, resolve, reject, settled)));
    const local = this.startLocal(op);
    // Not replicated: step 5 once the local write settled; the range is marked dirty (ALONE).
    const done = (): void => completeWrite(this.host, op);
    local.then(done, done);
    const p = this.conclude(op, started, local, false, op.length > 0 ? ALONE : 'ok');
    if (settled) p.then(settled, settled);
    return p;
  }

  /**
   * The peer's message first: its frame then leaves at the end of this tick
   * ahead of the local writes of the tick (both are flushed in the order
   * they were first queued), so the peer works while we copy. A message
   * that could not even be sent is the peer failing the write.
   */
  private startReplicated(job: ReplicatedWrite): void {
    const { host } = this;
    const op = job.op;
    let unsent: unknown = null;
    try {
      if (op.kind === 'write' && op.length <= MAX_REPLICATED_BYTES) {
        host.requestWith({ write: { volumeId: host.volumeId, offset: op.offset, length: op.length, fua: op.fua } }, op.buffers, job);
      } else {
        this.replicate(op).then(
          () => job.replied(undefined),
          (err: unknown) => job.failed(err),
        );
      }
    } catch (err) {
      unsent = err ?? new Error('the write could not be sent to the peer');
    }
    job.attachLocal(this.startLocal(op));
    if (unsent !== null) queueMicrotask(() => job.failed(unsent));
  }

  /**
   * The rest of step 4 when the peer did not take the write, or it was not
   * sent (ALONE), or the local write failed.
   */
  private async conclude(op: WriteOp, started: number, local: Promise<void>, replicate: boolean, outcome: Outcome | typeof ALONE): Promise<void> {
    const host = this.host;
    let markError: unknown = null;
    let marked = false;
    const markAlone = async (): Promise<void> => {
      marked = true;
      await Promise.all([host.meta.bitmap.mark(op.offset, op.length), host.ensurePeerLost()]).catch((err: unknown) => {
        markError = err;
      });
    };
    if (outcome === ALONE) {
      await markAlone();
    } else if (outcome !== 'ok') {
      host.replicationFailed(outcome === TIMEOUT ? new Error(`write not acknowledged by the peer within ${host.degradeAfterMs} ms`) : outcome.error);
      await markAlone();
    }
    try {
      await local;
    } catch (err) {
      // The peer may hold data we do not: the range differs, whatever it holds.
      // Mark it, and leave the in-sync state so the next handshake resyncs it.
      if (!marked) await host.meta.bitmap.mark(op.offset, op.length).catch(() => undefined);
      if (replicate) host.replicationFailed(err);
      throw asIoError(err, `${this.description}: local write`);
    }
    if (markError !== null) throw asIoError(markError, `${this.description}: dirty bitmap`);
    host.noteWriteLatency(performance.now() - started);
  }

  /** applyLocal, with a synchronous throw as a rejection: the peer may have the write already, so the failure must reach conclude(). */
  private startLocal(op: WriteOp): Promise<void> {
    try {
      return this.applyLocal(op);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private applyLocal(op: WriteOp): Promise<void> {
    const local = this.host.local;
    switch (op.kind) {
      case 'write':
        return local.writev(op.offset, op.buffers, { fua: op.fua });
      case 'zeroes':
        return local.writeZeroes(op.offset, op.length);
      case 'discard':
        return local.discard(op.offset, op.length);
    }
  }

  /** Sends the operation to the peer (the paths other than a single Write); resolves once acknowledged. */
  private replicate(op: WriteOp): Promise<void> {
    const { host } = this;
    const volumeId = host.volumeId;
    switch (op.kind) {
      case 'zeroes':
        return host.request({ writeZeroes: { volumeId, offset: op.offset, length: op.length, unmap: false } }).then(acked);
      case 'discard':
        return host.request({ unmap: { volumeId, offset: op.offset, length: op.length } }).then(acked);
      case 'write': {
        if (op.length <= MAX_REPLICATED_BYTES) {
          return host.request({ write: { volumeId, offset: op.offset, length: op.length, fua: op.fua } }, op.buffers).then(acked);
        }
        const pieces = splitPayload(op.buffers, MAX_REPLICATED_BYTES);
        let at = op.offset;
        const sends = pieces.map((piece) => {
          const offset = at;
          at += piece.length;
          return host.request({ write: { volumeId, offset, length: piece.length, fua: op.fua } }, piece.buffers).then(acked);
        });
        return Promise.all(sends).then(() => undefined);
      }
    }
  }
}

/** Step 5: the write is over on both sides, whichever way. */
function completeWrite(host: WriteHost, op: WriteOp): void {
  try {
    host.completion.complete(op.offset, op.length, op.kind === 'write' && op.fua);
  } catch (err) {
    host.internalError(err);
  }
}

/** What a ReplicatedWrite uses of its store. */
interface JobContext {
  readonly host: WriteHost;
  /** The degradeAfterMs deadlines of the writes sent to the peer. */
  readonly deadlines: DeadlineQueue;
  /** The store's conclude() for a replicated write. */
  conclude(op: WriteOp, started: number, local: Promise<void>, outcome: Outcome): Promise<void>;
}

const PENDING = 0;
const DONE = 1;
const FAILED = 2;
type LocalState = typeof PENDING | typeof DONE | typeof FAILED;

/**
 * Steps 3 to 5 of one replicated write, from both sides having been
 * started to the acknowledgement: callbacks on one object rather than a
 * promise per step (a write used to make about ten). The acknowledgement
 * needs the peer's outcome (its answer, its failure, or degradeAfterMs
 * passing) and the local write's; step 5 needs both to have settled,
 * which for the peer may be after a timeout.
 */
class ReplicatedWrite implements ReplySink {
  /** Sides not settled yet (step 5 runs when none is). */
  private unsettled = 2;
  private localState: LocalState = PENDING;
  private local: Promise<void> | null = null;
  /** The peer's outcome once known (its answer, its failure, or TIMEOUT). */
  private outcome: Outcome | null = null;
  private finished = false;
  private readonly timer: Deadline;

  constructor(
    private readonly ctx: JobContext,
    readonly op: WriteOp,
    private readonly started: number,
    private readonly resolve: () => void,
    private readonly reject: (err: unknown) => void,
    private readonly settled: (() => void) | null,
  ) {
    this.timer = ctx.deadlines.add(this.onTimeout);
  }

  /** The local write, started after the message to the peer. */
  attachLocal(local: Promise<void>): void {
    this.local = local;
    local.then(this.onLocalDone, this.onLocalFailed);
  }

  /** The peer's reply to a single Write (checked here), or undefined when an acknowledged operation resolved. */
  replied(reply: IncomingMessage | undefined): void {
    let outcome: Outcome = 'ok';
    if (reply !== undefined) {
      try {
        checkAck(reply);
      } catch (error) {
        outcome = { error };
      }
    }
    this.remoteSettled(outcome);
  }

  failed(error: unknown): void {
    this.remoteSettled({ error });
  }

  private readonly onTimeout = (): void => {
    if (this.outcome !== null) return;
    this.outcome = TIMEOUT;
    this.advance();
  };

  private readonly onLocalDone = (): void => {
    this.localState = DONE;
    this.sideSettled();
    this.advance();
  };

  private readonly onLocalFailed = (): void => {
    this.localState = FAILED;
    this.sideSettled();
    this.advance();
  };

  private remoteSettled(outcome: Outcome): void {
    this.ctx.deadlines.cancel(this.timer);
    this.sideSettled();
    if (this.outcome === null) {
      this.outcome = outcome;
      this.advance();
    }
  }

  private sideSettled(): void {
    if (--this.unsettled === 0) completeWrite(this.ctx.host, this.op);
  }

  /** Acknowledges once the peer's outcome and the local write allow. */
  private advance(): void {
    if (this.finished || this.outcome === null) return;
    if (this.outcome === 'ok' && this.localState === PENDING) return;
    this.finished = true;
    if (this.outcome === 'ok' && this.localState === DONE) {
      this.ctx.host.noteWriteLatency(performance.now() - this.started);
      this.settled?.();
      this.resolve();
      return;
    }
    // The peer failed or did not answer in time, or the local write failed.
    this.ctx.conclude(this.op, this.started, this.local!, this.outcome).then(
      () => {
        this.settled?.();
        this.resolve();
      },
      (err: unknown) => {
        this.settled?.();
        this.reject(err);
      },
    );
  }
}

/** Resolves when the reply is Ack{ok: true}, rejects with the peer's error otherwise. */
function acked(reply: IncomingMessage): void {
  checkAck(reply);
}

/** Splits gathered buffers into pieces of at most `max` bytes, slicing (not copying) where needed. */
export function splitPayload(buffers: readonly Buffer[], max: number): { length: number; buffers: Buffer[] }[] {
  const out: { length: number; buffers: Buffer[] }[] = [];
  let cur: { length: number; buffers: Buffer[] } = { length: 0, buffers: [] };
  for (const b of buffers) {
    let at = 0;
    while (at < b.length) {
      const take = Math.min(b.length - at, max - cur.length);
      cur.buffers.push(at === 0 && take === b.length ? b : b.subarray(at, at + take));
      cur.length += take;
      at += take;
      if (cur.length === max) {
        out.push(cur);
        cur = { length: 0, buffers: [] };
      }
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
