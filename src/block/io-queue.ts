/**
 * Batched submission of file reads and writes to the native addon.
 *
 * Every transfer issued during one tick of the event loop is queued here and
 * handed to the addon's submitBatch at the end of the tick (process.nextTick)
 * as one or a few I/O-engine jobs, instead of one job per transfer. A job
 * costs two thread wake-ups (worker, then event loop), which for 4 KiB
 * transfers costs more than the transfers themselves; with 32 commands in
 * flight this turns ~32 hops per tick into one.
 *
 * Small transfers share a job; a job is closed once it holds JOB_BYTES, so
 * large transfers (1 MiB writes) still spread over the pool's threads.
 * Transfers of one job run in submission order on one thread. Ordering
 * between overlapping transfers is not this module's concern: the SCSI
 * layer's range lock never lets two conflicting ones be in flight at once.
 *
 * Small transfers that cannot block run at once, on the event loop, inside
 * submitBatch (native/src/batch_ops.cc): on a memory file system any of
 * them (IoInline.MEMORY), on files that support it reads that
 * preadv2(RWF_NOWAIT) serves from the page cache (IoInline.TRY_NOWAIT). A
 * 4 KiB copy takes a microsecond or two; the trip through an engine thread
 * and back costs two wake-ups, each a wait for a CPU on a busy machine.
 *
 * Results and errors are exactly those of blockIo.preadv / pwritev: bytes
 * transferred, or a BlockIoError named after the system call.
 */
import { blockIo } from './native';

/** What a file allows to run inline (flag bits shared with batch_ops.cc). */
export const IoInline = {
  NONE: 0,
  /** tmpfs / ramfs: every transfer is a memory copy. */
  MEMORY: 4,
  /** Reads may be tried with RWF_NOWAIT first. */
  TRY_NOWAIT: 8,
} as const;
export type IoInline = (typeof IoInline)[keyof typeof IoInline];

/** The inline hints for reads and writes of a file, from what openFile found. */
export function inlineHints(opened: { readonly memoryBacked: boolean; readonly nowaitReads: boolean }, direct: boolean): { read: IoInline; write: IoInline } {
  if (direct) return { read: IoInline.NONE, write: IoInline.NONE };
  if (opened.memoryBacked) return { read: IoInline.MEMORY, write: IoInline.MEMORY };
  return { read: opened.nowaitReads ? IoInline.TRY_NOWAIT : IoInline.NONE, write: IoInline.NONE };
}

/** Bytes after which a job takes no more transfers. */
const JOB_BYTES = 256 * 1024;
/** Transfers after which a job takes no more. */
const JOB_TRANSFERS = 64;

const WRITE = 1;
const FUA = 2;

/**
 * Who else hears of a transfer's outcome (FileBackingStore: it counts its
 * transfers in flight and names itself in errors). Told before the
 * transfer's promise settles, so the store needs no promise of its own on
 * top of the queue's.
 */
export interface TransferOwner {
  /** The transfer is over, either way. */
  transferSettled(): void;
  /** What a failed transfer rejects with, given the addon's error. */
  transferError(err: unknown): unknown;
  /** What a read that stopped short of its length (end of file) rejects with. */
  shortRead(offset: number, done: number, length: number): unknown;
}

interface Transfer {
  readonly fd: number;
  readonly buffers: readonly Buffer[];
  readonly offset: number;
  readonly flags: number;
  readonly bytes: number;
  /** Null: the promise resolves with the bytes transferred and rejects with the addon's error. */
  readonly owner: TransferOwner | null;
  /** With an owner: what the promise resolves with. */
  readonly value: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

let queue: Transfer[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  const all = queue;
  queue = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < all.length; i++) {
    bytes += all[i]!.bytes;
    if (bytes >= JOB_BYTES || i - start + 1 >= JOB_TRANSFERS || i === all.length - 1) {
      submitJob(all, start, i + 1);
      start = i + 1;
      bytes = 0;
    }
  }
}

/**
 * Argument and result arrays of submitBatch, one set per batch length, reused
 * call after call: submitBatch copies what it needs before it returns, and
 * the inline results are read before the next call. At most JOB_TRANSFERS
 * sets of a few hundred bytes.
 */
interface BatchArrays {
  readonly fds: Int32Array;
  readonly offsets: Float64Array;
  readonly flags: Uint8Array;
  readonly counts: Uint32Array;
  readonly results: Float64Array;
}
const arraysByLength: (BatchArrays | undefined)[] = [];

