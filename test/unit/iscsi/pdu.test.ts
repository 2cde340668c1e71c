/**
 * PDU codec (src/target/iscsi/pdu.ts) and the wire constants it relies on.
 *
 * Every expected byte array here is written out by hand from RFC 7143 §11,
 * offset by offset, never produced by the encoders under test. Encoder tests
 * compare the whole 48-byte BHS so reserved bytes are pinned to zero too.
 */
import { describe, expect, it } from 'vitest';
import {
  AsyncEvent,
  BHS_LENGTH,
  BhsOffset,
  DIGEST_LENGTH,
  FINAL_BIT,
  IMMEDIATE_BIT,
  InitiatorOpcode,
  IscsiTaskAttr,
  LoginFlag,
  LoginStatus,
  LogoutReason,
  LogoutResponse,
  OPCODE_MASK,
  RESERVED_TAG,
  RejectReason,
  ResponseFlag,
  ScsiCommandFlag,
  ScsiServiceResponse,
  TargetOpcode,
  TextFlag,
  TmfFunction,
  TmfResponse,
} from '../../../src/target/iscsi/constants';
import {
  PduFormatError,
  RawPdu,
  UNADDRESSABLE_LUN,
  decodeLun,
  decodePdu,
  encodeAsyncMessage,
  encodeDataIn,
  encodeLoginResponse,
  encodeLogoutResponse,
  encodeLun,
  encodeNopIn,
  encodeR2T,
  encodeReject,
  encodeScsiResponse,
  encodeTaskMgmtResponse,
  encodeTextResponse,
  joinData,
  opcodeOf,
} from '../../../src/target/iscsi/pdu';

/* ---------------- hand-built wire bytes ---------------- */

const be16 = (n: number): number[] => [(n >>> 8) & 0xff, n & 0xff];
const be24 = (n: number): number[] => [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/** `length` zero bytes with each run written at its offset. */
function layout(runs: Record<number, readonly number[]>, length = 48): Buffer {
  const b = Buffer.alloc(length);
  for (const [off, run] of Object.entries(runs)) {
    run.forEach((v, i) => {
      b[Number(off) + i] = v;
    });
  }
  return b;
}

function raw(bhs: Buffer, ahs: Buffer | null = null, data: Buffer[] = []): RawPdu {
  return { bhs, ahs, data, dataLength: data.reduce((n, d) => n + d.length, 0) };
}

/** Hex of a buffer, so that a layout mismatch shows the differing offsets. */
const hex = (b: Buffer): string => b.toString('hex').replace(/(.{8})/g, '$1 ').trim();

function formatError(fn: () => unknown): PduFormatError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PduFormatError);
    return err as PduFormatError;
  }
  throw new Error('expected a PduFormatError, nothing was thrown');
}

const SEQ = { statSN: 0x01020304, expCmdSN: 0x11121314, maxCmdSN: 0x21222324 } as const;
/** StatSN, ExpCmdSN, MaxCmdSN at bytes 24, 28, 32. */
const SEQ_BYTES = { 24: be32(SEQ.statSN), 28: be32(SEQ.expCmdSN), 32: be32(SEQ.maxCmdSN) } as const;

/* ---------------- constants ---------------- */

