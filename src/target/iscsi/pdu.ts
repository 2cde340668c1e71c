/**
 * PDU codec: incoming PDUs from the framer are decoded into typed views by an
 * opcode table; outgoing PDUs are encoded into a 48-byte BHS plus data
 * segment buffers. No I/O here.
 */
import {
  BHS_LENGTH,
  BhsOffset,
  FINAL_BIT,
  IMMEDIATE_BIT,
  InitiatorOpcode,
  LoginFlag,
  OPCODE_MASK,
  RESERVED_TAG,
  ScsiCommandFlag,
  TargetOpcode,
  TextFlag,
} from './constants';

/** A PDU as the framer delivers it: header plus data segment slices (not copied). */
export interface RawPdu {
  readonly bhs: Buffer;
  readonly ahs: Buffer | null;
  /** Data segment without padding or digest, as one or more slices. */
  readonly data: readonly Buffer[];
  readonly dataLength: number;
}

export class PduFormatError extends Error {
  override readonly name = 'PduFormatError';
  constructor(
    message: string,
    /** Reject reason to answer with. */
    readonly rejectReason: number,
  ) {
    super(message);
  }
}

/* ---------------- LUN field (SAM-5 single level addressing) ---------------- */

/** LUN number meaning "not addressable by this target". */
export const UNADDRESSABLE_LUN = 0x10000;

export function decodeLun(bhs: Buffer, offset: number = BhsOffset.LUN): number {
  const b0 = bhs[offset]!;
  const b1 = bhs[offset + 1]!;
  for (let i = 2; i < 8; i++) if (bhs[offset + i] !== 0) return UNADDRESSABLE_LUN;
  switch (b0 >> 6) {
    case 0: // peripheral device addressing, bus 0 only
      return (b0 & 0x3f) === 0 ? b1 : UNADDRESSABLE_LUN;
    case 1: // flat space addressing
      return ((b0 & 0x3f) << 8) | b1;
    default:
      return UNADDRESSABLE_LUN;
  }
}

/**
 * Write a LUN field. A LUN is a number (0..16383, single level) or the 8 raw
 * bytes of a LUN field as the initiator sent it (echoed for LUNs we cannot
 * address, so responses name what the initiator asked for).
 */
export function encodeLun(lun: number | Buffer, out: Buffer, offset: number = BhsOffset.LUN): void {
  if (typeof lun !== 'number') {
    lun.copy(out, offset, 0, 8);
    return;
  }
  if (!Number.isInteger(lun) || lun < 0 || lun > 0x3fff) throw new RangeError(`LUN ${lun} is outside single-level flat space`);
  out.fill(0, offset, offset + 8);
  if (lun < 256) {
    out[offset + 1] = lun;
  } else {
    out[offset] = 0x40 | ((lun >> 8) & 0x3f);
    out[offset + 1] = lun & 0xff;
  }
}

/* ---------------- decoded views of initiator PDUs ---------------- */

interface Common {
  readonly raw: RawPdu;
  readonly immediate: boolean;
  readonly itt: number;
  /** Length of the data segment (sum of raw.data). */
  readonly dataLength: number;
}

export interface NopOutPdu extends Common {
  readonly kind: 'nop-out';
  readonly lun: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}

export interface ScsiCommandPdu extends Common {
  readonly kind: 'scsi-command';
  readonly final: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly attr: number;
  readonly lun: number;
  readonly edtl: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly cdb: Buffer;
  /** Bidirectional expected read data length from AHS type 2, if present. */
  readonly bidiReadLength: number | null;
}

export interface TaskMgmtPdu extends Common {
  readonly kind: 'task-mgmt';
  readonly func: number;
  readonly lun: number;
  readonly referencedTaskTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly refCmdSN: number;
  readonly expDataSN: number;
}

export interface LoginPdu extends Common {
  readonly kind: 'login';
  readonly transit: boolean;
  readonly cont: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly versionMax: number;
  readonly versionMin: number;
  readonly isid: Buffer;
  readonly tsih: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}

