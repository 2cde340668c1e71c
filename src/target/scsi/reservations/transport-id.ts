/**
 * Initiator names for reservations, and the SPC-4 TransportID wire format
 * (7.6.4) they travel in.
 *
 * Reservation state names an initiator by text, never by a session object,
 * so it can be written to disk and replicated to the peer node:
 *
 *   iSCSI initiator port   "iqn.1993-08.org.debian:01:abc,i,0x23d000000001"
 *                          (TransportID FORMAT CODE 01b; name lower-cased,
 *                          ISID as 12 lower-case hex digits)
 *   iSCSI initiator device "iqn.1993-08.org.debian:01:abc"
 *                          (FORMAT CODE 00b: every port of that initiator)
 *   any other protocol     "tid:<hex of the 24-byte TransportID>"
 *
 * An I_T nexus is an initiator port plus the relative target port
 * identifier of the target port it talks to.
 */
import { invalidParameterField } from '../failures';
import type { ItNexus } from '../types';

/** PROTOCOL IDENTIFIER values (SPC-4 7.6.1). */
export const ProtocolId = {
  FCP: 0x0,
  SPI: 0x1,
  SSA: 0x2,
  SBP: 0x3,
  SRP: 0x4,
  ISCSI: 0x5,
  SAS: 0x6,
  ADT: 0x7,
  ATA: 0x8,
  UAS: 0x9,
  SOP: 0xa,
} as const;
export type ProtocolId = (typeof ProtocolId)[keyof typeof ProtocolId];

/** iSCSI TransportID FORMAT CODE values. */
export const IscsiTransportIdFormat = { DEVICE: 0, PORT: 1 } as const;

const PORT_SEPARATOR = ',i,0x';
const OPAQUE_PREFIX = 'tid:';
/** Every protocol but iSCSI has a 24-byte TransportID. */
const FIXED_TRANSPORT_ID_LENGTH = 24;
/** SPC-4: an iSCSI TransportID's ADDITIONAL LENGTH is at least 20. */
const MIN_ISCSI_ADDITIONAL_LENGTH = 20;

/** An I_T nexus as reservations know it: plain data, equal on every node. */
export interface NexusIdentity {
  /** The initiator port, canonical text (see the file comment). */
  readonly initiator: string;
  readonly relativeTargetPortId: number;
}

export interface ParsedTransportId {
  /** Canonical initiator text (port or device form). */
  readonly initiator: string;
  /** Bytes the TransportID occupies. */
  readonly length: number;
}

/** Whether the canonical text names an iSCSI initiator device (every port of it) rather than one port. */
export function isInitiatorDevice(initiator: string): boolean {
  return !initiator.startsWith(OPAQUE_PREFIX) && !initiator.includes(PORT_SEPARATOR);
}

/** The initiator device an initiator port belongs to (the port itself for opaque TransportIDs). */
export function initiatorDeviceOf(initiator: string): string {
  const at = initiator.indexOf(PORT_SEPARATOR);
  return at < 0 ? initiator : initiator.slice(0, at);
}

/** Whether a registration's initiator (port or device form) names this initiator port. */
export function initiatorMatches(registered: string, port: string): boolean {
  return registered === port || (isInitiatorDevice(registered) && initiatorDeviceOf(port) === registered);
}

/** Whether two initiator names (port or device form) can name the same initiator port. */
export function initiatorsOverlap(a: string, b: string): boolean {
  return a === b || (initiatorDeviceOf(a) === initiatorDeviceOf(b) && (isInitiatorDevice(a) || isInitiatorDevice(b)));
}

function canonicalPort(name: string, isidHex: string): string | null {
  if (name.length === 0 || !/^[0-9a-fA-F]{1,12}$/.test(isidHex)) return null;
  return `${name.toLowerCase()}${PORT_SEPARATOR}${isidHex.toLowerCase().padStart(12, '0')}`;
}

/** Whether two initiator names are of the same SCSI transport protocol. */
export function sameProtocol(a: string, b: string): boolean {
  const opaqueA = a.startsWith(OPAQUE_PREFIX);
  const opaqueB = b.startsWith(OPAQUE_PREFIX);
  if (opaqueA !== opaqueB) return false;
  return !opaqueA || a.slice(OPAQUE_PREFIX.length, OPAQUE_PREFIX.length + 2) === b.slice(OPAQUE_PREFIX.length, OPAQUE_PREFIX.length + 2);
}

