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

interface Transfer {
  readonly fd: number;
  readonly buffers: readonly Buffer[];
  readonly offset: number;
  readonly flags: number;
  readonly bytes: number;
  readonly resolve: (bytes: number) => void;
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

function submitJob(all: readonly Transfer[], start: number, end: number): void {
  const n = end - start;
  const fds = new Int32Array(n);
  const offsets = new Float64Array(n);
  const flags = new Uint8Array(n);
  const counts = new Uint32Array(n);
  const buffers: Buffer[] = [];
  const job = new Array<Transfer>(n);
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
    inline = blockIo.submitBatch(fds, offsets, flags, counts, buffers, (results: Float64Array) => settle(job, results, inline ?? null));
  } catch (err) {
    // Argument errors (a programming mistake) fail every transfer of the job.
    for (const t of job) t.reject(err);
    return;
  }
  if (inline) settle(job, inline, null);
}

/**
 * Settle the transfers with a result in `results` (NaN: not run yet). With
 * `inline` given, those it settled already are skipped.
 */
function settle(job: readonly Transfer[], results: Float64Array, inline: Float64Array | null): void {
  for (let i = 0; i < job.length; i++) {
    if (inline !== null && !Number.isNaN(inline[i]!)) continue;
    const r = results[i]!;
    if (Number.isNaN(r)) continue;
    const t = job[i]!;
    if (r >= 0) t.resolve(r);
    else t.reject(blockIo.makeErrnoError(-r, t.flags & WRITE ? 'pwritev' : 'preadv'));
  }
}

function enqueue(fd: number, buffers: readonly Buffer[], offset: number, flags: number): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < buffers.length; i++) bytes += buffers[i]!.length;
  return new Promise<number>((resolve, reject) => {
    queue.push({ fd, buffers, offset, flags, bytes, resolve, reject });
    if (!scheduled) {
      scheduled = true;
      process.nextTick(flush);
    }
  });
}

/** Like blockIo.preadv: fills the buffers from offset; resolves with the bytes read (fewer only at end of file). */
export function queuedPreadv(fd: number, buffers: readonly Buffer[], offset: number, inline: IoInline = IoInline.NONE): Promise<number> {
  return enqueue(fd, buffers, offset, inline);
}

/** Like blockIo.pwritev: writes every byte; with fua the data is durable when the promise resolves. */
export function queuedPwritev(fd: number, buffers: readonly Buffer[], offset: number, fua: boolean, inline: IoInline = IoInline.NONE): Promise<number> {
  return enqueue(fd, buffers, offset, (fua ? WRITE | FUA : WRITE) | (inline === IoInline.MEMORY ? IoInline.MEMORY : 0));
}