export interface TextPdu extends Common {
  readonly kind: 'text';
  readonly final: boolean;
  readonly cont: boolean;
  readonly lun: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}

export interface DataOutPdu extends Common {
  readonly kind: 'data-out';
  readonly final: boolean;
  readonly lun: number;
  readonly ttt: number;
  readonly expStatSN: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
}

export interface LogoutPdu extends Common {
  readonly kind: 'logout';
  readonly reason: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}

export interface SnackPdu extends Common {
  readonly kind: 'snack';
}

export type InitiatorPdu = NopOutPdu | ScsiCommandPdu | TaskMgmtPdu | LoginPdu | TextPdu | DataOutPdu | LogoutPdu | SnackPdu;

const AhsType = { EXTENDED_CDB: 1, BIDI_READ_LENGTH: 2 } as const;

// Decoders build each view as one object literal straight from the BHS (no
// spread of a common part): one allocation and one stable shape per kind,
// which matters for SCSI Command and Data-Out, decoded for every command.

function isImmediate(bhs: Buffer): boolean {
  return (bhs[0]! & IMMEDIATE_BIT) !== 0;
}

function ittOf(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.ITT);
}

function decodeScsiCommand(raw: RawPdu): ScsiCommandPdu {
  const b = raw.bhs;
  const flags = b[1]!;
  let cdb = b.subarray(BhsOffset.CDB, BhsOffset.CDB + 16);
  let bidiReadLength: number | null = null;
  if (raw.ahs) {
    // Walk the AHS list: each is length(2) type(1) specific(1) + data, padded to 4.
    let at = 0;
    while (at + 4 <= raw.ahs.length) {
      const len = raw.ahs.readUInt16BE(at);
      const type = raw.ahs[at + 2]!;
      const end = at + 3 + len;
      if (end > raw.ahs.length) throw new PduFormatError('AHS length runs past the header', 0x09);
      if (type === AhsType.EXTENDED_CDB) {
        if (len < 2) throw new PduFormatError('extended CDB AHS too short', 0x09);
        // AHS specific byte is reserved; the CDB continues at at+4 for len-1 bytes.
        cdb = Buffer.concat([cdb, raw.ahs.subarray(at + 4, at + 3 + len)]);
      } else if (type === AhsType.BIDI_READ_LENGTH) {
        if (len !== 5) throw new PduFormatError('bidirectional read length AHS must be 5 bytes', 0x09);
        bidiReadLength = raw.ahs.readUInt32BE(at + 4);
      } else {
        throw new PduFormatError(`unsupported AHS type ${type}`, 0x09);
      }
      at += (3 + len + 3) & ~3;
    }
  }
  return {
    kind: 'scsi-command',
    raw,
    immediate: isImmediate(b),
    itt: ittOf(b),
    dataLength: raw.dataLength,
    final: (flags & ScsiCommandFlag.FINAL) !== 0,
    read: (flags & ScsiCommandFlag.READ) !== 0,
    write: (flags & ScsiCommandFlag.WRITE) !== 0,
    attr: flags & ScsiCommandFlag.ATTR_MASK,
    lun: decodeLun(b),
    edtl: b.readUInt32BE(BhsOffset.EDTL),
    cmdSN: b.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: b.readUInt32BE(BhsOffset.EXP_STAT_SN),
    cdb,
    bidiReadLength,
  };
}

