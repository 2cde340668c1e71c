/**
 * WRITE SAME (10) (0x41) and WRITE SAME (16) (0x93): one block of data-out
 * written to every block of a range (zeroing, VAAI Block Zero), or, with
 * UNMAP=1, the range deallocated.
 *
 * What happens to the range:
 *   - UNMAP=1 on a thin LU with an all-zero block (or NDOB=1): deallocated
 *     through store.discard (whole allocation units freed, partial ones
 *     zeroed in place; see unmap.ts). Deallocated blocks read back as zeros
 *     (LBPRZ=1), which is exactly what the write would have left.
 *   - otherwise an all-zero block: store.writeZeroes (blocks stay mapped).
 *     This is also what UNMAP=1 does on a fully provisioned LU, where the
 *     bit does not apply (LBPWS=0).
 *   - any other pattern: written in bounded chunks from one reused buffer
 *     (at most CHUNK_BYTES), never a buffer the size of the range. UNMAP=1
 *     with a non-zero pattern writes the pattern: deallocating would change
 *     what the blocks read back as.
 * The whole range is under one exclusive range lock. With the write cache
 * disabled (WCE=0) the command completes once the change is durable.
 *
 * CDB checks: WRPROTECT (no protection information), ANCHOR=1 (anchored
 * LBAs are not supported: ANC_SUP=0) and the obsolete PBDATA/LBDATA bits are
 * INVALID FIELD IN CDB. NDOB=1 (WRITE SAME (16) only) means no data-out, as
 * if the block were all zeros. NUMBER OF LOGICAL BLOCKS 0, which SBC lets a
 * device take as "from the LBA to the end of the medium", is INVALID FIELD
 * IN CDB (WSNZ=1 in VPD 0xB0): a zero length is far more often a bug than
 * a wish to zero or unmap the rest of the volume, and no initiator we serve
 * sends it. More than MAXIMUM WRITE SAME LENGTH blocks is INVALID FIELD IN
 * CDB too. A data-out other than exactly one block (none with NDOB=1) is
 * rejected: too little by the dispatcher, too much here.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { hasExcessDataOut } from './compare-and-write';
import { flatten } from './data';
import { invalidCdbField, ScsiFailure } from './failures';
import { ioFailure, IoDirection } from './io-errors';
import { LockMode } from './interval-lock';
import { BlockRange, CdbLayout, checkCapacity, checkWritable, readBlockRange, rejectProtection } from './lba';
import type { LogicalUnit } from './logical-unit';
import { Opcode } from './opcodes';
import { deallocateBlocks, flushIfWriteThrough } from './unmap';

/** MAXIMUM WRITE SAME LENGTH in blocks (VPD 0xB0); also what WRITE SAME (10) can express. */
export const WRITE_SAME_MAX_BLOCKS = 0xffff;

/** Largest buffer a pattern write uses. */
export const CHUNK_BYTES = 1024 * 1024;

const Flag = { ANCHOR: 0x10, UNMAP: 0x08, PBDATA_LBDATA: 0x06, NDOB: 0x01 } as const;

export interface WriteSameRequest {
  readonly range: BlockRange;
  readonly unmap: boolean;
  /** No data-out: the block is all zeros. */
  readonly ndob: boolean;
  readonly dataOutLength: number;
}

/** Zeros to compare a block against (blocks are 512 or 4096 bytes). */
const ZEROS = Buffer.alloc(4096);

function isZero(block: Buffer): boolean {
  return block.length <= ZEROS.length ? block.equals(ZEROS.subarray(0, block.length)) : block.every((b) => b === 0);
}

export function parseWriteSame(cdb: Buffer, lu: LogicalUnit, layout: typeof CdbLayout.TEN | typeof CdbLayout.SIXTEEN): WriteSameRequest {
  rejectProtection(cdb);
  const flags = cdb[1]!;
  if (flags & Flag.ANCHOR) throw invalidCdbField(1, 4);
  if (flags & Flag.PBDATA_LBDATA) throw invalidCdbField(1, 2);
  const ndob = layout === CdbLayout.SIXTEEN && (flags & Flag.NDOB) !== 0;
  const range = readBlockRange(cdb, layout);
  // WSNZ: no "to the end of the medium".
  if (range.blocks === 0 || range.blocks > WRITE_SAME_MAX_BLOCKS) throw invalidCdbField(range.lengthByte, 7);
  checkCapacity(lu, range);
  checkWritable(lu);
  return { range, unmap: (flags & Flag.UNMAP) !== 0, ndob, dataOutLength: ndob ? 0 : lu.blockSize };
}

