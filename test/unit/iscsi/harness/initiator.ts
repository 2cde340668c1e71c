/**
 * A small scripted iSCSI initiator for end-to-end tests of the target.
 *
 * Every PDU is laid out here by hand at its RFC 7143 §11 offsets; nothing is
 * taken from src/target/iscsi (only CRC32C comes from @node-rs/crc32). The
 * initiator keeps its own CmdSN and ExpStatSN, turns digests on once the
 * final login response is in, and queues whatever the target sends so a test
 * reads PDUs one by one with a timeout.
 *
 * Layers:
 *   - wire: `sendPdu` (header + data, padding and digests added here),
 *     `sendRaw` (bytes as given), `recv` / `recvUntil` / `expectSilence` /
 *     `waitClosed`;
 *   - one builder per initiator PDU (`command`, `dataOut`, `nopOut`, `tmf`,
 *     `text`, `logout`, `loginRequest`), each returning the ITT it used;
 *   - flows: `login` (security stage with None or CHAP, then operational),
 *     `read` / `write` (answering R2Ts), `sendTargets` (following C bits).
 */
import { createHash } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { crc32c } from '@node-rs/crc32';

/* ---------------- wire constants (RFC 7143 §11) ---------------- */

export const Op = {
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TMF_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
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

export const RESERVED = 0xffffffff;
const IMMEDIATE = 0x40;
const FINAL = 0x80;

/** Opcodes whose StatSN field is a real status sequence number. */
const STATUS_OPCODES: ReadonlySet<number> = new Set([
  Op.SCSI_RESPONSE,
  Op.TMF_RESPONSE,
  Op.LOGIN_RESPONSE,
  Op.TEXT_RESPONSE,
  Op.LOGOUT_RESPONSE,
  Op.REJECT,
]);

/* ---------------- target PDUs as received ---------------- */

export class TargetPdu {
  constructor(
    readonly bhs: Buffer,
    readonly data: Buffer,
  ) {}

  get opcode(): number {
    return this.bhs[0]! & 0x3f;
  }
  get flags(): number {
    return this.bhs[1]!;
  }
  get final(): boolean {
    return (this.flags & 0x80) !== 0;
  }
  get dataSegmentLength(): number {
    return this.bhs.readUIntBE(5, 3);
  }
  get itt(): number {
    return this.bhs.readUInt32BE(16);
  }
  get ttt(): number {
    return this.bhs.readUInt32BE(20);
  }
  get statSN(): number {
    return this.bhs.readUInt32BE(24);
  }
  get expCmdSN(): number {
    return this.bhs.readUInt32BE(28);
  }
  get maxCmdSN(): number {
    return this.bhs.readUInt32BE(32);
  }
  /** Data-In DataSN, R2T R2TSN, Reject DataSN, SCSI Response ExpDataSN. */
  get sn36(): number {
    return this.bhs.readUInt32BE(36);
  }
  get bufferOffset(): number {
    return this.bhs.readUInt32BE(40);
  }
  /** SCSI Response / Data-In residual count; R2T desired data transfer length. */
  get word44(): number {
    return this.bhs.readUInt32BE(44);
  }
  /** SCSI Response: service response; TMF/Logout response; Reject reason. */
  get byte2(): number {
    return this.bhs[2]!;
  }
  /** SCSI Response / Data-In status. */
  get status(): number {
    return this.bhs[3]!;
  }
  /** Data-In S bit. */
  get hasStatus(): boolean {
    return (this.flags & 0x01) !== 0;
  }
  get underflow(): boolean {
    return (this.flags & 0x02) !== 0;
  }
  get overflow(): boolean {
    return (this.flags & 0x04) !== 0;
  }
  /** Text / Login response C bit. */
  get cont(): boolean {
    return (this.flags & 0x40) !== 0;
  }
  get loginTransit(): boolean {
    return (this.flags & 0x80) !== 0;
  }
  get loginCsg(): number {
    return (this.flags >> 2) & 0x03;
  }
  get loginNsg(): number {
    return this.flags & 0x03;
  }
  get loginStatus(): [number, number] {
    return [this.bhs[36]!, this.bhs[37]!];
  }
  get tsih(): number {
    return this.bhs.readUInt16BE(14);
  }
  get lunBytes(): Buffer {
    return this.bhs.subarray(8, 16);
  }
  /** Sense data of a SCSI Response (after the 2-byte SenseLength). */
  get sense(): Buffer | null {
    if (this.opcode !== Op.SCSI_RESPONSE || this.data.length < 2) return null;
    const n = this.data.readUInt16BE(0);
    return this.data.subarray(2, 2 + n);
  }
  /** Key=value pairs of a login or text response. */
  get keys(): Map<string, string> {
    return parseKeys(this.data);
  }
}

export function parseKeys(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of data.toString('utf8').split('\0')) {
    if (!entry) continue;
    const eq = entry.indexOf('=');
    out.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return out;
}

/** All key=value pairs in order (SendTargets repeats keys). */
export function parsePairs(data: Buffer): Array<[string, string]> {
  return data
    .toString('utf8')
    .split('\0')
    .filter((e) => e.length > 0)
    .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]);
}

