/**
 * Wire bytes for the fuzz initiator, written independently of src/target/iscsi
 * (RFC 7143 §11 layouts by hand): builders for initiator PDUs, their
 * serialisation with optional CRC32C digests, and a stream parser for what
 * the target sends back.
 */
import { crc32c } from '@node-rs/crc32';

export const BHS = 48;
export const RESERVED = 0xffffffff;

/** Initiator opcodes (RFC 7143 §11.1.1). */
export const IOp = {
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TMF: 0x02,
  LOGIN: 0x03,
  TEXT: 0x04,
  DATA_OUT: 0x05,
  LOGOUT: 0x06,
  SNACK: 0x10,
} as const;

/** Target opcodes. */
export const TOp = {
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TMF_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC: 0x32,
  REJECT: 0x3f,
} as const;
export const TARGET_OPCODES: ReadonlySet<number> = new Set(Object.values(TOp));

/** An initiator PDU before serialisation: lengths are filled in from ahs and data. */
export interface Pdu {
  readonly bhs: Buffer;
  readonly ahs: Buffer;
  readonly data: Buffer;
}

export interface Digests {
  readonly header: boolean;
  readonly data: boolean;
}

export const NO_DIGESTS: Digests = { header: false, data: false };

/** A zeroed BHS with opcode (plus immediate bit) and flags. */
export function bhs(opcode: number, flags: number, immediate = false): Buffer {
  const b = Buffer.alloc(BHS);
  b[0] = (opcode & 0x3f) | (immediate ? 0x40 : 0);
  b[1] = flags;
  return b;
}

export function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function crc(parts: readonly Buffer[]): Buffer {
  let c = 0;
  for (const p of parts) c = crc32c(p, c);
  const out = Buffer.alloc(4);
  out.writeUInt32LE(c >>> 0, 0);
  return out;
}

/**
 * Header + digest + data + padding + digest. TotalAHSLength and
 * DataSegmentLength are set from the PDU. `corrupt` flips a bit in a digest.
 */
export function serialize(pdu: Pdu, digests: Digests, corrupt: { header?: boolean; data?: boolean } = {}): Buffer {
  const head = Buffer.concat([pdu.bhs, pdu.ahs]);
  head[4] = pdu.ahs.length / 4;
  head.writeUIntBE(pdu.data.length, 5, 3);
  const parts: Buffer[] = [head];
  if (digests.header) {
    const d = crc([head]);
    if (corrupt.header) d[0]! ^= 0x01;
    parts.push(d);
  }
  if (pdu.data.length > 0) {
    const padded = Buffer.concat([pdu.data, Buffer.alloc(pad4(pdu.data.length))]);
    parts.push(padded);
    if (digests.data) {
      const d = crc([padded]);
      if (corrupt.data) d[3]! ^= 0x80;
      parts.push(d);
    }
  }
  return Buffer.concat(parts);
}

/** A PDU from the target, with the fields the initiator reads. */
export interface TargetPdu {
  readonly opcode: number;
  readonly bhs: Buffer;
  readonly data: Buffer;
  readonly flags: number;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
}

export class TargetPduError extends Error {
  override readonly name = 'TargetPduError';
}

/** Splits the target's byte stream into PDUs and checks its digests. */
export class TargetStream {
  digests: Digests = NO_DIGESTS;
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  next(): TargetPdu | null {
    if (this.buf.length < BHS) return null;
    const ahs = this.buf[4]! * 4;
    const dsl = this.buf.readUIntBE(5, 3);
    const hd = this.digests.header ? 4 : 0;
    const dd = this.digests.data && dsl > 0 ? 4 : 0;
    const total = BHS + ahs + hd + dsl + pad4(dsl) + dd;
    if (this.buf.length < total) return null;
    const head = this.buf.subarray(0, BHS + ahs);
    if (hd && !crc([head]).equals(this.buf.subarray(BHS + ahs, BHS + ahs + 4))) throw new TargetPduError('target sent a bad header digest');
    const dataStart = BHS + ahs + hd;
    const padded = this.buf.subarray(dataStart, dataStart + dsl + pad4(dsl));
    if (dd && !crc([padded]).equals(this.buf.subarray(dataStart + padded.length, dataStart + padded.length + 4))) {
      throw new TargetPduError('target sent a bad data digest');
    }
    const b = Buffer.from(head.subarray(0, BHS));
    const data = Buffer.from(padded.subarray(0, dsl));
    this.buf = this.buf.subarray(total);
    const opcode = b[0]! & 0x3f;
    if (!TARGET_OPCODES.has(opcode)) throw new TargetPduError(`target sent opcode 0x${opcode.toString(16)}`);
    return {
      opcode,
      bhs: b,
      data,
      flags: b[1]!,
      itt: b.readUInt32BE(16),
      ttt: b.readUInt32BE(20),
      statSN: b.readUInt32BE(24),
      expCmdSN: b.readUInt32BE(28),
      maxCmdSN: b.readUInt32BE(32),
    };
  }
}

/* ---------------- text keys ---------------- */

