/**
 * The metadata file format: layout, superblock and activity-log record
 * codecs. No I/O here.
 *
 * The file (`<backing>.twinsan-meta`), all integers little-endian:
 *
 *   0          superblock slot 0 (4096 bytes; the superblock uses the first 512)
 *   4096       superblock slot 1
 *   8192       activity-log copy 0 (alCopySize bytes)
 *   8192 + c   activity-log copy 1
 *   8192 + 2c  dirty bitmap: ceil(regions / 8) bytes, region r is bit (r % 8)
 *              of byte floor(r / 8); the file is padded to a 4096 multiple
 *
 * Superblock and activity log are each written in two alternating copies:
 * record number n goes to copy n % 2, so a torn write only ever damages the
 * copy being replaced, and loading takes the valid copy with the highest
 * sequence number. The bitmap is updated in place, word by word; a torn
 * bitmap write only concerns bits whose write was never acknowledged.
 *
 * Superblock (512 bytes):
 *
 *   0    8  magic "TWSNMETA"
 *   8    4  format version (1)
 *   12   4  superblock length (512)
 *   16   8  sequence number
 *   24   8  volume size, bytes
 *   32   4  region size, bytes
 *   36   4  activity-log extent size, bytes
 *   40   4  activity-log capacity, extents
 *   44   4  flags (META_FLAGS)
 *   48   8  activity-log offset (8192)
 *   56   4  activity-log copy size
 *   60   4  reserved, 0
 *   64   8  bitmap offset
 *   72   8  bitmap length, bytes
 *   80   4  CRC32C of the bitmap (meaningful only with the clean flag)
 *   84   4  reserved, 0
 *   88   8  generation: current
 *   96   8  generation: bitmap base (0: none)
 *   104  4  generation: history count (at most 8)
 *   108  4  reserved, 0
 *   112  64 generation: history, 8 slots of 8 bytes, newest first
 *   176  2  volume id length, bytes (at most 128)
 *   178  128 volume id, UTF-8
 *   306  202 reserved, 0
 *   508  4  CRC32C of bytes 0..507
 *
 * Activity-log record (one copy):
 *
 *   0    4  magic "TSAL"
 *   4    4  CRC32C of bytes 8 .. 24 + 4 * count
 *   8    8  sequence number
 *   16   4  count of hot extents
 *   20   4  extent size, bytes
 *   24   4n hot extent numbers (u32; extent e covers bytes e * extentSize ..)
 */
import { crc32c } from '@node-rs/crc32';
import { Generations, generationsProblem, HISTORY_LENGTH } from '../generations';
import { META_TUNABLES, regionCount } from './tunables';

export const SUPERBLOCK_MAGIC = 'TWSNMETA';
export const FORMAT_VERSION = 1;
export const SUPERBLOCK_SIZE = 512;
export const SUPERBLOCK_SLOT_SIZE = 4096;
export const AL_OFFSET = 2 * SUPERBLOCK_SLOT_SIZE;
export const AL_MAGIC = 'TSAL';
export const AL_HEADER_SIZE = 24;
export const BLOCK = 4096;
export const MAX_VOLUME_ID_BYTES = 128;

/** Field offsets in the superblock, pinned by a test. */
export const SB = {
  magic: 0,
  version: 8,
  length: 12,
  sequence: 16,
  sizeBytes: 24,
  regionSize: 32,
  alExtentSize: 36,
  alExtents: 40,
  flags: 44,
  alOffset: 48,
  alCopySize: 56,
  bitmapOffset: 64,
  bitmapBytes: 72,
  bitmapCrc: 80,
  genCurrent: 88,
  genBitmap: 96,
  genHistoryCount: 104,
  genHistory: 112,
  volumeIdLength: 176,
  volumeId: 178,
  crc: 508,
} as const;

/** Field offsets in an activity-log record, pinned by a test. */
export const AL = {
  magic: 0,
  crc: 4,
  sequence: 8,
  count: 16,
  extentSize: 20,
  extents: 24,
} as const;

/** Superblock flag bits. */
export const META_FLAGS = {
  /** The data are a complete image of `current` (false: newly created, or an unfinished resync target). */
  consistent: 1 << 0,
  /** The replica is primary (set on promotion, cleared on demotion). */
  primary: 1 << 1,
  /** Closed cleanly: nothing in flight, activity log empty, bitmap CRC valid. */
  clean: 1 << 2,
  /** Opened after a crash while primary; cleared by the caller once resynced. */
  primaryCrashed: 1 << 3,
} as const;

export type MetaFlag = keyof typeof META_FLAGS;
const ALL_FLAGS = Object.values(META_FLAGS).reduce((a, b) => a | b, 0);

