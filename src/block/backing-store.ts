/**
 * The BackingStore interface: where the SCSI target and the mirror meet.
 *
 * A BackingStore holds a volume's data, byte for byte from offset 0. Every
 * method is asynchronous and runs its I/O off the event loop. Errors are
 * BlockIoError with an errno code ('EIO', 'ENOSPC', ...) that the SCSI layer
 * maps to sense data.
 *
 * Buffers handed to write() are borrowed until the promise settles: callers
 * must not reuse them before then, and implementations must not keep them
 * after it.
 */
export interface BackingStore {
  /** Current size in bytes. */
  readonly sizeBytes: number;
  /** True when the store may be sparse (thin provisioned): discard() frees space. */
  readonly thin: boolean;
  /** A short human description (path, peer...), for logs. */
  readonly description: string;

  /** Read `length` bytes at `offset`. Reads past the end are an error (ERANGE). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Read into caller-provided buffers (scatter), filling them in order. */
  readv(offset: number, buffers: readonly Buffer[]): Promise<void>;
  /** Write the buffers (gather) at `offset`. With fua the data is durable before the promise resolves. */
  writev(offset: number, buffers: readonly Buffer[], options?: WriteOptions): Promise<void>;
  /** Make every completed write durable (fdatasync). */
  flush(): Promise<void>;
  /** Deallocate a range (punch hole on thin stores); the range reads back as zeros afterwards. */
  discard(offset: number, length: number): Promise<void>;
  /** Write zeros over a range, keeping it allocated (zero range). */
  writeZeroes(offset: number, length: number): Promise<void>;
  /**
   * Allocation status from `offset`: whether the byte at offset is mapped
   * (data) or a hole, and how many bytes from offset share that state
   * (at most `maxLength`).
   */
  allocationStatus(offset: number, maxLength: number): Promise<AllocationExtent>;
  /** Grow or shrink the store. */
  resize(newSizeBytes: number): Promise<void>;
  /** Flush and release the store; further calls fail with EBADF. */
  close(): Promise<void>;
}

export interface WriteOptions {
  /** Force unit access: durable on stable media before completion. */
  readonly fua?: boolean;
}

export interface AllocationExtent {
  readonly offset: number;
  readonly length: number;
  readonly mapped: boolean;
}

/** An I/O error carrying the errno name from the operating system. */
export class BlockIoError extends Error {
  override readonly name = 'BlockIoError';
  constructor(
    readonly code: string,
    message: string,
    readonly errno?: number,
  ) {
    super(message);
  }
}
