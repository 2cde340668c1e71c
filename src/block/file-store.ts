import { promises as fs } from 'node:fs';
import { AllocationExtent, BackingStore, BlockIoError, WriteOptions } from './backing-store';
import { DIRECT_IO_ALIGNMENT, readVector, writeVector } from './direct-io';
import { allocReadBuffer } from './io-buffers';
import { IoInline, TransferOwner, inlineHints, ownedRead, ownedWrite } from './io-queue';
import { blockIo } from './native';

export interface FileStoreOptions {
  /** Create the file when it does not exist. */
  readonly create?: boolean;
  /** Size of a newly created file. An existing file keeps its size (use resize()). */
  readonly sizeBytes?: number;
  /**
   * Thin (default): the file is sparse; discard() punches holes.
   * Thick: the whole size is allocated when the file is created or grown, and
   * discard() writes zeros so the space stays allocated.
   */
  readonly thin?: boolean;
  /**
   * O_DIRECT, bypassing the page cache. Offsets and lengths of reads, writes
   * and zeroing must then be multiples of 4096 (EINVAL otherwise); buffers
   * that are not 4096-aligned in memory go through a bounce buffer.
   */
  readonly direct?: boolean;
  /** Open read-only: every write fails with EROFS. */
  readonly readOnly?: boolean;
}

/**
 * A BackingStore on a regular file or a block device, through the native
 * addon. Reads and writes go through the batching queue (io-queue.ts) to the
 * addon's I/O engine threads, small ones that cannot block run inline; the
 * other calls run on libuv's thread pool.
 *
 * Allocation status comes from SEEK_DATA/SEEK_HOLE. File systems that keep
 * zeroed ranges as unwritten extents (ext4, XFS) report ranges written by
 * writeZeroes() as holes: they are allocated but read as zeros. Thick stores
 * and block devices report everything as mapped.
 */
export class FileBackingStore implements BackingStore {
  readonly description: string;
  private size: number;
  /** Native calls not yet settled; close() waits for them (resolving `idle`). */
  private inflight = 0;
  private idle: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  /** How the batching queue reports this store's transfers (no promise of the store's own per transfer). */
  private readonly owner: TransferOwner = {
    transferSettled: () => this.settled(),
    transferError: (err) => this.annotate(err),
    shortRead: (offset, done, length) =>
      new BlockIoError('EIO', `${this.description}: short read at ${offset}: ${done} of ${length} bytes (file shrunk underneath?)`),
  };

  private constructor(
    readonly path: string,
    private readonly fd: number,
    sizeBytes: number,
    readonly thin: boolean,
    readonly direct: boolean,
    readonly readOnly: boolean,
    readonly blockDevice: boolean,
    /** Which transfers may run on the event loop (io-queue.ts). */
    private readonly inline: { readonly read: IoInline; readonly write: IoInline },
  ) {
    this.size = sizeBytes;
    this.description = path;
  }

  static async open(path: string, options: FileStoreOptions = {}): Promise<FileBackingStore> {
    const { create = false, sizeBytes, thin = true, direct = false, readOnly = false } = options;
    if (sizeBytes !== undefined && !isByteCount(sizeBytes)) {
      throw new BlockIoError('EINVAL', `${path}: sizeBytes ${sizeBytes} is not a non-negative safe integer`);
    }
    const opened = blockIo.openFile(path, { create, direct, readOnly, ...(sizeBytes !== undefined && { sizeBytes }) });
    const store = new FileBackingStore(path, opened.fd, opened.sizeBytes, thin, direct, readOnly, opened.blockDevice, inlineHints(opened, direct));
    if (opened.created && !thin) {
      try {
        await store.preallocate(0, opened.sizeBytes);
      } catch (err) {
        await blockIo.close(opened.fd).catch(() => undefined);
        await fs.unlink(path).catch(() => undefined);
        throw err;
      }
    }
    return store;
  }

  get sizeBytes(): number {
    return this.size;
  }

