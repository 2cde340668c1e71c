/**
 * RECEIVE COPY RESULTS (0x84, SPC-4 6.18), the LID1 service actions:
 *
 * - COPY STATUS (0x00): the status held for the LIST IDENTIFIER in CDB byte
 *   2 by this nexus (a copy sent with LIST ID USAGE 00b), including a copy
 *   still running; INVALID FIELD IN CDB when nothing is held for it.
 * - OPERATING PARAMETERS (0x03): the copy manager's limits (COPY_LIMITS) and
 *   the descriptor type codes it implements.
 *
 * FAILED SEGMENT DETAILS and RECEIVE DATA are not implemented: the copy
 * manager holds no data.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import type { CopyStatus } from './copy-results';
import { truncate } from './data';
import { invalidCdbField } from './failures';
import type { LogicalUnit } from './logical-unit';
import { COPY_LIMITS, CopyDescriptor, CopyOpcode, ReceiveCopyResultsAction } from './third-party-copy';

export interface ReceiveCopyResultsRequest {
  readonly listId: number;
  readonly allocationLength: number;
}

export function parseReceiveCopyResults(cdb: Buffer): ReceiveCopyResultsRequest {
  return { listId: cdb[2]!, allocationLength: cdb.readUInt32BE(10) };
}

/** The copy status parameter data (12 bytes); the transfer count in the smallest unit that fits 32 bits. */
export function copyStatusData(s: CopyStatus): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(8, 0); // AVAILABLE DATA
  b[4] = s.status; // HDD=0
  b.writeUInt16BE(Math.min(s.segmentsProcessed, 0xffff), 5);
  let units = 0;
  let count = s.bytesTransferred;
  while (count > 0xffffffff) {
    count = Math.floor(count / 1024);
    units++;
  }
  b[7] = units; // TRANSFER COUNT UNITS: 0 bytes, 1 KiB, 2 MiB, ...
  b.writeUInt32BE(count, 8);
  return b;
}

const IMPLEMENTED_DESCRIPTORS = [CopyDescriptor.BLOCK_TO_BLOCK, CopyDescriptor.IDENTIFICATION];

export function operatingParametersData(lu: LogicalUnit): Buffer {
  const b = Buffer.alloc(44 + IMPLEMENTED_DESCRIPTORS.length);
  b.writeUInt32BE(b.length - 4, 0); // AVAILABLE DATA
  b[4] = 0x01; // SNLID: LIST ID USAGE 11b is supported
  b.writeUInt16BE(COPY_LIMITS.maxCscdDescriptors, 8);
  b.writeUInt16BE(COPY_LIMITS.maxSegmentDescriptors, 10);
  b.writeUInt32BE(COPY_LIMITS.maxDescriptorListLength, 12);
  b.writeUInt32BE(COPY_LIMITS.maxSegmentBytes, 16);
  // MAXIMUM INLINE DATA LENGTH, HELD DATA LIMIT, MAXIMUM STREAM DEVICE TRANSFER SIZE: 0 (none).
  b.writeUInt16BE(COPY_LIMITS.maxConcurrentCopies, 34); // TOTAL CONCURRENT COPIES
  b[36] = COPY_LIMITS.maxConcurrentCopies; // MAXIMUM CONCURRENT COPIES
  b[37] = Math.log2(lu.blockSize); // DATA SEGMENT GRANULARITY (log2 bytes)
  // INLINE DATA GRANULARITY, HELD DATA GRANULARITY: 0.
  b[43] = IMPLEMENTED_DESCRIPTORS.length;
  IMPLEMENTED_DESCRIPTORS.forEach((code, i) => (b[44 + i] = code));
  return b;
}

const usage = (sa: number): number[] => [CopyOpcode.RECEIVE_COPY_RESULTS, sa, sa === ReceiveCopyResultsAction.COPY_STATUS ? 0xff : 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0];

export const RECEIVE_COPY_RESULTS_ROWS: readonly CommandRow[] = [
  luCommand<ReceiveCopyResultsRequest>({
    name: 'RECEIVE COPY STATUS (LID1)',
    opcode: CopyOpcode.RECEIVE_COPY_RESULTS,
    serviceAction: ReceiveCopyResultsAction.COPY_STATUS,
    cdbLength: 16,
    direction: DataDirection.IN,
    reservation: ReservationClass.READ,
    usage: usage(ReceiveCopyResultsAction.COPY_STATUS),
    parse: (cdb) => parseReceiveCopyResults(cdb),
    execute: (req, ctx) => {
      const status = ctx.lu.copyResults.status(ctx.cmd.nexus.key, req.listId);
      if (!status) throw invalidCdbField(2, 7);
      return { dataIn: truncate(copyStatusData(status), req.allocationLength) };
    },
  }),
  luCommand<ReceiveCopyResultsRequest>({
    name: 'RECEIVE COPY OPERATING PARAMETERS',
    opcode: CopyOpcode.RECEIVE_COPY_RESULTS,
    serviceAction: ReceiveCopyResultsAction.OPERATING_PARAMETERS,
    cdbLength: 16,
    direction: DataDirection.IN,
    reservation: ReservationClass.READ,
    usage: usage(ReceiveCopyResultsAction.OPERATING_PARAMETERS),
    parse: (cdb) => parseReceiveCopyResults(cdb),
    execute: (req, ctx) => ({ dataIn: truncate(operatingParametersData(ctx.lu), req.allocationLength) }),
  }),
];
