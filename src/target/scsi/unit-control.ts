/**
 * TEST UNIT READY, START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL.
 *
 * The medium is not removable (RMB=0) and the LU has no stopped state: it
 * is always ready. START STOP UNIT validates the power condition fields and
 * is otherwise accepted; a stop without NO_FLUSH flushes the store first,
 * as a disk writes back its cache before spinning down. LOEJ is ignored
 * (nothing to eject). PREVENT ALLOW MEDIUM REMOVAL accepts PREVENT 0 and 1
 * (no effect on a non-removable medium) and rejects the media changer
 * values 2 and 3.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { invalidCdbField } from './failures';
import { executeSynchronizeCache } from './cache';
import { Opcode } from './opcodes';

/** POWER CONDITION values and the highest POWER CONDITION MODIFIER each allows (SBC-4). */
export const POWER_CONDITION_MAX_MODIFIER: ReadonlyMap<number, number> = new Map([
  [0x0, 0], // START_VALID: process START and LOEJ
  [0x1, 0], // ACTIVE
  [0x2, 2], // IDLE (idle_a, idle_b, idle_c)
  [0x3, 1], // STANDBY (standby_z, standby_y)
  [0x7, 0], // LU_CONTROL
  [0xa, 2], // FORCE_IDLE_0
  [0xb, 1], // FORCE_STANDBY_0
]);

export interface StartStopRequest {
  readonly powerCondition: number;
  readonly start: boolean;
  readonly noFlush: boolean;
}

export function parseStartStopUnit(cdb: Buffer): StartStopRequest {
  const powerCondition = cdb[4]! >> 4;
  const maxModifier = POWER_CONDITION_MAX_MODIFIER.get(powerCondition);
  if (maxModifier === undefined) throw invalidCdbField(4, 7);
  if ((cdb[3]! & 0x0f) > maxModifier) throw invalidCdbField(3, 3);
  return { powerCondition, start: (cdb[4]! & 0x01) !== 0, noFlush: (cdb[4]! & 0x04) !== 0 };
}

export const UNIT_CONTROL_ROWS: readonly CommandRow[] = [
  luCommand<void>({
    name: 'TEST UNIT READY',
    opcode: Opcode.TEST_UNIT_READY,
    cdbLength: 6,
    direction: DataDirection.NONE,
    reservation: ReservationClass.ALLOWED,
    usage: [Opcode.TEST_UNIT_READY, 0, 0, 0, 0, 0],
    parse: () => undefined,
    execute: () => ({}),
  }),
  luCommand<StartStopRequest>({
    name: 'START STOP UNIT',
    opcode: Opcode.START_STOP_UNIT,
    cdbLength: 6,
    direction: DataDirection.NONE,
    reservation: ReservationClass.CONFLICT,
    usage: [Opcode.START_STOP_UNIT, 0x01, 0, 0x0f, 0xf7, 0],
    parse: (cdb) => parseStartStopUnit(cdb),
    execute: async (req, ctx) => {
      if (req.powerCondition === 0 && !req.start && !req.noFlush) await executeSynchronizeCache(ctx.lu);
      return {};
    },
  }),
  luCommand<void>({
    name: 'PREVENT ALLOW MEDIUM REMOVAL',
    opcode: Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL,
    cdbLength: 6,
    direction: DataDirection.NONE,
    reservation: ReservationClass.CONFLICT,
    usage: [Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0x01, 0],
    parse: (cdb) => {
      if ((cdb[4]! & 0x03) > 1) throw invalidCdbField(4, 1);
    },
    execute: () => ({}),
  }),
];