export function keyText(pairs: Record<string, string | number> | Array<[string, string]>): Buffer {
  const entries = Array.isArray(pairs) ? pairs : Object.entries(pairs);
  return Buffer.from(entries.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

/** Fixed-format sense: key, ASC, ASCQ. */
export function senseTriple(sense: Buffer | null): [number, number, number] | null {
  if (!sense || sense.length < 14) return null;
  if ((sense[0]! & 0x7f) === 0x72 || (sense[0]! & 0x7f) === 0x73) return [sense[1]! & 0x0f, sense[2]!, sense[3]!];
  return [sense[2]! & 0x0f, sense[12]!, sense[13]!];
}

/* ---------------- digests ---------------- */

function digest(parts: readonly Buffer[]): Buffer {
  let crc = 0;
  for (const p of parts) crc = crc32c(p, crc);
  const out = Buffer.alloc(4);
  out.writeUInt32LE(crc >>> 0, 0);
  return out;
}

const pad = (n: number): number => (4 - (n & 3)) & 3;

/* ---------------- the initiator ---------------- */

export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

export interface LoginOptions {
  readonly initiatorName?: string;
  readonly targetName?: string;
  readonly discovery?: boolean;
  /** ISID, 6 bytes. */
  readonly isid?: Buffer;
  readonly chap?: {
    readonly user: string;
    readonly secret: string;
    /** Mutual CHAP: our challenge and the target's expected credentials. */
    readonly mutual?: { readonly user: string; readonly secret: string };
  };
  /** Operational keys offered (InitialR2T, ImmediateData, MaxBurstLength, ...). */
  readonly keys?: Record<string, string | number>;
  /** Send the first login request with the security stage skipped (CSG=1). */
  readonly skipSecurity?: boolean;
}

export interface LoginOutcome {
  readonly status: [number, number];
  readonly tsih: number;
  readonly responses: TargetPdu[];
  /** Every key the target answered or declared, across the whole login. */
  readonly keys: Map<string, string>;
  /** The last login response. */
  readonly last: TargetPdu;
}

export interface CommandOptions {
  readonly cdb: Buffer | readonly number[];
  readonly lun?: number;
  readonly read?: boolean;
  readonly write?: boolean;
  readonly edtl: number;
  readonly immediateData?: Buffer;
  /** F bit: no unsolicited Data-Out follows (default true). */
  readonly final?: boolean;
  readonly attr?: number;
  readonly itt?: number;
  /** CmdSN to use instead of the next one (the counter is left alone). */
  readonly cmdSN?: number;
  readonly immediate?: boolean;
}

export interface CommandResult {
  readonly itt: number;
  readonly response: TargetPdu | null;
  readonly status: number;
  readonly sense: Buffer | null;
  readonly dataIn: Buffer;
  readonly dataIns: TargetPdu[];
  readonly r2ts: TargetPdu[];
  /** The PDU carrying the status (SCSI Response or last Data-In). */
  readonly final: TargetPdu;
}

/** Session parameters the initiator uses for its data transfers. */
export interface NegotiatedParams {
  initialR2T: boolean;
  immediateData: boolean;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  /** Largest data segment the target accepts. */
  targetMaxRecvDataSegmentLength: number;
  headerDigest: boolean;
  dataDigest: boolean;
}

export const TEST_INITIATOR = 'iqn.2026-01.test.twinsan:initiator';

export class TestInitiator {
  readonly socket: Socket;
  cmdSN = 1;
  expStatSN = 0;
  nextItt = 0x100;
  headerDigest = false;
  dataDigest = false;
  readonly params: NegotiatedParams = {
    initialR2T: true,
    immediateData: true,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    maxOutstandingR2T: 1,
    targetMaxRecvDataSegmentLength: 8192,
    headerDigest: false,
    dataDigest: false,
  };
  /** Latest ExpCmdSN / MaxCmdSN seen from the target. */
  window = { expCmdSN: 0, maxCmdSN: 0 };
  /** Answer target NOP-In pings by itself. */
  autoAnswerPings = false;
  /** Every PDU received, in order (pings included). */
  readonly received: TargetPdu[] = [];
  /** Digest errors seen on target PDUs. */
  readonly digestErrors: string[] = [];
  closed = false;

  private buf: Buffer = Buffer.alloc(0);
  private readonly queue: TargetPdu[] = [];
  private waiter: (() => void) | null = null;
  private readonly closedPromise: Promise<void>;
  private loginKeys = new Map<string, string>();

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestInitiator> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new TestInitiator(socket));
      });
    });
  }

  /** Close our side (idempotent). */
  destroy(): void {
    this.socket.destroy();
  }

  /* ---------------- receive ---------------- */

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.buf.length < 48) return;
      const ahs = this.buf[4]! * 4;
      const hd = this.headerDigest ? 4 : 0;
      const len = this.buf.readUIntBE(5, 3);
      const dd = this.dataDigest && len > 0 ? 4 : 0;
      const total = 48 + ahs + hd + len + pad(len) + dd;
      if (this.buf.length < total) return;
      const bhs = Buffer.from(this.buf.subarray(0, 48));
      if (hd) {
        const want = digest([this.buf.subarray(0, 48 + ahs)]);
        if (!want.equals(this.buf.subarray(48 + ahs, 48 + ahs + 4))) this.digestErrors.push(`header digest of opcode 0x${bhs[0]!.toString(16)}`);
      }
      const dataStart = 48 + ahs + hd;
      const data = Buffer.from(this.buf.subarray(dataStart, dataStart + len));
      if (dd) {
        const want = digest([this.buf.subarray(dataStart, dataStart + len + pad(len))]);
        const at = dataStart + len + pad(len);
        if (!want.equals(this.buf.subarray(at, at + 4))) this.digestErrors.push(`data digest of opcode 0x${bhs[0]!.toString(16)}`);
      }
      this.buf = this.buf.subarray(total);
      this.onPdu(new TargetPdu(bhs, data));
    }
  }

  private onPdu(pdu: TargetPdu): void {
    this.received.push(pdu);
    if (STATUS_OPCODES.has(pdu.opcode) || (pdu.opcode === Op.DATA_IN && pdu.hasStatus) || (pdu.opcode === Op.NOP_IN && pdu.itt !== RESERVED)) {
      this.expStatSN = (pdu.statSN + 1) >>> 0;
    }
    if (pdu.opcode !== Op.LOGIN_RESPONSE && pdu.opcode !== Op.ASYNC) {
      this.window = { expCmdSN: pdu.expCmdSN, maxCmdSN: pdu.maxCmdSN };
    }
    if (pdu.opcode === Op.LOGIN_RESPONSE) {
      for (const [k, v] of pdu.keys) this.loginKeys.set(k, v);
      this.window = { expCmdSN: pdu.expCmdSN, maxCmdSN: pdu.maxCmdSN };
      if (pdu.loginStatus[0] === 0 && pdu.loginTransit && pdu.loginNsg === 3) {
        // Digests start with the first PDU after the final login response (§13.1).
        this.headerDigest = this.loginKeys.get('HeaderDigest') === 'CRC32C';
        this.dataDigest = this.loginKeys.get('DataDigest') === 'CRC32C';
      }
    }
    if (this.autoAnswerPings && pdu.opcode === Op.NOP_IN && pdu.itt === RESERVED && pdu.ttt !== RESERVED) {
      this.nopOut({ itt: RESERVED, ttt: pdu.ttt, immediate: true });
      return;
    }
    this.queue.push(pdu);
    this.wake();
  }

  /** The next PDU from the target; rejects on timeout or when the connection closes first. */
  async recv(timeoutMs = 2000): Promise<TargetPdu> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pdu = this.queue.shift();
      if (pdu) return pdu;
      if (this.closed) throw new ConnectionClosedError('connection closed while waiting for a PDU');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no PDU from the target within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Receive until `pred` matches; returns every PDU received, the match last. */
  async recvUntil(pred: (p: TargetPdu) => boolean, timeoutMs = 2000): Promise<TargetPdu[]> {
    const deadline = Date.now() + timeoutMs;
    const out: TargetPdu[] = [];
    for (;;) {
      const p = await this.recv(Math.max(1, deadline - Date.now()));
      out.push(p);
      if (pred(p)) return out;
    }
  }

  /** Asserts nothing arrives for `ms`; returns what did arrive (empty when silent). */
  async drainFor(ms: number): Promise<TargetPdu[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.splice(0);
  }

  /** Resolves true if the target closed the connection within `timeoutMs`. */
  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    if (this.closed) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const result = await Promise.race([this.closedPromise.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  /* ---------------- send ---------------- */

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Send a BHS and data segment, adding padding and the negotiated digests. */
  sendPdu(bhs: Buffer, data: Buffer = Buffer.alloc(0), corrupt: { header?: boolean; data?: boolean } = {}): void {
    bhs.writeUIntBE(data.length, 5, 3);
    const parts: Buffer[] = [bhs];
    if (this.headerDigest) {
      const d = digest([bhs]);
      if (corrupt.header) d[0] ^= 0xff;
      parts.push(d);
    }
    if (data.length > 0) {
      const padded = pad(data.length) ? Buffer.concat([data, Buffer.alloc(pad(data.length))]) : data;
      parts.push(padded);
      if (this.dataDigest) {
        const d = digest([padded]);
        if (corrupt.data) d[0] ^= 0xff;
        parts.push(d);
      }
    }
    this.socket.write(Buffer.concat(parts));
  }

  private allocItt(itt?: number): number {
    if (itt !== undefined) return itt;
    const t = this.nextItt;
    this.nextItt = (this.nextItt + 1) >>> 0;
    return t;
  }

  /** CmdSN for a PDU: non-immediate ones consume it. */
  private takeCmdSN(immediate: boolean, explicit?: number): number {
    if (explicit !== undefined) return explicit;
    const sn = this.cmdSN;
    if (!immediate) this.cmdSN = (this.cmdSN + 1) >>> 0;
    return sn;
  }

  static lun(lun: number): Buffer {
    const b = Buffer.alloc(8);
    if (lun < 256) b[1] = lun;
    else {
      b[0] = 0x40 | ((lun >> 8) & 0x3f);
      b[1] = lun & 0xff;
    }
    return b;
  }

  /** SCSI Command (§11.3). Returns the ITT. */
  command(o: CommandOptions, corrupt: { header?: boolean; data?: boolean } = {}): number {
    const itt = this.allocItt(o.itt);
    const immediate = o.immediate ?? false;
    const bhs = Buffer.alloc(48);
    bhs[0] = Op.SCSI_COMMAND | (immediate ? IMMEDIATE : 0);
    bhs[1] = ((o.final ?? true) ? FINAL : 0) | (o.read ? 0x40 : 0) | (o.write ? 0x20 : 0) | ((o.attr ?? 1) & 0x07);
    TestInitiator.lun(o.lun ?? 0).copy(bhs, 8);
    bhs.writeUInt32BE(itt, 16);
    bhs.writeUInt32BE(o.edtl >>> 0, 20);
    bhs.writeUInt32BE(this.takeCmdSN(immediate, o.cmdSN), 24);
    bhs.writeUInt32BE(this.expStatSN, 28);
    Buffer.from(o.cdb as readonly number[]).copy(bhs, 32, 0, 16);
    this.sendPdu(bhs, o.immediateData ?? Buffer.alloc(0), corrupt);
    return itt;
  }

  /** SCSI Data-Out (§11.7). */
  dataOut(
    o: { itt: number; ttt?: number; lun?: number; dataSN: number; offset: number; data: Buffer; final: boolean },
    corrupt: { header?: boolean; data?: boolean } = {},
  ): void {
    const bhs = Buffer.alloc(48);
    bhs[0] = Op.DATA_OUT;
    bhs[1] = o.final ? FINAL : 0;
    TestInitiator.lun(o.lun ?? 0).copy(bhs, 8);
    bhs.writeUInt32BE(o.itt, 16);
    bhs.writeUInt32BE(o.ttt ?? RESERVED, 20);
    bhs.writeUInt32BE(this.expStatSN, 28);
    bhs.writeUInt32BE(o.dataSN, 36);
    bhs.writeUInt32BE(o.offset, 40);
    this.sendPdu(bhs, o.data, corrupt);
  }

  /** NOP-Out (§11.18). A ping answer has ITT reserved and the target's TTT. */
  nopOut(o: { itt?: number; ttt?: number; data?: Buffer; immediate?: boolean; lun?: number; cmdSN?: number } = {}): number {
    const itt = o.itt ?? this.allocItt();
    const immediate = o.immediate ?? true;
    const bhs = Buffer.alloc(48);
    bhs[0] = Op.NOP_OUT | (immediate ? IMMEDIATE : 0);
    bhs[1] = FINAL;
    TestInitiator.lun(o.lun ?? 0).copy(bhs, 8);
    bhs.writeUInt32BE(itt, 16);
    bhs.writeUInt32BE(o.ttt ?? RESERVED, 20);
    bhs.writeUInt32BE(this.takeCmdSN(immediate, o.cmdSN), 24);
    bhs.writeUInt32BE(this.expStatSN, 28);
    this.sendPdu(bhs, o.data ?? Buffer.alloc(0));
    return itt;
  }

  /** Task Management Function Request (§11.5). Immediate by default. */
  tmf(o: { func: number; lun?: number; refItt?: number; refCmdSN?: number; immediate?: boolean; cmdSN?: number }): number {
    const itt = this.allocItt();
    const immediate = o.immediate ?? true;
    const bhs = Buffer.alloc(48);
    bhs[0] = Op.TMF_REQUEST | (immediate ? IMMEDIATE : 0);
    bhs[1] = FINAL | (o.func & 0x7f);
    TestInitiator.lun(o.lun ?? 0).copy(bhs, 8);
    bhs.writeUInt32BE(itt, 16);
    bhs.writeUInt32BE(o.refItt ?? RESERVED, 20);
    bhs.writeUInt32BE(this.takeCmdSN(immediate, o.cmdSN), 24);
    bhs.writeUInt32BE(this.expStatSN, 28);
    bhs.writeUInt32BE(o.refCmdSN ?? 0, 32);
    this.sendPdu(bhs);
    return itt;
  }

  /** Text Request (§11.10). */
  text(o: { data: Buffer; itt?: number; ttt?: number; final?: boolean; cont?: boolean; immediate?: boolean }): number {
    const itt = this.allocItt(o.itt);
    const immediate = o.immediate ?? false;
    const bhs = Buffer.alloc(48);
    bhs[0] = Op.TEXT_REQUEST | (immediate ? IMMEDIATE : 0);
    bhs[1] = ((o.final ?? true) ? FINAL : 0) | (o.cont ? 0x40 : 0);
    bhs.writeUInt32BE(itt, 16);
    bhs.writeUInt32BE(o.ttt ?? RESERVED, 20);
    bhs.writeUInt32BE(this.takeCmdSN(immediate), 24);
    bhs.writeUInt32BE(this.expStatSN, 28);
    this.sendPdu(bhs, o.data);
    return itt;
  }

  /** Logout Request (§11.14); reason 0 closes the session. */
  logout(o: { reason?: number; cid?: number; immediate?: boolean } = {}): number {
    const itt = this.allocItt();
    const immediate = o.immediate ?? false;
    const bhs = Buffer.alloc(48);
    bhs[0] = Op.LOGOUT_REQUEST | (immediate ? IMMEDIATE : 0);
    bhs[1] = FINAL | ((o.reason ?? 0) & 0x7f);
    bhs.writeUInt32BE(itt, 16);
    bhs.writeUInt16BE(o.cid ?? 1, 20);
    bhs.writeUInt32BE(this.takeCmdSN(immediate), 24);
    bhs.writeUInt32BE(this.expStatSN, 28);
    this.sendPdu(bhs);
    return itt;
  }

  /** Login Request (§11.12). */
  loginRequest(o: { transit: boolean; cont?: boolean; csg: number; nsg: number; isid: Buffer; tsih?: number; itt: number; cid?: number; data: Buffer }): void {
    const bhs = Buffer.alloc(48);
    bhs[0] = Op.LOGIN_REQUEST | IMMEDIATE;
    bhs[1] = (o.transit ? 0x80 : 0) | (o.cont ? 0x40 : 0) | ((o.csg & 3) << 2) | (o.transit ? o.nsg & 3 : 0);
    bhs[2] = 0; // VersionMax
    bhs[3] = 0; // VersionMin
    o.isid.copy(bhs, 8, 0, 6);
    bhs.writeUInt16BE(o.tsih ?? 0, 14);
    bhs.writeUInt32BE(o.itt, 16);
    bhs.writeUInt16BE(o.cid ?? 1, 20);
    bhs.writeUInt32BE(this.cmdSN, 24);
    bhs.writeUInt32BE(this.expStatSN, 28);
    this.sendPdu(bhs, o.data);
  }

  /* ---------------- login flow ---------------- */

  /**
   * Log in: security stage (AuthMethod=None or CHAP), then the operational
   * stage with `keys`, answering any offers the target makes. Returns at the
   * first failure status or once in full feature phase.
   */
  async login(o: LoginOptions = {}): Promise<LoginOutcome> {
    const isid = o.isid ?? Buffer.from([0x80, 0x12, 0x34, 0x56, 0x00, 0x01]);
    const itt = this.allocItt();
    const responses: TargetPdu[] = [];
    const names: Record<string, string> = { InitiatorName: o.initiatorName ?? TEST_INITIATOR };
    if (o.discovery) names['SessionType'] = 'Discovery';
    else names['TargetName'] = o.targetName ?? '';
    let tsih = 0;
    const step = async (req: { transit: boolean; csg: number; nsg: number; data: Buffer }): Promise<TargetPdu> => {
      this.loginRequest({ ...req, isid, itt });
      const res = await this.recv();
      if (res.opcode !== Op.LOGIN_RESPONSE) throw new Error(`expected a login response, got opcode 0x${res.opcode.toString(16)}`);
      responses.push(res);
      tsih = res.tsih;
      return res;
    };
    const outcome = (last: TargetPdu): LoginOutcome => ({ status: last.loginStatus, tsih, responses, keys: new Map(this.loginKeys), last });
    const failed = (r: TargetPdu): boolean => r.loginStatus[0] !== 0;

    let first = true;
    const take = (extra: Record<string, string | number>): Buffer => {
      const all = first ? { ...names, ...extra } : extra;
      first = false;
      return keyText(all);
    };

    if (!o.skipSecurity) {
      if (!o.chap) {
        const r = await step({ transit: true, csg: 0, nsg: 1, data: take({ AuthMethod: 'None' }) });
        if (failed(r)) return outcome(r);
        if (!r.loginTransit) throw new Error('target did not leave the security stage');
      } else {
        let r = await step({ transit: false, csg: 0, nsg: 1, data: take({ AuthMethod: 'CHAP,None' }) });
        if (failed(r)) return outcome(r);
        r = await step({ transit: false, csg: 0, nsg: 1, data: keyText({ CHAP_A: '5' }) });
        if (failed(r)) return outcome(r);
        const k = r.keys;
        const id = Number(k.get('CHAP_I'));
        const challenge = Buffer.from((k.get('CHAP_C') ?? '0x').slice(2), 'hex');
        const answer: Record<string, string> = { CHAP_N: o.chap.user, CHAP_R: `0x${chapResponse(id, o.chap.secret, challenge).toString('hex')}` };
        const myId = 0x5a;
        const myChallenge = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
        if (o.chap.mutual) {
          answer['CHAP_I'] = String(myId);
          answer['CHAP_C'] = `0x${myChallenge.toString('hex')}`;
        }
        r = await step({ transit: true, csg: 0, nsg: 1, data: keyText(answer) });
        if (failed(r)) return outcome(r);
        if (o.chap.mutual) {
          const rk = r.keys;
          const expected = chapResponse(myId, o.chap.mutual.secret, myChallenge).toString('hex');
          if (rk.get('CHAP_N') !== o.chap.mutual.user || rk.get('CHAP_R')?.toLowerCase() !== `0x${expected}`) {
            throw new Error(`target failed mutual CHAP: ${rk.get('CHAP_N')} ${rk.get('CHAP_R')}`);
          }
        }
        if (!r.loginTransit) throw new Error('target did not leave the security stage after CHAP');
      }
    }

    let r = await step({ transit: true, csg: 1, nsg: 3, data: take(o.keys ?? {}) });
    for (let round = 0; !failed(r) && !r.loginTransit && round < 4; round++) {
      // Answer the target's offers by accepting them.
      const offers: Record<string, string> = {};
      for (const [key, value] of r.keys) {
        if (key === 'MaxRecvDataSegmentLength' || key === 'TargetPortalGroupTag' || key === 'TargetAlias') continue;
        if (o.keys && key in o.keys) continue;
        offers[key] = value.split(',')[0]!;
      }
      r = await step({ transit: true, csg: 1, nsg: 3, data: keyText(offers) });
    }
    if (!failed(r)) this.applyNegotiated(o.keys ?? {});
    return outcome(r);
  }

  private applyNegotiated(offered: Record<string, string | number>): void {
    const get = (key: string): string | undefined => this.loginKeys.get(key) ?? (offered[key] !== undefined ? String(offered[key]) : undefined);
    const bool = (key: string, dflt: boolean): boolean => (get(key) === undefined ? dflt : get(key) === 'Yes');
    const num = (key: string, dflt: number): number => (get(key) === undefined ? dflt : Number(get(key)));
    this.params.initialR2T = bool('InitialR2T', true);
    this.params.immediateData = bool('ImmediateData', true);
    this.params.maxBurstLength = num('MaxBurstLength', 262144);
    this.params.firstBurstLength = num('FirstBurstLength', 65536);
    this.params.maxOutstandingR2T = num('MaxOutstandingR2T', 1);
    this.params.targetMaxRecvDataSegmentLength = Number(this.loginKeys.get('MaxRecvDataSegmentLength') ?? 8192);
    this.params.headerDigest = this.headerDigest;
    this.params.dataDigest = this.dataDigest;
  }

  /* ---------------- SCSI flows ---------------- */

  /** Collect Data-In / R2T / response PDUs of one task until its status arrives. */
  async finishCommand(itt: number, timeoutMs = 3000, onR2T?: (r2t: TargetPdu) => void): Promise<CommandResult> {
    const dataIns: TargetPdu[] = [];
    const r2ts: TargetPdu[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await this.recv(Math.max(1, deadline - Date.now()));
      if (p.itt !== itt) throw new Error(`unexpected PDU opcode 0x${p.opcode.toString(16)} itt 0x${p.itt.toString(16)} while waiting for task 0x${itt.toString(16)}`);
      if (p.opcode === Op.R2T) {
        r2ts.push(p);
        onR2T?.(p);
        continue;
      }
      if (p.opcode === Op.DATA_IN) {
        dataIns.push(p);
        if (!p.hasStatus) continue;
        return { itt, response: null, status: p.status, sense: null, dataIn: Buffer.concat(dataIns.map((d) => d.data)), dataIns, r2ts, final: p };
      }
      if (p.opcode === Op.SCSI_RESPONSE) {
        return { itt, response: p, status: p.status, sense: p.sense, dataIn: Buffer.concat(dataIns.map((d) => d.data)), dataIns, r2ts, final: p };
      }
      throw new Error(`unexpected PDU opcode 0x${p.opcode.toString(16)} for task 0x${itt.toString(16)}`);
    }
  }

  /** A command without data-out, to completion. */
  async run(o: Omit<CommandOptions, 'write' | 'immediateData'>, timeoutMs = 3000): Promise<CommandResult> {
    const itt = this.command(o);
    return this.finishCommand(itt, timeoutMs);
  }

  /**
   * A write to completion: immediate data and unsolicited Data-Out as the
   * negotiated parameters allow, then Data-Out for each R2T, cut at the
   * target's MaxRecvDataSegmentLength.
   */
  async write(cdb: Buffer | readonly number[], data: Buffer, o: { lun?: number; edtl?: number; timeoutMs?: number } = {}): Promise<CommandResult> {
    const p = this.params;
    const edtl = o.edtl ?? data.length;
    const seg = p.targetMaxRecvDataSegmentLength;
    const firstBurst = Math.min(p.firstBurstLength, edtl, data.length);
    const immediateLen = p.immediateData ? Math.min(firstBurst, seg) : 0;
    const unsolicited = p.initialR2T ? immediateLen : firstBurst;
    const itt = this.command({
      cdb,
      lun: o.lun ?? 0,
      write: true,
      edtl,
      immediateData: data.subarray(0, immediateLen),
      final: unsolicited <= immediateLen,
    });
    let dataSN = 0;
    for (let off = immediateLen; off < unsolicited; ) {
      const n = Math.min(seg, unsolicited - off);
      this.dataOut({ itt, lun: o.lun ?? 0, dataSN: dataSN++, offset: off, data: data.subarray(off, off + n), final: off + n >= unsolicited });
      off += n;
    }
    return this.finishCommand(itt, o.timeoutMs ?? 3000, (r2t) => this.answerR2T(r2t, data, o.lun ?? 0));
  }

  /** Send the Data-Out sequence an R2T asks for. */
  answerR2T(r2t: TargetPdu, data: Buffer, lun = 0): void {
    const seg = this.params.targetMaxRecvDataSegmentLength;
    const start = r2t.bufferOffset;
    const end = start + r2t.word44;
    let dataSN = 0;
    for (let off = start; off < end; ) {
      const n = Math.min(seg, end - off);
      this.dataOut({ itt: r2t.itt, ttt: r2t.ttt, lun, dataSN: dataSN++, offset: off, data: data.subarray(off, off + n), final: off + n >= end });
      off += n;
    }
  }

  /** SendTargets, following continuations; returns the whole text and every response PDU. */
  async sendTargets(value = 'All'): Promise<{ text: Buffer; pdus: TargetPdu[] }> {
    const pdus: TargetPdu[] = [];
    const itt = this.text({ data: keyText({ SendTargets: value }) });
    for (;;) {
      const p = await this.recv();
      if (p.opcode !== Op.TEXT_RESPONSE) throw new Error(`expected a text response, got opcode 0x${p.opcode.toString(16)}`);
      pdus.push(p);
      if (!p.cont) break;
      this.text({ data: Buffer.alloc(0), itt, ttt: p.ttt });
    }
    return { text: Buffer.concat(pdus.map((p) => p.data)), pdus };
  }
}

/** CHAP response: MD5(identifier || secret || challenge), RFC 1994 §4.1. */
export function chapResponse(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id & 0xff])).update(secret, 'utf8').update(challenge).digest();
}

/* ---------------- CDBs, by hand (SBC-3) ---------------- */

export function read10(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x28;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export function write10(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x2a;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export const TEST_UNIT_READY = Buffer.alloc(16);

/** Bytes i = (seed + i * 7) & 0xff: a pattern whose misplacement shows. */
export function pattern(length: number, seed = 1): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seed + i * 7 + (i >> 8)) & 0xff;
  return b;
}
