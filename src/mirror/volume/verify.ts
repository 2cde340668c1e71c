/**
 * Online verify, the pure part: region digests and their comparison.
 *
 * Each side digests every region of a range of its replica; the side that
 * runs the verify compares. sha256 is the default: a verify exists to catch
 * what everything else missed, so a digest whose collisions are
 * astronomically unlikely is worth its cost (sha256 runs at several GB/s
 * with the CPU's SHA extensions, faster than most disks read). crc32c
 * (@node-rs/crc32) is offered for slow CPUs; it misses one random
 * difference in 2^32.
 */
import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { BackingStore } from '../../block';
import { ByteRange, VERIFY_ALGORITHMS, VerifyAlgorithm } from './types';

export function isVerifyAlgorithm(name: string): name is VerifyAlgorithm {
  return Object.prototype.hasOwnProperty.call(VERIFY_ALGORITHMS, name);
}

function digest(algorithm: VerifyAlgorithm, data: Buffer): Buffer {
  if (algorithm === 'sha256') return createHash('sha256').update(data).digest();
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32c(data) >>> 0, 0);
  return out;
}

/** The digests of the regions of [offset, offset + length), concatenated (the last region may be short). */
export async function regionDigests(
  store: BackingStore,
  offset: number,
  length: number,
  regionSize: number,
  algorithm: VerifyAlgorithm,
): Promise<Buffer> {
  const data = await store.read(offset, length);
  const size = VERIFY_ALGORITHMS[algorithm].digestBytes;
  const count = Math.ceil(length / regionSize);
  const out = Buffer.alloc(count * size);
  for (let i = 0; i < count; i++) {
    digest(algorithm, data.subarray(i * regionSize, Math.min(length, (i + 1) * regionSize))).copy(out, i * size);
  }
  return out;
}

/** Indices (from 0) of the regions whose digests differ. */
export function differingRegions(a: Buffer, b: Buffer, algorithm: VerifyAlgorithm): number[] {
  const size = VERIFY_ALGORITHMS[algorithm].digestBytes;
  if (a.length !== b.length || a.length % size !== 0) throw new RangeError(`digest lists of ${a.length} and ${b.length} bytes do not match`);
  const out: number[] = [];
  for (let i = 0; i * size < a.length; i++) {
    if (a.compare(b, i * size, (i + 1) * size, i * size, (i + 1) * size) !== 0) out.push(i);
  }
  return out;
}

/** Sorted region numbers to byte ranges, adjacent regions merged, clipped to the volume. */
export function regionsToRanges(regions: readonly number[], regionSize: number, sizeBytes: number): ByteRange[] {
  const out: ByteRange[] = [];
  let start = -1;
  let prev = -2;
  const flush = (): void => {
    if (start < 0) return;
    const offset = start * regionSize;
    out.push({ offset, length: Math.min((prev + 1) * regionSize, sizeBytes) - offset });
  };
  for (const r of regions) {
    if (r !== prev + 1) {
      flush();
      start = r;
    }
    prev = r;
  }
  flush();
  return out;
}
