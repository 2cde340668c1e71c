/** Read buffers carved from shared slabs (src/block/io-buffers.ts). */
import { describe, expect, it } from 'vitest';
import { allocReadBuffer } from '../../../src/block/io-buffers';

describe('allocReadBuffer', () => {
  it('hands out non-overlapping slices of the asked length, 64-byte aligned within their slab', () => {
    const bufs = Array.from({ length: 40 }, (_, i) => allocReadBuffer(i % 2 ? 4096 : 100));
    bufs.forEach((b, i) => {
      expect(b.length).toBe(i % 2 ? 4096 : 100);
      expect(b.byteOffset % 64).toBe(0);
      b.fill(i);
    });
    bufs.forEach((b, i) => expect(b.every((x) => x === i)).toBe(true));
  });

  it('gives large and empty buffers their own memory', () => {
    const big = allocReadBuffer(1024 * 1024);
    expect(big.length).toBe(1024 * 1024);
    expect(big.buffer.byteLength).toBeGreaterThanOrEqual(1024 * 1024);
    expect(allocReadBuffer(0).length).toBe(0);
  });
});
