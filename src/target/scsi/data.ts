/** Small buffer helpers shared by the command handlers. */

export const EMPTY = Buffer.alloc(0);

/** Cut data-in to the CDB's allocation length (no copy). */
export function truncate(data: Buffer, allocationLength: number): Buffer {
  return data.length <= allocationLength ? data : data.subarray(0, allocationLength);
}

export function totalLength(buffers: readonly Buffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.length;
  return n;
}

/**
 * The first `length` bytes of a vector, as a vector (no copy): whole
 * buffers are reused, the last one is a subarray when it straddles the end.
 */
export function takeBytes(buffers: readonly Buffer[], length: number): readonly Buffer[] {
  if (totalLength(buffers) === length) return buffers;
  const out: Buffer[] = [];
  let left = length;
  for (const b of buffers) {
    if (left === 0) break;
    if (b.length <= left) {
      out.push(b);
      left -= b.length;
    } else {
      out.push(b.subarray(0, left));
      left = 0;
    }
  }
  return out;
}

/** One buffer holding a vector (copies unless it is a single buffer). For small parameter lists. */
export function flatten(buffers: readonly Buffer[]): Buffer {
  if (buffers.length === 1) return buffers[0]!;
  return Buffer.concat(buffers as Buffer[]);
}

/**
 * Compare `expected` against the vector `actual`, both covering the same
 * byte range. Returns the offset of the first differing byte, or -1.
 */
export function firstDifference(expected: Buffer, actual: readonly Buffer[]): number {
  let at = 0;
  for (const b of actual) {
    const slice = expected.subarray(at, at + b.length);
    if (!slice.equals(b)) {
      for (let i = 0; i < b.length; i++) if (slice[i] !== b[i]) return at + i;
    }
    at += b.length;
  }
  return -1;
}
