/**
 * INQUIRY: standard data and VPD pages. Also answers for a LUN with no
 * logical unit (peripheral qualifier 011b, device type 1Fh).
 *
 * Byte 5 advertises what the command table implements, never more: TPGS
 * 01b (implicit ALUA) when REPORT TARGET PORT GROUPS is a row, 3PC when
 * EXTENDED COPY is.
 */
import { anyLunCommand, CommandRow, CommandTable, DataDirection, ReservationClass } from './command-table';
import { truncate } from './data';
import { invalidCdbField } from './failures';
import { asciiField, IDENTITY_DEFAULTS } from './identity';
import { MaintenanceIn, Opcode, PERIPHERAL_DEVICE_TYPE_SBC, PERIPHERAL_NOT_CONNECTED } from './opcodes';
import { CopyOpcode, ExtendedCopyAction } from './third-party-copy';
import { vpdPage } from './vpd';

/** Version descriptors claimed in standard INQUIRY data. */
export const VersionDescriptor = {
  SAM_5: 0x00a0,
  SPC_4: 0x0460,
  SBC_3: 0x04c0,
} as const;

export const STANDARD_INQUIRY_LENGTH = 96;

export interface StandardInquiryFields {
  readonly peripheral: number;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  /** TPGS=01b: implicit asymmetric access (REPORT TARGET PORT GROUPS implemented). */
  readonly implicitAlua?: boolean;
  /** 3PC: a copy manager (EXTENDED COPY) is addressable through this LU. */
  readonly thirdPartyCopy?: boolean;
}

/** The byte 5 features the command table backs. */
export function inquiryFeatures(table: CommandTable): { implicitAlua: boolean; thirdPartyCopy: boolean } {
  return {
    implicitAlua: table.find(Opcode.MAINTENANCE_IN, MaintenanceIn.REPORT_TARGET_PORT_GROUPS) !== undefined,
    thirdPartyCopy: table.find(CopyOpcode.EXTENDED_COPY, ExtendedCopyAction.LID1) !== undefined,
  };
}

export function standardInquiryData(f: StandardInquiryFields): Buffer {
  const b = Buffer.alloc(STANDARD_INQUIRY_LENGTH);
  b[0] = f.peripheral;
  b[1] = 0x00; // RMB=0: not removable
  b[2] = 0x06; // VERSION: SPC-4
  b[3] = 0x12; // HISUP, RESPONSE DATA FORMAT=2
  b[4] = STANDARD_INQUIRY_LENGTH - 5; // ADDITIONAL LENGTH
  b[5] = (f.implicitAlua ? 0x10 : 0) | (f.thirdPartyCopy ? 0x08 : 0); // TPGS=01b, 3PC; no PROTECT
  b[6] = 0x00;
  b[7] = 0x02; // CMDQUE
  asciiField(f.vendor, 8).copy(b, 8);
  asciiField(f.product, 16).copy(b, 16);
  asciiField(f.revision, 4).copy(b, 32);
  let at = 58;
  for (const v of [VersionDescriptor.SAM_5, VersionDescriptor.SPC_4, VersionDescriptor.SBC_3]) {
    b.writeUInt16BE(v, at);
    at += 2;
  }
  return b;
}

export interface InquiryRequest {
  readonly evpd: boolean;
  readonly pageCode: number;
  readonly allocationLength: number;
}

export function parseInquiry(cdb: Buffer): InquiryRequest {
  if (cdb[1]! & 0x02) throw invalidCdbField(1, 1); // CMDDT (obsolete) is not supported
  const evpd = (cdb[1]! & 0x01) !== 0;
  if (!evpd && cdb[2] !== 0) throw invalidCdbField(2, 7);
  return { evpd, pageCode: cdb[2]!, allocationLength: cdb.readUInt16BE(3) };
}

export const INQUIRY_ROW: CommandRow = anyLunCommand<InquiryRequest>({
  name: 'INQUIRY',
  opcode: Opcode.INQUIRY,
  cdbLength: 6,
  direction: DataDirection.IN,
  allowedWithPendingUa: true,
  reservation: ReservationClass.ALLOWED,
  usage: [Opcode.INQUIRY, 0x01, 0xff, 0xff, 0xff, 0],
  parse: (cdb) => parseInquiry(cdb),
  execute: (req, ctx) => {
    const lu = ctx.lu;
    if (!req.evpd) {
      const data = lu
        ? standardInquiryData({ peripheral: PERIPHERAL_DEVICE_TYPE_SBC, ...lu.identity, ...inquiryFeatures(ctx.device.commands) })
        : standardInquiryData({ peripheral: PERIPHERAL_NOT_CONNECTED, ...IDENTITY_DEFAULTS });
      return { dataIn: truncate(data, req.allocationLength) };
    }
    if (!lu) {
      // No logical unit: only the supported-pages page, listing itself.
      if (req.pageCode !== 0x00) throw invalidCdbField(2, 7);
      return { dataIn: truncate(Buffer.from([PERIPHERAL_NOT_CONNECTED, 0x00, 0x00, 0x01, 0x00]), req.allocationLength) };
    }
    const relativeTargetPortId = ctx.cmd.nexus.relativeTargetPortId;
    const data = vpdPage(req.pageCode, {
      lu,
      capabilities: ctx.device.commands.capabilities,
      relativeTargetPortId,
      ...(inquiryFeatures(ctx.device.commands).implicitAlua ? { targetPortGroup: ctx.device.alua.groupOfPort(relativeTargetPortId) } : {}),
    });
    if (!data) throw invalidCdbField(2, 7);
    return { dataIn: truncate(data, req.allocationLength) };
  },
});
