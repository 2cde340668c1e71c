/**
 * The opcode table: 256 slots indexed by CDB byte 0. A slot holds either one
 * command row or, for opcodes that multiplex service actions in CDB byte 1
 * (SERVICE ACTION IN (16), MAINTENANCE IN/OUT), a map of rows by service
 * action. Each row carries everything the dispatcher and REPORT SUPPORTED
 * OPERATION CODES need: name, CDB length, data direction, flags, the
 * reservation-conflict class, CDB usage data and the handler.
 *
 * Handlers are split in two: parse (validate the CDB, compute the data-out
 * length; throws ScsiFailure) and execute (do the work with the data-out).
 */
import type { LogicalUnit } from './logical-unit';
import type { ScsiTargetDevice } from './target-device';
import type { ScsiCommand, ScsiStatus } from './types';
import { invalidCdbField, ScsiFailure } from './failures';

export const DataDirection = { NONE: 'none', IN: 'in', OUT: 'out' } as const;
export type DataDirection = (typeof DataDirection)[keyof typeof DataDirection];

/**
 * How a command behaves when another I_T nexus holds a reservation
 * (SPC-4 5.13 / table "SPC commands that are allowed in the presence of
 * various reservations"). Not enforced yet: the reservation step uses it
 * (and may refine rows whose class depends on CDB fields, e.g. START STOP
 * UNIT with START=1 or PREVENT ALLOW with PREVENT=0 are allowed).
 * - allowed:  never conflicts (INQUIRY, REPORT LUNS, REQUEST SENSE, ...).
 * - read:     conflicts only with exclusive-access reservations.
 * - write:    conflicts with write-exclusive and exclusive-access reservations.
 * - conflict: conflicts with any reservation held by another nexus.
 */
export const ReservationClass = {
  ALLOWED: 'allowed',
  READ: 'read',
  WRITE: 'write',
  CONFLICT: 'conflict',
} as const;
export type ReservationClass = (typeof ReservationClass)[keyof typeof ReservationClass];

/**
 * Device-wide limits and features that VPD pages and READ CAPACITY report,
 * provided by the rows that implement them (so advertising can never run
 * ahead of the table): UNMAP, WRITE SAME (10/16) and COMPARE AND WRITE
 * carry these.
 */
export interface CommandCapabilities {
  /**
   * UNMAP is implemented (LBPU): MAXIMUM UNMAP LBA COUNT, MAXIMUM UNMAP BLOCK
   * DESCRIPTOR COUNT, and the smallest OPTIMAL UNMAP GRANULARITY in blocks
   * (an LU reports its physical block when that is larger).
   */
  readonly unmap?: { readonly maxLbaCount: number; readonly maxDescriptorCount: number; readonly granularity: number };
  /** WRITE SAME (16) with UNMAP=1 is implemented (LBPWS). */
  readonly writeSame16Unmap?: boolean;
  /** WRITE SAME (10) with UNMAP=1 is implemented (LBPWS10). */
  readonly writeSame10Unmap?: boolean;
  /** MAXIMUM WRITE SAME LENGTH in blocks. */
  readonly maxWriteSameBlocks?: number;
  /** WRITE SAME rejects NUMBER OF LOGICAL BLOCKS 0 instead of writing to the end of the medium (WSNZ). */
  readonly writeSameNonZero?: boolean;
  /** MAXIMUM COMPARE AND WRITE LENGTH in blocks. */
  readonly compareAndWriteMaxBlocks?: number;
}

/** Nominal and recommended command timeouts (seconds) for RSOC's timeouts descriptor; 0 = not specified. */
export interface CommandTimeouts {
  readonly nominal: number;
  readonly recommended: number;
}

export interface CommandContext {
  readonly device: ScsiTargetDevice;
  readonly cmd: ScsiCommand;
  /** Null only for rows flagged allowedWithoutLun, on a LUN with no logical unit. */
  readonly lu: LogicalUnit | null;
}

export interface LuCommandContext extends CommandContext {
  readonly lu: LogicalUnit;
}

export interface CommandResult {
  /** Defaults to GOOD. */
  readonly status?: ScsiStatus;
  /** Data-in, already cut to the allocation length. */
  readonly dataIn?: Buffer | null;
  /** dataIn is lent: see ScsiResponse.release. */
  readonly release?: () => void;
}

export interface PreparedCommand {
  /** Bytes of data-out the CDB calls for (0 for commands without data-out). */
  readonly dataOutLength: number;
  /** Run the command; dataOut is exactly dataOutLength bytes. */
  execute(dataOut: readonly Buffer[]): Promise<CommandResult> | CommandResult;
  /**
   * The same command cut to the first `bytes` of its data-out, for when the
   * transport delivered less than the CDB asks (SAM-5 5.4.3: "process the
   * command normally except that data beyond the expected length shall not
   * be transferred"); null when the command cannot be cut there.
   */
  shorten?(bytes: number): PreparedCommand | null;
}

