/**
 * MODE SELECT (6) and (10).
 *
 * The parameter list (header, optional block descriptor, pages) is checked
 * in full before anything changes: a page must be supported, have its exact
 * length, and differ from the current values only in changeable bits. The
 * block descriptor may only restate the current geometry. Then the pages
 * are installed; if any current value changed, every other I_T nexus gets
 * MODE PARAMETERS CHANGED. Turning the write cache off (WCE 1 → 0) flushes
 * the store first.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { flatten } from './data';
import { invalidCdbField, invalidParameterField, ScsiFailure } from './failures';
import type { LogicalUnit } from './logical-unit';
import { ModePage, modePageDefinition } from './mode-pages';
import { executeSynchronizeCache } from './cache';
import { Opcode } from './opcodes';
import { UnitAttention } from './ua';

export interface ModeSelectRequest {
  readonly ten: boolean;
  readonly pageFormat: boolean;
  readonly parameterListLength: number;
}

export function parseModeSelect(cdb: Buffer, ten: boolean): ModeSelectRequest {
  if (cdb[1]! & 0x01) throw invalidCdbField(1, 0); // SP: saved pages are not supported
  return { ten, pageFormat: (cdb[1]! & 0x10) !== 0, parameterListLength: ten ? cdb.readUInt16BE(7) : cdb[4]! };
}

function lengthError(): ScsiFailure {
  return new ScsiFailure('parameter-list-length-error');
}

function checkBlockDescriptor(lu: LogicalUnit, data: Buffer, at: number, long: boolean): void {
  if (long) {
    const blocks = data.readBigUInt64BE(at);
    if (blocks !== 0n && blocks !== BigInt(lu.blockCount)) throw invalidParameterField(at, 7);
    if (data.readUInt32BE(at + 12) !== lu.blockSize) throw invalidParameterField(at + 12, 7);
    return;
  }
  const blocks = data.readUInt32BE(at);
  if (blocks !== 0 && blocks !== Math.min(lu.blockCount, 0xffffffff)) throw invalidParameterField(at, 7);
  if (data[at + 4] !== 0) throw invalidParameterField(at + 4, 7); // DENSITY CODE
  if (data.readUIntBE(at + 5, 3) !== lu.blockSize) throw invalidParameterField(at + 5, 7);
}

function highestBit(x: number): number {
  return 31 - Math.clz32(x);
}

/** Validate the parameter list; return the staged pages (page code → new bytes). */
export function parseModeParameterList(lu: LogicalUnit, req: ModeSelectRequest, data: Buffer): Map<number, Buffer> {
  const headerLength = req.ten ? 8 : 4;
  if (data.length < headerLength) throw lengthError();
  const mediumType = req.ten ? data[2]! : data[1]!;
  if (mediumType !== 0) throw invalidParameterField(req.ten ? 2 : 1, 7);
  const longLba = req.ten && (data[4]! & 0x01) !== 0;
  const bdLength = req.ten ? data.readUInt16BE(6) : data[3]!;
  const descriptorSize = longLba ? 16 : 8;
  if (bdLength !== 0 && bdLength !== descriptorSize) throw invalidParameterField(req.ten ? 6 : 3, 7);
  if (headerLength + bdLength > data.length) throw lengthError();
  if (bdLength > 0) checkBlockDescriptor(lu, data, headerLength, longLba);

  const staged = new Map<number, Buffer>();
  let at = headerLength + bdLength;
  if (at < data.length && !req.pageFormat) throw invalidCdbField(1, 4);
  while (at < data.length) {
    if (data.length - at < 2) throw lengthError();
    if (data[at]! & 0x40) throw invalidParameterField(at, 6); // SPF: no subpages are supported
    const code = data[at]! & 0x3f;
    const def = code === ModePage.ALL_PAGES ? undefined : modePageDefinition(code);
    if (!def) throw invalidParameterField(at, 5);
    const pageLength = data[at + 1]!;
    if (pageLength !== def.defaults.length - 2) throw invalidParameterField(at + 1, 7);
    if (at + 2 + pageLength > data.length) throw lengthError();
    const next = staged.get(code) ?? lu.mode.currentPage(code);
    for (let i = 2; i < def.defaults.length; i++) {
      const offered = data[at + i]!;
      const fixed = ~def.changeable[i]! & 0xff;
      const diff = (offered ^ next[i]!) & fixed;
      if (diff) throw invalidParameterField(at + i, highestBit(diff));
      next[i] = offered;
    }
    staged.set(code, next);
    at += 2 + pageLength;
  }
  return staged;
}

export async function executeModeSelect(lu: LogicalUnit, staged: Map<number, Buffer>, nexusKey: string): Promise<void> {
  const caching = staged.get(ModePage.CACHING);
  if (caching && lu.mode.writeCacheEnabled && (caching[2]! & 0x04) === 0) await executeSynchronizeCache(lu);
  if (lu.mode.replace(staged)) lu.establishUnitAttention(UnitAttention.MODE_PARAMETERS_CHANGED, { exceptNexus: nexusKey });
}

function modeSelectRow(ten: boolean): CommandRow {
  const opcode = ten ? Opcode.MODE_SELECT_10 : Opcode.MODE_SELECT_6;
  return luCommand<ModeSelectRequest>({
    name: ten ? 'MODE SELECT (10)' : 'MODE SELECT (6)',
    opcode,
    cdbLength: ten ? 10 : 6,
    direction: DataDirection.OUT,
    reservation: ReservationClass.CONFLICT,
    usage: ten ? [opcode, 0x10, 0, 0, 0, 0, 0, 0xff, 0xff, 0] : [opcode, 0x10, 0, 0, 0xff, 0],
    parse: (cdb) => parseModeSelect(cdb, ten),
    dataOutLength: (req) => req.parameterListLength,
    execute: async (req, ctx, dataOut) => {
      if (req.parameterListLength === 0) return {};
      const staged = parseModeParameterList(ctx.lu, req, flatten(dataOut));
      await executeModeSelect(ctx.lu, staged, ctx.cmd.nexus.key);
      return {};
    },
  });
}

export const MODE_SELECT_ROWS: readonly CommandRow[] = [modeSelectRow(false), modeSelectRow(true)];
