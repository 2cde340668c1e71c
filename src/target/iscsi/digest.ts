/**
 * CRC32C header and data digests (RFC 7143 §13.1), through @node-rs/crc32's
 * native (SSE4.2 where available) implementation. The digest goes on the wire
 * least significant byte first.
 */
import { crc32c } from '@node-rs/crc32';

export function digestOf(buffers: readonly Buffer[], padding = 0): number {
  let crc = 0;
  for (const b of buffers) crc = crc32c(b, crc);
  if (padding > 0) crc = crc32c(PAD.subarray(0, padding), crc);
  return crc >>> 0;
}

export function digestBuffer(buffers: readonly Buffer[], padding = 0): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32LE(digestOf(buffers, padding), 0);
  return out;
}

export const PAD = Buffer.alloc(4);

/** Bytes of padding that follow a data segment of `length` bytes. */
export function padLength(length: number): number {
  return (4 - (length & 3)) & 3;
}
