/**
 * RESERVE (6)/(10) and RELEASE (6)/(10): SCSI-2 logical unit reservations
 * (SPC-2 7.21, 7.22, 7.11, 7.12), kept by SPC-4 only for the compatible
 * reservation handling of 5.13.3 (reservations/scsi2.ts).
 *
 * Only whole-unit reservations for the requesting I_T nexus: third-party
 * reservations (3RDPTY, LONGID) and extents are rejected with INVALID FIELD
 * IN CDB, and RESERVE (10) / RELEASE (10) then carry no parameter list
 * (PARAMETER LIST LENGTH must be 0).
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { invalidCdbField } from './failures';
import { Opcode } from './opcodes';
import { ReservationOpcode } from './reservations';
import { ScsiStatus } from './types';

const Bit = { THIRD_PARTY: 0x10, LONG_ID: 0x02, EXTENT: 0x01 } as const;

export function parseReserveRelease(cdb: Buffer, ten: boolean): void {
  if (cdb[1]! & Bit.THIRD_PARTY) throw invalidCdbField(1, 4);
  if (ten && cdb[1]! & Bit.LONG_ID) throw invalidCdbField(1, 1);
  if (cdb[1]! & Bit.EXTENT) throw invalidCdbField(1, 0);
  if (ten && cdb.readUInt16BE(7) !== 0) throw invalidCdbField(7, 7);
}

function row(name: string, opcode: number, ten: boolean, reserve: boolean): CommandRow {
  return luCommand<void>({
    name,
    opcode,
    cdbLength: ten ? 10 : 6,
    direction: DataDirection.NONE,
    // Allowed past every persistent reservation: the CRH rules are the command's own (reservations/scsi2.ts).
    reservation: ReservationClass.ALLOWED,
    usage: ten ? [opcode, 0, 0, 0, 0, 0, 0, 0, 0, 0] : [opcode, 0, 0, 0, 0, 0],
    parse: (cdb) => parseReserveRelease(cdb, ten),
    execute: async (_req, ctx) => {
      const conflict = reserve ? await ctx.lu.reservations.reserve(ctx.cmd.nexus) : await ctx.lu.reservations.release(ctx.cmd.nexus);
      return conflict ? { status: ScsiStatus.RESERVATION_CONFLICT } : {};
    },
  });
}

export const RESERVE_RELEASE_ROWS: readonly CommandRow[] = [
  row('RESERVE (6)', Opcode.RESERVE_6, false, true),
  row('RELEASE (6)', Opcode.RELEASE_6, false, false),
  row('RESERVE (10)', ReservationOpcode.RESERVE_10, true, true),
  row('RELEASE (10)', ReservationOpcode.RELEASE_10, true, false),
];
