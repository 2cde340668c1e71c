/**
 * Batched submission of file reads and writes to the native addon.
 *
 * Every transfer issued during one tick of the event loop is queued here and
 * handed to the addon's submitBatch at the end of the tick (process.nextTick)
 * as one or a few thread-pool jobs, instead of one job per transfer. A job
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
 * Results and errors are exactly those of blockIo.preadv / pwritev: bytes
 * transferred, or a BlockIoError named after the system call.
 */
import { blockIo } from './native';

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
  try {
    blockIo.submitBatch(fds, offsets, flags, counts, buffers, (results: Float64Array) => settle(job, results));
  } catch (err) {
    // Argument errors (a programming mistake) fail every transfer of the job.
    for (const t of job) t.reject(err);
  }
}

function settle(job: readonly Transfer[], results: Float64Array): void {
  for (let i = 0; i < job.length; i++) {
    const t = job[i]!;
    const r = results[i]!;
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
export function queuedPreadv(fd: number, buffers: readonly Buffer[], offset: number): Promise<number> {
  return enqueue(fd, buffers, offset, 0);
}

/** Like blockIo.pwritev: writes every byte; with fua the data is durable when the promise resolves. */
export function queuedPwritev(fd: number, buffers: readonly Buffer[], offset: number, fua: boolean): Promise<number> {
  return enqueue(fd, buffers, offset, fua ? WRITE | FUA : WRITE);
}