/** One decoder per initiator opcode; unknown opcodes have no row. */
const DECODERS: Readonly<Record<number, (raw: RawPdu) => InitiatorPdu>> = {
  [InitiatorOpcode.NOP_OUT]: (raw) => ({
    kind: 'nop-out',
    raw,
    immediate: isImmediate(raw.bhs),
    itt: ittOf(raw.bhs),
    dataLength: raw.dataLength,
    lun: decodeLun(raw.bhs),
    ttt: raw.bhs.readUInt32BE(BhsOffset.TTT),
    cmdSN: raw.bhs.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: raw.bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
  }),
  [InitiatorOpcode.SCSI_COMMAND]: decodeScsiCommand,
  [InitiatorOpcode.TASK_MGMT_REQUEST]: (raw) => ({
    kind: 'task-mgmt',
    raw,
    immediate: isImmediate(raw.bhs),
    itt: ittOf(raw.bhs),
    dataLength: raw.dataLength,
    func: raw.bhs[1]! & 0x7f,
    lun: decodeLun(raw.bhs),
    referencedTaskTag: raw.bhs.readUInt32BE(20),
    cmdSN: raw.bhs.readUInt32BE(24),
    expStatSN: raw.bhs.readUInt32BE(28),
    refCmdSN: raw.bhs.readUInt32BE(32),
    expDataSN: raw.bhs.readUInt32BE(36),
  }),
  [InitiatorOpcode.LOGIN_REQUEST]: (raw) => {
    const f = raw.bhs[1]!;
    return {
      kind: 'login',
      raw,
      immediate: isImmediate(raw.bhs),
      itt: ittOf(raw.bhs),
      dataLength: raw.dataLength,
      transit: (f & LoginFlag.TRANSIT) !== 0,
      cont: (f & LoginFlag.CONTINUE) !== 0,
      csg: (f & LoginFlag.CSG_MASK) >> LoginFlag.CSG_SHIFT,
      nsg: f & LoginFlag.NSG_MASK,
      versionMax: raw.bhs[2]!,
      versionMin: raw.bhs[3]!,
      isid: Buffer.from(raw.bhs.subarray(8, 14)),
      tsih: raw.bhs.readUInt16BE(14),
      cid: raw.bhs.readUInt16BE(20),
      cmdSN: raw.bhs.readUInt32BE(24),
      expStatSN: raw.bhs.readUInt32BE(28),
    };
  },
  [InitiatorOpcode.TEXT_REQUEST]: (raw) => ({
    kind: 'text',
    raw,
    immediate: isImmediate(raw.bhs),
    itt: ittOf(raw.bhs),
    dataLength: raw.dataLength,
    final: (raw.bhs[1]! & TextFlag.FINAL) !== 0,
    cont: (raw.bhs[1]! & TextFlag.CONTINUE) !== 0,
    lun: decodeLun(raw.bhs),
    ttt: raw.bhs.readUInt32BE(BhsOffset.TTT),
    cmdSN: raw.bhs.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: raw.bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
  }),
  [InitiatorOpcode.SCSI_DATA_OUT]: (raw) => ({
    kind: 'data-out',
    raw,
    immediate: isImmediate(raw.bhs),
    itt: ittOf(raw.bhs),
    dataLength: raw.dataLength,
    final: (raw.bhs[1]! & FINAL_BIT) !== 0,
    lun: decodeLun(raw.bhs),
    ttt: raw.bhs.readUInt32BE(BhsOffset.TTT),
    expStatSN: raw.bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
    dataSN: raw.bhs.readUInt32BE(BhsOffset.DATA_SN),
    bufferOffset: raw.bhs.readUInt32BE(BhsOffset.BUFFER_OFFSET),
  }),
  [InitiatorOpcode.LOGOUT_REQUEST]: (raw) => ({
    kind: 'logout',
    raw,
    immediate: isImmediate(raw.bhs),
    itt: ittOf(raw.bhs),
    dataLength: raw.dataLength,
    reason: raw.bhs[1]! & 0x7f,
    cid: raw.bhs.readUInt16BE(20),
    cmdSN: raw.bhs.readUInt32BE(24),
    expStatSN: raw.bhs.readUInt32BE(28),
  }),
  [InitiatorOpcode.SNACK_REQUEST]: (raw) => ({ kind: 'snack', raw, immediate: isImmediate(raw.bhs), itt: ittOf(raw.bhs), dataLength: raw.dataLength }),
};

export function opcodeOf(bhs: Buffer): number {
  return bhs[0]! & OPCODE_MASK;
}