export function textData(pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

export function parseText(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of data.toString('utf8').split('\0')) {
    const eq = item.indexOf('=');
    if (eq > 0) out.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return out;
}

/* ---------------- builders ---------------- */

export interface Seq {
  cmdSN: number;
  expStatSN: number;
}

export function loginRequest(f: {
  transit: boolean;
  cont?: boolean;
  csg: number;
  nsg: number;
  isid: Buffer;
  tsih?: number;
  itt: number;
  cid?: number;
  cmdSN: number;
  expStatSN: number;
  data: Buffer;
}): Pdu {
  const b = bhs(IOp.LOGIN, (f.transit ? 0x80 : 0) | (f.cont ? 0x40 : 0) | ((f.csg & 3) << 2) | (f.transit ? f.nsg & 3 : 0), true);
  b[2] = 0; // version max
  b[3] = 0; // version min
  f.isid.copy(b, 8, 0, 6);
  b.writeUInt16BE(f.tsih ?? 0, 14);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt16BE(f.cid ?? 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  return { bhs: b, ahs: Buffer.alloc(0), data: f.data };
}

export function scsiCommand(f: {
  itt: number;
  cdb: Buffer;
  edtl: number;
  read: boolean;
  write: boolean;
  final?: boolean;
  attr?: number;
  lun?: Buffer;
  cmdSN: number;
  expStatSN: number;
  immediate?: boolean;
  data?: Buffer;
  ahs?: Buffer;
}): Pdu {
  const flags = (f.final === false ? 0 : 0x80) | (f.read ? 0x40 : 0) | (f.write ? 0x20 : 0) | ((f.attr ?? 1) & 7);
  const b = bhs(IOp.SCSI_COMMAND, flags, f.immediate ?? false);
  (f.lun ?? Buffer.alloc(8)).copy(b, 8, 0, 8);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.edtl >>> 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  f.cdb.copy(b, 32, 0, Math.min(16, f.cdb.length));
  return { bhs: b, ahs: f.ahs ?? Buffer.alloc(0), data: f.data ?? Buffer.alloc(0) };
}

export function dataOut(f: {
  itt: number;
  ttt: number;
  final: boolean;
  dataSN: number;
  offset: number;
  expStatSN: number;
  data: Buffer;
  lun?: Buffer;
}): Pdu {
  const b = bhs(IOp.DATA_OUT, f.final ? 0x80 : 0);
  (f.lun ?? Buffer.alloc(8)).copy(b, 8, 0, 8);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.ttt >>> 0, 20);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  b.writeUInt32BE(f.dataSN >>> 0, 36);
  b.writeUInt32BE(f.offset >>> 0, 40);
  return { bhs: b, ahs: Buffer.alloc(0), data: f.data };
}

export function nopOut(f: { itt: number; ttt: number; cmdSN: number; expStatSN: number; immediate: boolean; lun?: Buffer; data?: Buffer }): Pdu {
  const b = bhs(IOp.NOP_OUT, 0x80, f.immediate);
  (f.lun ?? Buffer.alloc(8)).copy(b, 8, 0, 8);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.ttt >>> 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  return { bhs: b, ahs: Buffer.alloc(0), data: f.data ?? Buffer.alloc(0) };
}

export function taskMgmt(f: { func: number; itt: number; refItt: number; cmdSN: number; expStatSN: number; refCmdSN: number; expDataSN?: number; lun?: Buffer; immediate: boolean }): Pdu {
  const b = bhs(IOp.TMF, 0x80 | (f.func & 0x7f), f.immediate);
  (f.lun ?? Buffer.alloc(8)).copy(b, 8, 0, 8);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.refItt >>> 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  b.writeUInt32BE(f.refCmdSN >>> 0, 32);
  b.writeUInt32BE((f.expDataSN ?? 0) >>> 0, 36);
  return { bhs: b, ahs: Buffer.alloc(0), data: Buffer.alloc(0) };
}

export function textRequest(f: { itt: number; ttt: number; final: boolean; cont: boolean; cmdSN: number; expStatSN: number; immediate: boolean; data: Buffer }): Pdu {
  const b = bhs(IOp.TEXT, (f.final ? 0x80 : 0) | (f.cont ? 0x40 : 0), f.immediate);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.ttt >>> 0, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  return { bhs: b, ahs: Buffer.alloc(0), data: f.data };
}

export function logoutRequest(f: { reason: number; itt: number; cid: number; cmdSN: number; expStatSN: number; immediate: boolean }): Pdu {
  const b = bhs(IOp.LOGOUT, 0x80 | (f.reason & 0x7f), f.immediate);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt16BE(f.cid, 20);
  b.writeUInt32BE(f.cmdSN >>> 0, 24);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  return { bhs: b, ahs: Buffer.alloc(0), data: Buffer.alloc(0) };
}

export function snackRequest(f: { type: number; itt: number; ttt: number; expStatSN: number; begRun: number; runLength: number }): Pdu {
  const b = bhs(IOp.SNACK, 0x80 | (f.type & 0x0f));
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.ttt >>> 0, 20);
  b.writeUInt32BE(f.expStatSN >>> 0, 28);
  b.writeUInt32BE(f.begRun >>> 0, 40);
  b.writeUInt32BE(f.runLength >>> 0, 44);
  return { bhs: b, ahs: Buffer.alloc(0), data: Buffer.alloc(0) };
}

/** Single-level LUN field for LUN n (peripheral addressing below 256). */
export function lunField(n: number): Buffer {
  const b = Buffer.alloc(8);
  if (n < 256) b[1] = n;
  else b.writeUInt16BE(0x4000 | n, 0);
  return b;
}
