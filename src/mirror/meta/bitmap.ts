/**
 * The dirty bitmap: one bit per region of the volume, set while that region
 * may differ from the peer. After DRBD's drbd_bitmap.c in spirit: verbs
 * (mark / clear / findNextDirty / dirtyRegions / flushLazy), the whole map in
 * memory, on disk updated word by word.
 *
 * Durability: `mark()` resolves only once every bit it covers is on disk
 * (written and fdatasync'd). Setting bits that are already durable costs
 * nothing; otherwise only the 8-byte words that changed are written, and all
 * marks made while a commit runs share the next one (group commit), with the
 * activity log's and superblock's updates. `clear()` is lazy: cleared bits
 * reach the disk with the next commit that writes their word, or with
 * `flushLazy()`; a crash before that only resurrects bits (more resync, never
 * less).
 *
 * The in-memory map is ceil(regions / 8) bytes: at most 64 MiB (MAX_REGIONS).
 * Callers must not clear a region while a write to it is in flight (resync
 * and application writes to one region are serialised above this layer).
 */
import { crc32c } from '@node-rs/crc32';
import { META_TUNABLES, regionCount } from './tunables';

/** How the bitmap reaches the disk (VolumeMetadata); null for a bitmap held in memory only. */
export interface CommitHooks {
  /** Resolves after a commit that started after the call. */
  request(): Promise<void>;
  /** The commit running now, if any. */
  current(): Promise<void> | null;
  /** Throws when the metadata is closed or failed. */
  check(): void;
}

/** One contiguous piece of the bitmap to write, at `offset` bytes into the bitmap area. */
export interface BitmapWrite {
  readonly offset: number;
  readonly bytes: Buffer;
}

const WORD_BYTES = 8;
/** Beyond this many changed words one commit writes the whole bitmap. */
const SPILL_WORDS = 1 << 16;
/** Changed words closer than this are written as one piece, with the unchanged words between. */
const MERGE_GAP_WORDS = 64;
const NO_WORDS: ReadonlySet<number> = new Set();

const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let v = i; v; v &= v - 1) n++;
  return n;
});

function lowestBit(v: number): number {
  return 31 - Math.clz32(v & -v);
}

export class DirtyBitmap {
  private bits: Uint8Array;
  private words32: Uint32Array;
  private size: number;
  private regions: number;
  private byteLen: number;
  private weight = 0;
  /** Words changed and not yet taken by a commit. */
  private pending = new Set<number>();
  private pendingAll = false;
  /** Words being written by the running commit. */
  private inflight: ReadonlySet<number> = NO_WORDS;
  private inflightAll = false;
  /** Words with lazily cleared bits not yet written. */
  private lazy = new Set<number>();
  private lazyAll = false;

  /**
   * A bitmap for a volume of `sizeBytes`. Use `DirtyBitmap.inMemory()` for one
   * that is not persisted (a peer's bitmap received over the wire, tests);
   * VolumeMetadata makes the persisted one.
   */
  constructor(
    sizeBytes: number,
    readonly regionSize: number,
    private readonly hooks: CommitHooks | null,
    initial?: Uint8Array,
  ) {
    this.size = sizeBytes;
    this.regions = regionCount(sizeBytes, regionSize);
    this.byteLen = Math.ceil(this.regions / 8);
    this.bits = new Uint8Array(Math.max(WORD_BYTES, Math.ceil(this.byteLen / WORD_BYTES) * WORD_BYTES));
    this.words32 = new Uint32Array(this.bits.buffer, 0, this.bits.length / 4);
    if (initial) {
      if (initial.length !== this.byteLen) throw new RangeError(`bitmap is ${initial.length} bytes, expected ${this.byteLen}`);
      this.bits.set(initial);
      this.maskTail();
      this.weight = this.popcount();
    }
  }

  /** A bitmap kept in memory only: every change is "durable" at once. */
  static inMemory(sizeBytes: number, regionSize: number = META_TUNABLES.regionSize.default, bytes?: Uint8Array): DirtyBitmap {
    return new DirtyBitmap(sizeBytes, regionSize, null, bytes);
  }

  get sizeBytes(): number {
    return this.size;
  }