/** Decode a raw PDU; throws PduFormatError for opcodes an initiator may not send. */
export function decodePdu(raw: RawPdu): InitiatorPdu {
  const decoder = DECODERS[opcodeOf(raw.bhs)];
  if (!decoder) throw new PduFormatError(`opcode 0x${opcodeOf(raw.bhs).toString(16)} not supported`, 0x05);
  return decoder(raw);
}

/* ---------------- encoders for target PDUs ---------------- */

/** Sequence numbers every target response carries (StatSN, ExpCmdSN, MaxCmdSN). */
export interface SequenceFields {
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
}

function header(opcode: number, flags: number, dataLength: number): Buffer {
  // From Node's buffer pool (Buffer.alloc would make an ArrayBuffer per PDU), zeroed by hand.
  const b = Buffer.allocUnsafe(BHS_LENGTH).fill(0);
  b[0] = opcode;
  b[1] = flags;
  b.writeUIntBE(dataLength, BhsOffset.DATA_SEGMENT_LENGTH, 3);
  return b;
}

function putSeq(b: Buffer, s: SequenceFields): void {
  b.writeUInt32BE(s.statSN >>> 0, 24);
  b.writeUInt32BE(s.expCmdSN >>> 0, 28);
  b.writeUInt32BE(s.maxCmdSN >>> 0, 32);
}

export interface ResidualFields {
  readonly overflow: boolean;
  readonly underflow: boolean;
  readonly residualCount: number;
}

export function encodeScsiResponse(
  f: SequenceFields &
    ResidualFields & { itt: number; response: number; status: number; expDataSN: number; dataLength: number },
): Buffer {
  let flags = FINAL_BIT;
  if (f.overflow) flags |= 0x04;
  if (f.underflow) flags |= 0x02;
  const b = header(TargetOpcode.SCSI_RESPONSE, flags, f.dataLength);
  b[2] = f.response;
  b[3] = f.status;
  b.writeUInt32BE(f.itt >>> 0, 16);
  putSeq(b, f);
  b.writeUInt32BE(f.expDataSN >>> 0, 36);
  b.writeUInt32BE(f.residualCount >>> 0, 44);
  return b;
}

export function encodeDataIn(
  f: SequenceFields &
    ResidualFields & {
      itt: number;
      lun: number | Buffer;
      final: boolean;
      /** When set, the PDU carries this status (S bit). */
      status: number | null;
      dataSN: number;
      bufferOffset: number;
      dataLength: number;
    },
): Buffer {
  let flags = f.final ? FINAL_BIT : 0;
  if (f.status !== null) {
    flags |= 0x01;
    if (f.overflow) flags |= 0x04;
    if (f.underflow) flags |= 0x02;
  }
  const b = header(TargetOpcode.SCSI_DATA_IN, flags, f.dataLength);
  if (f.status !== null) b[3] = f.status;
  encodeLun(f.lun, b);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(RESERVED_TAG, 20);
  putSeq(b, f);
  if (f.status === null) b.writeUInt32BE(0, 24); // StatSN is reserved unless S is set
  b.writeUInt32BE(f.dataSN >>> 0, 36);
  b.writeUInt32BE(f.bufferOffset >>> 0, 40);
  if (f.status !== null) b.writeUInt32BE(f.residualCount >>> 0, 44);
  return b;
}

export function encodeR2T(
  f: SequenceFields & { itt: number; lun: number | Buffer; ttt: number; r2tSN: number; bufferOffset: number; desiredLength: number },
): Buffer {
  const b = header(TargetOpcode.R2T, FINAL_BIT, 0);
  encodeLun(f.lun, b);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.ttt >>> 0, 20);
  putSeq(b, f);
  b.writeUInt32BE(f.r2tSN >>> 0, 36);
  b.writeUInt32BE(f.bufferOffset >>> 0, 40);
  b.writeUInt32BE(f.desiredLength >>> 0, 44);
  return b;
}

export function encodeNopIn(f: SequenceFields & { itt: number; ttt: number; lun: number | Buffer; dataLength: number }): Buffer {
  const b = header(TargetOpcode.NOP_IN, FINAL_BIT, f.dataLength);
  encodeLun(f.lun, b);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.ttt >>> 0, 20);
  putSeq(b, f);
  return b;
}

