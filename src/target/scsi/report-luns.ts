/**
 * REPORT LUNS. Works on any LUN, present or not. SELECT REPORT 00h and 02h
 * list every logical unit; 01h (well known logical units only) lists none.
 * LUNs below 256 use peripheral device addressing, larger ones flat space
 * addressing (SAM-5 4.7). A REPORT LUNS clears a pending REPORTED LUNS DATA
 * HAS CHANGED unit attention of the nexus on every logical unit.
 */
import { anyLunCommand, CommandRow, DataDirection, ReservationClass } from './command-table';
import { truncate } from './data';
import { invalidCdbField } from './failures';
import { Opcode } from './opcodes';
import { UnitAttention } from './ua';

export const SelectReport = { ALL: 0x00, WELL_KNOWN: 0x01, ALL_ACCESSIBLE: 0x02 } as const;

export interface ReportLunsRequest {
  readonly selectReport: number;
  readonly allocationLength: number;
}

export function parseReportLuns(cdb: Buffer): ReportLunsRequest {
  const selectReport = cdb[2]!;
  if (selectReport !== SelectReport.ALL && selectReport !== SelectReport.WELL_KNOWN && selectReport !== SelectReport.ALL_ACCESSIBLE) {
    throw invalidCdbField(2, 7);
  }
  const allocationLength = cdb.readUInt32BE(6);
  if (allocationLength < 16) throw invalidCdbField(6, 7);
  return { selectReport, allocationLength };
}

/** The 8-byte LUN field for a flat LUN number (0..16383). */
export function encodeLun(lun: number): Buffer {
  const b = Buffer.alloc(8);
  if (lun < 256) {
    b[1] = lun;
  } else {
    b[0] = 0x40 | ((lun >> 8) & 0x3f);
    b[1] = lun & 0xff;
  }
  return b;
}

export function reportLunsData(luns: readonly number[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(luns.length * 8, 0);
  return Buffer.concat([head, ...luns.map(encodeLun)]);
}

const isLunsChanged = (c: { asc: number; ascq: number }): boolean =>
  c.asc === UnitAttention.REPORTED_LUNS_DATA_HAS_CHANGED.asc && c.ascq === UnitAttention.REPORTED_LUNS_DATA_HAS_CHANGED.ascq;

export const REPORT_LUNS_ROW: CommandRow = anyLunCommand<ReportLunsRequest>({
  name: 'REPORT LUNS',
  opcode: Opcode.REPORT_LUNS,
  cdbLength: 12,
  direction: DataDirection.IN,
  allowedWithPendingUa: true,
  reservation: ReservationClass.ALLOWED,
  usage: [Opcode.REPORT_LUNS, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
  parse: (cdb) => parseReportLuns(cdb),
  execute: (req, ctx) => {
    const luns = req.selectReport === SelectReport.WELL_KNOWN ? [] : ctx.device.luns();
    for (const lu of ctx.device.logicalUnits()) lu.unitAttentions.clear(ctx.cmd.nexus.key, isLunsChanged);
    return { dataIn: truncate(reportLunsData(luns), req.allocationLength) };
  },
});
