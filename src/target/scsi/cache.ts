/**
 * SYNCHRONIZE CACHE (10/16) and PRE-FETCH (10/16).
 *
 * SYNCHRONIZE CACHE checks the range and flushes the whole store (the store
 * has no per-range flush). NUMBER OF LOGICAL BLOCKS 0 means "to the end".
 * IMMED is accepted; status is returned once the flush completed, which is
 * never earlier than IMMED allows.
 *
 * PRE-FETCH checks the range and completes with GOOD: there is no cache to
 * load, and SBC says GOOD (not CONDITION MET) when the blocks could not all
 * be placed in the cache.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { ioFailure, IoDirection } from './io-errors';
import { BlockRange, CdbLayout, checkCapacity, readBlockRange } from './lba';
import type { LogicalUnit } from './logical-unit';
import { Opcode } from './opcodes';

export function parseCacheRange(cdb: Buffer, lu: LogicalUnit, layout: CdbLayout): BlockRange {
  const range = readBlockRange(cdb, layout);
  checkCapacity(lu, range);
  return range;
}

export async function executeSynchronizeCache(lu: LogicalUnit): Promise<void> {
  try {
    await lu.store.flush();
  } catch (err) {
    throw ioFailure(err, IoDirection.WRITE, lu.thin);
  }
}

function syncRow(name: string, opcode: number, layout: CdbLayout, usage: readonly number[]): CommandRow {
  return luCommand<BlockRange>({
    name,
    opcode,
    cdbLength: layout,
    direction: DataDirection.NONE,
    reservation: ReservationClass.WRITE,
    usage,
    parse: (cdb, ctx) => parseCacheRange(cdb, ctx.lu, layout),
    execute: async (_range, ctx) => {
      await executeSynchronizeCache(ctx.lu);
      return {};
    },
  });
}

function prefetchRow(name: string, opcode: number, layout: CdbLayout, usage: readonly number[]): CommandRow {
  return luCommand<BlockRange>({
    name,
    opcode,
    cdbLength: layout,
    direction: DataDirection.NONE,
    reservation: ReservationClass.READ,
    usage,
    parse: (cdb, ctx) => parseCacheRange(cdb, ctx.lu, layout),
    execute: () => ({}),
  });
}

const FF = 0xff;
// Byte 1: IMMED (0x02).
export const CACHE_ROWS: readonly CommandRow[] = [
  prefetchRow('PRE-FETCH (10)', Opcode.PRE_FETCH_10, CdbLayout.TEN, [Opcode.PRE_FETCH_10, 0x02, FF, FF, FF, FF, 0, FF, FF, 0]),
  syncRow('SYNCHRONIZE CACHE (10)', Opcode.SYNCHRONIZE_CACHE_10, CdbLayout.TEN, [Opcode.SYNCHRONIZE_CACHE_10, 0x02, FF, FF, FF, FF, 0, FF, FF, 0]),
  prefetchRow('PRE-FETCH (16)', Opcode.PRE_FETCH_16, CdbLayout.SIXTEEN, [
    Opcode.PRE_FETCH_16, 0x02, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0,
  ]),
  syncRow('SYNCHRONIZE CACHE (16)', Opcode.SYNCHRONIZE_CACHE_16, CdbLayout.SIXTEEN, [
    Opcode.SYNCHRONIZE_CACHE_16, 0x02, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0,
  ]),
];
