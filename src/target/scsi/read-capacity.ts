/** READ CAPACITY (10) and READ CAPACITY (16) (SERVICE ACTION IN (16) / 0x10). */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { truncate } from './data';
import { invalidCdbField } from './failures';
import type { LogicalUnit } from './logical-unit';
import { Opcode, ServiceActionIn16 } from './opcodes';
import { provisioning } from './provisioning';
import type { CommandCapabilities } from './command-table';

function lastLba(lu: LogicalUnit): number {
  return Math.max(0, lu.blockCount - 1);
}

export function readCapacity10Data(lu: LogicalUnit): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.min(lastLba(lu), 0xffffffff), 0);
  b.writeUInt32BE(lu.blockSize, 4);
  return b;
}

export function readCapacity16Data(lu: LogicalUnit, caps: CommandCapabilities): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64BE(BigInt(lastLba(lu)), 0);
  b.writeUInt32BE(lu.blockSize, 8);
  // byte 12: P_TYPE / PROT_EN = 0 (no protection information)
  b[13] = lu.physicalBlockExponent & 0x0f; // P_I_EXPONENT 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
  const p = provisioning(lu, caps);
  b[14] = (p.lbpme ? 0x80 : 0) | (p.lbprz ? 0x40 : 0); // LOWEST ALIGNED LBA = 0
  return b;
}

export const READ_CAPACITY_ROWS: readonly CommandRow[] = [
  luCommand<void>({
    name: 'READ CAPACITY (10)',
    opcode: Opcode.READ_CAPACITY_10,
    cdbLength: 10,
    direction: DataDirection.IN,
    reservation: ReservationClass.ALLOWED,
    usage: [Opcode.READ_CAPACITY_10, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0],
    parse: (cdb) => {
      // SBC-3: with PMI=0 the LOGICAL BLOCK ADDRESS field must be zero.
      if ((cdb[8]! & 0x01) === 0 && cdb.readUInt32BE(2) !== 0) throw invalidCdbField(2, 7);
    },
    execute: (_p, ctx) => ({ dataIn: readCapacity10Data(ctx.lu) }),
  }),
  luCommand<number>({
    name: 'READ CAPACITY (16)',
    opcode: Opcode.SERVICE_ACTION_IN_16,
    serviceAction: ServiceActionIn16.READ_CAPACITY_16,
    cdbLength: 16,
    direction: DataDirection.IN,
    reservation: ReservationClass.ALLOWED,
    usage: [Opcode.SERVICE_ACTION_IN_16, ServiceActionIn16.READ_CAPACITY_16, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
    parse: (cdb) => cdb.readUInt32BE(10),
    execute: (allocationLength, ctx) => ({ dataIn: truncate(readCapacity16Data(ctx.lu, ctx.device.commands.capabilities), allocationLength) }),
  }),
];
