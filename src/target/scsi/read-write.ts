/**
 * READ (6/10/12/16), WRITE (6/10/12/16) and WRITE AND VERIFY (10/12/16).
 *
 * Hot path: READ returns the one Buffer the store produced (lent to the
 * transport, which releases it once sent, when the store's pool lent it); WRITE hands the
 * data-out vector (trimmed to the CDB's length, never concatenated) to
 * store.writev.
 *
 * DPO is accepted and ignored (there is no cache to keep blocks out of).
 * FUA on a write asks the store for a durable write; with WCE=0 in the
 * caching mode page every write is FUA. FUA on a read needs no action: the
 * store has no read cache that could hold data older than the last
 * completed write, so a plain read already returns what is on the medium
 * (and durability of earlier writes is SYNCHRONIZE CACHE's business).
 */
import { isPooledReadBuffer, releaseReadBuffer } from '../../block';
import { CommandResult, CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { EMPTY, firstDifference } from './data';
import { invalidCdbField, ScsiFailure } from './failures';
import { ioFailure, IoDirection } from './io-errors';
import { LockMode, Release } from './interval-lock';
import { BlockRange, CdbLayout, checkCapacity, checkTransferLength, checkWritable, readBlockRange, rejectProtection } from './lba';
import type { LogicalUnit } from './logical-unit';
import { Opcode } from './opcodes';

export interface ReadRequest {
  readonly range: BlockRange;
  readonly fua: boolean;
}

export interface WriteRequest {
  readonly range: BlockRange;
  readonly fua: boolean;
}

export interface WriteVerifyRequest {
  readonly range: BlockRange;
  /** Compare the data read back with the data-out. */
  readonly byteCheck: boolean;
}

/** READ/WRITE (6): transfer length 0 means 256 blocks. */
function sixByteRange(cdb: Buffer): BlockRange {
  const r = readBlockRange(cdb, CdbLayout.SIX);
  return r.blocks === 0 ? { ...r, blocks: 256 } : r;
}

function mediumRange(cdb: Buffer, layout: CdbLayout): BlockRange {
  if (layout === CdbLayout.SIX) return sixByteRange(cdb);
  rejectProtection(cdb);
  return readBlockRange(cdb, layout);
}

export function parseRead(cdb: Buffer, lu: LogicalUnit, layout: CdbLayout): ReadRequest {
  const range = mediumRange(cdb, layout);
  checkCapacity(lu, range);
  checkTransferLength(lu, range);
  return { range, fua: layout !== CdbLayout.SIX && (cdb[1]! & 0x08) !== 0 };
}

// executeRead and executeWrite are the data path: plain functions over the
// store's promise with one reaction (unlock and build the command's result)
// rather than async functions, and the range lock is taken without a promise
// when it is free.

/** Read under a shared range lock; the result lends the data to the transport when it came from the block layer's pool. */
export function executeRead(req: ReadRequest, lu: LogicalUnit): Promise<CommandResult> {
  const { lba, blocks } = req.range;
  if (blocks === 0) return Promise.resolve(NO_DATA_READ);
  const release = lu.locks.tryAcquire(lba, lba + blocks, LockMode.SHARED);
  if (release === null) return lu.locks.acquire(lba, lba + blocks, LockMode.SHARED).then((granted) => readLocked(lu, lba, blocks, granted));
  return readLocked(lu, lba, blocks, release);
}

function readLocked(lu: LogicalUnit, lba: number, blocks: number, release: Release): Promise<CommandResult> {
  let io: Promise<Buffer>;
  try {
    io = lu.store.read(lba * lu.blockSize, blocks * lu.blockSize);
  } catch (err) {
    release();
    return Promise.reject(ioFailure(err, IoDirection.READ, lu.thin));
  }
  return io.then(
    (data) => {
      release();
      return readResult(data);
    },
    (err: unknown) => {
      release();
      throw ioFailure(err, IoDirection.READ, lu.thin);
    },
  );
}

/** A READ's data, lent to the transport when it came from the block layer's pool. */
function readResult(dataIn: Buffer): CommandResult {
  if (!isPooledReadBuffer(dataIn)) return { dataIn };
  return { dataIn, release: () => releaseReadBuffer(dataIn) };
}

const NO_DATA_READ: CommandResult = { dataIn: EMPTY };

export function parseWrite(cdb: Buffer, lu: LogicalUnit, layout: CdbLayout): WriteRequest {
  const range = mediumRange(cdb, layout);
  checkCapacity(lu, range);
  checkTransferLength(lu, range);
  checkWritable(lu);
  return { range, fua: layout !== CdbLayout.SIX && (cdb[1]! & 0x08) !== 0 };
}

/** Write under an exclusive range lock, durably when FUA is set or the write cache is off (WCE=0). */
export function executeWrite(req: WriteRequest, lu: LogicalUnit, dataOut: readonly Buffer[]): Promise<CommandResult> {
  const { lba, blocks } = req.range;
  if (blocks === 0) return Promise.resolve(WRITTEN);
  const fua = req.fua || !lu.mode.writeCacheEnabled;
  const release = lu.locks.tryAcquire(lba, lba + blocks, LockMode.EXCLUSIVE);
  if (release === null) {
    return lu.locks.acquire(lba, lba + blocks, LockMode.EXCLUSIVE).then((granted) => writeLocked(lu, lba, dataOut, fua, granted));
  }
  return writeLocked(lu, lba, dataOut, fua, release);
}

function writeLocked(lu: LogicalUnit, lba: number, dataOut: readonly Buffer[], fua: boolean, release: Release): Promise<CommandResult> {
  let io: Promise<void>;
  try {
    io = lu.store.writev(lba * lu.blockSize, dataOut, { fua });
  } catch (err) {
    release();
    return Promise.reject(ioFailure(err, IoDirection.WRITE, lu.thin));
  }
  return io.then(
    () => {
      release();
      return WRITTEN;
    },
    (err: unknown) => {
      release();
      throw ioFailure(err, IoDirection.WRITE, lu.thin);
    },
  );
}

/** A WRITE's result: GOOD, nothing else (one shared object). */
const WRITTEN: CommandResult = {};

export function parseWriteAndVerify(cdb: Buffer, lu: LogicalUnit, layout: CdbLayout): WriteVerifyRequest {
  rejectProtection(cdb);
  const bytchk = (cdb[1]! >> 1) & 0x03;
  if (bytchk > 1) throw invalidCdbField(1, 2);
  const range = readBlockRange(cdb, layout);
  checkCapacity(lu, range);
  checkTransferLength(lu, range);
  checkWritable(lu);
  return { range, byteCheck: bytchk === 1 };
}

/** Write durably, then (BYTCHK=1) read back and compare, all under one exclusive range lock. */
export async function executeWriteAndVerify(req: WriteVerifyRequest, lu: LogicalUnit, dataOut: readonly Buffer[]): Promise<void> {
  const { lba, blocks } = req.range;
  if (blocks === 0) return;
  const release = lu.locks.tryAcquire(lba, lba + blocks, LockMode.EXCLUSIVE) ?? (await lu.locks.acquire(lba, lba + blocks, LockMode.EXCLUSIVE));
  try {
    try {
      await lu.store.writev(lba * lu.blockSize, dataOut, { fua: true });
    } catch (err) {
      throw ioFailure(err, IoDirection.WRITE, lu.thin);
    }
    if (!req.byteCheck) return;
    let readBack: Buffer;
    try {
      readBack = await lu.store.read(lba * lu.blockSize, blocks * lu.blockSize);
    } catch (err) {
      throw ioFailure(err, IoDirection.READ, lu.thin);
    }
    const at = firstDifference(readBack, dataOut);
    if (at >= 0) throw new ScsiFailure('miscompare-during-verify', { information: at });
  } finally {
    release();
  }
}

const dataLength = (lu: LogicalUnit, range: BlockRange): number => range.blocks * lu.blockSize;

/** A media write cut to the whole blocks the initiator actually sent; null for a partial block. */
function shortenToBlocks<R extends { range: BlockRange; bytes: number }>(req: R, bytes: number, lu: LogicalUnit): R | null {
  if (bytes % lu.blockSize !== 0 || bytes > req.bytes) return null;
  return { ...req, range: { ...req.range, blocks: bytes / lu.blockSize }, bytes };
}

function readRow(name: string, opcode: number, layout: CdbLayout, usage: readonly number[]): CommandRow {
  return luCommand<ReadRequest>({
    name,
    opcode,
    cdbLength: layout,
    direction: DataDirection.IN,
    reservation: ReservationClass.READ,
    usage,
    parse: (cdb, ctx) => parseRead(cdb, ctx.lu, layout),
    execute: (req, ctx) => executeRead(req, ctx.lu),
  });
}

function writeRow(name: string, opcode: number, layout: CdbLayout, usage: readonly number[]): CommandRow {
  return luCommand<WriteRequest & { bytes: number }>({
    name,
    opcode,
    cdbLength: layout,
    direction: DataDirection.OUT,
    reservation: ReservationClass.WRITE,
    usage,
    parse: (cdb, ctx) => {
      const req = parseWrite(cdb, ctx.lu, layout);
      return { range: req.range, fua: req.fua, bytes: dataLength(ctx.lu, req.range) };
    },
    dataOutLength: (req) => req.bytes,
    shorten: (req, bytes, ctx) => shortenToBlocks(req, bytes, ctx.lu),
    execute: (req, ctx, dataOut) => executeWrite(req, ctx.lu, dataOut),
  });
}

function writeAndVerifyRow(name: string, opcode: number, layout: CdbLayout, usage: readonly number[]): CommandRow {
  return luCommand<WriteVerifyRequest & { bytes: number }>({
    name,
    opcode,
    cdbLength: layout,
    direction: DataDirection.OUT,
    reservation: ReservationClass.WRITE,
    usage,
    parse: (cdb, ctx) => {
      const req = parseWriteAndVerify(cdb, ctx.lu, layout);
      return { ...req, bytes: dataLength(ctx.lu, req.range) };
    },
    dataOutLength: (req) => req.bytes,
    shorten: (req, bytes, ctx) => shortenToBlocks(req, bytes, ctx.lu),
    execute: async (req, ctx, dataOut) => {
      await executeWriteAndVerify(req, ctx.lu, dataOut);
      return {};
    },
  });
}

const FF = 0xff;
// CDB usage data: DPO (0x10) and FUA (0x08) in byte 1; protection fields are not supported.
export const READ_WRITE_ROWS: readonly CommandRow[] = [
  readRow('READ (6)', Opcode.READ_6, CdbLayout.SIX, [Opcode.READ_6, 0x1f, FF, FF, FF, 0]),
  readRow('READ (10)', Opcode.READ_10, CdbLayout.TEN, [Opcode.READ_10, 0x18, FF, FF, FF, FF, 0, FF, FF, 0]),
  readRow('READ (12)', Opcode.READ_12, CdbLayout.TWELVE, [Opcode.READ_12, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0]),
  readRow('READ (16)', Opcode.READ_16, CdbLayout.SIXTEEN, [Opcode.READ_16, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0]),
  writeRow('WRITE (6)', Opcode.WRITE_6, CdbLayout.SIX, [Opcode.WRITE_6, 0x1f, FF, FF, FF, 0]),
  writeRow('WRITE (10)', Opcode.WRITE_10, CdbLayout.TEN, [Opcode.WRITE_10, 0x18, FF, FF, FF, FF, 0, FF, FF, 0]),
  writeRow('WRITE (12)', Opcode.WRITE_12, CdbLayout.TWELVE, [Opcode.WRITE_12, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0]),
  writeRow('WRITE (16)', Opcode.WRITE_16, CdbLayout.SIXTEEN, [Opcode.WRITE_16, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0]),
  // WRITE AND VERIFY: DPO (0x10) and BYTCHK (0x06, values 0 and 1).
  writeAndVerifyRow('WRITE AND VERIFY (10)', Opcode.WRITE_AND_VERIFY_10, CdbLayout.TEN, [Opcode.WRITE_AND_VERIFY_10, 0x16, FF, FF, FF, FF, 0, FF, FF, 0]),
  writeAndVerifyRow('WRITE AND VERIFY (12)', Opcode.WRITE_AND_VERIFY_12, CdbLayout.TWELVE, [
    Opcode.WRITE_AND_VERIFY_12, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0,
  ]),
  writeAndVerifyRow('WRITE AND VERIFY (16)', Opcode.WRITE_AND_VERIFY_16, CdbLayout.SIXTEEN, [
    Opcode.WRITE_AND_VERIFY_16, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0,
  ]),
];