export interface Layout {
  readonly alOffset: number;
  readonly alCopySize: number;
  readonly bitmapOffset: number;
  readonly bitmapBytes: number;
  /** The file size this layout needs. */
  readonly fileSize: number;
}

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function layoutFor(sizeBytes: number, regionSize: number, alExtents: number): Layout {
  const alCopySize = roundUp(AL_HEADER_SIZE + 4 * alExtents, BLOCK);
  const bitmapOffset = AL_OFFSET + 2 * alCopySize;
  const bitmapBytes = Math.ceil(regionCount(sizeBytes, regionSize) / 8);
  return { alOffset: AL_OFFSET, alCopySize, bitmapOffset, bitmapBytes, fileSize: bitmapOffset + roundUp(bitmapBytes, BLOCK) };
}

export interface Superblock {
  readonly sequence: number;
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly regionSize: number;
  readonly alExtentSize: number;
  readonly alExtents: number;
  readonly flags: number;
  readonly layout: Layout;
  readonly bitmapCrc: number;
  readonly generations: Generations;
}

const idToBig = (id: string): bigint => BigInt(`0x${id}`);
const bigToId = (n: bigint): string => n.toString(16).padStart(16, '0');

export function encodeSuperblock(sb: Superblock): Buffer {
  const b = Buffer.alloc(SUPERBLOCK_SIZE);
  const volumeId = Buffer.from(sb.volumeId, 'utf8');
  if (volumeId.length > MAX_VOLUME_ID_BYTES) throw new RangeError(`volume id is ${volumeId.length} bytes, at most ${MAX_VOLUME_ID_BYTES}`);
  const problem = generationsProblem(sb.generations);
  if (problem) throw new RangeError(`cannot store malformed generations: ${problem}`);
  b.write(SUPERBLOCK_MAGIC, SB.magic, 'latin1');
  b.writeUInt32LE(FORMAT_VERSION, SB.version);
  b.writeUInt32LE(SUPERBLOCK_SIZE, SB.length);
  b.writeBigUInt64LE(BigInt(sb.sequence), SB.sequence);
  b.writeBigUInt64LE(BigInt(sb.sizeBytes), SB.sizeBytes);
  b.writeUInt32LE(sb.regionSize, SB.regionSize);
  b.writeUInt32LE(sb.alExtentSize, SB.alExtentSize);
  b.writeUInt32LE(sb.alExtents, SB.alExtents);
  b.writeUInt32LE(sb.flags >>> 0, SB.flags);
  b.writeBigUInt64LE(BigInt(sb.layout.alOffset), SB.alOffset);
  b.writeUInt32LE(sb.layout.alCopySize, SB.alCopySize);
  b.writeBigUInt64LE(BigInt(sb.layout.bitmapOffset), SB.bitmapOffset);
  b.writeBigUInt64LE(BigInt(sb.layout.bitmapBytes), SB.bitmapBytes);
  b.writeUInt32LE(sb.bitmapCrc >>> 0, SB.bitmapCrc);
  const g = sb.generations;
  b.writeBigUInt64LE(idToBig(g.current), SB.genCurrent);
  b.writeBigUInt64LE(g.bitmap === null ? 0n : idToBig(g.bitmap), SB.genBitmap);
  b.writeUInt32LE(g.history.length, SB.genHistoryCount);
  g.history.forEach((id, i) => b.writeBigUInt64LE(idToBig(id), SB.genHistory + 8 * i));
  b.writeUInt16LE(volumeId.length, SB.volumeIdLength);
  volumeId.copy(b, SB.volumeId);
  b.writeUInt32LE(crc32c(b.subarray(0, SB.crc)), SB.crc);
  return b;
}

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

/** Reads a u64 that must be a safe integer. */
function safeU64(b: Buffer, at: number): number | null {
  const n = b.readBigUInt64LE(at);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : null;
}