/** Write `block` to every block of the range, CHUNK_BYTES at a time from one buffer. */
async function writePattern(lu: LogicalUnit, range: BlockRange, block: Buffer): Promise<void> {
  const bs = lu.blockSize;
  const chunkBlocks = Math.max(1, Math.min(range.blocks, Math.floor(CHUNK_BYTES / bs)));
  const chunk = Buffer.allocUnsafe(chunkBlocks * bs).fill(block);
  for (let done = 0; done < range.blocks; ) {
    const n = Math.min(chunkBlocks, range.blocks - done);
    // Each write completes before the buffer is handed out again.
    await lu.store.writev((range.lba + done) * bs, [n === chunkBlocks ? chunk : chunk.subarray(0, n * bs)]);
    done += n;
  }
}

export async function executeWriteSame(req: WriteSameRequest, lu: LogicalUnit, dataOut: readonly Buffer[]): Promise<void> {
  const { lba, blocks } = req.range;
  const block = req.ndob ? null : flatten(dataOut);
  const zero = block === null || isZero(block);
  const release = lu.locks.tryAcquire(lba, lba + blocks, LockMode.EXCLUSIVE) ?? (await lu.locks.acquire(lba, lba + blocks, LockMode.EXCLUSIVE));
  try {
    if (req.unmap && lu.thin && zero) {
      await deallocateBlocks(lu, lba, blocks);
    } else {
      try {
        if (zero) await lu.store.writeZeroes(lba * lu.blockSize, blocks * lu.blockSize);
        else await writePattern(lu, req.range, block!);
      } catch (err) {
        throw ioFailure(err, IoDirection.WRITE, lu.thin);
      }
    }
    await flushIfWriteThrough(lu);
  } finally {
    release();
  }
}

function writeSameRow(name: string, opcode: number, layout: typeof CdbLayout.TEN | typeof CdbLayout.SIXTEEN, usage: readonly number[]): CommandRow {
  return luCommand<WriteSameRequest>({
    name,
    opcode,
    cdbLength: layout,
    direction: DataDirection.OUT,
    reservation: ReservationClass.WRITE,
    usage,
    provides: {
      ...(layout === CdbLayout.TEN ? { writeSame10Unmap: true } : { writeSame16Unmap: true }),
      maxWriteSameBlocks: WRITE_SAME_MAX_BLOCKS,
      writeSameNonZero: true,
    },
    parse: (cdb, ctx) => parseWriteSame(cdb, ctx.lu, layout),
    dataOutLength: (req) => req.dataOutLength,
    execute: async (req, ctx, dataOut) => {
      if (hasExcessDataOut(ctx, req.dataOutLength)) {
        // Data-out despite NDOB=1 points at NDOB; more than one block is an inconsistent command IU.
        throw req.ndob ? invalidCdbField(1, 0) : new ScsiFailure('invalid-field-in-command-iu');
      }
      await executeWriteSame(req, ctx.lu, dataOut);
      return {};
    },
  });
}

const FF = 0xff;
// Byte 1: UNMAP (0x08), and NDOB (0x01) on WRITE SAME (16). No protection information, no ANCHOR, no group number.
export const WRITE_SAME_ROWS: readonly CommandRow[] = [
  writeSameRow('WRITE SAME (10)', Opcode.WRITE_SAME_10, CdbLayout.TEN, [Opcode.WRITE_SAME_10, 0x08, FF, FF, FF, FF, 0, FF, FF, 0]),
  writeSameRow('WRITE SAME (16)', Opcode.WRITE_SAME_16, CdbLayout.SIXTEEN, [
    Opcode.WRITE_SAME_16, 0x09, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0,
  ]),
];
