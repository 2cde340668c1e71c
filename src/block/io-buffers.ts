/**
 * Buffers for reads on the data path, carved from shared slabs.
 *
 * Buffer.allocUnsafe takes sizes under 4 KiB from Node's 8 KiB pool and
 * gives every larger buffer an ArrayBuffer of its own: for a 4 KiB read that
 * is a malloc, a backing store and an object for the garbage collector to
 * track, per command. Here buffers up to MAX_POOLED bytes are slices of a
 * 64 KiB slab, taken in order; a slab is freed by the garbage collector once
 * no slice of it is referenced. Slices start on 64-byte boundaries. A slice
 * held long (a Data-In queued behind a slow initiator) keeps its whole slab:
 * slabs are small so that this costs at most 16x the slice.
 *
 * Like Buffer.allocUnsafe the contents are not initialised: the read fills
 * them before anyone sees them.
 */
const SLAB_BYTES = 64 * 1024;
const MAX_POOLED = 16 * 1024;
const ALIGN = 64;

let slab: Buffer | null = null;
let used = 0;

/** An uninitialised buffer of `length` bytes for a read to fill. */
export function allocReadBuffer(length: number): Buffer {
  if (length > MAX_POOLED || length === 0) return Buffer.allocUnsafe(length);
  if (slab === null || used + length > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    used = 0;
  }
  const b = slab.subarray(used, used + length);
  used = (used + length + ALIGN - 1) & ~(ALIGN - 1);
  return b;
}
