/**
 * Buffers for reads on the data path.
 *
 * Small reads (up to MAX_SLAB_SLICE bytes) are slices of shared 64 KiB
 * slabs. Buffer.allocUnsafe takes sizes under 4 KiB from Node's 8 KiB pool
 * and gives every larger buffer an ArrayBuffer of its own: for a 4 KiB read
 * that is a malloc, a backing store and an object for the garbage collector
 * to track, per command. Slices are taken in order and start on 64-byte
 * boundaries; a slab is freed by the garbage collector once no slice of it
 * is referenced (a slice held long keeps its whole slab: slabs are small so
 * that this costs at most 16x the slice).
 *
 * Larger reads come from a pool of reusable buffers in power-of-two size
 * classes, lent to the caller and given back with releaseReadBuffer() once
 * the data has been consumed (the iSCSI connection releases a READ's buffer
 * when the socket has taken its Data-In). Without it every 1 MiB read
 * allocated a fresh ArrayBuffer: V8 counts those as external memory and ran
 * a full mark-compact every ~20 MiB read (95 of them in 2000 reads, the event
 * loop left with 55% of its time), and every read faulted in fresh pages.
 * A pooled buffer that is never released is simply collected. The pool keeps
 * at most POOL_IDLE_BYTES of idle buffers, so memory stays bounded.
 *
 * Like Buffer.allocUnsafe the contents are not initialised: the read fills
 * them before anyone sees them.
 */
const SLAB_BYTES = 64 * 1024;
const MAX_SLAB_SLICE = 16 * 1024;
const ALIGN = 64;

/** Smallest and largest pooled size class. */
const MIN_POOLED = 32 * 1024;
const MAX_POOLED = 8 * 1024 * 1024;
/** Idle pooled buffers kept for reuse, in bytes, over all size classes. */
const POOL_IDLE_BYTES = 16 * 1024 * 1024;

let slab: Buffer | null = null;
let used = 0;

interface PoolSlot {
  readonly whole: Buffer;
  lent: boolean;
}

/** Every pooled ArrayBuffer, lent or idle; entries go with their buffer. */
const slots = new WeakMap<ArrayBufferLike, PoolSlot>();
/** Idle buffers by size class (index: log2(size / MIN_POOLED)). */
const idle: PoolSlot[][] = [];
let idleBytes = 0;

function sizeClass(length: number): number {
  let size = MIN_POOLED;
  let index = 0;
  while (size < length) {
    size *= 2;
    index++;
  }
  return index;
}

function lend(length: number): Buffer {
  const index = sizeClass(length);
  const free = (idle[index] ??= []);
  let slot = free.pop();
  if (slot) {
    idleBytes -= slot.whole.length;
  } else {
    slot = { whole: Buffer.allocUnsafeSlow(MIN_POOLED * 2 ** index), lent: false };
    slots.set(slot.whole.buffer, slot);
  }
  slot.lent = true;
  return slot.whole.subarray(0, length);
}

/** An uninitialised buffer of `length` bytes for a read to fill. */
export function allocReadBuffer(length: number): Buffer {
  if (length > MAX_POOLED || length === 0) return Buffer.allocUnsafe(length);
  if (length > MAX_SLAB_SLICE) return lend(length);
  if (slab === null || used + length > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    used = 0;
  }
  const b = slab.subarray(used, used + length);
  used = (used + length + ALIGN - 1) & ~(ALIGN - 1);
  return b;
}

/** Whether `buffer` was lent by the pool and not yet released: releaseReadBuffer() recycles it. */
export function isPooledReadBuffer(buffer: Buffer): boolean {
  return buffer.byteOffset === 0 && slots.get(buffer.buffer)?.lent === true;
}

/**
 * Give a buffer from allocReadBuffer back for reuse. The caller must hold no
 * reference to it (nor to any slice of it) afterwards: the next read may
 * overwrite it. Anything else (a slab slice, a buffer from elsewhere, a
 * second release) is ignored.
 */
export function releaseReadBuffer(buffer: Buffer): void {
  if (buffer.byteOffset !== 0) return;
  const slot = slots.get(buffer.buffer);
  if (!slot || !slot.lent) return;
  slot.lent = false;
  if (idleBytes + slot.whole.length > POOL_IDLE_BYTES) return; // over the cap: left to the collector
  idleBytes += slot.whole.length;
  (idle[sizeClass(slot.whole.length)] ??= []).push(slot);
}

/** Bytes of idle pooled buffers (for tests and metrics). */
export function pooledIdleBytes(): number {
  return idleBytes;
}
