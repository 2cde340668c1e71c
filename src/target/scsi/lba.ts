/**
 * LBA and transfer length fields of the medium access commands, and the
 * checks every one of them makes (protection fields, capacity, maximum
 * transfer length).
 */
import { invalidCdbField, ScsiFailure } from './failures';
import type { LogicalUnit } from './logical-unit';

/** CDB layouts: where LBA and length live. */
export const CdbLayout = { SIX: 6, TEN: 10, TWELVE: 12, SIXTEEN: 16 } as const;
export type CdbLayout = (typeof CdbLayout)[keyof typeof CdbLayout];

export interface BlockRange {
  /** First LBA (Infinity when the CDB's LBA is beyond any representable capacity). */
  readonly lba: number;
  readonly blocks: number;
  /** Byte offset of the length field, for field pointers. */
  readonly lengthByte: number;
}

/** LBA and length as written in the CDB (READ/WRITE (6): 0 blocks stays 0 here). */
export function readBlockRange(cdb: Buffer, layout: CdbLayout): BlockRange {
  switch (layout) {
    case CdbLayout.SIX:
      return { lba: ((cdb[1]! & 0x1f) << 16) | (cdb[2]! << 8) | cdb[3]!, blocks: cdb[4]!, lengthByte: 4 };
    case CdbLayout.TEN:
      return { lba: cdb.readUInt32BE(2), blocks: cdb.readUInt16BE(7), lengthByte: 7 };
    case CdbLayout.TWELVE:
      return { lba: cdb.readUInt32BE(2), blocks: cdb.readUInt32BE(6), lengthByte: 6 };
    case CdbLayout.SIXTEEN: {
      const hi = cdb.readUInt32BE(2);
      const lba = hi >= 0x200000 ? Infinity : hi * 0x1_0000_0000 + cdb.readUInt32BE(6);
      return { lba, blocks: cdb.readUInt32BE(10), lengthByte: 10 };
    }
  }
}

/** RDPROTECT / WRPROTECT / VRPROTECT (byte 1 bits 7..5): protection information is not supported. */
export function rejectProtection(cdb: Buffer): void {
  if ((cdb[1]! & 0xe0) !== 0) throw invalidCdbField(1, 7);
}

/** LBA + blocks must lie within the capacity (a zero-length range at the end is fine). */
export function checkCapacity(lu: LogicalUnit, range: BlockRange): void {
  if (range.lba + range.blocks > lu.blockCount) throw new ScsiFailure('lba-out-of-range');
}

/** Commands that move data are limited to MAXIMUM TRANSFER LENGTH (VPD 0xB0). */
export function checkTransferLength(lu: LogicalUnit, range: BlockRange): void {
  if (range.blocks > lu.maxTransferBlocks) throw invalidCdbField(range.lengthByte, 7);
}

/** Medium writes fail on a write-protected LU. */
export function checkWritable(lu: LogicalUnit): void {
  if (lu.writeProtected) throw new ScsiFailure('write-protected');
}