export interface CommandRow {
  readonly name: string;
  readonly opcode: number;
  /** Set for commands selected by a service action in CDB byte 1 bits 4..0. */
  readonly serviceAction?: number;
  readonly cdbLength: number;
  readonly direction: DataDirection;
  /** Runs without reporting or clearing a pending unit attention (INQUIRY, REPORT LUNS, REQUEST SENSE). */
  readonly allowedWithPendingUa: boolean;
  /** Runs on a LUN with no logical unit (INQUIRY, REPORT LUNS, REQUEST SENSE). */
  readonly allowedWithoutLun: boolean;
  readonly reservation: ReservationClass;
  /** CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES: byte 0 opcode, then masks of supported bits. */
  readonly usage: readonly number[];
  readonly timeouts: CommandTimeouts;
  readonly provides: CommandCapabilities;
  /** Validate the CDB (throws ScsiFailure) and return the bound command. */
  prepare(cdb: Buffer, ctx: CommandContext): PreparedCommand;
}

interface RowDefinitionBase {
  readonly name: string;
  readonly opcode: number;
  readonly serviceAction?: number;
  readonly cdbLength: number;
  readonly direction: DataDirection;
  readonly allowedWithPendingUa?: boolean;
  readonly reservation: ReservationClass;
  readonly usage: readonly number[];
  readonly timeouts?: CommandTimeouts;
  readonly provides?: CommandCapabilities;
}

export interface LuCommandDefinition<P> extends RowDefinitionBase {
  parse(cdb: Buffer, ctx: LuCommandContext): P;
  dataOutLength?(parsed: P): number;
  /** The parsed command cut to its first `bytes` of data-out, or null (see PreparedCommand.shorten). */
  shorten?(parsed: P, bytes: number, ctx: LuCommandContext): P | null;
  execute(parsed: P, ctx: LuCommandContext, dataOut: readonly Buffer[]): Promise<CommandResult> | CommandResult;
}

export interface AnyLunCommandDefinition<P> extends RowDefinitionBase {
  parse(cdb: Buffer, ctx: CommandContext): P;
  dataOutLength?(parsed: P): number;
  execute(parsed: P, ctx: CommandContext, dataOut: readonly Buffer[]): Promise<CommandResult> | CommandResult;
}

const NO_TIMEOUTS: CommandTimeouts = { nominal: 0, recommended: 0 };

function rowBase(def: RowDefinitionBase, allowedWithoutLun: boolean): Omit<CommandRow, 'prepare'> {
  const row: Omit<CommandRow, 'prepare'> = {
    name: def.name,
    opcode: def.opcode,
    cdbLength: def.cdbLength,
    direction: def.direction,
    allowedWithPendingUa: def.allowedWithPendingUa ?? false,
    allowedWithoutLun,
    reservation: def.reservation,
    usage: def.usage,
    timeouts: def.timeouts ?? NO_TIMEOUTS,
    provides: def.provides ?? {},
  };
  return def.serviceAction === undefined ? row : { ...row, serviceAction: def.serviceAction };
}

/**
 * A parsed LU command bound to its context: one object per command (no
 * closures), since every READ and WRITE makes one.
 */
class BoundLuCommand<P> implements PreparedCommand {
  readonly dataOutLength: number;

  constructor(
    private readonly def: LuCommandDefinition<P>,
    private readonly parsed: P,
    private readonly ctx: LuCommandContext,
  ) {
    this.dataOutLength = def.dataOutLength ? def.dataOutLength(parsed) : 0;
  }

  execute(dataOut: readonly Buffer[]): Promise<CommandResult> | CommandResult {
    return this.def.execute(this.parsed, this.ctx, dataOut);
  }

  shorten(bytes: number): PreparedCommand | null {
    if (!this.def.shorten) return null;
    const cut = this.def.shorten(this.parsed, bytes, this.ctx);
    return cut === null ? null : new BoundLuCommand(this.def, cut, this.ctx);
  }
}

/** A command that needs a logical unit (the dispatcher answers LOGICAL UNIT NOT SUPPORTED otherwise). */
export function luCommand<P>(def: LuCommandDefinition<P>): CommandRow {
  return {
    ...rowBase(def, false),
    prepare(cdb, ctx) {
      if (ctx.lu === null) throw new ScsiFailure('lun-not-supported');
      const luCtx = ctx as LuCommandContext;
      return new BoundLuCommand(def, def.parse(cdb, luCtx), luCtx);
    },
  };
}

