/**
 * Vectored transfers that respect O_DIRECT's alignment rules.
 *
 * With O_DIRECT the kernel DMAs straight into the caller's memory, so buffer
 * addresses, lengths and file offsets must be multiples of the device's
 * logical block size. We require DIRECT_IO_ALIGNMENT (4096) for offsets and
 * lengths (FileBackingStore checks that) and, since Node Buffers are not
 * page aligned, transfer unaligned buffers through one aligned bounce buffer.
 * Transfers go through the batching queue (io-queue.ts).
 */
import { IoInline, queuedPreadv, queuedPwritev } from './io-queue';
import { blockIo } from './native';

export const DIRECT_IO_ALIGNMENT = 4096;

function isDirectReady(buffers: readonly Buffer[]): boolean {
  return blockIo.isAligned(buffers, DIRECT_IO_ALIGNMENT);
}

/** Reads into `buffers` (total `length` bytes); resolves with the bytes read. */
export function readVector(
  fd: number,
  offset: number,
  buffers: readonly Buffer[],
  length: number,
  direct: boolean,
  inline: IoInline = IoInline.NONE,
): Promise<number> {
  if (!direct) return queuedPreadv(fd, buffers, offset, inline);
  if (isDirectReady(buffers)) return queuedPreadv(fd, buffers, offset);
  return readBounced(fd, offset, buffers, length);
}

async function readBounced(fd: number, offset: number, buffers: readonly Buffer[], length: number): Promise<number> {
  const bounce = blockIo.allocAligned(length);
  const done = await queuedPreadv(fd, [bounce], offset);
  let at = 0;
  for (const b of buffers) at += bounce.copy(b, 0, at, Math.min(at + b.length, done));
  return done;
}

/** Writes `buffers` (total `length` bytes) in full; resolves with the bytes written. */
export function writeVector(
  fd: number,
  offset: number,
  buffers: readonly Buffer[],
  length: number,
  direct: boolean,
  fua: boolean,
  inline: IoInline = IoInline.NONE,
): Promise<number> {
  if (!direct) return queuedPwritev(fd, buffers, offset, fua, inline);
  if (isDirectReady(buffers)) return queuedPwritev(fd, buffers, offset, fua);
  const bounce = blockIo.allocAligned(length);
  let at = 0;
  for (const b of buffers) at += b.copy(bounce, at);
  return queuedPwritev(fd, [bounce], offset, fua);
}
