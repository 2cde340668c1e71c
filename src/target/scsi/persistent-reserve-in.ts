/**
 * PERSISTENT RESERVE IN (SPC-4 6.15): READ KEYS, READ RESERVATION, REPORT
 * CAPABILITIES and READ FULL STATUS, one table row per service action.
 * Everything reported comes from the logical unit's reservation state
 * (reservations/). Lengths in the headers describe the whole list; the data
 * is then cut to the ALLOCATION LENGTH.
 */
import { CommandRow, DataDirection, luCommand, ReservationClass } from './command-table';
import { truncate } from './data';
import { Opcode } from './opcodes';
import { encodeTransportId, holderKey, isHolder, LuReservations, PR_TYPES, PrState, ZERO_KEY } from './reservations';

/** PERSISTENT RESERVE IN service action codes. */
export const PrinAction = {
  READ_KEYS: 0x00,
  READ_RESERVATION: 0x01,
  REPORT_CAPABILITIES: 0x02,
  READ_FULL_STATUS: 0x03,
} as const;

/** REPORT CAPABILITIES byte 2 and 3 bits. */
export const PrCapability = {
  /** Compatible reservation handling: RESERVE/RELEASE follow SPC-4 5.13.3. */
  CRH: 0x10,
  /** SPEC_I_PT is supported. */
  SIP_C: 0x08,
  /** ALL_TG_PT is supported. */
  ATP_C: 0x04,
  /** Persist through power loss is supported. */
  PTPL_C: 0x01,
  /** Byte 3: the type mask is valid. */
  TMV: 0x80,
  /** Byte 3: persist through power loss is active. */
  PTPL_A: 0x01,
} as const;

/**
 * ALLOW COMMANDS = 001b: TEST UNIT READY is allowed through WRITE EXCLUSIVE
 * and EXCLUSIVE ACCESS reservations; no claim about the other commands the
 * field can describe.
 */
export const ALLOW_COMMANDS = 0x1;

function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'hex');
}

function header(pr: PrState, additionalLength: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(pr.generation, 0);
  h.writeUInt32BE(additionalLength, 4);
  return h;
}

export function readKeysData(pr: PrState): Buffer {
  const keys = pr.registrations.map((r) => keyBytes(r.key));
  return Buffer.concat([header(pr, keys.length * 8), ...keys]);
}

export function readReservationData(pr: PrState): Buffer {
  const res = pr.reservation;
  if (!res) return header(pr, 0);
  const d = Buffer.alloc(16);
  // All-registrants reservations report key 0 (SPC-4 6.15.3.3).
  keyBytes(holderKey(pr) ?? ZERO_KEY).copy(d, 0);
  d[13] = (res.scope << 4) | res.type;
  return Buffer.concat([header(pr, 16), d]);
}

/** The PERSISTENT RESERVATION TYPE MASK: every type the device supports. */
export function typeMask(): number {
  let mask = 0;
  for (const info of PR_TYPES.values()) mask |= info.typeMaskBit;
  return mask;
}

export function reportCapabilitiesData(pr: PrState, persistCapable: boolean): Buffer {
  const d = Buffer.alloc(8);
  d.writeUInt16BE(8, 0);
  d[2] = PrCapability.CRH | PrCapability.SIP_C | PrCapability.ATP_C | (persistCapable ? PrCapability.PTPL_C : 0);
  d[3] = PrCapability.TMV | (ALLOW_COMMANDS << 4) | (persistCapable && pr.aptpl ? PrCapability.PTPL_A : 0);
  d.writeUInt16BE(typeMask(), 4);
  return d;
}

export function readFullStatusData(pr: PrState): Buffer {
  const descriptors = pr.registrations.map((reg) => {
    const transportId = encodeTransportId(reg.initiator);
    const d = Buffer.alloc(24);
    keyBytes(reg.key).copy(d, 0);
    const holder = isHolder(pr, reg);
    d[12] = (reg.relativeTargetPortId === null ? 0x02 : 0) | (holder ? 0x01 : 0); // ALL_TG_PT, R_HOLDER
    if (holder) d[13] = (pr.reservation!.scope << 4) | pr.reservation!.type;
    d.writeUInt16BE(reg.relativeTargetPortId ?? 0, 18);
    d.writeUInt32BE(transportId.length, 20);
    return Buffer.concat([d, transportId]);
  });
  const body = Buffer.concat(descriptors);
  return Buffer.concat([header(pr, body.length), body]);
}

function prinRow(name: string, serviceAction: number, build: (reservations: LuReservations) => Buffer): CommandRow {
  return luCommand<number>({
    name,
    opcode: Opcode.PERSISTENT_RESERVE_IN,
    serviceAction,
    cdbLength: 10,
    direction: DataDirection.IN,
    reservation: ReservationClass.ALLOWED,
    usage: [Opcode.PERSISTENT_RESERVE_IN, serviceAction, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
    parse: (cdb) => cdb.readUInt16BE(7),
    execute: (allocationLength, ctx) => ({ dataIn: truncate(build(ctx.lu.reservations), allocationLength) }),
  });
}

export const PERSISTENT_RESERVE_IN_ROWS: readonly CommandRow[] = [
  prinRow('PERSISTENT RESERVE IN / READ KEYS', PrinAction.READ_KEYS, (r) => readKeysData(r.persistent)),
  prinRow('PERSISTENT RESERVE IN / READ RESERVATION', PrinAction.READ_RESERVATION, (r) => readReservationData(r.persistent)),
  prinRow('PERSISTENT RESERVE IN / REPORT CAPABILITIES', PrinAction.REPORT_CAPABILITIES, (r) => reportCapabilitiesData(r.persistent, r.persistCapable)),
  prinRow('PERSISTENT RESERVE IN / READ FULL STATUS', PrinAction.READ_FULL_STATUS, (r) => readFullStatusData(r.persistent)),
];