  get regionCount(): number {
    return this.regions;
  }

  /** Length of the serialised bitmap: ceil(regionCount / 8). */
  get byteLength(): number {
    return this.byteLen;
  }

  /** The region holding byte `offset` of the volume. */
  regionOf(offset: number): number {
    return Math.floor(offset / this.regionSize);
  }

  /** The bytes of the volume a region covers (the last one may be short). */
  regionRange(region: number): { offset: number; length: number } {
    this.checkRegion(region);
    const offset = region * this.regionSize;
    return { offset, length: Math.min(this.regionSize, this.size - offset) };
  }

  /** Sets the bits of every region touching [offset, offset + length); resolves once they are durable. */
  mark(offset: number, length: number): Promise<void> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      return Promise.reject(new RangeError(`range ${offset}+${length} outside the volume (0..${this.size})`));
    }
    if (length === 0) return Promise.resolve();
    return this.markRegions(this.regionOf(offset), this.regionOf(offset + length - 1) - this.regionOf(offset) + 1);
  }

  /** Sets `count` bits from `first`; resolves once they are durable. */
  markRegions(first: number, count = 1): Promise<void> {
    try {
      this.hooks?.check();
      this.checkSpan(first, count);
    } catch (err) {
      return Promise.reject(err);
    }
    let changed = false;
    let waitNext = false;
    let waitCurrent = false;
    const tracking = this.tracking();
    const end = first + count;
    for (let r = first; r < end; ) {
      const byte = r >>> 3;
      // A whole byte at once when the span covers it, else one bit.
      const mask = (r & 7) === 0 && r + 8 <= end ? 0xff : 1 << (r & 7);
      r += mask === 0xff ? 8 : 1;
      const add = mask & ~this.bits[byte];
      if (add !== 0) {
        this.bits[byte] |= add;
        this.weight += POPCOUNT[add];
        this.addPending(byte >>> 3);
        changed = true;
      } else if (tracking) {
        const state = this.wordState(byte >>> 3);
        if (state === 'pending') waitNext = true;
        else if (state === 'inflight') waitCurrent = true;
      }
    }
    return this.durable(changed || waitNext, waitCurrent);
  }

  /** Clears `count` bits from `region` in memory; they reach the disk lazily (flushLazy). */
  clear(region: number, count = 1): void {
    this.hooks?.check();
    this.checkSpan(region, count);
    const end = region + count;
    for (let r = region; r < end; ) {
      const byte = r >>> 3;
      const mask = (r & 7) === 0 && r + 8 <= end ? 0xff : 1 << (r & 7);
      r += mask === 0xff ? 8 : 1;
      const drop = mask & this.bits[byte];
      if (drop === 0) continue;
      this.bits[byte] &= ~drop;
      this.weight -= POPCOUNT[drop];
      if (!this.lazyAll) {
        this.lazy.add(byte >>> 3);
        if (this.lazy.size > SPILL_WORDS) {
          this.lazyAll = true;
          this.lazy.clear();
        }
      }
    }
  }

  /** Writes lazily cleared bits; resolves when they are durable. */
  flushLazy(): Promise<void> {
    try {
      this.hooks?.check();
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.lazyAll && this.lazy.size === 0) return Promise.resolve();
    if (this.lazyAll) this.pendingAll = true;
    else for (const w of this.lazy) this.addPending(w);
    this.lazy.clear();
    this.lazyAll = false;
    return this.hooks ? this.hooks.request() : Promise.resolve();
  }

  isDirty(region: number): boolean {
    this.checkRegion(region);
    return (this.bits[region >>> 3] & (1 << (region & 7))) !== 0;
  }

  /** The first dirty region at or after `fromRegion`, or -1. */
  findNextDirty(fromRegion = 0): number {
    const from = Math.max(0, Math.floor(fromRegion));
    if (from >= this.regions) return -1;
    let byte = from >>> 3;
    const first = this.bits[byte] & (0xff << (from & 7));
    if (first) return byte * 8 + lowestBit(first);
    byte++;
    while (byte < this.byteLen && (byte & 3) !== 0) {
      if (this.bits[byte]) return byte * 8 + lowestBit(this.bits[byte]);
      byte++;
    }
    let word = byte >>> 2;
    while (word < this.words32.length && this.words32[word] === 0) word++;
    for (byte = word * 4; byte < this.byteLen; byte++) {
      if (this.bits[byte]) return byte * 8 + lowestBit(this.bits[byte]);
    }
    return -1;
  }

  /** Number of dirty regions (DRBD's total weight). */
  dirtyRegions(): number {
    return this.weight;
  }

  /** Bytes of volume data in dirty regions (the last region may be short). */
  dirtyBytes(): number {
    if (this.weight === 0) return 0;
    const last = this.regions - 1;
    const shortfall = this.isDirty(last) ? this.regionSize - this.regionRange(last).length : 0;
    return this.weight * this.regionSize - shortfall;
  }

  /** Marks every region (full resync); resolves when durable. */
  setAll(): Promise<void> {
    try {
      this.hooks?.check();
    } catch (err) {
      return Promise.reject(err);
    }
    this.bits.fill(0xff, 0, this.byteLen);
    this.maskTail();
    this.weight = this.regions;
    this.pendingAll = true;
    this.pending.clear();
    return this.hooks ? this.hooks.request() : Promise.resolve();
  }

  /** ORs a serialised bitmap of the same geometry (e.g. the peer's) into this one; resolves when durable. */
  merge(other: Uint8Array): Promise<void> {
    try {
      this.hooks?.check();
      if (other.length !== this.byteLen) throw new RangeError(`bitmap to merge is ${other.length} bytes, expected ${this.byteLen}`);
    } catch (err) {
      return Promise.reject(err);
    }
    let changed = false;
    let waitNext = false;
    let waitCurrent = false;
    const tracking = this.tracking();
    const tailMask = this.tailMask();
    for (let i = 0; i < this.byteLen; i++) {
      const wanted = other[i] & (i === this.byteLen - 1 ? tailMask : 0xff);
      if (wanted === 0) continue;
      const add = wanted & ~this.bits[i];
      if (add !== 0) {
        this.bits[i] |= add;
        this.weight += POPCOUNT[add];
        this.addPending(i >>> 3);
        changed = true;
      }
      if (add !== wanted && tracking) {
        const state = this.wordState(i >>> 3);
        if (state === 'pending') waitNext = true;
        else if (state === 'inflight') waitCurrent = true;
      }
    }
    return this.durable(changed || waitNext, waitCurrent);
  }

  /** The serialised bitmap (a copy): region r is bit (r % 8) of byte floor(r / 8). */
  toBytes(): Buffer {
    return Buffer.from(this.bits.subarray(0, this.byteLen));
  }

  // --- For VolumeMetadata -------------------------------------------------

  /**
   * Takes what the next commit must write (the pending words, and the lazy
   * ones too with `withLazy`) as byte ranges copied now. They count as in
   * flight until settleWrites().
   */
  takeWrites(withLazy: boolean): BitmapWrite[] {
    const all = this.pendingAll || (withLazy && this.lazyAll);
    let out: BitmapWrite[];
    if (all) {
      out = this.byteLen > 0 ? [{ offset: 0, bytes: Buffer.from(this.bits.subarray(0, this.byteLen)) }] : [];
      this.inflightAll = true;
      this.inflight = NO_WORDS;
      this.lazy.clear();
      this.lazyAll = false;
    } else {
      const words = new Set(this.pending);
      if (withLazy) for (const w of this.lazy) words.add(w);
      out = this.runs([...words].sort((a, b) => a - b));
      for (const w of words) this.lazy.delete(w);
      if (withLazy) this.lazyAll = false;
      this.inflight = words;
      this.inflightAll = false;
    }
    this.pending = new Set();
    this.pendingAll = false;
    return out;
  }

  /** The running commit finished: its words are durable. */
  settleWrites(): void {
    this.inflight = NO_WORDS;
    this.inflightAll = false;
  }

  /** CRC32C of the serialised bitmap. */
  checksum(): number {
    return crc32c(this.bits.subarray(0, this.byteLen));
  }

  /**
   * Changes the volume size. New regions are clean, or dirty with
   * `dirtyNew`. Returns the first byte whose on-disk content must be
   * rewritten (new bytes, and the old last byte whose spare bits changed).
   */
  resizeTo(sizeBytes: number, dirtyNew: boolean): number {
    const oldRegions = this.regions;
    const regions = regionCount(sizeBytes, this.regionSize);
    const byteLen = Math.ceil(regions / 8);
    const bits = new Uint8Array(Math.max(WORD_BYTES, Math.ceil(byteLen / WORD_BYTES) * WORD_BYTES));
    bits.set(this.bits.subarray(0, Math.min(this.byteLen, byteLen)));
    this.bits = bits;
    this.words32 = new Uint32Array(bits.buffer, 0, bits.length / 4);
    this.size = sizeBytes;
    this.regions = regions;
    this.byteLen = byteLen;
    this.maskTail();
    if (dirtyNew) for (let r = oldRegions; r < regions; r++) this.bits[r >>> 3] |= 1 << (r & 7);
    this.weight = this.popcount();
    const words = Math.ceil(byteLen / WORD_BYTES);
    for (const set of [this.pending, this.lazy]) for (const w of set) if (w >= words) set.delete(w);
    return Math.min(oldRegions >>> 3, byteLen);
  }

  /** A copy of bytes [from, byteLength) of the serialised bitmap. */
  bytesFrom(from: number): Buffer {
    return Buffer.from(this.bits.subarray(from, this.byteLen));
  }

  // --- Internals ----------------------------------------------------------

  /** Some word is not yet durable on disk. */
  private tracking(): boolean {
    return this.pendingAll || this.pending.size > 0 || this.inflightAll || this.inflight.size > 0;
  }

  /** Where a word's current content is: waiting for a commit, being written, or on disk. */
  private wordState(word: number): 'pending' | 'inflight' | 'durable' {
    if (this.pendingAll || this.pending.has(word)) return 'pending';
    if (this.inflightAll || this.inflight.has(word)) return 'inflight';
    return 'durable';
  }

  /** The promise for a change: the next commit, the running one, or none needed. */
  private durable(needNext: boolean, needCurrent: boolean): Promise<void> {
    if (!this.hooks) return Promise.resolve();
    if (needNext) return this.hooks.request();
    if (needCurrent) return this.hooks.current() ?? this.hooks.request();
    return Promise.resolve();
  }

  private addPending(word: number): void {
    if (this.pendingAll) return;
    this.pending.add(word);
    if (this.pending.size > SPILL_WORDS) {
      this.pendingAll = true;
      this.pending.clear();
    }
  }

  /** Sorted word indices to byte ranges, merging words less than MERGE_GAP_WORDS apart. */
  private runs(words: readonly number[]): BitmapWrite[] {
    const out: BitmapWrite[] = [];
    let i = 0;
    while (i < words.length) {
      const start = words[i];
      let end = start;
      while (i + 1 < words.length && words[i + 1] - end <= MERGE_GAP_WORDS) end = words[++i];
      i++;
      const from = start * WORD_BYTES;
      const to = Math.min((end + 1) * WORD_BYTES, this.byteLen);
      if (to > from) out.push({ offset: from, bytes: Buffer.from(this.bits.subarray(from, to)) });
    }
    return out;
  }

  private tailMask(): number {
    const spare = this.byteLen * 8 - this.regions;
    return 0xff >>> spare;
  }

  /** Zeroes the bits past the last region. */
  private maskTail(): void {
    if (this.byteLen > 0) this.bits[this.byteLen - 1] &= this.tailMask();
    this.bits.fill(0, this.byteLen);
  }

  private popcount(): number {
    let n = 0;
    for (let i = 0; i < this.byteLen; i++) n += POPCOUNT[this.bits[i]];
    return n;
  }

  private checkRegion(region: number): void {
    if (!Number.isSafeInteger(region) || region < 0 || region >= this.regions) {
      throw new RangeError(`region ${region} outside 0..${this.regions - 1}`);
    }
  }

  private checkSpan(first: number, count: number): void {
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 0 || count < 0 || first + count > this.regions) {
      throw new RangeError(`regions ${first}+${count} outside 0..${this.regions}`);
    }
  }
}
