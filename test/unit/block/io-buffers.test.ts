/** Read buffers carved from shared slabs, and the pool of large ones (src/block/io-buffers.ts). */
import { describe, expect, it } from 'vitest';
import { allocReadBuffer, isPooledReadBuffer, pooledIdleBytes, releaseReadBuffer } from '../../../src/block/io-buffers';

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
    expect(allocReadBuffer(16 * 1024 * 1024).length).toBe(16 * 1024 * 1024);
  });
});

describe('pooled read buffers', () => {
  it('lends large buffers and reuses a released one for the next read of its size class', () => {
    const a = allocReadBuffer(1024 * 1024);
    expect(isPooledReadBuffer(a)).toBe(true);
    const b = allocReadBuffer(1024 * 1024);
    expect(b.buffer).not.toBe(a.buffer); // both lent at once: distinct memory
    const memory = a.buffer;
    releaseReadBuffer(a);
    expect(isPooledReadBuffer(a)).toBe(false);
    const c = allocReadBuffer(700 * 1024); // same class (512 KiB < n <= 1 MiB)
    expect(c.buffer).toBe(memory);
    expect(c.length).toBe(700 * 1024);
    releaseReadBuffer(b);
    releaseReadBuffer(c);
  });

  it('ignores a second release, slab slices and foreign buffers', () => {
    const a = allocReadBuffer(64 * 1024);
    const idleBefore = pooledIdleBytes();
    releaseReadBuffer(a);
    expect(pooledIdleBytes()).toBe(idleBefore + 64 * 1024);
    releaseReadBuffer(a);
    expect(pooledIdleBytes()).toBe(idleBefore + 64 * 1024);
    releaseReadBuffer(allocReadBuffer(4096));
    releaseReadBuffer(Buffer.alloc(64 * 1024));
    expect(pooledIdleBytes()).toBe(idleBefore + 64 * 1024);
    // Two lends after one release: only one of them gets the released memory.
    const x = allocReadBuffer(64 * 1024);
    const y = allocReadBuffer(64 * 1024);
    expect(x.buffer).not.toBe(y.buffer);
    releaseReadBuffer(x);
    releaseReadBuffer(y);
  });

  it('keeps at most 16 MiB of idle buffers', () => {
    const lent = Array.from({ length: 10 }, () => allocReadBuffer(8 * 1024 * 1024));
    for (const b of lent) releaseReadBuffer(b);
    expect(pooledIdleBytes()).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(pooledIdleBytes()).toBeGreaterThanOrEqual(8 * 1024 * 1024);
  });
});
