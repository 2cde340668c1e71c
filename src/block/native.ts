/**
 * The one loader of the native block-I/O addon (native/build/Release/twinsan_native.node).
 *
 * Everything else reaches the addon through `blockIo`, whose functions throw
 * or reject with BlockIoError (errno name in `code`, number in `errno`). The
 * addon is loaded on first use, so importing src/block never fails on a
 * machine where it has not been built and only MemoryBackingStore is used.
 *
 * Argument-type mistakes are programming errors: the addon throws TypeError
 * or RangeError for them and those pass through unchanged.
 */
import path from 'node:path';
import { BlockIoError } from './backing-store';

export interface NativeOpenOptions {
  /** Create the file if it does not exist (O_CREAT). Not with readOnly. */
  readonly create?: boolean;
  /** Size for a newly created file (ftruncate, so sparse). Ignored for existing files. */
  readonly sizeBytes?: number;
  /** O_DIRECT: buffers, offsets and lengths must then be aligned. */
  readonly direct?: boolean;
  readonly readOnly?: boolean;
}

export interface NativeOpenResult {
  readonly fd: number;
  /** True when this call created the file. */
  readonly created: boolean;
  readonly blockDevice: boolean;
  readonly sizeBytes: number;
  /** On tmpfs or ramfs, not O_DIRECT: transfers are memory copies (io-queue.ts runs small ones inline). */
  readonly memoryBacked: boolean;
  /** preadv2(RWF_NOWAIT) is supported (io-queue.ts tries page-cache reads inline). */
  readonly nowaitReads: boolean;
}

export type FallocateMode = 'punch' | 'zero' | 'allocate';

/** The addon's exports, exactly as native/src/*_ops.cc registers them. */
interface NativeAddon {
  openFile(path: string, options: NativeOpenOptions): NativeOpenResult;
  sizeOf(fd: number): number;
  close(fd: number): Promise<void>;
  preadv(fd: number, buffers: readonly Buffer[], offset: number): Promise<number>;
  pwritev(fd: number, buffers: readonly Buffer[], offset: number, flags: { fua: boolean }): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  submitBatch(
    fds: Int32Array,
    offsets: Float64Array,
    flags: Uint8Array,
    counts: Uint32Array,
    buffers: readonly Buffer[],
    done: (results: Float64Array) => void,
    results?: Float64Array,
    // undefined from an addon built before inline transfers (a stale native/build): nothing ran inline.
  ): Float64Array | undefined;
  fallocate(fd: number, mode: FallocateMode, offset: number, length: number): Promise<void>;
  ftruncate(fd: number, size: number): Promise<void>;
  seekData(fd: number, offset: number): Promise<number>;
  seekHole(fd: number, offset: number): Promise<number>;
  allocAligned(size: number): Buffer;
  isAligned(buffers: readonly Buffer[], alignment: number): boolean;
  makeErrnoError(errno: number, op: string): Error;
  interfaceInfo(ifname: string): NativeInterfaceInfo;
  packetSend(ifname: string, frame: Buffer): number;
  tapOpen(ifname: string): number;
}

/** interfaceInfo's answer (native/src/packet_ops.cc): ioctl SIOCGIFINDEX, SIOCGIFHWADDR, SIOCGIFMTU. */
export interface NativeInterfaceInfo {
  readonly index: number;
  /** "aa:bb:cc:dd:ee:ff", lower case. */
  readonly mac: string;
  readonly mtu: number;
  /** ARPHRD_* (1: Ethernet, veth included; 772: loopback). */
  readonly hwType: number;
}

/** Where the addon lives, from src/block (vitest) or dist/block (compiled) alike. */
export const NATIVE_ADDON_PATH = path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'twinsan_native.node');

let addon: NativeAddon | undefined;

function load(): NativeAddon {
  if (!addon) {
    try {
      addon = require(NATIVE_ADDON_PATH) as NativeAddon;
    } catch (err) {
      throw new Error(`twinsan native addon not loadable from ${NATIVE_ADDON_PATH} (run \`npm run install\`): ${String(err)}`);
    }
  }
  return addon;
}

/**
 * Turns a system error from the addon (`code: 'ENOSPC', errno: 28`) into a
 * BlockIoError with the same code, errno and message. Anything else
 * (BlockIoError already, TypeError for a bad argument...) is returned unchanged.
 */
export function toBlockIoError(err: unknown): unknown {
  if (err instanceof BlockIoError || !(err instanceof Error)) return err;
  const { code, errno } = err as Error & { code?: unknown; errno?: unknown };
  if (typeof code !== 'string' || typeof errno !== 'number') return err;
  return new BlockIoError(code, err.message, errno);
}