  // read, readv and writev are the data path: plain functions over one
  // promise each, the batching queue's (argument errors become rejections,
  // as from an async function).

  read(offset: number, length: number): Promise<Buffer> {
    try {
      this.checkRange(offset, length);
      this.checkDirect(offset, length);
    } catch (err) {
      return Promise.reject(err);
    }
    if (length === 0) return Promise.resolve(Buffer.alloc(0));
    const buffer = this.direct ? blockIo.allocAligned(length) : allocReadBuffer(length);
    return this.readInto(offset, [buffer], length, buffer);
  }

  readv(offset: number, buffers: readonly Buffer[]): Promise<void> {
    const length = totalLength(buffers);
    try {
      this.checkRange(offset, length);
      this.checkDirect(offset, length);
    } catch (err) {
      return Promise.reject(err);
    }
    if (length === 0) return Promise.resolve();
    return this.readInto(offset, buffers, length, undefined);
  }

  writev(offset: number, buffers: readonly Buffer[], options?: WriteOptions): Promise<void> {
    const length = totalLength(buffers);
    try {
      this.checkRange(offset, length);
      this.checkWritable();
      this.checkDirect(offset, length);
    } catch (err) {
      return Promise.reject(err);
    }
    if (length === 0) return Promise.resolve();
    if (this.closing) return Promise.reject(this.closedError());
    this.inflight++;
    if (!this.direct) return ownedWrite(this.owner, this.fd, buffers, offset, options?.fua ?? false, this.inline.write);
    return writeVector(this.fd, offset, buffers, length, this.direct, options?.fua ?? false, this.inline.write).then(
      () => this.settled(),
      (err: unknown) => {
        this.settled();
        throw this.annotate(err);
      },
    );
  }

  async flush(): Promise<void> {
    this.checkRange(0, 0);
    await this.run((fd) => blockIo.fdatasync(fd));
  }

  async discard(offset: number, length: number): Promise<void> {
    if (!this.thin) return this.writeZeroes(offset, length);
    this.checkRange(offset, length);
    this.checkWritable();
    if (length > 0) await this.run((fd) => blockIo.fallocate(fd, 'punch', offset, length));
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    this.checkWritable();
    this.checkDirect(offset, length);
    if (length > 0) await this.run((fd) => blockIo.fallocate(fd, 'zero', offset, length));
  }

  async allocationStatus(offset: number, maxLength: number): Promise<AllocationExtent> {
    this.checkRange(offset, 0);
    if (!isByteCount(maxLength)) throw new BlockIoError('ERANGE', `${this.description}: bad maxLength ${maxLength}`);
    if (offset >= this.size) throw new BlockIoError('ENXIO', `${this.description}: offset ${offset} at or past the end`);
    const limit = Math.min(this.size, offset + maxLength);
    // Block devices do not support SEEK_DATA: report them mapped, like thick stores.
    if (!this.thin || this.blockDevice) return { offset, length: limit - offset, mapped: true };

    const data = await this.run((fd) => blockIo.seekData(fd, offset));
    const mapped = data === offset;
    let end: number;
    if (mapped) {
      const hole = await this.run((fd) => blockIo.seekHole(fd, offset));
      end = hole < 0 ? this.size : hole;
    } else {
      end = data < 0 ? this.size : data;
    }
    return { offset, length: Math.min(end, limit) - offset, mapped };
  }