export function encodeTaskMgmtResponse(f: SequenceFields & { itt: number; response: number }): Buffer {
  const b = header(TargetOpcode.TASK_MGMT_RESPONSE, FINAL_BIT, 0);
  b[2] = f.response;
  b.writeUInt32BE(f.itt >>> 0, 16);
  putSeq(b, f);
  return b;
}

export function encodeLoginResponse(
  f: SequenceFields & {
    itt: number;
    transit: boolean;
    cont: boolean;
    csg: number;
    nsg: number;
    versionMax: number;
    versionActive: number;
    isid: Buffer;
    tsih: number;
    statusClass: number;
    statusDetail: number;
    dataLength: number;
  },
): Buffer {
  let flags = (f.csg << LoginFlag.CSG_SHIFT) & LoginFlag.CSG_MASK;
  if (f.transit) flags |= LoginFlag.TRANSIT | (f.nsg & LoginFlag.NSG_MASK);
  if (f.cont) flags |= LoginFlag.CONTINUE;
  const b = header(TargetOpcode.LOGIN_RESPONSE, flags, f.dataLength);
  b[2] = f.versionMax;
  b[3] = f.versionActive;
  f.isid.copy(b, 8, 0, 6);
  b.writeUInt16BE(f.tsih, 14);
  b.writeUInt32BE(f.itt >>> 0, 16);
  putSeq(b, f);
  b[36] = f.statusClass;
  b[37] = f.statusDetail;
  return b;
}

export function encodeTextResponse(
  f: SequenceFields & { itt: number; ttt: number; lun: number; final: boolean; cont: boolean; dataLength: number },
): Buffer {
  let flags = 0;
  if (f.final) flags |= TextFlag.FINAL;
  if (f.cont) flags |= TextFlag.CONTINUE;
  const b = header(TargetOpcode.TEXT_RESPONSE, flags, f.dataLength);
  encodeLun(f.lun, b);
  b.writeUInt32BE(f.itt >>> 0, 16);
  b.writeUInt32BE(f.ttt >>> 0, 20);
  putSeq(b, f);
  return b;
}

export function encodeLogoutResponse(
  f: SequenceFields & { itt: number; response: number; time2Wait: number; time2Retain: number },
): Buffer {
  const b = header(TargetOpcode.LOGOUT_RESPONSE, FINAL_BIT, 0);
  b[2] = f.response;
  b.writeUInt32BE(f.itt >>> 0, 16);
  putSeq(b, f);
  b.writeUInt16BE(f.time2Wait, 40);
  b.writeUInt16BE(f.time2Retain, 42);
  return b;
}

export function encodeReject(f: SequenceFields & { reason: number; dataSN: number }): Buffer {
  const b = header(TargetOpcode.REJECT, FINAL_BIT, BHS_LENGTH);
  b[2] = f.reason;
  b.writeUInt32BE(RESERVED_TAG, 16);
  putSeq(b, f);
  b.writeUInt32BE(f.dataSN >>> 0, 36);
  return b;
}

export function encodeAsyncMessage(
  f: SequenceFields & { lun: number; event: number; vcode: number; param1: number; param2: number; param3: number; dataLength: number },
): Buffer {
  const b = header(TargetOpcode.ASYNC_MESSAGE, FINAL_BIT, f.dataLength);
  encodeLun(f.lun, b);
  b.writeUInt32BE(RESERVED_TAG, 16);
  putSeq(b, f);
  b[36] = f.event;
  b[37] = f.vcode;
  b.writeUInt16BE(f.param1, 38);
  b.writeUInt16BE(f.param2, 40);
  b.writeUInt16BE(f.param3, 42);
  return b;
}

/** Concatenate a PDU's data segment slices (for small control payloads only). */
export function joinData(raw: RawPdu): Buffer {
  return raw.data.length === 1 ? raw.data[0]! : Buffer.concat(raw.data as Buffer[], raw.dataLength);
}
