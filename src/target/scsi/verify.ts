/**
 * VERIFY (10/12/16).
 * BYTCHK=00b: the range is checked and nothing else happens (the store has
 *   no separate medium verification to run).
 * BYTCHK=01b: the data-out (one block per LBA) is compared with the medium;
 *   the first difference ends the command with MISCOMPARE and the offset
 *   into the data-out in INFORMATION.
 * BYTCHK=11b: one block of data-out is compared with every block of the range.
 * BYTCHK=10b is reserved.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { firstDifference, flatten } from './data';
import { invalidCdbField, ScsiFailure } from './failures';
import { ioFailure, IoDirection } from './io-errors';
import { LockMode } from './interval-lock';
import { BlockRange, CdbLayout, checkCapacity, checkTransferLength, readBlockRange, rejectProtection } from './lba';
import type { LogicalUnit } from './logical-unit';
import { Opcode } from './opcodes';

export const ByteCheck = { NONE: 0, FULL: 1, SINGLE_BLOCK: 3 } as const;
export type ByteCheck = (typeof ByteCheck)[keyof typeof ByteCheck];

export interface VerifyRequest {
  readonly range: BlockRange;
  readonly byteCheck: ByteCheck;
  /** Data-out bytes the CDB calls for. */
  readonly dataOutLength: number;
}

export function parseVerify(cdb: Buffer, lu: LogicalUnit, layout: CdbLayout): VerifyRequest {
  rejectProtection(cdb);
  const bytchk = (cdb[1]! >> 1) & 0x03;
  if (bytchk === 2) throw invalidCdbField(1, 2);
  const byteCheck = bytchk as ByteCheck;
  const range = readBlockRange(cdb, layout);
  checkCapacity(lu, range);
  if (byteCheck === ByteCheck.FULL) checkTransferLength(lu, range);
  const dataOutLength =
    byteCheck === ByteCheck.FULL ? range.blocks * lu.blockSize : byteCheck === ByteCheck.SINGLE_BLOCK && range.blocks > 0 ? lu.blockSize : 0;
  return { range, byteCheck, dataOutLength };
}

export async function executeVerify(req: VerifyRequest, lu: LogicalUnit, dataOut: readonly Buffer[]): Promise<void> {
  const { lba, blocks } = req.range;
  if (req.byteCheck === ByteCheck.NONE || blocks === 0) return;
  const release = lu.locks.tryAcquire(lba, lba + blocks, LockMode.SHARED) ?? (await lu.locks.acquire(lba, lba + blocks, LockMode.SHARED));
  let medium: Buffer;
  try {
    medium = await lu.store.read(lba * lu.blockSize, blocks * lu.blockSize);
  } catch (err) {
    throw ioFailure(err, IoDirection.READ, lu.thin);
  } finally {
    release();
  }
  if (req.byteCheck === ByteCheck.FULL) {
    const at = firstDifference(medium, dataOut);
    if (at >= 0) throw new ScsiFailure('miscompare-during-verify', { information: at });
    return;
  }
  const block = flatten(dataOut);
  for (let i = 0; i < blocks; i++) {
    const at = firstDifference(medium.subarray(i * lu.blockSize, (i + 1) * lu.blockSize), [block]);
    if (at >= 0) throw new ScsiFailure('miscompare-during-verify', { information: i * lu.blockSize + at });
  }
}

function verifyRow(name: string, opcode: number, layout: CdbLayout, usage: readonly number[]): CommandRow {
  return luCommand<VerifyRequest>({
    name,
    opcode,
    cdbLength: layout,
    direction: DataDirection.OUT,
    reservation: ReservationClass.READ,
    usage,
    parse: (cdb, ctx) => parseVerify(cdb, ctx.lu, layout),
    dataOutLength: (req) => req.dataOutLength,
    execute: async (req, ctx, dataOut) => {
      await executeVerify(req, ctx.lu, dataOut);
      return {};
    },
  });
}

const FF = 0xff;
// CDB usage data: DPO (0x10) and BYTCHK (0x06) in byte 1.
export const VERIFY_ROWS: readonly CommandRow[] = [
  verifyRow('VERIFY (10)', Opcode.VERIFY_10, CdbLayout.TEN, [Opcode.VERIFY_10, 0x16, FF, FF, FF, FF, 0, FF, FF, 0]),
  verifyRow('VERIFY (12)', Opcode.VERIFY_12, CdbLayout.TWELVE, [Opcode.VERIFY_12, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0]),
  verifyRow('VERIFY (16)', Opcode.VERIFY_16, CdbLayout.SIXTEEN, [
    Opcode.VERIFY_16, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0,
  ]),
];
