import { AllocationExtent, BackingStore, BlockIoError, WriteOptions } from './backing-store';

/**
 * A BackingStore in memory, for tests and for tools that need a scratch
 * volume. Tracks allocation per 4 KiB chunk so thin-provisioning behaviour
 * (discard, allocation status) can be exercised without a file system.
 */
export class MemoryBackingStore implements BackingStore {
  static readonly CHUNK = 4096;
  readonly thin: boolean;
  readonly description: string;
  private data: Buffer;
  private allocated: Uint8Array;
  private closed = false;
  /** When set, writes that would allocate new chunks beyond this many bytes fail with ENOSPC. */
  capacityLimitBytes: number | null = null;

  constructor(sizeBytes: number, options: { thin?: boolean; description?: string } = {}) {
    this.data = Buffer.alloc(sizeBytes);
    this.thin = options.thin ?? false;
    this.description = options.description ?? `memory:${sizeBytes}`;
    this.allocated = new Uint8Array(Math.ceil(sizeBytes / MemoryBackingStore.CHUNK)).fill(this.thin ? 0 : 1);
  }

  get sizeBytes(): number {
    return this.data.length;
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new BlockIoError('EBADF', `${this.description}: store is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.data.length) {
      throw new BlockIoError('ERANGE', `${this.description}: range ${offset}+${length} outside 0..${this.data.length}`);
    }
  }

  private chunkRange(offset: number, length: number): [number, number] {
    return [Math.floor(offset / MemoryBackingStore.CHUNK), Math.ceil((offset + length) / MemoryBackingStore.CHUNK)];
  }

  private allocate(offset: number, length: number): void {
    const [first, end] = this.chunkRange(offset, length);
    if (this.capacityLimitBytes !== null) {
      let fresh = 0;
      for (let c = first; c < end; c++) if (!this.allocated[c]) fresh++;
      if (fresh > 0 && (this.allocatedBytes() + fresh * MemoryBackingStore.CHUNK) > this.capacityLimitBytes) {
        throw new BlockIoError('ENOSPC', `${this.description}: no space left`);
      }
    }
    this.allocated.fill(1, first, end);
  }

  /** Bytes currently allocated (chunk granularity). */
  allocatedBytes(): number {
    let n = 0;
    for (const a of this.allocated) n += a;
    return n * MemoryBackingStore.CHUNK;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    return Buffer.from(this.data.subarray(offset, offset + length));
  }

  async readv(offset: number, buffers: readonly Buffer[]): Promise<void> {
    const total = buffers.reduce((n, b) => n + b.length, 0);
    this.check(offset, total);
    let at = offset;
    for (const b of buffers) {
      this.data.copy(b, 0, at, at + b.length);
      at += b.length;
    }
  }

  async writev(offset: number, buffers: readonly Buffer[], _options?: WriteOptions): Promise<void> {
    const total = buffers.reduce((n, b) => n + b.length, 0);
    this.check(offset, total);
    if (total > 0) this.allocate(offset, total);
    let at = offset;
    for (const b of buffers) {
      b.copy(this.data, at);
      at += b.length;
    }
  }

  async flush(): Promise<void> {
    this.check(0, 0);
  }

  async discard(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    this.data.fill(0, offset, offset + length);
    if (!this.thin) return;
    // Only whole chunks become unallocated, as with a file system's punch hole.
    const C = MemoryBackingStore.CHUNK;
    const first = Math.ceil(offset / C);
    const end = Math.floor((offset + length) / C);
    if (end > first) this.allocated.fill(0, first, end);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    if (length > 0) this.allocate(offset, length);
    this.data.fill(0, offset, offset + length);
  }

  async allocationStatus(offset: number, maxLength: number): Promise<AllocationExtent> {
    this.check(offset, 0);
    if (offset >= this.data.length) throw new BlockIoError('ENXIO', `${this.description}: offset ${offset} at or past the end`);
    const C = MemoryBackingStore.CHUNK;
    const limit = Math.min(this.data.length, offset + maxLength);
    const mapped = this.allocated[Math.floor(offset / C)] === 1;
    let end = (Math.floor(offset / C) + 1) * C;
    while (end < limit && (this.allocated[end / C] === 1) === mapped) end += C;
    return { offset, length: Math.min(end, limit) - offset, mapped };
  }

  async resize(newSizeBytes: number): Promise<void> {
    this.check(0, 0);
    const next = Buffer.alloc(newSizeBytes);
    this.data.copy(next, 0, 0, Math.min(newSizeBytes, this.data.length));
    const alloc = new Uint8Array(Math.ceil(newSizeBytes / MemoryBackingStore.CHUNK)).fill(this.thin ? 0 : 1);
    alloc.set(this.allocated.subarray(0, Math.min(alloc.length, this.allocated.length)));
    this.data = next;
    this.allocated = alloc;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