/** Decodes and fully validates one superblock copy. */
export function decodeSuperblock(b: Buffer): Decoded<Superblock> {
  if (b.length < SUPERBLOCK_SIZE) return fail('short');
  if (b.every((x, i) => i >= SUPERBLOCK_SIZE || x === 0)) return fail('blank');
  if (b.toString('latin1', SB.magic, SB.magic + 8) !== SUPERBLOCK_MAGIC) return fail('bad magic');
  if (b.readUInt32LE(SB.crc) !== crc32c(b.subarray(0, SB.crc))) return fail('checksum mismatch (torn or damaged)');
  const version = b.readUInt32LE(SB.version);
  if (version !== FORMAT_VERSION) return fail(`format version ${version}, this build reads ${FORMAT_VERSION}`);
  if (b.readUInt32LE(SB.length) !== SUPERBLOCK_SIZE) return fail('bad superblock length');

  const sequence = safeU64(b, SB.sequence);
  const sizeBytes = safeU64(b, SB.sizeBytes);
  if (sequence === null || sizeBytes === null) return fail('sequence or size out of range');
  const regionSize = b.readUInt32LE(SB.regionSize);
  const alExtentSize = b.readUInt32LE(SB.alExtentSize);
  const alExtents = b.readUInt32LE(SB.alExtents);
  for (const [name, v] of [
    ['regionSize', regionSize],
    ['alExtentSize', alExtentSize],
    ['alExtents', alExtents],
  ] as const) {
    const t = META_TUNABLES[name];
    if (v < t.min || v > t.max || (t.powerOfTwo && (v & (v - 1)) !== 0)) return fail(`${name} ${v} out of bounds`);
  }
  const flags = b.readUInt32LE(SB.flags);
  if ((flags & ~ALL_FLAGS) !== 0) return fail(`unknown flags 0x${flags.toString(16)}`);

  let expected: Layout;
  try {
    expected = layoutFor(sizeBytes, regionSize, alExtents);
  } catch (err) {
    return fail(String(err));
  }
  const recorded = {
    alOffset: safeU64(b, SB.alOffset),
    alCopySize: b.readUInt32LE(SB.alCopySize),
    bitmapOffset: safeU64(b, SB.bitmapOffset),
    bitmapBytes: safeU64(b, SB.bitmapBytes),
  };
  for (const key of ['alOffset', 'alCopySize', 'bitmapOffset', 'bitmapBytes'] as const) {
    if (recorded[key] !== expected[key]) return fail(`layout field ${key} is ${String(recorded[key])}, expected ${expected[key]}`);
  }

  const historyCount = b.readUInt32LE(SB.genHistoryCount);
  if (historyCount > HISTORY_LENGTH) return fail(`history count ${historyCount}`);
  const genBitmap = b.readBigUInt64LE(SB.genBitmap);
  const generations: Generations = {
    current: bigToId(b.readBigUInt64LE(SB.genCurrent)),
    bitmap: genBitmap === 0n ? null : bigToId(genBitmap),
    history: Array.from({ length: historyCount }, (_, i) => bigToId(b.readBigUInt64LE(SB.genHistory + 8 * i))),
  };
  const problem = generationsProblem(generations);
  if (problem) return fail(`generations: ${problem}`);

  const idLength = b.readUInt16LE(SB.volumeIdLength);
  if (idLength > MAX_VOLUME_ID_BYTES) return fail('volume id too long');
  return {
    ok: true,
    value: {
      sequence,
      volumeId: b.toString('utf8', SB.volumeId, SB.volumeId + idLength),
      sizeBytes,
      regionSize,
      alExtentSize,
      alExtents,
      flags,
      layout: expected,
      bitmapCrc: b.readUInt32LE(SB.bitmapCrc),
      generations,
    },
  };
}

export interface AlRecord {
  readonly sequence: number;
  readonly extentSize: number;
  readonly extents: readonly number[];
}

/** Encodes an activity-log record padded to `copySize` bytes. */
export function encodeAlRecord(record: AlRecord, copySize: number): Buffer {
  const used = AL_HEADER_SIZE + 4 * record.extents.length;
  if (used > copySize) throw new RangeError(`${record.extents.length} extents do not fit in ${copySize} bytes`);
  const b = Buffer.alloc(copySize);
  b.write(AL_MAGIC, AL.magic, 'latin1');
  b.writeBigUInt64LE(BigInt(record.sequence), AL.sequence);
  b.writeUInt32LE(record.extents.length, AL.count);
  b.writeUInt32LE(record.extentSize, AL.extentSize);
  record.extents.forEach((e, i) => b.writeUInt32LE(e, AL.extents + 4 * i));
  b.writeUInt32LE(crc32c(b.subarray(AL.sequence, used)), AL.crc);
  return b;
}

export function decodeAlRecord(b: Buffer, capacity: number, extentSize: number): Decoded<AlRecord> {
  if (b.length < AL_HEADER_SIZE) return fail('short');
  if (b.toString('latin1', AL.magic, AL.magic + 4) !== AL_MAGIC) return fail('bad magic');
  const count = b.readUInt32LE(AL.count);
  if (count > capacity || AL_HEADER_SIZE + 4 * count > b.length) return fail(`count ${count} exceeds capacity ${capacity}`);
  const used = AL_HEADER_SIZE + 4 * count;
  if (b.readUInt32LE(AL.crc) !== crc32c(b.subarray(AL.sequence, used))) return fail('checksum mismatch (torn or damaged)');
  if (b.readUInt32LE(AL.extentSize) !== extentSize) return fail('extent size differs from the superblock');
  const sequence = safeU64(b, AL.sequence);
  if (sequence === null) return fail('sequence out of range');
  const extents = Array.from({ length: count }, (_, i) => b.readUInt32LE(AL.extents + 4 * i));
  return { ok: true, value: { sequence, extentSize, extents } };
}

/** Of two decoded copies, the valid one with the highest sequence; null if neither is valid. */
export function newest<T extends { readonly sequence: number }>(copies: readonly Decoded<T>[]): T | null {
  let best: T | null = null;
  for (const c of copies) if (c.ok && (best === null || c.value.sequence > best.sequence)) best = c.value;
  return best;
}
