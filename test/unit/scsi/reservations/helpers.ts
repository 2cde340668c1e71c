/**
 * Helpers for the reservation tests: I_T nexuses with real iSCSI
 * TransportIDs, and CDBs / parameter lists spelled out byte by byte.
 * Nothing here uses the code under test to build wire data.
 */
import { expect } from 'vitest';
import type { ItNexus, ScsiResponse, ScsiTargetDevice } from '../../../../src/target/scsi';
import { be16, be32, be64, clearUnitAttentions, expectGood, parseSense, run } from '../helpers';

export const TARGET = 'iqn.2026-11.io.twinsan:vol0';

export function initiatorName(n: number): string {
  return `iqn.1993-08.org.debian:01:init${n}`;
}

/** An iSCSI TransportID by hand: byte 0 format/protocol, ADDITIONAL LENGTH, NUL-terminated text padded to 4 (at least 20). */
export function iscsiTransportId(text: string, format: 0 | 1): number[] {
  const bytes = [...Buffer.from(text, 'utf8'), 0];
  while (bytes.length % 4 !== 0 || bytes.length < 20) bytes.push(0);
  return [(format << 6) | 0x05, 0, ...be16(bytes.length), ...bytes];
}

/** Initiator `n`, session `isid`, through target port `rtpi`. */
export function itNexus(n: number, rtpi = 1, isid = `23d00000000${n}`): ItNexus {
  const port = `${initiatorName(n)},i,0x${isid}`;
  const targetPort = `${TARGET},t,0x${rtpi.toString(16).padStart(4, '0')}`;
  return {
    key: `${port}|${targetPort}`,
    initiatorPort: port,
    targetPort,
    relativeTargetPortId: rtpi,
    initiatorTransportId: Buffer.from(iscsiTransportId(port, 1)),
  };
}

export const I1 = itNexus(1);
export const I2 = itNexus(2);
export const I3 = itNexus(3);

export const ProutSa = { REGISTER: 0, RESERVE: 1, RELEASE: 2, CLEAR: 3, PREEMPT: 4, PREEMPT_AND_ABORT: 5, REGISTER_AND_IGNORE: 6, REGISTER_AND_MOVE: 7 } as const;
export const Type = { WE: 1, EA: 3, WE_RO: 5, EA_RO: 6, WE_AR: 7, EA_AR: 8 } as const;
export const ALL_TYPES = [Type.WE, Type.EA, Type.WE_RO, Type.EA_RO, Type.WE_AR, Type.EA_AR] as const;

/** PERSISTENT RESERVE OUT CDB: service action, SCOPE|TYPE byte, PARAMETER LIST LENGTH. */
export function proutCdb(sa: number, type: number, length: number, scope = 0): number[] {
  return [0x5f, sa, (scope << 4) | type, 0, 0, ...be32(length), 0];
}

/** The basic 24-byte parameter list. flags: SPEC_I_PT 0x08, ALL_TG_PT 0x04, APTPL 0x01. */
export function proutParams(key: bigint, sark: bigint, flags = 0): number[] {
  return [...be64(key), ...be64(sark), 0, 0, 0, 0, flags, 0, 0, 0];
}

export interface ProutOptions {
  readonly type?: number;
  readonly key?: bigint;
  readonly sark?: bigint;
  readonly flags?: number;
  readonly scope?: number;
}

/** Send a PERSISTENT RESERVE OUT with the basic parameter list. */
export function prout(dev: ScsiTargetDevice, nexus: ItNexus, sa: number, o: ProutOptions = {}): Promise<ScsiResponse> {
  const data = proutParams(o.key ?? 0n, o.sark ?? 0n, o.flags ?? 0);
  return run(dev, proutCdb(sa, o.type ?? 0, data.length, o.scope ?? 0), { nexus, dataOut: [Buffer.from(data)] });
}

export function proutRaw(dev: ScsiTargetDevice, nexus: ItNexus, cdb: number[], data: number[]): Promise<ScsiResponse> {
  return run(dev, cdb, { nexus, dataOut: [Buffer.from(data)] });
}

