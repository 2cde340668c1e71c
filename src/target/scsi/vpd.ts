/**
 * Vital product data pages (INQUIRY with EVPD=1). The supported-pages page
 * is generated from VPD_PAGES, so the list and the pages cannot disagree.
 */
import type { CommandCapabilities } from './command-table';
import type { LogicalUnit } from './logical-unit';
import { asciiField } from './identity';
import { PERIPHERAL_DEVICE_TYPE_SBC } from './opcodes';
import { provisioning } from './provisioning';

export interface VpdContext {
  readonly lu: LogicalUnit;
  readonly capabilities: CommandCapabilities;
  /** RELATIVE TARGET PORT IDENTIFIER of the port the command came through. */
  readonly relativeTargetPortId: number;
  /** TARGET PORT GROUP of that port, when configured. */
  readonly targetPortGroup?: number;
}

export const VpdPage = {
  SUPPORTED_PAGES: 0x00,
  UNIT_SERIAL_NUMBER: 0x80,
  DEVICE_IDENTIFICATION: 0x83,
  EXTENDED_INQUIRY: 0x86,
  BLOCK_LIMITS: 0xb0,
  BLOCK_DEVICE_CHARACTERISTICS: 0xb1,
  LOGICAL_BLOCK_PROVISIONING: 0xb2,
} as const;

/** A page: 4-byte header (peripheral byte, page code, 16-bit page length) + body. */
function page(code: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = PERIPHERAL_DEVICE_TYPE_SBC;
  head[1] = code;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}

/** A designation descriptor (SPC-4 7.8.6.1). */
function designator(codeSet: number, association: number, type: number, id: Buffer): Buffer {
  const head = Buffer.from([codeSet & 0x0f, ((association & 0x03) << 4) | (type & 0x0f), 0, id.length]);
  return Buffer.concat([head, id]);
}

const CodeSet = { BINARY: 1, ASCII: 2 } as const;
const Association = { LOGICAL_UNIT: 0, TARGET_PORT: 1 } as const;
const DesignatorType = { T10_VENDOR_ID: 1, NAA: 3, RELATIVE_TARGET_PORT: 4, TARGET_PORT_GROUP: 5 } as const;

function uint16Id(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(value & 0xffff, 2);
  return b;
}

function unitSerialNumber(ctx: VpdContext): Buffer {
  return Buffer.from(ctx.lu.identity.serial, 'latin1');
}

/**
 * Logical unit designators first (NAA, T10 vendor id: derived from the
 * volume id only, the same on both nodes), then the target port designators
 * of the port the command came through (relative target port, and the
 * target port group when ALUA is implemented), which differ per node.
 */
function deviceIdentification(ctx: VpdContext): Buffer {
  const id = ctx.lu.identity;
  const parts = [
    designator(CodeSet.BINARY, Association.LOGICAL_UNIT, DesignatorType.NAA, id.naa),
    designator(
      CodeSet.ASCII,
      Association.LOGICAL_UNIT,
      DesignatorType.T10_VENDOR_ID,
      Buffer.concat([asciiField(id.vendor, 8), Buffer.from(id.serial, 'latin1')]),
    ),
    designator(CodeSet.BINARY, Association.TARGET_PORT, DesignatorType.RELATIVE_TARGET_PORT, uint16Id(ctx.relativeTargetPortId)),
  ];
  if (ctx.targetPortGroup !== undefined) {
    parts.push(designator(CodeSet.BINARY, Association.TARGET_PORT, DesignatorType.TARGET_PORT_GROUP, uint16Id(ctx.targetPortGroup)));
  }
  return Buffer.concat(parts);
}

function extendedInquiry(): Buffer {
  const b = Buffer.alloc(60);
  b[1] = 0x07; // HEADSUP, ORDSUP, SIMPSUP: task attributes honoured
  b[2] = 0x01; // V_SUP: volatile cache (WCE) supported
  b[3] = 0x01; // LUICLR
  return b;
}

function blockLimits(ctx: VpdContext): Buffer {
  const { lu, capabilities: caps } = ctx;
  const p = provisioning(lu, caps);
  const b = Buffer.alloc(60);
  if (caps.writeSameNonZero) b[0] = 0x01; // WSNZ
  b[1] = caps.compareAndWriteMaxBlocks ?? 0; // MAXIMUM COMPARE AND WRITE LENGTH
  b.writeUInt16BE(1 << lu.physicalBlockExponent, 2); // OPTIMAL TRANSFER LENGTH GRANULARITY
  b.writeUInt32BE(lu.maxTransferBlocks, 4); // MAXIMUM TRANSFER LENGTH
  // OPTIMAL TRANSFER LENGTH and MAXIMUM PREFETCH LENGTH: 0 (not reported / no limit)
  if (p.lbpu && caps.unmap) {
    b.writeUInt32BE(caps.unmap.maxLbaCount, 16); // MAXIMUM UNMAP LBA COUNT
    b.writeUInt32BE(caps.unmap.maxDescriptorCount, 20); // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
    b.writeUInt32BE(p.unmapGranularity, 24); // OPTIMAL UNMAP GRANULARITY
    b.writeUInt32BE(0x80000000 + p.unmapGranularityAlignment, 28); // UGAVALID, UNMAP GRANULARITY ALIGNMENT
  }
  b.writeBigUInt64BE(BigInt(caps.maxWriteSameBlocks ?? 0), 32); // MAXIMUM WRITE SAME LENGTH
  return b;
}

function blockDeviceCharacteristics(): Buffer {
  const b = Buffer.alloc(60);
  b.writeUInt16BE(0x0001, 0); // MEDIUM ROTATION RATE: non-rotating medium
  return b;
}

function logicalBlockProvisioning(ctx: VpdContext): Buffer {
  const p = provisioning(ctx.lu, ctx.capabilities);
  const b = Buffer.alloc(4);
  b[1] = (p.lbpu ? 0x80 : 0) | (p.lbpws ? 0x40 : 0) | (p.lbpws10 ? 0x20 : 0) | (p.lbprz ? 0x04 : 0);
  b[2] = p.provisioningType;
  return b;
}

interface VpdPageDefinition {
  readonly code: number;
  readonly name: string;
  readonly body: (ctx: VpdContext) => Buffer;
}

export const VPD_PAGES: readonly VpdPageDefinition[] = [
  { code: VpdPage.SUPPORTED_PAGES, name: 'Supported VPD Pages', body: () => Buffer.from(VPD_PAGES.map((p) => p.code)) },
  { code: VpdPage.UNIT_SERIAL_NUMBER, name: 'Unit Serial Number', body: unitSerialNumber },
  { code: VpdPage.DEVICE_IDENTIFICATION, name: 'Device Identification', body: deviceIdentification },
  { code: VpdPage.EXTENDED_INQUIRY, name: 'Extended INQUIRY Data', body: extendedInquiry },
  { code: VpdPage.BLOCK_LIMITS, name: 'Block Limits', body: blockLimits },
  { code: VpdPage.BLOCK_DEVICE_CHARACTERISTICS, name: 'Block Device Characteristics', body: blockDeviceCharacteristics },
  { code: VpdPage.LOGICAL_BLOCK_PROVISIONING, name: 'Logical Block Provisioning', body: logicalBlockProvisioning },
];

/** The whole page, or undefined when the page is not supported. */
export function vpdPage(code: number, ctx: VpdContext): Buffer | undefined {
  const def = VPD_PAGES.find((p) => p.code === code);
  return def ? page(code, def.body(ctx)) : undefined;
}