  async resize(newSizeBytes: number): Promise<void> {
    this.checkRange(0, 0);
    this.checkWritable();
    if (!isByteCount(newSizeBytes)) throw new BlockIoError('EINVAL', `${this.description}: bad size ${newSizeBytes}`);
    if (this.blockDevice) return this.refreshDeviceSize(newSizeBytes);

    const oldSize = this.size;
    // Shrinking: stop accepting I/O beyond the new end before cutting it off.
    if (newSizeBytes < oldSize) this.size = newSizeBytes;
    await this.run((fd) => blockIo.ftruncate(fd, newSizeBytes));
    this.size = newSizeBytes;
    if (this.thin || newSizeBytes <= oldSize) return;
    try {
      await this.preallocate(oldSize, newSizeBytes - oldSize);
    } catch (err) {
      this.size = oldSize;
      await this.run((fd) => blockIo.ftruncate(fd, oldSize)).catch(() => undefined);
      throw err;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    if (this.inflight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    let flushError: unknown = null;
    if (!this.readOnly) await blockIo.fdatasync(this.fd).catch((err: unknown) => { flushError = err; });
    await blockIo.close(this.fd).catch((err: unknown) => { flushError ??= err; });
    if (flushError) throw this.annotate(flushError);
  }

  /** A block device cannot be resized here; this only picks up a size changed underneath. */
  private async refreshDeviceSize(expected: number): Promise<void> {
    const actual = blockIo.sizeOf(this.fd);
    if (actual !== expected) {
      throw new BlockIoError('EINVAL', `${this.description}: block device is ${actual} bytes, cannot resize to ${expected}`);
    }
    this.size = actual;
  }

  /** Fill `buffers` from offset, then resolve with `result`; a short read is EIO. */
  private readInto<T>(offset: number, buffers: readonly Buffer[], length: number, result: T): Promise<T> {
    if (this.closing) return Promise.reject(this.closedError());
    this.inflight++;
    if (!this.direct) return ownedRead(this.owner, this.fd, buffers, offset, this.inline.read, result);
    return readVector(this.fd, offset, buffers, length, this.direct, this.inline.read).then(
      (done) => {
        this.settled();
        if (done < length) {
          throw this.owner.shortRead(offset, done, length);
        }
        return result;
      },
      (err: unknown) => {
        this.settled();
        throw this.annotate(err);
      },
    );
  }

  /** Reserve space for a range that reads as zeros (new file or grown tail). */
  private async preallocate(offset: number, length: number): Promise<void> {
    try {
      await this.run((fd) => blockIo.fallocate(fd, 'allocate', offset, length));
    } catch (err) {
      if (!(err instanceof BlockIoError) || err.code !== 'EOPNOTSUPP') throw err;
      await this.run((fd) => blockIo.fallocate(fd, 'zero', offset, length));
    }
  }

  /** Runs one native call on the open descriptor; close() waits for it. */
  private run<T>(call: (fd: number) => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(this.closedError());
    this.inflight++;
    return call(this.fd).then(
      (value) => {
        this.settled();
        return value;
      },
      (err: unknown) => {
        this.settled();
        throw this.annotate(err);
      },
    );
  }

  private settled(): void {
    if (--this.inflight === 0 && this.idle) {
      const idle = this.idle;
      this.idle = null;
      idle();
    }
  }

  /** Native errors name the system call; add which store it was. */
  private annotate(err: unknown): unknown {
    if (!(err instanceof BlockIoError) || err.message.startsWith(this.description)) return err;
    return new BlockIoError(err.code, `${this.description}: ${err.message}`, err.errno);
  }

  private closedError(): BlockIoError {
    return new BlockIoError('EBADF', `${this.description}: store is closed`);
  }

  private checkRange(offset: number, length: number): void {
    if (this.closing) throw this.closedError();
    if (!isByteCount(offset) || !isByteCount(length) || offset + length > this.size) {
      throw new BlockIoError('ERANGE', `${this.description}: range ${offset}+${length} outside 0..${this.size}`);
    }
  }

  private checkWritable(): void {
    if (this.readOnly) throw new BlockIoError('EROFS', `${this.description}: store is read-only`);
  }

  private checkDirect(offset: number, length: number): void {
    if (this.direct && (offset % DIRECT_IO_ALIGNMENT !== 0 || length % DIRECT_IO_ALIGNMENT !== 0)) {
      throw new BlockIoError('EINVAL', `${this.description}: O_DIRECT needs ${DIRECT_IO_ALIGNMENT}-byte aligned offset and length (got ${offset}+${length})`);
    }
  }
}

function isByteCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function totalLength(buffers: readonly Buffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.length;
  return n;
}
