/**
 * The output of one turn of the event loop on a connection, written to the
 * socket at the end of the turn.
 *
 * At QD32 a turn answers ~15 commands; written one socket.write() per
 * header and data segment under cork, each costs a Writable request object,
 * a buffered entry and an iovec (30 or more per writev). Here runs of small
 * buffers (headers, digests, pads, sense data: up to COPY_MAX_BYTES) are
 * copied into one buffer, so the turn's write-response headers go out as
 * one write; larger buffers are written as they are, between the runs. A
 * small turn (a QD1 command's answer) is copied whole into one buffer.
 *
 * A PDU's onSent runs once the socket no longer needs its data: at once when
 * every buffer it gave was copied, else from the write callback of the last
 * buffer passed by reference at or before its data (socket write callbacks
 * run in order). No socket here: the connection supplies the writer.
 */

/** Buffers up to this size are copied into the turn's runs (headers, digests, pads, sense data). */
const COPY_MAX_BYTES = 1024;
/**
 * A turn with no more than this in all is written as one copied buffer,
 * data included: a QD1 READ's header and 4 KiB go out in one write. Above
 * it data segments go by reference: copying a QD32 turn of 4 KiB reads
 * (~60 KiB) cost more than the writes it saved.
 */
const SMALL_TURN_BYTES = 16 * 1024;
/** A copied run is cut at this size. */
const RUN_MAX_BYTES = 256 * 1024;

/** Where the batch goes: the connection's socket. */
export interface ChunkWriter {
  /** Write one chunk; `done` (if given) runs once the socket no longer needs it. */
  write(chunk: Buffer, done?: () => void): void;
  /** Called around a flush of several chunks (cork / uncork). */
  cork(): void;
  uncork(): void;
}

interface PendingCallback {
  /** Index in `chunks` of the last buffer of the PDU's data. */
  readonly last: number;
  readonly fn: () => void;
}

export class OutputBatch {
  private chunks: Buffer[] = [];
  private callbacks: PendingCallback[] = [];

  get empty(): boolean {
    return this.chunks.length === 0;
  }

  /** Queue a buffer of the current PDU. */
  push(chunk: Buffer): void {
    if (chunk.length > 0) this.chunks.push(chunk);
  }

  /** The PDU queued so far ends here: `fn` runs once its buffers are no longer needed. */
  onSent(fn: () => void): void {
    this.callbacks.push({ last: this.chunks.length - 1, fn });
  }

  /** Drop everything queued (the connection is gone): the callbacks run, nothing is written. */
  discard(): void {
    const callbacks = this.callbacks;
    this.chunks = [];
    this.callbacks = [];
    for (const c of callbacks) c.fn();
  }

  /** Write what is queued. */
  flush(writer: ChunkWriter): void {
    const chunks = this.chunks;
    const callbacks = this.callbacks;
    if (chunks.length === 0) {
      this.callbacks = [];
      for (const c of callbacks) c.fn();
      return;
    }
    this.chunks = [];
    this.callbacks = [];
    let total = 0;
    for (let i = 0; i < chunks.length; i++) total += chunks[i]!.length;
    const copyMax = total <= SMALL_TURN_BYTES ? SMALL_TURN_BYTES : COPY_MAX_BYTES;
    // Plan the writes: each out[] entry is a copied run or a buffer by reference.
    const out: Buffer[] = [];
    /** For each chunk index, the out[] index of the last by-reference write at or before it (-1: none). */
    const refBefore = new Int32Array(chunks.length);
    let lastRef = -1;
    for (let i = 0; i < chunks.length; ) {
      const c = chunks[i]!;
      if (c.length > copyMax) {
        out.push(c);
        lastRef = out.length - 1;
        refBefore[i] = lastRef;
        i++;
        continue;
      }
      let end = i;
      let bytes = 0;
      while (end < chunks.length && chunks[end]!.length <= copyMax && bytes + chunks[end]!.length <= RUN_MAX_BYTES) {
        bytes += chunks[end]!.length;
        refBefore[end] = lastRef;
        end++;
      }
      if (end - i === 1) {
        // A run of one is written as it is (no copy), so it counts as by reference.
        out.push(c);
        lastRef = out.length - 1;
        refBefore[i] = lastRef;
      } else {
        out.push(concat(chunks, i, end, bytes));
      }
      i = end;
    }
    // Callbacks whose data was all copied run now; the others wait for their by-reference write.
    const waiting: (() => void)[][] = [];
    const now: (() => void)[] = [];
    for (const c of callbacks) {
      const ref = c.last >= 0 ? refBefore[c.last]! : -1;
      if (ref < 0) now.push(c.fn);
      else (waiting[ref] ??= []).push(c.fn);
    }
    const several = out.length > 1;
    if (several) writer.cork();
    for (let k = 0; k < out.length; k++) {
      const fns = waiting[k];
      writer.write(out[k]!, fns === undefined ? undefined : () => runAll(fns));
    }
    if (several) writer.uncork();
    runAll(now);
  }
}

function concat(chunks: readonly Buffer[], start: number, end: number, bytes: number): Buffer {
  const run = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = start; i < end; i++) at += chunks[i]!.copy(run, at);
  return run;
}

function runAll(fns: readonly (() => void)[]): void {
  for (const fn of fns) fn();
}
