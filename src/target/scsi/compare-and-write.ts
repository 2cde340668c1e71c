/**
 * COMPARE AND WRITE (0x89), the atomic test-and-set ESXi uses for its
 * on-disk locks (VAAI ATS).
 *
 * The data-out is 2×N blocks: N blocks of verify data, then N blocks of
 * write data. Under an exclusive range lock (so no other command touching
 * those blocks can run in between, in either direction) the medium is read
 * and compared with the verify data; if every byte matches the write data
 * is written, otherwise nothing is written and the command ends with
 * MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION, INFORMATION holding the
 * offset of the first differing byte.
 *
 * NUMBER OF LOGICAL BLOCKS 0 is not an error and does nothing. More blocks
 * than MAXIMUM COMPARE AND WRITE LENGTH (VPD 0xB0, advertised through this
 * row's capabilities) is INVALID FIELD IN CDB. A data-out that does not hold
 * exactly 2×N blocks is rejected before anything is read: too little by the
 * dispatcher, too much here.
 */
import { CommandContext, CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { firstDifference, totalLength } from './data';
import { invalidCdbField, ScsiFailure } from './failures';
import { ioFailure, IoDirection } from './io-errors';
import { LockMode } from './interval-lock';
import { BlockRange, CdbLayout, checkCapacity, checkWritable, readBlockRange, rejectProtection } from './lba';
import type { LogicalUnit } from './logical-unit';
import { Opcode } from './opcodes';

/** MAXIMUM COMPARE AND WRITE LENGTH in blocks (the field is one byte). */
export const COMPARE_AND_WRITE_MAX_BLOCKS = 255;

/** Byte of the CDB holding NUMBER OF LOGICAL BLOCKS. */
const LENGTH_BYTE = 13;

export interface CompareAndWriteRequest {
  readonly range: BlockRange;
  readonly fua: boolean;
  /** Data-out bytes the CDB calls for: verify data + write data. */
  readonly dataOutLength: number;
}

export function parseCompareAndWrite(cdb: Buffer, lu: LogicalUnit): CompareAndWriteRequest {
  rejectProtection(cdb);
  const range: BlockRange = { lba: readBlockRange(cdb, CdbLayout.SIXTEEN).lba, blocks: cdb[LENGTH_BYTE]!, lengthByte: LENGTH_BYTE };
  if (range.blocks > Math.min(COMPARE_AND_WRITE_MAX_BLOCKS, lu.maxTransferBlocks)) throw invalidCdbField(LENGTH_BYTE, 7);
  checkCapacity(lu, range);
  checkWritable(lu);
  return { range, fua: (cdb[1]! & 0x08) !== 0, dataOutLength: 2 * range.blocks * lu.blockSize };
}

/**
 * Whether the initiator sent more data-out than the CDB calls for. Media
 * writes ignore the excess; the commands here reject it, because the
 * length is what separates verify data from write data (or the CDB says
 * there is one block, or none).
 */
export function hasExcessDataOut(ctx: CommandContext, expected: number): boolean {
  return totalLength(ctx.cmd.dataOut ?? []) > expected;
}

/** `length` bytes of a vector starting at `start`, as a vector of views (no copy). */
export function sliceVector(buffers: readonly Buffer[], start: number, length: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = start;
  let left = length;
  for (const b of buffers) {
    if (left === 0) break;
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    const piece = b.subarray(skip, Math.min(b.length, skip + left));
    skip = 0;
    left -= piece.length;
    out.push(piece);
  }
  return out;
}

export async function executeCompareAndWrite(req: CompareAndWriteRequest, lu: LogicalUnit, dataOut: readonly Buffer[]): Promise<void> {
  const { lba, blocks } = req.range;
  if (blocks === 0) return;
  const bytes = blocks * lu.blockSize;
  const release = lu.locks.tryAcquire(lba, lba + blocks, LockMode.EXCLUSIVE) ?? (await lu.locks.acquire(lba, lba + blocks, LockMode.EXCLUSIVE));
  try {
    let medium: Buffer;
    try {
      medium = await lu.store.read(lba * lu.blockSize, bytes);
    } catch (err) {
      throw ioFailure(err, IoDirection.READ, lu.thin);
    }
    const at = firstDifference(medium, sliceVector(dataOut, 0, bytes));
    if (at >= 0) throw new ScsiFailure('miscompare-during-verify', { information: at });
    try {
      await lu.store.writev(lba * lu.blockSize, sliceVector(dataOut, bytes, bytes), { fua: req.fua || !lu.mode.writeCacheEnabled });
    } catch (err) {
      throw ioFailure(err, IoDirection.WRITE, lu.thin);
    }
  } finally {
    release();
  }
}

const FF = 0xff;

export const COMPARE_AND_WRITE_ROW: CommandRow = luCommand<CompareAndWriteRequest>({
  name: 'COMPARE AND WRITE',
  opcode: Opcode.COMPARE_AND_WRITE,
  cdbLength: 16,
  direction: DataDirection.OUT,
  reservation: ReservationClass.WRITE,
  // DPO (0x10) and FUA (0x08); LBA; NUMBER OF LOGICAL BLOCKS. No protection information, no group number.
  usage: [Opcode.COMPARE_AND_WRITE, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0, 0, FF, 0, 0],
  provides: { compareAndWriteMaxBlocks: COMPARE_AND_WRITE_MAX_BLOCKS },
  parse: (cdb, ctx) => parseCompareAndWrite(cdb, ctx.lu),
  dataOutLength: (req) => req.dataOutLength,
  execute: async (req, ctx, dataOut) => {
    // E.g. NUMBER OF LOGICAL BLOCKS 0 (or 256 wrapped to 0) with blocks of data-out.
    if (hasExcessDataOut(ctx, req.dataOutLength)) throw invalidCdbField(LENGTH_BYTE, 7);
    await executeCompareAndWrite(req, ctx.lu, dataOut);
    return {};
  },
});