export const register = (dev: ScsiTargetDevice, nexus: ItNexus, key: bigint, flags = 0): Promise<ScsiResponse> =>
  prout(dev, nexus, ProutSa.REGISTER_AND_IGNORE, { sark: key, flags });
export const reserve = (dev: ScsiTargetDevice, nexus: ItNexus, key: bigint, type: number): Promise<ScsiResponse> =>
  prout(dev, nexus, ProutSa.RESERVE, { key, type });
export const release = (dev: ScsiTargetDevice, nexus: ItNexus, key: bigint, type: number): Promise<ScsiResponse> =>
  prout(dev, nexus, ProutSa.RELEASE, { key, type });

/** PERSISTENT RESERVE IN CDB. */
export function prinCdb(sa: number, allocationLength = 0x2000): number[] {
  return [0x5e, sa, 0, 0, 0, 0, 0, ...be16(allocationLength), 0];
}

export interface ReadKeys {
  readonly generation: number;
  readonly additionalLength: number;
  readonly keys: bigint[];
}

export async function readKeys(dev: ScsiTargetDevice, nexus: ItNexus = I1): Promise<ReadKeys> {
  const r = await run(dev, prinCdb(0), { nexus });
  expectGood(r);
  const d = r.dataIn!;
  const keys: bigint[] = [];
  for (let at = 8; at + 8 <= d.length; at += 8) keys.push(d.readBigUInt64BE(at));
  return { generation: d.readUInt32BE(0), additionalLength: d.readUInt32BE(4), keys };
}

export interface ReadReservation {
  readonly generation: number;
  readonly reserved: boolean;
  readonly key?: bigint;
  readonly scope?: number;
  readonly type?: number;
}

export async function readReservation(dev: ScsiTargetDevice, nexus: ItNexus = I1): Promise<ReadReservation> {
  const r = await run(dev, prinCdb(1), { nexus });
  expectGood(r);
  const d = r.dataIn!;
  const generation = d.readUInt32BE(0);
  if (d.readUInt32BE(4) === 0) {
    expect(d.length).toBe(8);
    return { generation, reserved: false };
  }
  expect(d.readUInt32BE(4)).toBe(16);
  expect(d.length).toBe(24);
  return { generation, reserved: true, key: d.readBigUInt64BE(8), scope: d[21]! >> 4, type: d[21]! & 0x0f };
}

export const READ10 = [0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0];
export const WRITE10 = [0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0];
export const TUR = [0x00, 0, 0, 0, 0, 0];

export function readBlock(dev: ScsiTargetDevice, nexus: ItNexus): Promise<ScsiResponse> {
  return run(dev, READ10, { nexus });
}

export function writeBlock(dev: ScsiTargetDevice, nexus: ItNexus): Promise<ScsiResponse> {
  return run(dev, WRITE10, { nexus, dataOut: [Buffer.alloc(512, 0x5a)] });
}

export function expectConflict(r: ScsiResponse): void {
  if (r.status !== 0x18) throw new Error(`expected RESERVATION CONFLICT, got status ${r.status} sense ${r.sense?.toString('hex')}`);
  expect(r.sense).toBeNull();
  expect(r.dataIn).toBeNull();
}

/** Every nexus consumes its power-on unit attention. */
export async function admit(dev: ScsiTargetDevice, ...nexuses: ItNexus[]): Promise<void> {
  for (const n of nexuses) await clearUnitAttentions(dev, { nexus: n });
}

/** The unit attentions a nexus has pending, as asc<<8|ascq, cleared by TEST UNIT READY (which a reservation may refuse). */
export async function pendingUas(dev: ScsiTargetDevice, nexus: ItNexus): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await run(dev, [0x03, 0, 0, 0, 0xfc, 0], { nexus }); // REQUEST SENSE reports and clears one
    const s = parseSense(r.dataIn!);
    if (s.key !== 0x6) return seen;
    seen.push((s.asc << 8) | s.ascq);
  }
  throw new Error('unit attentions never cleared');
}

export const UA = {
  RESERVATIONS_PREEMPTED: 0x2a03,
  RESERVATIONS_RELEASED: 0x2a04,
  REGISTRATIONS_PREEMPTED: 0x2a05,
} as const;
