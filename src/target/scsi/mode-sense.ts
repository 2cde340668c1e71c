/**
 * MODE SENSE (6) and (10): mode parameter header, optional block
 * descriptor (short, or long with LLBAA in MODE SENSE (10)), and pages for
 * page control current / changeable / default. Saved values are not
 * supported (SAVING PARAMETERS NOT SUPPORTED).
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { truncate } from './data';
import { invalidCdbField, ScsiFailure } from './failures';
import type { LogicalUnit } from './logical-unit';
import { MODE_PAGES, ModePage, modePageDefinition, PageControl } from './mode-pages';
import { Opcode } from './opcodes';

export interface ModeSenseRequest {
  readonly ten: boolean;
  readonly dbd: boolean;
  readonly llbaa: boolean;
  readonly pc: Exclude<PageControl, typeof PageControl.SAVED>;
  readonly pageCode: number;
  readonly allocationLength: number;
}

/** Device-specific parameter for direct access devices: WP (0x80) and DPOFUA (0x10). */
export function deviceSpecificParameter(lu: LogicalUnit): number {
  return (lu.writeProtected ? 0x80 : 0) | 0x10;
}

export function parseModeSense(cdb: Buffer, ten: boolean): ModeSenseRequest {
  const pc = cdb[2]! >> 6;
  const pageCode = cdb[2]! & 0x3f;
  const subpage = cdb[3]!;
  if (pc === PageControl.SAVED) throw new ScsiFailure('saving-parameters-not-supported', { field: { inCdb: true, byte: 2, bit: 7 } });
  if (pageCode !== ModePage.ALL_PAGES && !modePageDefinition(pageCode)) throw invalidCdbField(2, 5);
  if (subpage !== 0x00 && subpage !== 0xff) throw invalidCdbField(3, 7);
  return {
    ten,
    dbd: (cdb[1]! & 0x08) !== 0,
    llbaa: ten && (cdb[1]! & 0x10) !== 0,
    pc: pc as ModeSenseRequest['pc'],
    pageCode,
    allocationLength: ten ? cdb.readUInt16BE(7) : cdb[4]!,
  };
}

export function blockDescriptor(lu: LogicalUnit, long: boolean, changeable: boolean): Buffer {
  if (long) {
    const b = Buffer.alloc(16);
    if (!changeable) {
      b.writeBigUInt64BE(BigInt(lu.blockCount), 0);
      b.writeUInt32BE(lu.blockSize, 12);
    }
    return b;
  }
  const b = Buffer.alloc(8);
  if (!changeable) {
    b.writeUInt32BE(Math.min(lu.blockCount, 0xffffffff), 0);
    b.writeUIntBE(lu.blockSize, 5, 3);
  }
  return b;
}

export function modeSenseData(lu: LogicalUnit, req: ModeSenseRequest): Buffer {
  const codes = req.pageCode === ModePage.ALL_PAGES ? MODE_PAGES.map((p) => p.code) : [req.pageCode];
  const pages = codes.map((code) => lu.mode.page(code, req.pc));
  const bd = req.dbd ? Buffer.alloc(0) : blockDescriptor(lu, req.llbaa, req.pc === PageControl.CHANGEABLE);
  const header = Buffer.alloc(req.ten ? 8 : 4);
  const total = header.length + bd.length + pages.reduce((n, p) => n + p.length, 0);
  if (req.ten) {
    header.writeUInt16BE(total - 2, 0);
    header[3] = deviceSpecificParameter(lu);
    header[4] = req.llbaa && bd.length > 0 ? 0x01 : 0; // LONGLBA
    header.writeUInt16BE(bd.length, 6);
  } else {
    header[0] = Math.min(total - 1, 0xff);
    header[2] = deviceSpecificParameter(lu);
    header[3] = bd.length;
  }
  return Buffer.concat([header, bd, ...pages]);
}

export const MODE_SENSE_ROWS: readonly CommandRow[] = [
  luCommand<ModeSenseRequest>({
    name: 'MODE SENSE (6)',
    opcode: Opcode.MODE_SENSE_6,
    cdbLength: 6,
    direction: DataDirection.IN,
    reservation: ReservationClass.READ,
    usage: [Opcode.MODE_SENSE_6, 0x08, 0xff, 0xff, 0xff, 0],
    parse: (cdb) => parseModeSense(cdb, false),
    execute: (req, ctx) => ({ dataIn: truncate(modeSenseData(ctx.lu, req), req.allocationLength) }),
  }),
  luCommand<ModeSenseRequest>({
    name: 'MODE SENSE (10)',
    opcode: Opcode.MODE_SENSE_10,
    cdbLength: 10,
    direction: DataDirection.IN,
    reservation: ReservationClass.READ,
    usage: [Opcode.MODE_SENSE_10, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0],
    parse: (cdb) => parseModeSense(cdb, true),
    execute: (req, ctx) => ({ dataIn: truncate(modeSenseData(ctx.lu, req), req.allocationLength) }),
  }),
];