describe('wire constants (RFC 7143 §11)', () => {
  it('numbers initiator opcodes as the RFC does', () => {
    expect(InitiatorOpcode).toEqual({
      NOP_OUT: 0x00,
      SCSI_COMMAND: 0x01,
      TASK_MGMT_REQUEST: 0x02,
      LOGIN_REQUEST: 0x03,
      TEXT_REQUEST: 0x04,
      SCSI_DATA_OUT: 0x05,
      LOGOUT_REQUEST: 0x06,
      SNACK_REQUEST: 0x10,
    });
  });

  it('numbers target opcodes as the RFC does', () => {
    expect(TargetOpcode).toEqual({
      NOP_IN: 0x20,
      SCSI_RESPONSE: 0x21,
      TASK_MGMT_RESPONSE: 0x22,
      LOGIN_RESPONSE: 0x23,
      TEXT_RESPONSE: 0x24,
      SCSI_DATA_IN: 0x25,
      LOGOUT_RESPONSE: 0x26,
      R2T: 0x31,
      ASYNC_MESSAGE: 0x32,
      REJECT: 0x3f,
    });
  });

  it('pins every shared BHS offset', () => {
    expect(BHS_LENGTH).toBe(48);
    expect(DIGEST_LENGTH).toBe(4);
    expect(RESERVED_TAG).toBe(0xffffffff);
    expect(BhsOffset).toEqual({
      OPCODE: 0,
      FLAGS: 1,
      TOTAL_AHS_LENGTH: 4,
      DATA_SEGMENT_LENGTH: 5,
      LUN: 8,
      ITT: 16,
      TTT: 20,
      EDTL: 20,
      CMD_SN: 24,
      STAT_SN: 24,
      EXP_STAT_SN: 28,
      EXP_CMD_SN: 28,
      MAX_CMD_SN: 32,
      CDB: 32,
      DATA_SN: 36,
      BUFFER_OFFSET: 40,
      RESIDUAL_COUNT: 44,
      DESIRED_LENGTH: 44,
    });
  });

  it('pins the bits of byte 0 and byte 1', () => {
    expect([OPCODE_MASK, IMMEDIATE_BIT, FINAL_BIT]).toEqual([0x3f, 0x40, 0x80]);
    expect(ScsiCommandFlag).toEqual({ FINAL: 0x80, READ: 0x40, WRITE: 0x20, ATTR_MASK: 0x07 });
    // SCSI Response byte 1: 1 . . o u O U . ; Data-In byte 1: F A . . . O U S
    expect(ResponseFlag).toEqual({
      FINAL: 0x80,
      ACK: 0x40,
      BIDI_OVERFLOW: 0x10,
      BIDI_UNDERFLOW: 0x08,
      OVERFLOW: 0x04,
      UNDERFLOW: 0x02,
      STATUS: 0x01,
    });
    expect(LoginFlag).toEqual({ TRANSIT: 0x80, CONTINUE: 0x40, CSG_MASK: 0x0c, CSG_SHIFT: 2, NSG_MASK: 0x03 });
    expect(TextFlag).toEqual({ FINAL: 0x80, CONTINUE: 0x40 });
    expect(IscsiTaskAttr).toEqual({ UNTAGGED: 0, SIMPLE: 1, ORDERED: 2, HEAD_OF_QUEUE: 3, ACA: 4 });
  });

  it('uses the RFC codes for task management, reject, logout, async events and login status', () => {
    expect(TmfFunction).toEqual({
      ABORT_TASK: 1,
      ABORT_TASK_SET: 2,
      CLEAR_ACA: 3,
      CLEAR_TASK_SET: 4,
      LOGICAL_UNIT_RESET: 5,
      TARGET_WARM_RESET: 6,
      TARGET_COLD_RESET: 7,
      TASK_REASSIGN: 8,
    });
    expect(TmfResponse).toEqual({
      FUNCTION_COMPLETE: 0,
      TASK_DOES_NOT_EXIST: 1,
      LUN_DOES_NOT_EXIST: 2,
      TASK_STILL_ALLEGIANT: 3,
      REASSIGNMENT_NOT_SUPPORTED: 4,
      FUNCTION_NOT_SUPPORTED: 5,
      AUTHORIZATION_FAILED: 6,
      FUNCTION_REJECTED: 255,
    });
    expect(RejectReason).toEqual({
      DATA_DIGEST_ERROR: 0x02,
      SNACK_REJECT: 0x03,
      PROTOCOL_ERROR: 0x04,
      COMMAND_NOT_SUPPORTED: 0x05,
      IMMEDIATE_COMMAND_REJECT: 0x06,
      TASK_IN_PROGRESS: 0x07,
      INVALID_DATA_ACK: 0x08,
      INVALID_PDU_FIELD: 0x09,
      LONG_OPERATION_REJECT: 0x0a,
      WAITING_FOR_LOGOUT: 0x0c,
    });
    expect(ScsiServiceResponse).toEqual({ COMMAND_COMPLETED: 0x00, TARGET_FAILURE: 0x01 });
    expect(LogoutReason).toEqual({ CLOSE_SESSION: 0, CLOSE_CONNECTION: 1, REMOVE_FOR_RECOVERY: 2 });
    expect(LogoutResponse).toEqual({ SUCCESS: 0, CID_NOT_FOUND: 1, RECOVERY_NOT_SUPPORTED: 2, CLEANUP_FAILED: 3 });
    expect(AsyncEvent).toEqual({
      SCSI_ASYNC_EVENT: 0,
      LOGOUT_REQUEST: 1,
      CONNECTION_DROP: 2,
      SESSION_DROP: 3,
      NEGOTIATION_REQUEST: 4,
    });
    // Status-Class << 8 | Status-Detail, as the RFC 7143 §11.13.5 table lists them.
    const codes = Object.fromEntries(Object.entries(LoginStatus).map(([k, [c, d]]) => [k, (c << 8) | d]));
    expect(codes).toEqual({
      SUCCESS: 0x0000,
      TARGET_MOVED_TEMPORARILY: 0x0101,
      INITIATOR_ERROR: 0x0200,
      AUTHENTICATION_FAILURE: 0x0201,
      AUTHORIZATION_FAILURE: 0x0202,
      TARGET_NOT_FOUND: 0x0203,
      TARGET_REMOVED: 0x0204,
      UNSUPPORTED_VERSION: 0x0205,
      TOO_MANY_CONNECTIONS: 0x0206,
      MISSING_PARAMETER: 0x0207,
      CANT_INCLUDE_IN_SESSION: 0x0208,
      SESSION_TYPE_NOT_SUPPORTED: 0x0209,
      SESSION_DOES_NOT_EXIST: 0x020a,
      INVALID_DURING_LOGIN: 0x020b,
      TARGET_ERROR: 0x0300,
      SERVICE_UNAVAILABLE: 0x0301,
      OUT_OF_RESOURCES: 0x0302,
    });
  });
});

/* ---------------- LUN field ---------------- */

// decodeLun/encodeLun default `offset` to BhsOffset.LUN, an `as const` 8, so
// TypeScript infers the parameter type as the literal 8 and refuses any other
// offset; these views call them with the offset the functions do accept at run time.
const decodeLunAt = decodeLun as unknown as (bhs: Buffer, offset: number) => number;
const encodeLunAt = encodeLun as unknown as (lun: number, out: Buffer, offset: number) => void;

