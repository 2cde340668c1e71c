/**
 * REQUEST SENSE. Returns (and clears) the next pending unit attention of the
 * nexus, else NO SENSE; on a LUN with no logical unit it returns LOGICAL
 * UNIT NOT SUPPORTED as parameter data with GOOD status (SPC-4). There are
 * no deferred errors: every command completes only after its I/O did. DESC
 * selects descriptor format sense data, whatever D_SENSE says.
 */
import { anyLunCommand, CommandRow, DataDirection, ReservationClass } from './command-table';
import { truncate } from './data';
import { FAILURE_SENSE, SenseKey } from './failures';
import { Opcode } from './opcodes';
import { buildSense, SenseFormat } from './sense';

export interface RequestSenseRequest {
  readonly format: SenseFormat;
  readonly allocationLength: number;
}

export function parseRequestSense(cdb: Buffer): RequestSenseRequest {
  return { format: cdb[1]! & 0x01 ? SenseFormat.DESCRIPTOR : SenseFormat.FIXED, allocationLength: cdb[4]! };
}

export const REQUEST_SENSE_ROW: CommandRow = anyLunCommand<RequestSenseRequest>({
  name: 'REQUEST SENSE',
  opcode: Opcode.REQUEST_SENSE,
  cdbLength: 6,
  direction: DataDirection.IN,
  allowedWithPendingUa: true,
  reservation: ReservationClass.ALLOWED,
  usage: [Opcode.REQUEST_SENSE, 0x01, 0, 0, 0xff, 0],
  parse: (cdb) => parseRequestSense(cdb),
  execute: (req, ctx) => {
    let fields: { key: number; asc: number; ascq: number } = FAILURE_SENSE['no-sense'];
    if (!ctx.lu) {
      fields = FAILURE_SENSE['lun-not-supported'];
    } else {
      const ua = ctx.lu.unitAttentions.take(ctx.cmd.nexus.key);
      if (ua) fields = { key: SenseKey.UNIT_ATTENTION, asc: ua.asc, ascq: ua.ascq };
    }
    const sense = buildSense({ key: fields.key, asc: fields.asc, ascq: fields.ascq }, req.format);
    return { dataIn: truncate(sense, req.allocationLength) };
  },
});
