/**
 * REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN / 0x0C). Everything it
 * reports comes from the command table: the list of commands, their CDB
 * lengths, service actions, CDB usage data and timeouts.
 *
 * REPORTING OPTIONS:
 *   000b all commands;
 *   001b one command by opcode (INVALID FIELD IN CDB if the opcode has service actions);
 *   010b one command by opcode + service action (INVALID FIELD IN CDB if it has none);
 *   011b one command by opcode + service action, either kind of opcode
 *        (a non-zero service action for an opcode without them is "not supported").
 * RCTD adds a command timeouts descriptor to every descriptor.
 */
import { CommandRow, CommandTable, DataDirection, luCommand, ReservationClass } from './command-table';
import { truncate } from './data';
import { invalidCdbField } from './failures';
import { MaintenanceIn, Opcode } from './opcodes';

export const ReportingOptions = { ALL: 0, OPCODE: 1, OPCODE_AND_SERVICE_ACTION: 2, OPCODE_AND_OPTIONAL_SERVICE_ACTION: 3 } as const;

/** SUPPORT field of the one_command format. */
export const CommandSupport = { NOT_AVAILABLE: 0, NOT_SUPPORTED: 1, SUPPORTED: 3 } as const;

export interface RsocRequest {
  readonly rctd: boolean;
  readonly options: number;
  readonly opcode: number;
  readonly serviceAction: number;
  readonly allocationLength: number;
}

export function parseRsoc(cdb: Buffer): RsocRequest {
  const options = cdb[2]! & 0x07;
  if (options > ReportingOptions.OPCODE_AND_OPTIONAL_SERVICE_ACTION) throw invalidCdbField(2, 2);
  return {
    rctd: (cdb[2]! & 0x80) !== 0,
    options,
    opcode: cdb[3]!,
    serviceAction: cdb.readUInt16BE(4),
    allocationLength: cdb.readUInt32BE(6),
  };
}

export function timeoutsDescriptor(row: CommandRow): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(0x0a, 0);
  b.writeUInt32BE(row.timeouts.nominal, 4);
  b.writeUInt32BE(row.timeouts.recommended, 8);
  return b;
}

export function allCommandsData(table: CommandTable, rctd: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const row of table.rows()) {
    const d = Buffer.alloc(8);
    d[0] = row.opcode;
    if (row.serviceAction !== undefined) d.writeUInt16BE(row.serviceAction, 2);
    d[5] = (rctd ? 0x02 : 0) | (row.serviceAction !== undefined ? 0x01 : 0); // CTDP, SERVACTV
    d.writeUInt16BE(row.cdbLength, 6);
    parts.push(d);
    if (rctd) parts.push(timeoutsDescriptor(row));
  }
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

export function oneCommandData(row: CommandRow | undefined, rctd: boolean): Buffer {
  if (!row) return Buffer.from([0, CommandSupport.NOT_SUPPORTED, 0, 0]);
  const head = Buffer.alloc(4);
  head[1] = (rctd ? 0x80 : 0) | CommandSupport.SUPPORTED;
  head.writeUInt16BE(row.cdbLength, 2);
  const parts: Buffer[] = [head, Buffer.from(row.usage)];
  if (rctd) parts.push(timeoutsDescriptor(row));
  return Buffer.concat(parts);
}

export function rsocData(table: CommandTable, req: RsocRequest): Buffer {
  switch (req.options) {
    case ReportingOptions.ALL:
      return allCommandsData(table, req.rctd);
    case ReportingOptions.OPCODE:
      if (table.hasServiceActions(req.opcode)) throw invalidCdbField(3, 7);
      return oneCommandData(table.find(req.opcode), req.rctd);
    case ReportingOptions.OPCODE_AND_SERVICE_ACTION:
      if (!table.hasServiceActions(req.opcode)) throw invalidCdbField(3, 7);
      return oneCommandData(table.find(req.opcode, req.serviceAction), req.rctd);
    default:
      if (table.hasServiceActions(req.opcode)) return oneCommandData(table.find(req.opcode, req.serviceAction), req.rctd);
      return oneCommandData(req.serviceAction === 0 ? table.find(req.opcode) : undefined, req.rctd);
  }
}

export const RSOC_ROW: CommandRow = luCommand<RsocRequest>({
  name: 'REPORT SUPPORTED OPERATION CODES',
  opcode: Opcode.MAINTENANCE_IN,
  serviceAction: MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES,
  cdbLength: 12,
  direction: DataDirection.IN,
  reservation: ReservationClass.ALLOWED,
  usage: [Opcode.MAINTENANCE_IN, MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
  parse: (cdb) => parseRsoc(cdb),
  execute: (req, ctx) => ({ dataIn: truncate(rsocData(ctx.device.commands, req), req.allocationLength) }),
});