function arraysFor(n: number): BatchArrays {
  let a = arraysByLength[n];
  if (a === undefined) {
    a = { fds: new Int32Array(n), offsets: new Float64Array(n), flags: new Uint8Array(n), counts: new Uint32Array(n), results: new Float64Array(n) };
    arraysByLength[n] = a;
  }
  return a;
}

function submitJob(all: readonly Transfer[], start: number, end: number): void {
  const n = end - start;
  const { fds, offsets, flags, counts, results } = arraysFor(n);
  const buffers: Buffer[] = [];
  // Transfers not settled yet; an entry is cleared once its transfer is.
  const job = new Array<Transfer | undefined>(n);
  for (let i = 0; i < n; i++) {
    const t = all[start + i]!;
    job[i] = t;
    fds[i] = t.fd;
    offsets[i] = t.offset;
    flags[i] = t.flags;
    counts[i] = t.buffers.length;
    for (let k = 0; k < t.buffers.length; k++) buffers.push(t.buffers[k]!);
  }
  let inline: Float64Array | undefined;
  try {
    inline = blockIo.submitBatch(fds, offsets, flags, counts, buffers, (later: Float64Array) => settle(job, later), results);
  } catch (err) {
    // Argument errors (a programming mistake) fail every transfer of the job.
    for (const t of job) {
      t?.owner?.transferSettled();
      t?.reject(err);
    }
    return;
  }
  if (inline) settle(job, inline);
}

/** Settle the transfers of `job` that have a result in `results` (NaN: not run yet). */
function settle(job: (Transfer | undefined)[], results: Float64Array): void {
  for (let i = 0; i < job.length; i++) {
    const t = job[i];
    const r = results[i]!;
    if (t === undefined || Number.isNaN(r)) continue;
    job[i] = undefined;
    const owner = t.owner;
    if (owner === null) {
      if (r >= 0) t.resolve(r);
      else t.reject(blockIo.makeErrnoError(-r, t.flags & WRITE ? 'pwritev' : 'preadv'));
      continue;
    }
    owner.transferSettled();
    if (r < 0) t.reject(owner.transferError(blockIo.makeErrnoError(-r, t.flags & WRITE ? 'pwritev' : 'preadv')));
    else if ((t.flags & WRITE) === 0 && r < t.bytes) t.reject(owner.shortRead(t.offset, r, t.bytes));
    else t.resolve(t.value);
  }
}

function enqueue<T>(fd: number, buffers: readonly Buffer[], offset: number, flags: number, owner: TransferOwner | null, value: unknown): Promise<T> {
  let bytes = 0;
  for (let i = 0; i < buffers.length; i++) bytes += buffers[i]!.length;
  return new Promise<T>((resolve, reject) => {
    queue.push({ fd, buffers, offset, flags, bytes, owner, value, resolve: resolve as (value: unknown) => void, reject });
    if (!scheduled) {
      scheduled = true;
      process.nextTick(flush);
    }
  });
}

/**
 * A read for `owner` that fills the buffers from offset and resolves with
 * `value` once every byte is read; a short read rejects with the owner's
 * shortRead, a failure with its transferError.
 */
export function ownedRead<T>(owner: TransferOwner, fd: number, buffers: readonly Buffer[], offset: number, inline: IoInline, value: T): Promise<T> {
  return enqueue<T>(fd, buffers, offset, inline, owner, value);
}

/** A write for `owner` of every byte of the buffers (durable on resolving with fua); a failure rejects with its transferError. */
export function ownedWrite(owner: TransferOwner, fd: number, buffers: readonly Buffer[], offset: number, fua: boolean, inline: IoInline): Promise<void> {
  return enqueue<void>(fd, buffers, offset, writeFlags(fua, inline), owner, undefined);
}

function writeFlags(fua: boolean, inline: IoInline): number {
  return (fua ? WRITE | FUA : WRITE) | (inline === IoInline.MEMORY ? IoInline.MEMORY : 0);
}

/** Like blockIo.preadv: fills the buffers from offset; resolves with the bytes read (fewer only at end of file). */
export function queuedPreadv(fd: number, buffers: readonly Buffer[], offset: number, inline: IoInline = IoInline.NONE): Promise<number> {
  return enqueue<number>(fd, buffers, offset, inline, null, undefined);
}

/** Like blockIo.pwritev: writes every byte; with fua the data is durable when the promise resolves. */
export function queuedPwritev(fd: number, buffers: readonly Buffer[], offset: number, fua: boolean, inline: IoInline = IoInline.NONE): Promise<number> {
  return enqueue<number>(fd, buffers, offset, writeFlags(fua, inline), null, undefined);
}
