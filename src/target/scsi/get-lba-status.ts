/**
 * GET LBA STATUS (SERVICE ACTION IN (16) / 0x12): the provisioning status
 * of the LBAs from STARTING LOGICAL BLOCK ADDRESS on, as LBA status
 * descriptors (LBA, NUMBER OF LOGICAL BLOCKS, PROVISIONING STATUS 0 =
 * mapped, 1 = deallocated) read from store.allocationStatus. The first
 * descriptor starts at the requested LBA; adjacent extents with the same
 * status are merged; the response holds as many descriptors as the
 * allocation length has room for (at least one, at most MAX_DESCRIPTORS),
 * so the work per command is bounded. A block only partly backed by data
 * counts as mapped. A fully provisioned LU reports everything mapped.
 *
 * A STARTING LOGICAL BLOCK ADDRESS past the last LBA is LOGICAL BLOCK
 * ADDRESS OUT OF RANGE.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { EMPTY, truncate } from './data';
import { ScsiFailure } from './failures';
import { ioFailure, IoDirection } from './io-errors';
import { CdbLayout, readBlockRange } from './lba';
import type { LogicalUnit } from './logical-unit';
import { Opcode, ServiceActionIn16 } from './opcodes';

export const ProvisioningStatus = { MAPPED: 0, DEALLOCATED: 1 } as const;
export type ProvisioningStatus = (typeof ProvisioningStatus)[keyof typeof ProvisioningStatus];

/** Most descriptors returned by one command. */
export const MAX_DESCRIPTORS = 64;

const HEADER_LENGTH = 8;
const DESCRIPTOR_LENGTH = 16;
/** NUMBER OF LOGICAL BLOCKS is a 32-bit field. */
const MAX_DESCRIPTOR_BLOCKS = 0xffffffff;

export interface GetLbaStatusRequest {
  readonly lba: number;
  readonly allocationLength: number;
}

export interface LbaStatus {
  readonly lba: number;
  blocks: number;
  readonly status: ProvisioningStatus;
}

export function parseGetLbaStatus(cdb: Buffer, lu: LogicalUnit): GetLbaStatusRequest {
  const lba = readBlockRange(cdb, CdbLayout.SIXTEEN).lba;
  if (lba >= lu.blockCount) throw new ScsiFailure('lba-out-of-range');
  return { lba, allocationLength: cdb.readUInt32BE(10) };
}

/** Up to `max` status extents from `start` (at least one when start is in range). */
export async function lbaStatus(lu: LogicalUnit, start: number, max: number): Promise<LbaStatus[]> {
  const bs = lu.blockSize;
  const end = lu.blockCount;
  const query = async (offset: number) => {
    try {
      return await lu.store.allocationStatus(offset, end * bs - offset);
    } catch (err) {
      throw ioFailure(err, IoDirection.READ, lu.thin);
    }
  };
  const out: LbaStatus[] = [];
  // Each round adds a descriptor or grows the last one; bound the rounds
  // too, for stores that report many small extents.
  for (let lba = start, rounds = 0; lba < end && rounds < 4 * max; rounds++) {
    const extent = await query(lba * bs);
    let extentEnd = extent.offset + extent.length;
    let status: ProvisioningStatus = ProvisioningStatus.MAPPED;
    let next: number;
    if (extent.mapped) {
      // A mapped extent maps every block it touches.
      next = Math.ceil(extentEnd / bs);
    } else {
      // A hole covers the blocks it covers whole: follow it to a block boundary.
      while (extentEnd % bs !== 0 && extentEnd < end * bs) {
        const more = await query(extentEnd);
        if (more.mapped) break;
        extentEnd = more.offset + more.length;
      }
      next = Math.floor(extentEnd / bs);
      if (next > lba) status = ProvisioningStatus.DEALLOCATED;
      else next = lba + 1; // the block holds some data
    }
    next = Math.min(next, end);
    const last = out[out.length - 1];
    if (last && last.status === status && last.lba + last.blocks === lba && last.blocks + (next - lba) <= MAX_DESCRIPTOR_BLOCKS) {
      last.blocks += next - lba;
    } else {
      if (out.length === max) break;
      next = Math.min(next, lba + MAX_DESCRIPTOR_BLOCKS);
      out.push({ lba, blocks: next - lba, status });
    }
    lba = next;
  }
  return out;
}

export function lbaStatusData(extents: readonly LbaStatus[]): Buffer {
  const b = Buffer.alloc(HEADER_LENGTH + extents.length * DESCRIPTOR_LENGTH);
  b.writeUInt32BE(b.length - 4, 0); // PARAMETER DATA LENGTH
  extents.forEach((e, i) => {
    const at = HEADER_LENGTH + i * DESCRIPTOR_LENGTH;
    b.writeBigUInt64BE(BigInt(e.lba), at);
    b.writeUInt32BE(e.blocks, at + 8);
    b[at + 12] = e.status;
  });
  return b;
}

export async function executeGetLbaStatus(req: GetLbaStatusRequest, lu: LogicalUnit): Promise<Buffer> {
  if (req.allocationLength === 0) return EMPTY;
  const room = Math.floor((req.allocationLength - HEADER_LENGTH) / DESCRIPTOR_LENGTH);
  const max = Math.max(1, Math.min(MAX_DESCRIPTORS, room));
  return truncate(lbaStatusData(await lbaStatus(lu, req.lba, max)), req.allocationLength);
}

const FF = 0xff;

export const GET_LBA_STATUS_ROW: CommandRow = luCommand<GetLbaStatusRequest>({
  name: 'GET LBA STATUS',
  opcode: Opcode.SERVICE_ACTION_IN_16,
  serviceAction: ServiceActionIn16.GET_LBA_STATUS,
  cdbLength: 16,
  direction: DataDirection.IN,
  // Reads provisioning state only: allowed under Write Exclusive, conflicts with Exclusive Access, like READ.
  reservation: ReservationClass.READ,
  usage: [Opcode.SERVICE_ACTION_IN_16, ServiceActionIn16.GET_LBA_STATUS, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0],
  parse: (cdb, ctx) => parseGetLbaStatus(cdb, ctx.lu),
  execute: async (req, ctx) => ({ dataIn: await executeGetLbaStatus(req, ctx.lu) }),
});
