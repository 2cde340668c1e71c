/**
 * REPORT TARGET PORT GROUPS (MAINTENANCE IN / 0x0A, SPC-4 6.36).
 *
 * One descriptor per target port group of the pair, in configuration order,
 * with the group's access state for the addressed logical unit. PARAMETER
 * DATA FORMAT 000b is the length-only header (4 bytes), 001b the extended
 * header (8 bytes, with the implicit transition time); other formats are
 * INVALID FIELD IN CDB. A group's port list is its configured ports plus,
 * for the group of the port the command came through, that port.
 */
import { ALUA_STATE_CODE, AluaGroups, effectiveState, SUPPORTED_STATES_BITS } from './alua';
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { truncate } from './data';
import { invalidCdbField } from './failures';
import type { LogicalUnit } from './logical-unit';
import { MaintenanceIn, Opcode } from './opcodes';

export const RtpgFormat = { LENGTH: 0, EXTENDED: 1 } as const;

export interface RtpgRequest {
  readonly format: number;
  readonly allocationLength: number;
}

export function parseRtpg(cdb: Buffer): RtpgRequest {
  const format = cdb[1]! >> 5;
  if (format !== RtpgFormat.LENGTH && format !== RtpgFormat.EXTENDED) throw invalidCdbField(1, 7);
  return { format, allocationLength: cdb.readUInt32BE(6) };
}

function groupDescriptor(alua: AluaGroups, lu: LogicalUnit, groupId: number, ports: readonly number[], preferred: boolean): Buffer {
  const d = Buffer.alloc(8 + 4 * ports.length);
  d[0] = (preferred ? 0x80 : 0) | ALUA_STATE_CODE[effectiveState(alua, lu, groupId)];
  d[1] = SUPPORTED_STATES_BITS;
  d.writeUInt16BE(groupId, 2);
  d[5] = alua.statusCode(groupId);
  d[7] = ports.length;
  ports.forEach((p, i) => d.writeUInt16BE(p, 8 + 4 * i + 2));
  return d;
}

export function rtpgData(alua: AluaGroups, lu: LogicalUnit, viaPort: number, format: number): Buffer {
  const viaGroup = alua.groupOfPort(viaPort);
  const descriptors = alua.groups().map((g) => {
    const ports = g.id === viaGroup && !g.ports.includes(viaPort) ? [...g.ports, viaPort] : g.ports;
    return groupDescriptor(alua, lu, g.id, ports, g.preferred);
  });
  const body = Buffer.concat(descriptors);
  const extended = format === RtpgFormat.EXTENDED;
  const head = Buffer.alloc(extended ? 8 : 4);
  // RETURN DATA LENGTH counts the bytes after itself (SPC-4: "n - 3").
  head.writeUInt32BE(head.length - 4 + body.length, 0);
  if (extended) {
    head[4] = 0x10; // FORMAT TYPE 001b
    head[5] = alua.implicitTransitionSeconds;
  }
  return Buffer.concat([head, body]);
}

export const RTPG_ROW: CommandRow = luCommand<RtpgRequest>({
  name: 'REPORT TARGET PORT GROUPS',
  opcode: Opcode.MAINTENANCE_IN,
  serviceAction: MaintenanceIn.REPORT_TARGET_PORT_GROUPS,
  cdbLength: 12,
  direction: DataDirection.IN,
  reservation: ReservationClass.ALLOWED,
  usage: [Opcode.MAINTENANCE_IN, 0xe0 | MaintenanceIn.REPORT_TARGET_PORT_GROUPS, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
  parse: (cdb) => parseRtpg(cdb),
  execute: (req, ctx) => ({
    dataIn: truncate(rtpgData(ctx.device.alua, ctx.lu, ctx.cmd.nexus.relativeTargetPortId, req.format), req.allocationLength),
  }),
});