describe('decodeLun', () => {
  const lunField = (...first: number[]): Buffer => layout({ 8: first });

  it('reads peripheral device addressing (method 00, bus 0) as byte 1', () => {
    expect(decodeLun(lunField(0x00, 0x00))).toBe(0);
    expect(decodeLun(lunField(0x00, 0x05))).toBe(5);
    expect(decodeLun(lunField(0x00, 0xff))).toBe(255);
  });

  it('reads flat space addressing (method 01) as a 14-bit number', () => {
    expect(decodeLun(lunField(0x40, 0x05))).toBe(5);
    expect(decodeLun(lunField(0x41, 0x00))).toBe(256);
    expect(decodeLun(lunField(0x41, 0x23))).toBe(0x0123);
    expect(decodeLun(lunField(0x7f, 0xff))).toBe(0x3fff);
  });

  it('reports a peripheral address on a bus other than 0 as unaddressable', () => {
    expect(decodeLun(lunField(0x01, 0x05))).toBe(UNADDRESSABLE_LUN);
    expect(decodeLun(lunField(0x3f, 0x00))).toBe(UNADDRESSABLE_LUN);
  });

  it('reports logical unit (10) and extended (11) addressing as unaddressable', () => {
    expect(decodeLun(lunField(0x80, 0x01))).toBe(UNADDRESSABLE_LUN);
    expect(decodeLun(lunField(0xc0, 0x01))).toBe(UNADDRESSABLE_LUN);
  });

  it('reports a LUN with any second-level byte set as unaddressable', () => {
    for (let i = 2; i < 8; i++) {
      const first = [0x00, 0x01, 0, 0, 0, 0, 0, 0];
      first[i] = 0x01;
      expect(decodeLun(lunField(...first)), `byte ${i}`).toBe(UNADDRESSABLE_LUN);
    }
  });

  it('reads the field at a caller-given offset', () => {
    expect(decodeLunAt(Buffer.from([0x41, 0x02, 0, 0, 0, 0, 0, 0]), 0)).toBe(0x0102);
  });

  it('uses a value no SAM single-level LUN can take for "unaddressable"', () => {
    expect(UNADDRESSABLE_LUN).toBeGreaterThan(0x3fff);
  });
});

