/**
 * Resync, the source's side: copy every region of the resync set to the
 * target, at a throttled rate, while foreground writes go on.
 *
 * The resync set is held in memory: every region (full mode), or the union
 * of the source's dirty bitmap and the ranges the target sent (bitmap mode;
 * generations.ts explains why the union covers every difference). Neither
 * side's on-disk bitmap loses a bit before its region is durable on the
 * target: the target writes resync data FUA and clears its own bit after,
 * the source clears its bit when the target acknowledged. So an interrupted
 * resync resumes from both bitmaps with nothing lost.
 *
 * A chunk that is a hole in a thin source goes as an unmap instead of zeros,
 * so a thin target stays thin; holes are not counted against the rate.
 *
 * Coordination with foreground writes: a chunk is copied holding the
 * interval lock of its range, from the read on the source to the target's
 * acknowledgement, and foreground writes take the same lock (write-path.ts).
 * A foreground write to a region being copied waits for the copy; one that
 * came first is on both replicas before the copy reads. So the target never
 * gets older data over a newer foreground write. (Foreground writes always
 * originate at the source: handshake.ts refuses a primary as target.)
 */
import { BackingStore } from '../../block';
import { DirtyBitmap } from '../meta';
import { IntervalLock } from './interval-lock';
import { ResyncThrottle } from './throttle';
import { ByteRange, ResyncProgress } from './types';

export interface ResyncSourceHost {
  readonly local: BackingStore;
  readonly lock: IntervalLock;
  readonly throttle: ResyncThrottle;
  readonly chunkBytes: number;
  readonly window: number;
  /** Sends one chunk; resolves when the target has it durably. */
  send(offset: number, data: Buffer): Promise<void>;
  /**
   * Deallocates a range on the target that is a hole here (thin stores): a
   * replicated unmap, which the target brackets with its activity log until
   * durable, so a crash there resurrects the region instead of losing it.
   */
  sendHole(offset: number, length: number): Promise<void>;
  /** The regions were copied: clear them in the source's own bitmap. */
  copied(firstRegion: number, count: number): void;
}

export class ResyncAbortedError extends Error {
  override readonly name = 'ResyncAbortedError';
}

export class ResyncSource {
  private readonly set: DirtyBitmap;
  private aborted = false;
  private started: Promise<void> | null = null;
  private total = 0;
  private done = 0;

  constructor(
    private readonly host: ResyncSourceHost,
    sizeBytes: number,
    readonly regionSize: number,
    readonly mode: 'bitmap' | 'full',
    localBits: Buffer,
  ) {
    this.set = DirtyBitmap.inMemory(sizeBytes, regionSize, localBits);
    if (mode === 'full') void this.set.setAll();
    this.total = this.set.dirtyBytes();
  }

  get isStarted(): boolean {
    return this.started !== null;
  }

  /** Adds ranges the target has dirty (bitmap mode); only before start(). */
  addRanges(ranges: readonly ByteRange[]): void {
    if (this.started) throw new Error('resync already started');
    const size = this.set.sizeBytes;
    for (const r of ranges) {
      if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.offset < 0 || r.length <= 0 || r.offset + r.length > size) {
        throw new RangeError(`resync range ${r.offset}+${r.length} outside the volume (0..${size})`);
      }
      void this.set.mark(r.offset, r.length);
    }
    this.total = this.set.dirtyBytes();
  }

  /** Starts copying; the promise resolves when everything is copied, rejects on failure or abort. */
  start(): Promise<void> {
    this.started ??= this.run();
    return this.started;
  }

  /** Stops after the chunks in flight; start()'s promise then rejects with ResyncAbortedError. */
  abort(): void {
    this.aborted = true;
  }

  progress(): ResyncProgress {
    const rate = this.host.throttle.measuredBytesPerSec();
    const left = Math.max(0, this.total - this.done);
    return {
      direction: 'to-peer',
      mode: this.mode,
      bytesDone: this.done,
      bytesTotal: this.total,
      rateBytesPerSec: Math.round(rate),
      etaSeconds: left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : null,
    };
  }

  private async run(): Promise<void> {
    const { window, throttle } = this.host;
    const perChunk = Math.max(1, Math.floor(this.host.chunkBytes / this.regionSize));
    const inflight = new Set<Promise<void>>();
    let failure: unknown = null;
    let cursor = 0;
    while (!this.aborted && failure === null) {
      const first = this.set.findNextDirty(cursor);
      if (first < 0) break;
      let count = 1;
      while (count < perChunk && first + count < this.set.regionCount && this.set.isDirty(first + count)) count++;
      this.set.clear(first, count);
      cursor = first + count;
      while (inflight.size >= window) await Promise.race(inflight);
      const { offset } = this.set.regionRange(first);
      const length = Math.min(count * this.regionSize, this.set.sizeBytes - offset);
      // Holes carry no data: only data chunks are paced (copy() checks again under the lock).
      if (!(await this.isHole(offset, length))) await throttle.take(length);
      if (this.aborted || failure !== null) break;
      const copy: Promise<void> = this.copy(first, count, offset, length).then(
        () => void inflight.delete(copy),
        (err: unknown) => {
          failure ??= err;
          inflight.delete(copy);
        },
      );
      inflight.add(copy);
    }
    await Promise.all(inflight);
    if (failure !== null) throw failure;
    if (this.aborted) throw new ResyncAbortedError('resync aborted');
  }

  /** The range is unallocated in a thin source (reads as zeros). */
  private async isHole(offset: number, length: number): Promise<boolean> {
    const local = this.host.local;
    if (!local.thin) return false;
    const extent = await local.allocationStatus(offset, length);
    return !extent.mapped && extent.length >= length;
  }

  private async copy(first: number, count: number, offset: number, length: number): Promise<void> {
    const unlock = await this.host.lock.acquire(offset, length);
    try {
      if (this.aborted) throw new ResyncAbortedError('resync aborted');
      if (await this.isHole(offset, length)) {
        await this.host.sendHole(offset, length);
      } else {
        await this.host.send(offset, await this.host.local.read(offset, length));
      }
      this.host.copied(first, count);
      this.done += length;
      this.host.throttle.record(length);
    } finally {
      unlock();
    }
  }
}

/** The dirty regions of a bitmap as byte ranges, adjacent regions merged, at most `maxRun` bytes each. */
export function dirtyRanges(bitmap: DirtyBitmap, maxRun = Number.MAX_SAFE_INTEGER): ByteRange[] {
  const out: ByteRange[] = [];
  const perRun = Math.max(1, Math.floor(maxRun / bitmap.regionSize));
  let r = bitmap.findNextDirty(0);
  while (r >= 0) {
    let count = 1;
    while (count < perRun && r + count < bitmap.regionCount && bitmap.isDirty(r + count)) count++;
    const { offset } = bitmap.regionRange(r);
    const end = bitmap.regionRange(r + count - 1);
    out.push({ offset, length: end.offset + end.length - offset });
    r = bitmap.findNextDirty(r + count);
  }
  return out;
}