/** Parse "name,i,0xISID" (an iSCSI initiator port name) to canonical text, or null. */
export function parseInitiatorPortName(text: string): string | null {
  const at = text.toLowerCase().lastIndexOf(PORT_SEPARATOR);
  if (at <= 0) return null;
  return canonicalPort(text.slice(0, at), text.slice(at + PORT_SEPARATOR.length));
}

/**
 * Parse one TransportID at `at` in a parameter list (`end` is where the
 * TransportID data ends). Faults are INVALID FIELD IN PARAMETER LIST
 * pointing at the offending byte.
 */
export function parseTransportId(data: Buffer, at: number, end: number = data.length): ParsedTransportId {
  if (end - at < 4) throw invalidParameterField(at, 7);
  const formatCode = data[at]! >> 6;
  const protocol = data[at]! & 0x0f;
  if (protocol !== ProtocolId.ISCSI) {
    if (formatCode !== 0) throw invalidParameterField(at, 7);
    if (end - at < FIXED_TRANSPORT_ID_LENGTH) throw invalidParameterField(at, 7);
    const raw = Buffer.from(data.subarray(at, at + FIXED_TRANSPORT_ID_LENGTH));
    raw[0] = protocol;
    return { initiator: `${OPAQUE_PREFIX}${raw.toString('hex')}`, length: FIXED_TRANSPORT_ID_LENGTH };
  }
  if (formatCode !== IscsiTransportIdFormat.DEVICE && formatCode !== IscsiTransportIdFormat.PORT) throw invalidParameterField(at, 7);
  const additional = data.readUInt16BE(at + 2);
  if (additional === 0 || additional % 4 !== 0 || at + 4 + additional > end) throw invalidParameterField(at + 2, 7);
  const body = data.subarray(at + 4, at + 4 + additional);
  const nul = body.indexOf(0);
  if (nul <= 0) throw invalidParameterField(at + 4, 7);
  const text = body.toString('utf8', 0, nul);
  let initiator: string | null;
  if (formatCode === IscsiTransportIdFormat.PORT) {
    initiator = parseInitiatorPortName(text);
  } else {
    initiator = text.toLowerCase().includes(PORT_SEPARATOR) ? null : text.toLowerCase();
  }
  if (initiator === null) throw invalidParameterField(at + 4, 7);
  return { initiator, length: 4 + additional };
}

/** The TransportID for canonical initiator text (what READ FULL STATUS reports). */
export function encodeTransportId(initiator: string): Buffer {
  if (initiator.startsWith(OPAQUE_PREFIX)) return Buffer.from(initiator.slice(OPAQUE_PREFIX.length), 'hex');
  const device = isInitiatorDevice(initiator);
  const textLength = Buffer.byteLength(initiator) + 1; // NUL terminated
  const additional = Math.max(MIN_ISCSI_ADDITIONAL_LENGTH, (textLength + 3) & ~3);
  const out = Buffer.alloc(4 + additional);
  out[0] = ((device ? IscsiTransportIdFormat.DEVICE : IscsiTransportIdFormat.PORT) << 6) | ProtocolId.ISCSI;
  out.writeUInt16BE(additional, 2);
  out.write(initiator, 4, 'utf8');
  return out;
}

/**
 * The reservation identity of a nexus: its initiator port from the
 * TransportID the transport supplied, or, when that is not a valid
 * initiator-port TransportID, from the SCSI initiator port name.
 */
export function nexusIdentity(nexus: ItNexus): NexusIdentity {
  let initiator: string | null = null;
  try {
    const parsed = parseTransportId(nexus.initiatorTransportId, 0);
    if (!isInitiatorDevice(parsed.initiator)) initiator = parsed.initiator;
  } catch {
    initiator = null;
  }
  initiator ??= parseInitiatorPortName(nexus.initiatorPort) ?? `${OPAQUE_PREFIX}${Buffer.from(nexus.initiatorPort).toString('hex')}`;
  return { initiator, relativeTargetPortId: nexus.relativeTargetPortId };
}