/** A command that also runs on a LUN with no logical unit (ctx.lu may be null). */
export function anyLunCommand<P>(def: AnyLunCommandDefinition<P>): CommandRow {
  return {
    ...rowBase(def, true),
    prepare(cdb, ctx) {
      const parsed = def.parse(cdb, ctx);
      return {
        dataOutLength: def.dataOutLength ? def.dataOutLength(parsed) : 0,
        execute: (dataOut) => def.execute(parsed, ctx, dataOut),
      };
    },
  };
}

type Slot =
  | { readonly kind: 'row'; readonly row: CommandRow; readonly found: Lookup }
  | { readonly kind: 'service-actions'; readonly rows: Map<number, CommandRow>; readonly found: Map<number, Lookup> };

export type Lookup = { readonly row: CommandRow; readonly failure?: undefined } | { readonly row?: undefined; readonly failure: ScsiFailure };

/** Service action field: CDB byte 1 bits 4..0. */
export function serviceActionOf(cdb: Buffer): number {
  return (cdb[1] ?? 0) & 0x1f;
}

export class CommandTable {
  private readonly slots: (Slot | undefined)[] = new Array<Slot | undefined>(256).fill(undefined);
  private readonly sorted: readonly CommandRow[];
  readonly capabilities: CommandCapabilities;

  constructor(rows: readonly CommandRow[]) {
    let caps: CommandCapabilities = {};
    for (const row of rows) {
      validateRow(row);
      const slot = this.slots[row.opcode];
      if (row.serviceAction === undefined) {
        if (slot) throw new Error(`command table: opcode 0x${hex(row.opcode)} defined twice (${row.name})`);
        this.slots[row.opcode] = { kind: 'row', row, found: { row } };
      } else {
        if (slot?.kind === 'row') throw new Error(`command table: opcode 0x${hex(row.opcode)} mixes service actions and a plain row`);
        const map = slot?.rows ?? new Map<number, CommandRow>();
        const found = slot?.found ?? new Map<number, Lookup>();
        if (map.has(row.serviceAction)) {
          throw new Error(`command table: 0x${hex(row.opcode)}/0x${hex(row.serviceAction)} defined twice (${row.name})`);
        }
        map.set(row.serviceAction, row);
        found.set(row.serviceAction, { row });
        this.slots[row.opcode] = { kind: 'service-actions', rows: map, found };
      }
      caps = { ...caps, ...row.provides };
    }
    this.capabilities = caps;
    this.sorted = [...rows].sort((a, b) => a.opcode - b.opcode || (a.serviceAction ?? 0) - (b.serviceAction ?? 0));
  }

  /** Dispatch: the row for this CDB, or why there is none. */
  lookup(cdb: Buffer): Lookup {
    const slot = this.slots[cdb[0] ?? 0];
    if (!slot) return { failure: new ScsiFailure('invalid-opcode', { field: { inCdb: true, byte: 0, bit: 7 } }) };
    // Found rows come as shared Lookup objects made once per row.
    if (slot.kind === 'row') return slot.found;
    return slot.found.get(serviceActionOf(cdb)) ?? { failure: invalidCdbField(1, 4) };
  }

  /** The row for an opcode (and service action, for multiplexed opcodes). */
  find(opcode: number, serviceAction?: number): CommandRow | undefined {
    const slot = this.slots[opcode];
    if (!slot) return undefined;
    if (slot.kind === 'row') return slot.row;
    return serviceAction === undefined ? undefined : slot.rows.get(serviceAction);
  }

  /** Whether the opcode multiplexes service actions. */
  hasServiceActions(opcode: number): boolean {
    return this.slots[opcode]?.kind === 'service-actions';
  }

  /** Every row, by opcode then service action. */
  rows(): readonly CommandRow[] {
    return this.sorted;
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function validateRow(row: CommandRow): void {
  const where = `command table: ${row.name}`;
  if (!Number.isInteger(row.opcode) || row.opcode < 0 || row.opcode > 0xff) throw new Error(`${where}: bad opcode`);
  if (row.usage.length !== row.cdbLength) throw new Error(`${where}: usage data has ${row.usage.length} bytes, CDB has ${row.cdbLength}`);
  if (row.usage[0] !== row.opcode) throw new Error(`${where}: usage data byte 0 must be the opcode`);
  if (row.serviceAction !== undefined && ((row.usage[1] ?? 0) & 0x1f) !== row.serviceAction) {
    throw new Error(`${where}: usage data byte 1 must carry the service action`);
  }
}
