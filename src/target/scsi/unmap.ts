/**
 * UNMAP (0x42): deallocate the LBA extents listed in the parameter list.
 *
 * Parameter list: an 8-byte header (UNMAP DATA LENGTH, UNMAP BLOCK
 * DESCRIPTOR DATA LENGTH) and 16-byte block descriptors (8-byte LBA, 4-byte
 * NUMBER OF LOGICAL BLOCKS). Checks, all made before anything is
 * deallocated:
 *   - PARAMETER LIST LENGTH 0: nothing to do (GOOD);
 *   - 1..7, or block descriptors running past the parameter list:
 *     PARAMETER LIST LENGTH ERROR;
 *   - a trailing partial descriptor is ignored (SBC-4);
 *   - more descriptors than MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT, or more
 *     blocks in total than MAXIMUM UNMAP LBA COUNT: INVALID FIELD IN
 *     PARAMETER LIST;
 *   - an extent past the capacity: LOGICAL BLOCK ADDRESS OUT OF RANGE;
 *   - ANCHOR=1: INVALID FIELD IN CDB (anchored LBAs are not supported).
 *
 * Only a thin LU deallocates (LBPU=1 in VPD 0xB2). On a fully provisioned
 * LU the command is rejected with INVALID FIELD IN CDB, so an initiator
 * never believes space was released (READ CAPACITY (16) reports LBPME=0
 * there, and VPD 0xB2 LBPU=0).
 *
 * Deallocation goes through store.discard, which frees whole allocation
 * units and zeroes the partial ones at either end in place, without
 * allocating anything: deallocated blocks read back as zeros (LBPRZ=1) and
 * an UNMAP can never fail for lack of space on a full thin volume. Each
 * extent is deallocated under an exclusive range lock, so it is atomic
 * against reads, writes and COMPARE AND WRITE of those blocks.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { flatten } from './data';
import { invalidCdbField, invalidParameterField, ScsiFailure } from './failures';
import { ioFailure, IoDirection } from './io-errors';
import { LockMode } from './interval-lock';
import { checkWritable } from './lba';
import type { LogicalUnit } from './logical-unit';
import { Opcode } from './opcodes';

/** What this implementation accepts in one UNMAP (VPD 0xB0). */
export const UNMAP_LIMITS = {
  /** MAXIMUM UNMAP LBA COUNT: blocks in all descriptors of one command. */
  maxLbaCount: 1024 * 1024,
  /** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT. */
  maxDescriptorCount: 256,
  /** No coarser than the LU's physical block (see provisioning.ts). */
  granularity: 1,
} as const;

const HEADER_LENGTH = 8;
const DESCRIPTOR_LENGTH = 16;

export interface UnmapRequest {
  readonly parameterListLength: number;
}

export interface UnmapExtent {
  readonly lba: number;
  readonly blocks: number;
}

/** Deallocate blocks (the caller holds the range lock). Reads back as zeros afterwards. */
export async function deallocateBlocks(lu: LogicalUnit, lba: number, blocks: number): Promise<void> {
  if (blocks === 0) return;
  try {
    await lu.store.discard(lba * lu.blockSize, blocks * lu.blockSize);
  } catch (err) {
    throw ioFailure(err, IoDirection.WRITE, lu.thin);
  }
}

/** With the write cache disabled, a command that changed the medium completes once the change is durable. */
export async function flushIfWriteThrough(lu: LogicalUnit): Promise<void> {
  if (lu.mode.writeCacheEnabled) return;
  try {
    await lu.store.flush();
  } catch (err) {
    throw ioFailure(err, IoDirection.WRITE, lu.thin);
  }
}

/** A 64-bit LBA at `at` (Infinity when beyond any representable capacity). */
function readLba64(b: Buffer, at: number): number {
  const hi = b.readUInt32BE(at);
  return hi >= 0x200000 ? Infinity : hi * 0x1_0000_0000 + b.readUInt32BE(at + 4);
}

export function parseUnmap(cdb: Buffer, lu: LogicalUnit): UnmapRequest {
  if (!lu.thin) throw invalidCdbField(0, 7);
  if (cdb[1]! & 0x01) throw invalidCdbField(1, 0); // ANCHOR
  checkWritable(lu);
  return { parameterListLength: cdb.readUInt16BE(7) };
}

/** The extents of a parameter list, validated in full (throws ScsiFailure). */
export function parseUnmapParameterList(data: Buffer, lu: LogicalUnit): UnmapExtent[] {
  if (data.length === 0) return [];
  if (data.length < HEADER_LENGTH) throw new ScsiFailure('parameter-list-length-error', { field: { inCdb: true, byte: 7, bit: 7 } });
  const descriptorBytes = data.readUInt16BE(2);
  if (HEADER_LENGTH + descriptorBytes > data.length) {
    throw new ScsiFailure('parameter-list-length-error', { field: { inCdb: true, byte: 7, bit: 7 } });
  }
  const count = Math.floor(descriptorBytes / DESCRIPTOR_LENGTH);
  if (count > UNMAP_LIMITS.maxDescriptorCount) throw invalidParameterField(2, 7);
  const extents: UnmapExtent[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = HEADER_LENGTH + i * DESCRIPTOR_LENGTH;
    const lba = readLba64(data, at);
    const blocks = data.readUInt32BE(at + 8);
    if (lba + blocks > lu.blockCount) throw new ScsiFailure('lba-out-of-range');
    total += blocks;
    if (total > UNMAP_LIMITS.maxLbaCount) throw invalidParameterField(at + 8, 7);
    if (blocks > 0) extents.push({ lba, blocks });
  }
  return extents;
}

export async function executeUnmap(req: UnmapRequest, lu: LogicalUnit, dataOut: readonly Buffer[]): Promise<void> {
  if (req.parameterListLength === 0) return;
  const extents = parseUnmapParameterList(flatten(dataOut), lu);
  for (const { lba, blocks } of extents) {
    const release = lu.locks.tryAcquire(lba, lba + blocks, LockMode.EXCLUSIVE) ?? (await lu.locks.acquire(lba, lba + blocks, LockMode.EXCLUSIVE));
    try {
      await deallocateBlocks(lu, lba, blocks);
    } finally {
      release();
    }
  }
  if (extents.length > 0) await flushIfWriteThrough(lu);
}

export const UNMAP_ROW: CommandRow = luCommand<UnmapRequest>({
  name: 'UNMAP',
  opcode: Opcode.UNMAP,
  cdbLength: 10,
  direction: DataDirection.OUT,
  reservation: ReservationClass.WRITE,
  // PARAMETER LIST LENGTH; no ANCHOR, no group number.
  usage: [Opcode.UNMAP, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
  provides: { unmap: UNMAP_LIMITS },
  parse: (cdb, ctx) => parseUnmap(cdb, ctx.lu),
  dataOutLength: (req) => req.parameterListLength,
  execute: async (req, ctx, dataOut) => {
    await executeUnmap(req, ctx.lu, dataOut);
    return {};
  },
});