describe('encodeLun', () => {
  const encoded = (lun: number): number[] => {
    const b = Buffer.alloc(16, 0xee);
    encodeLun(lun, b);
    return [...b.subarray(8, 16)];
  };

  it('writes LUNs below 256 in peripheral device addressing', () => {
    expect(encoded(0)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(encoded(7)).toEqual([0x00, 0x07, 0, 0, 0, 0, 0, 0]);
    expect(encoded(255)).toEqual([0x00, 0xff, 0, 0, 0, 0, 0, 0]);
  });

  it('writes LUNs from 256 up in flat space addressing', () => {
    expect(encoded(256)).toEqual([0x41, 0x00, 0, 0, 0, 0, 0, 0]);
    expect(encoded(0x1234)).toEqual([0x52, 0x34, 0, 0, 0, 0, 0, 0]);
    expect(encoded(0x3fff)).toEqual([0x7f, 0xff, 0, 0, 0, 0, 0, 0]);
  });

  it('clears stale bytes of the whole 8-byte field and leaves its neighbours alone', () => {
    const b = Buffer.alloc(20, 0xee);
    encodeLunAt(1, b, 4);
    expect([...b]).toEqual([0xee, 0xee, 0xee, 0xee, 0x00, 0x01, 0, 0, 0, 0, 0, 0, ...Array<number>(8).fill(0xee)]);
  });

  it('round-trips through decodeLun for every LUN of flat space', () => {
    const b = Buffer.alloc(48);
    for (let lun = 0; lun <= 0x3fff; lun++) {
      encodeLun(lun, b);
      if (decodeLun(b) !== lun) expect.fail(`LUN ${lun} decoded as ${decodeLun(b)}`);
    }
  });

  it('refuses a LUN beyond flat space instead of aliasing it onto another LUN', () => {
    // 0x4000 would be written as flat LUN 0 and UNADDRESSABLE_LUN (0x10000)
    // likewise: the PDU would then name a different, real LUN.
    expect(() => encodeLun(0x4000, Buffer.alloc(48))).toThrow(RangeError);
    expect(() => encodeLun(UNADDRESSABLE_LUN, Buffer.alloc(48))).toThrow(RangeError);
  });
});

/* ---------------- decoding initiator PDUs ---------------- */

describe('decodePdu', () => {
  it('takes the opcode from the low six bits of byte 0', () => {
    expect(opcodeOf(layout({ 0: [0x43] }))).toBe(0x03);
    expect(opcodeOf(layout({ 0: [0x81] }))).toBe(0x01);
  });

  it('decodes a NOP-Out with its I bit, LUN, tags, sequence numbers and ping data', () => {
    const ping = Buffer.from('ping');
    const pdu = decodePdu(
      raw(
        layout({
          0: [0x40, 0x80],
          5: be24(4),
          8: [0x00, 0x03],
          16: be32(0x0a0b0c0d),
          20: be32(0xffffffff),
          24: be32(0x00000010),
          28: be32(0xfffffffe),
        }),
        null,
        [ping],
      ),
    );
    expect(pdu).toMatchObject({
      kind: 'nop-out',
      immediate: true,
      itt: 0x0a0b0c0d,
      lun: 3,
      ttt: 0xffffffff,
      cmdSN: 0x10,
      expStatSN: 0xfffffffe,
      dataLength: 4,
    });
    expect(pdu.raw.data[0]).toBe(ping);
  });

  it('decodes a NOP-Out without the I bit as not immediate', () => {
    const pdu = decodePdu(raw(layout({ 0: [0x00, 0x80], 16: be32(1) })));
    expect(pdu).toMatchObject({ kind: 'nop-out', immediate: false, itt: 1 });
  });

  it('decodes a SCSI Command: F/R/W bits, task attribute, LUN, EDTL, CmdSN, ExpStatSN and the CDB at byte 32', () => {
    const cdb = [0x2a, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0];
    const pdu = decodePdu(
      raw(
        layout({
          0: [0x01, 0xa1], // F | W | SIMPLE
          5: be24(0),
          8: [0x41, 0x23], // flat LUN 0x123
          16: be32(0xdeadbeef),
          20: be32(0x00001000),
          24: be32(0x80000000),
          28: be32(0x7fffffff),
          32: cdb,
        }),
      ),
    );
    expect(pdu.kind).toBe('scsi-command');
    if (pdu.kind !== 'scsi-command') return;
    expect(pdu).toMatchObject({
      immediate: false,
      final: true,
      read: false,
      write: true,
      attr: IscsiTaskAttr.SIMPLE,
      lun: 0x123,
      itt: 0xdeadbeef,
      edtl: 0x1000,
      cmdSN: 0x80000000,
      expStatSN: 0x7fffffff,
      bidiReadLength: null,
    });
    expect([...pdu.cdb]).toEqual(cdb);
  });

  it('decodes the R bit and the ordered attribute of an immediate read command', () => {
    const pdu = decodePdu(raw(layout({ 0: [0x41, 0xc2], 32: [0x28] })));
    expect(pdu).toMatchObject({ kind: 'scsi-command', immediate: true, final: true, read: true, write: false, attr: 2 });
  });

  it('appends an extended-CDB AHS (type 1) to the 16 CDB bytes of the BHS', () => {
    const base = Array.from({ length: 16 }, (_, i) => 0x7f - i); // 0x7f: variable-length CDB
    const rest = Array.from({ length: 16 }, (_, i) => 0xa0 + i);
    // 32-byte CDB: AHSLength = 32 - 15 = 17 (reserved byte + 16 CDB bytes); 3 + 17 = 20 bytes, 5 words.
    const ahs = Buffer.from([...be16(17), 0x01, 0x00, ...rest]);
    const pdu = decodePdu(raw(layout({ 0: [0x01, 0x80], 4: [5], 32: base }), ahs));
    if (pdu.kind !== 'scsi-command') throw new Error(`decoded as ${pdu.kind}`);
    expect([...pdu.cdb]).toEqual([...base, ...rest]);
    expect(pdu.bidiReadLength).toBeNull();
  });

  it('reads the expected bidirectional read length from a type 2 AHS', () => {
    const ahs = Buffer.from([...be16(5), 0x02, 0x00, ...be32(0x00012000)]);
    const pdu = decodePdu(raw(layout({ 0: [0x01, 0xe1], 4: [2], 20: be32(0x200) }), ahs));
    expect(pdu).toMatchObject({ kind: 'scsi-command', read: true, write: true, edtl: 0x200, bidiReadLength: 0x12000 });
  });

  it('walks past the padding of an AHS whose length is not a multiple of four to the next AHS', () => {
    // 18-byte CDB: AHSLength 3 -> 6 bytes, padded to 8; then a bidi AHS of 8 bytes.
    const ahs = Buffer.from([...be16(3), 0x01, 0x00, 0xc1, 0xc2, 0x00, 0x00, ...be16(5), 0x02, 0x00, ...be32(77)]);
    const pdu = decodePdu(raw(layout({ 0: [0x01, 0x80], 4: [4], 32: Array<number>(16).fill(0x11) }), ahs));
    if (pdu.kind !== 'scsi-command') throw new Error(`decoded as ${pdu.kind}`);
    expect([...pdu.cdb]).toEqual([...Array<number>(16).fill(0x11), 0xc1, 0xc2]);
    expect(pdu.bidiReadLength).toBe(77);
  });

  describe('rejects a malformed AHS with PduFormatError and reason "invalid PDU field" (0x09)', () => {
    const command = (ahs: Buffer): RawPdu => raw(layout({ 0: [0x01, 0x80], 4: [ahs.length / 4] }), ahs);

    it('when its length runs past the end of the AHS area', () => {
      const err = formatError(() => decodePdu(command(Buffer.from([...be16(0x20), 0x01, 0x00, 1, 2, 3, 4]))));
      expect(err.rejectReason).toBe(RejectReason.INVALID_PDU_FIELD);
    });

    it('when its type is neither extended CDB nor bidirectional read length', () => {
      const err = formatError(() => decodePdu(command(Buffer.from([...be16(5), 0x03, 0x00, 0, 0, 0, 0]))));
      expect(err.rejectReason).toBe(0x09);
    });

    it('when an extended-CDB AHS carries no CDB bytes', () => {
      const err = formatError(() => decodePdu(command(Buffer.from([...be16(1), 0x01, 0x00]))));
      expect(err.rejectReason).toBe(0x09);
    });

    it('when a bidirectional read length AHS is not 5 bytes long', () => {
      const err = formatError(() => decodePdu(command(Buffer.from([...be16(9), 0x02, 0x00, 0, 0, 0, 1, 0, 0, 0, 0]))));
      expect(err.rejectReason).toBe(0x09);
    });

    it('when a bad AHS follows a good one', () => {
      const ahs = Buffer.from([...be16(5), 0x02, 0x00, ...be32(1), ...be16(0x40), 0x01, 0x00]);
      expect(formatError(() => decodePdu(command(ahs))).rejectReason).toBe(0x09);
    });
  });

  it('decodes a Task Management request: function, LUN, referenced task tag, CmdSN, ExpStatSN, RefCmdSN, ExpDataSN', () => {
    const pdu = decodePdu(
      raw(
        layout({
          0: [0x42, 0x81], // immediate, ABORT TASK
          8: [0x00, 0x02],
          16: be32(0x100),
          20: be32(0x0abc),
          24: be32(5),
          28: be32(6),
          32: be32(4),
          36: be32(9),
        }),
      ),
    );
    expect(pdu).toMatchObject({
      kind: 'task-mgmt',
      immediate: true,
      func: TmfFunction.ABORT_TASK,
      lun: 2,
      itt: 0x100,
      referencedTaskTag: 0x0abc,
      cmdSN: 5,
      expStatSN: 6,
      refCmdSN: 4,
      expDataSN: 9,
    });
    expect(decodePdu(raw(layout({ 0: [0x02, 0x85] })))).toMatchObject({ func: TmfFunction.LOGICAL_UNIT_RESET });
  });

  it('decodes a Login request: T/C bits, CSG/NSG, versions, ISID, TSIH, CID, CmdSN, ExpStatSN', () => {
    const isid = [0x80, 0x12, 0x34, 0x56, 0x78, 0x9a];
    const text = Buffer.from('InitiatorName=iqn.x\0');
    const bhs = layout({
      0: [0x43, 0x87], // T, CSG=1 (operational), NSG=3 (full feature)
      2: [0x00, 0x00],
      5: be24(text.length),
      8: [...isid, ...be16(0x1234)],
      16: be32(0x77),
      20: be16(0x0007),
      24: be32(0x0100),
      28: be32(0x0200),
    });
    const pdu = decodePdu(raw(bhs, null, [text]));
    expect(pdu).toMatchObject({
      kind: 'login',
      immediate: true,
      transit: true,
      cont: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionMin: 0,
      tsih: 0x1234,
      itt: 0x77,
      cid: 7,
      cmdSN: 0x100,
      expStatSN: 0x200,
      dataLength: text.length,
    });
    if (pdu.kind !== 'login') return;
    expect([...pdu.isid]).toEqual(isid);
  });

  it('decodes the C bit and the version fields of a continued Login request', () => {
    const pdu = decodePdu(raw(layout({ 0: [0x43, 0x40], 2: [0x05, 0x02] })));
    expect(pdu).toMatchObject({ kind: 'login', transit: false, cont: true, csg: 0, nsg: 0, versionMax: 5, versionMin: 2 });
  });

  it('keeps the decoded ISID when the receive buffer is reused', () => {
    const bhs = layout({ 0: [0x43, 0x81], 8: [1, 2, 3, 4, 5, 6] });
    const pdu = decodePdu(raw(bhs));
    bhs.fill(0xff);
    if (pdu.kind !== 'login') throw new Error(`decoded as ${pdu.kind}`);
    expect([...pdu.isid]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('decodes a Text request: F/C bits, LUN, TTT, CmdSN, ExpStatSN', () => {
    const pdu = decodePdu(
      raw(layout({ 0: [0x44, 0x80], 8: [0x00, 0x01], 16: be32(9), 20: be32(0xffffffff), 24: be32(3), 28: be32(4) })),
    );
    expect(pdu).toMatchObject({ kind: 'text', immediate: true, final: true, cont: false, lun: 1, itt: 9, ttt: 0xffffffff, cmdSN: 3, expStatSN: 4 });
    expect(decodePdu(raw(layout({ 0: [0x04, 0x40] })))).toMatchObject({ kind: 'text', final: false, cont: true });
  });

  it('decodes a SCSI Data-Out: F bit, LUN, ITT, TTT, ExpStatSN, DataSN, buffer offset', () => {
    const payload = Buffer.alloc(512, 0x5a);
    const pdu = decodePdu(
      raw(
        layout({
          0: [0x05, 0x80],
          5: be24(512),
          8: [0x00, 0x04],
          16: be32(0x31),
          20: be32(0x4000),
          28: be32(0x22),
          36: be32(3),
          40: be32(0x00123400),
        }),
        null,
        [payload],
      ),
    );
    expect(pdu).toMatchObject({
      kind: 'data-out',
      immediate: false,
      final: true,
      lun: 4,
      itt: 0x31,
      ttt: 0x4000,
      expStatSN: 0x22,
      dataSN: 3,
      bufferOffset: 0x123400,
      dataLength: 512,
    });
    expect(decodePdu(raw(layout({ 0: [0x05, 0x00] })))).toMatchObject({ kind: 'data-out', final: false });
  });

  it('decodes a Logout request: reason code, CID, CmdSN, ExpStatSN', () => {
    const pdu = decodePdu(raw(layout({ 0: [0x46, 0x81], 16: be32(0x12), 20: be16(3), 24: be32(44), 28: be32(45) })));
    expect(pdu).toMatchObject({
      kind: 'logout',
      immediate: true,
      reason: LogoutReason.CLOSE_CONNECTION,
      itt: 0x12,
      cid: 3,
      cmdSN: 44,
      expStatSN: 45,
    });
    expect(decodePdu(raw(layout({ 0: [0x06, 0x80] })))).toMatchObject({ reason: LogoutReason.CLOSE_SESSION });
    expect(decodePdu(raw(layout({ 0: [0x06, 0x82] })))).toMatchObject({ reason: LogoutReason.REMOVE_FOR_RECOVERY });
  });

  it('decodes a SNACK request far enough to answer it', () => {
    expect(decodePdu(raw(layout({ 0: [0x10, 0x80], 16: be32(0x55) })))).toMatchObject({ kind: 'snack', itt: 0x55 });
  });

  it('rejects every opcode an initiator may not send with "command not supported" (0x05)', () => {
    const initiator = new Set<number>(Object.values(InitiatorOpcode));
    for (let opcode = 0; opcode <= 0x3f; opcode++) {
      if (initiator.has(opcode)) continue;
      const err = formatError(() => decodePdu(raw(layout({ 0: [opcode, 0x80] }))));
      expect(err.rejectReason, `opcode 0x${opcode.toString(16)}`).toBe(RejectReason.COMMAND_NOT_SUPPORTED);
    }
  });
});

/* ---------------- encoding target PDUs ---------------- */

describe('encodeScsiResponse', () => {
  const base = {
    ...SEQ,
    itt: 0xa1a2a3a4,
    response: 0x00,
    status: 0x02,
    expDataSN: 3,
    dataLength: 0x14,
    overflow: false,
    underflow: true,
    residualCount: 0x200,
  };

  it('lays out opcode, flags, response, status, DSL, ITT, StatSN, ExpCmdSN, MaxCmdSN, ExpDataSN and residual', () => {
    const expected = layout({
      0: [0x21, 0x82, 0x00, 0x02], // F | U ; response ; status CHECK CONDITION
      4: [0x00, ...be24(0x14)],
      16: be32(0xa1a2a3a4),
      ...SEQ_BYTES,
      36: be32(3),
      44: be32(0x200),
    });
    expect(hex(encodeScsiResponse(base))).toBe(hex(expected));
  });

  it('sets O (0x04) for an overflow and never the bidirectional o/u bits', () => {
    const b = encodeScsiResponse({ ...base, overflow: true, underflow: false });
    expect(b[1]).toBe(0x84);
  });

  it('sets only the F bit when there is no residual', () => {
    const b = encodeScsiResponse({ ...base, underflow: false, residualCount: 0 });
    expect(b[1]).toBe(0x80);
    expect([...b.subarray(44, 48)]).toEqual([0, 0, 0, 0]);
  });

  it('carries a target-failure service response in byte 2', () => {
    expect(encodeScsiResponse({ ...base, response: ScsiServiceResponse.TARGET_FAILURE, status: 0 }).subarray(2, 4)).toEqual(
      Buffer.from([0x01, 0x00]),
    );
  });

  it('writes sequence numbers at the top of the 32-bit space unchanged', () => {
    const b = encodeScsiResponse({ ...base, statSN: 0xffffffff, expCmdSN: 0xfffffffe, maxCmdSN: 0x80000000 });
    expect(hex(b.subarray(24, 36))).toBe('ffffffff fffffffe 80000000');
  });
});

describe('encodeDataIn', () => {
  const base = {
    ...SEQ,
    overflow: false,
    underflow: false,
    residualCount: 0,
    itt: 0x0000abcd,
    lun: 2,
    final: false,
    status: null,
    dataSN: 7,
    bufferOffset: 0x00010000,
    dataLength: 0x2000,
  };

  it('lays out a Data-In without status: no S bit, StatSN and residual reserved, TTT 0xffffffff', () => {
    const expected = layout({
      0: [0x25, 0x00],
      4: [0x00, ...be24(0x2000)],
      8: [0x00, 0x02],
      16: be32(0xabcd),
      20: be32(0xffffffff),
      28: be32(SEQ.expCmdSN),
      32: be32(SEQ.maxCmdSN),
      36: be32(7),
      40: be32(0x10000),
    });
    expect(hex(encodeDataIn(base))).toBe(hex(expected));
  });

  it('sets F alone at the end of a burst without status', () => {
    expect(encodeDataIn({ ...base, final: true })[1]).toBe(0x80);
  });

  it('ignores residual flags unless the PDU carries status', () => {
    const b = encodeDataIn({ ...base, final: true, underflow: true, overflow: true, residualCount: 9 });
    expect(b[1]).toBe(0x80);
    expect([...b.subarray(44, 48)]).toEqual([0, 0, 0, 0]);
  });

  it('lays out the final Data-In with status: F|U|S, status byte 3, StatSN and residual count', () => {
    const expected = layout({
      0: [0x25, 0x83, 0x00, 0x00], // F | U | S ; status GOOD
      4: [0x00, ...be24(0x2000)],
      8: [0x00, 0x02],
      16: be32(0xabcd),
      20: be32(0xffffffff),
      ...SEQ_BYTES,
      36: be32(7),
      40: be32(0x10000),
      44: be32(0x600),
    });
    const b = encodeDataIn({ ...base, final: true, status: 0x00, underflow: true, residualCount: 0x600 });
    expect(hex(b)).toBe(hex(expected));
  });

  it('sets O (0x04) with S for an overflow, and never the A bit', () => {
    const b = encodeDataIn({ ...base, final: true, status: 0x00, overflow: true, residualCount: 4 });
    expect(b[1]).toBe(0x85);
    expect(b[1]! & 0x40).toBe(0);
  });

  it('writes a flat-space LUN', () => {
    expect([...encodeDataIn({ ...base, lun: 300 }).subarray(8, 16)]).toEqual([0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
  });
});

describe('encodeR2T', () => {
  it('lays out LUN, ITT, TTT, StatSN, ExpCmdSN, MaxCmdSN, R2TSN 36, buffer offset 40, desired length 44', () => {
    const expected = layout({
      0: [0x31, 0x80],
      8: [0x00, 0x01],
      16: be32(0x10),
      20: be32(0x20000001),
      ...SEQ_BYTES,
      36: be32(2),
      40: be32(0x40000),
      44: be32(0x40000),
    });
    const b = encodeR2T({ ...SEQ, itt: 0x10, lun: 1, ttt: 0x20000001, r2tSN: 2, bufferOffset: 0x40000, desiredLength: 0x40000 });
    expect(hex(b)).toBe(hex(expected));
  });
});

describe('encodeNopIn', () => {
  it('lays out an answer to a ping: LUN, ITT echoed, TTT reserved, data length', () => {
    const expected = layout({
      0: [0x20, 0x80],
      4: [0x00, ...be24(4)],
      8: [0x00, 0x03],
      16: be32(0x0a0b0c0d),
      20: be32(0xffffffff),
      ...SEQ_BYTES,
    });
    expect(hex(encodeNopIn({ ...SEQ, itt: 0x0a0b0c0d, ttt: 0xffffffff, lun: 3, dataLength: 4 }))).toBe(hex(expected));
  });

  it('lays out a target-initiated ping: ITT 0xffffffff and a real TTT', () => {
    const expected = layout({ 0: [0x20, 0x80], 16: be32(0xffffffff), 20: be32(0x00000042), ...SEQ_BYTES });
    expect(hex(encodeNopIn({ ...SEQ, itt: 0xffffffff, ttt: 0x42, lun: 0, dataLength: 0 }))).toBe(hex(expected));
  });
});

describe('encodeTaskMgmtResponse', () => {
  it('lays out the response byte 2, ITT and sequence numbers, with the LUN field reserved', () => {
    const expected = layout({ 0: [0x22, 0x80, 0x01], 16: be32(0x99), ...SEQ_BYTES });
    const b = encodeTaskMgmtResponse({ ...SEQ, itt: 0x99, response: TmfResponse.TASK_DOES_NOT_EXIST });
    expect(hex(b)).toBe(hex(expected));
  });

  it('carries "function rejected" (255) whole', () => {
    expect(encodeTaskMgmtResponse({ ...SEQ, itt: 1, response: TmfResponse.FUNCTION_REJECTED })[2]).toBe(0xff);
  });
});

describe('encodeLoginResponse', () => {
  const isid = Buffer.from([0x80, 0x23, 0x3d, 0x00, 0x00, 0x01]);
  const base = {
    ...SEQ,
    itt: 0x00000077,
    transit: true,
    cont: false,
    csg: 1,
    nsg: 3,
    versionMax: 0x00,
    versionActive: 0x00,
    isid,
    tsih: 0x0102,
    statusClass: 0,
    statusDetail: 0,
    dataLength: 0x55,
  };

  it('lays out T/CSG/NSG, versions, DSL, ISID 8-13, TSIH 14-15, ITT, sequence numbers, status 36-37', () => {
    const expected = layout({
      0: [0x23, 0x87, 0x00, 0x00], // T | CSG=1 | NSG=3
      4: [0x00, ...be24(0x55)],
      8: [0x80, 0x23, 0x3d, 0x00, 0x00, 0x01, 0x01, 0x02],
      16: be32(0x77),
      ...SEQ_BYTES,
      36: [0x00, 0x00],
    });
    expect(hex(encodeLoginResponse(base))).toBe(hex(expected));
  });

  it('puts Version-max in byte 2 and Version-active in byte 3', () => {
    expect([...encodeLoginResponse({ ...base, versionMax: 0x05, versionActive: 0x02 }).subarray(2, 4)]).toEqual([0x05, 0x02]);
  });

  it('leaves NSG zero when T is clear, and sets C for a partial response', () => {
    const b = encodeLoginResponse({ ...base, transit: false, cont: true, csg: 0, nsg: 1 });
    expect(b[1]).toBe(0x40);
  });

  it('writes CSG in bits 2-3 for the security stage moving to operational', () => {
    expect(encodeLoginResponse({ ...base, csg: 0, nsg: 1 })[1]).toBe(0x81);
  });

  it('writes status class and detail of a failed login in bytes 36 and 37', () => {
    const [cls, detail] = LoginStatus.TARGET_NOT_FOUND;
    const b = encodeLoginResponse({ ...base, transit: false, tsih: 0, statusClass: cls, statusDetail: detail, dataLength: 0 });
    expect([...b.subarray(36, 38)]).toEqual([0x02, 0x03]);
    expect([...b.subarray(14, 16)]).toEqual([0x00, 0x00]);
  });
});

describe('encodeTextResponse', () => {
  it('lays out F, LUN, ITT, TTT and sequence numbers of a final response', () => {
    const expected = layout({
      0: [0x24, 0x80],
      4: [0x00, ...be24(0x1f)],
      16: be32(0x5),
      20: be32(0xffffffff),
      ...SEQ_BYTES,
    });
    const b = encodeTextResponse({ ...SEQ, itt: 5, ttt: 0xffffffff, lun: 0, final: true, cont: false, dataLength: 0x1f });
    expect(hex(b)).toBe(hex(expected));
  });

  it('sets C without F and a continuing TTT when more text follows', () => {
    const b = encodeTextResponse({ ...SEQ, itt: 5, ttt: 0x1234, lun: 0, final: false, cont: true, dataLength: 8192 });
    expect(b[1]).toBe(0x40);
    expect([...b.subarray(20, 24)]).toEqual(be32(0x1234));
    expect([...b.subarray(5, 8)]).toEqual([0x00, 0x20, 0x00]);
  });
});

describe('encodeLogoutResponse', () => {
  it('lays out response byte 2, ITT, sequence numbers, Time2Wait 40 and Time2Retain 42', () => {
    const expected = layout({
      0: [0x26, 0x80, 0x02],
      16: be32(0x44),
      ...SEQ_BYTES,
      40: [...be16(2), ...be16(20)],
    });
    const b = encodeLogoutResponse({ ...SEQ, itt: 0x44, response: LogoutResponse.RECOVERY_NOT_SUPPORTED, time2Wait: 2, time2Retain: 20 });
    expect(hex(b)).toBe(hex(expected));
  });
});

describe('encodeReject', () => {
  it('lays out reason byte 2, a 48-byte data segment for the rejected BHS, ITT 0xffffffff and DataSN', () => {
    const expected = layout({
      0: [0x3f, 0x80, 0x09],
      4: [0x00, 0x00, 0x00, 0x30],
      16: be32(0xffffffff),
      ...SEQ_BYTES,
      36: be32(0x0b),
    });
    expect(hex(encodeReject({ ...SEQ, reason: RejectReason.INVALID_PDU_FIELD, dataSN: 0x0b }))).toBe(hex(expected));
  });
});

describe('encodeAsyncMessage', () => {
  it('lays out LUN, ITT 0xffffffff, sequence numbers, event 36, vcode 37 and parameters 38/40/42', () => {
    const expected = layout({
      0: [0x32, 0x80],
      4: [0x00, ...be24(0)],
      8: [0x00, 0x00],
      16: be32(0xffffffff),
      ...SEQ_BYTES,
      36: [0x01, 0x00, ...be16(0), ...be16(0), ...be16(5)],
    });
    const b = encodeAsyncMessage({
      ...SEQ,
      lun: 0,
      event: AsyncEvent.LOGOUT_REQUEST,
      vcode: 0,
      param1: 0,
      param2: 0,
      param3: 5,
      dataLength: 0,
    });
    expect(hex(b)).toBe(hex(expected));
  });

  it('places each parameter in its own two bytes', () => {
    const b = encodeAsyncMessage({
      ...SEQ,
      lun: 258,
      event: AsyncEvent.CONNECTION_DROP,
      vcode: 0xab,
      param1: 0x0102,
      param2: 0x0304,
      param3: 0x0506,
      dataLength: 18,
    });
    expect(hex(b.subarray(36, 44))).toBe('02ab0102 03040506');
    expect([...b.subarray(8, 10)]).toEqual([0x41, 0x02]);
    expect([...b.subarray(5, 8)]).toEqual([0, 0, 18]);
  });
});

describe('every target PDU encoder', () => {
  const encoded: Record<string, Buffer> = {
    'SCSI Response': encodeScsiResponse({ ...SEQ, itt: 1, response: 0, status: 0, expDataSN: 0, dataLength: 0, overflow: false, underflow: false, residualCount: 0 }),
    'Data-In': encodeDataIn({ ...SEQ, itt: 1, lun: 0, final: true, status: 0, dataSN: 0, bufferOffset: 0, dataLength: 4, overflow: false, underflow: false, residualCount: 0 }),
    R2T: encodeR2T({ ...SEQ, itt: 1, lun: 0, ttt: 1, r2tSN: 0, bufferOffset: 0, desiredLength: 1 }),
    'NOP-In': encodeNopIn({ ...SEQ, itt: 1, ttt: RESERVED_TAG, lun: 0, dataLength: 0 }),
    'TMF Response': encodeTaskMgmtResponse({ ...SEQ, itt: 1, response: 0 }),
    'Login Response': encodeLoginResponse({ ...SEQ, itt: 1, transit: true, cont: false, csg: 1, nsg: 3, versionMax: 0, versionActive: 0, isid: Buffer.alloc(6), tsih: 1, statusClass: 0, statusDetail: 0, dataLength: 0 }),
    'Text Response': encodeTextResponse({ ...SEQ, itt: 1, ttt: RESERVED_TAG, lun: 0, final: true, cont: false, dataLength: 0 }),
    'Logout Response': encodeLogoutResponse({ ...SEQ, itt: 1, response: 0, time2Wait: 0, time2Retain: 0 }),
    Reject: encodeReject({ ...SEQ, reason: 4, dataSN: 0 }),
    'Async Message': encodeAsyncMessage({ ...SEQ, lun: 0, event: 0, vcode: 0, param1: 0, param2: 0, param3: 0, dataLength: 0 }),
  };

  it.each(Object.entries(encoded))('%s is a fresh 48-byte BHS with no I bit and no AHS', (_name, b) => {
    expect(b.length).toBe(48);
    expect(b[0]! & 0xc0).toBe(0);
    expect(b[4]).toBe(0);
  });

  it('uses a distinct target opcode for each PDU type', () => {
    const opcodes = Object.values(encoded).map((b) => b[0]);
    expect(opcodes).toEqual([0x21, 0x25, 0x31, 0x20, 0x22, 0x23, 0x24, 0x26, 0x3f, 0x32]);
  });
});

describe('joinData', () => {
  it('returns a single slice itself, without copying', () => {
    const slice = Buffer.from('abc');
    expect(joinData(raw(layout({}), null, [slice]))).toBe(slice);
  });

  it('concatenates several slices in order', () => {
    const joined = joinData(raw(layout({}), null, [Buffer.from('Header'), Buffer.from('Digest='), Buffer.from('None')]));
    expect(joined.toString()).toBe('HeaderDigest=None');
  });

  it('returns an empty buffer for a PDU without data', () => {
    expect(joinData(raw(layout({}))).length).toBe(0);
  });
});