function wrapSync<A extends unknown[], R>(call: (native: NativeAddon, ...args: A) => R): (...args: A) => R {
  return (...args: A): R => {
    try {
      return call(load(), ...args);
    } catch (err) {
      throw toBlockIoError(err);
    }
  };
}

function wrapAsync<A extends unknown[], R>(call: (native: NativeAddon, ...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    try {
      return await call(load(), ...args);
    } catch (err) {
      throw toBlockIoError(err);
    }
  };
}

/** The addon's functions, with errors converted to BlockIoError. */
export const blockIo = {
  /** Open (and maybe create) a regular file or block device. Synchronous. */
  openFile: wrapSync((n, path: string, options: NativeOpenOptions) => n.openFile(path, options)),
  /** Size in bytes (fstat, or BLKGETSIZE64 for block devices). Synchronous. */
  sizeOf: wrapSync((n, fd: number) => n.sizeOf(fd)),
  close: wrapAsync((n, fd: number) => n.close(fd)),
  /** Reads until the buffers are full or end of file; resolves with the bytes read. */
  preadv: wrapAsync((n, fd: number, buffers: readonly Buffer[], offset: number) => n.preadv(fd, buffers, offset)),
  /** Writes every byte (loops on short writes); with fua the data is durable on return. */
  pwritev: wrapAsync((n, fd: number, buffers: readonly Buffer[], offset: number, fua: boolean) =>
    n.pwritev(fd, buffers, offset, { fua })),
  fdatasync: wrapAsync((n, fd: number) => n.fdatasync(fd)),
  /**
   * Many preadv/pwritev in one I/O-engine job (see io-queue.ts, its only
   * user): transfer i uses the next counts[i] buffers; flags bit 0 write,
   * bit 1 fua, bit 2 memory file system, bit 3 try RWF_NOWAIT. Returns the
   * results of the transfers run inline (bytes or -errno; NaN for the
   * others), in `results` when given (reused by the caller: no allocation
   * per call); `done` gets every result in the same layout (a new array),
   * and is not called when none was left. Argument errors throw TypeError /
   * RangeError.
   */
  submitBatch: (
    fds: Int32Array,
    offsets: Float64Array,
    flags: Uint8Array,
    counts: Uint32Array,
    buffers: readonly Buffer[],
    done: (results: Float64Array) => void,
    results?: Float64Array,
  ): Float64Array | undefined => load().submitBatch(fds, offsets, flags, counts, buffers, done, results),
  /** punch: deallocate, reads zeros. zero: zeros, stays allocated. allocate: reserve space. */
  fallocate: wrapAsync((n, fd: number, mode: FallocateMode, offset: number, length: number) =>
    n.fallocate(fd, mode, offset, length)),
  ftruncate: wrapAsync((n, fd: number, size: number) => n.ftruncate(fd, size)),
  /** Next data at or after offset, or -1 when there is none. */
  seekData: wrapAsync((n, fd: number, offset: number) => n.seekData(fd, offset)),
  /** Next hole at or after offset (end of file counts as one), or -1 when offset is past the end. */
  seekHole: wrapAsync((n, fd: number, offset: number) => n.seekHole(fd, offset)),
  /** A Buffer starting on a 4096-byte boundary; uninitialised contents. */
  allocAligned: wrapSync((n, size: number) => n.allocAligned(size)),
  /** True when every buffer's address and length are multiples of alignment. */
  isAligned: wrapSync((n, buffers: readonly Buffer[], alignment: number) => n.isAligned(buffers, alignment)),
  /** The error the addon would reject with for this errno (for tests of error shaping). */
  makeErrnoError: wrapSync((n, errno: number, op: string) => toBlockIoError(n.makeErrnoError(errno, op))),
} as const;

/**
 * The link-layer calls for src/alias-ip, synchronous, errors passed through
 * unchanged (Error with code 'ENODEV', errno, syscall). packetSend sends one
 * whole Ethernet frame on an AF_PACKET socket (CAP_NET_RAW). tapOpen creates
 * a TAP device that lives as long as the returned descriptor is open in this
 * process (CAP_NET_ADMIN); close it with fs.closeSync.
 */
export const packetIo = {
  interfaceInfo: (ifname: string): NativeInterfaceInfo => load().interfaceInfo(ifname),
  packetSend: (ifname: string, frame: Buffer): number => load().packetSend(ifname, frame),
  tapOpen: (ifname: string): number => load().tapOpen(ifname),
} as const;
