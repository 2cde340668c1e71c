/**
 * A minimal iSCSI initiator over a real TCP socket, for the fuzz test: login
 * (security + operational stage, digests optional), NOP pings, SCSI commands
 * with R2T-driven Data-Out and Data-In reassembly, logout, and raw writes for
 * the fuzzer. It answers the target's NOP-In pings by itself.
 */
import { Socket, connect } from 'node:net';
import {
  Digests,
  IOp,
  NO_DIGESTS,
  Pdu,
  RESERVED,
  TOp,
  TargetPdu,
  TargetStream,
  dataOut,
  loginRequest,
  logoutRequest,
  nopOut,
  parseText,
  scsiCommand,
  serialize,
  textData,
} from './wire';

export interface LoginOptions {
  readonly initiatorName: string;
  /** Omit for a discovery session. */
  readonly targetName?: string;
  readonly isid?: Buffer;
  readonly headerDigest?: boolean;
  readonly dataDigest?: boolean;
  readonly initialR2T?: boolean;
  readonly immediateData?: boolean;
  readonly maxRecvDataSegmentLength?: number;
  readonly firstBurstLength?: number;
  readonly maxBurstLength?: number;
  readonly timeoutMs?: number;
}

/** What the login settled on, as far as the initiator's data path cares. */
export interface Negotiated {
  /** Largest data segment the target accepts from us. */
  readonly targetMaxRecv: number;
  readonly firstBurstLength: number;
  readonly maxBurstLength: number;
  readonly initialR2T: boolean;
  readonly immediateData: boolean;
  readonly digests: Digests;
}

export interface ScsiResult {
  readonly status: number;
  /** iSCSI response field (0 = command completed at target). */
  readonly response: number;
  readonly sense: Buffer | null;
  readonly dataIn: Buffer;
}

export class InitiatorError extends Error {
  override readonly name = 'InitiatorError';
}

type Waiter = { match: (p: TargetPdu) => boolean; resolve: (p: TargetPdu | null) => void };

/** Keys the target declares; everything else it sends that we did not offer is an offer we must answer. */
const TARGET_DECLARATIONS = new Set(['TargetAlias', 'TargetAddress', 'TargetPortalGroupTag', 'MaxRecvDataSegmentLength']);

export class TestInitiator {
  readonly stream = new TargetStream();
  cmdSN = 1;
  expStatSN = 0;
  tsih = 0;
  negotiated: Negotiated | null = null;
  /** The MaxRecvDataSegmentLength we declared: the target must not send a longer data segment. */
  private declaredMaxRecv = 8192;
  /** Errors in what the target sent (bad digest, unknown opcode): findings, not test-initiator bugs. */
  readonly protocolErrors: string[] = [];
  /** Every PDU the target sent, for fuzzers that react to R2Ts. */
  onPdu: ((p: TargetPdu) => void) | null = null;
  private nextItt = 1;
  private waiters: Waiter[] = [];
  /** Running SCSI commands by ITT; called with null when the connection closes. */
  private readonly handlers = new Map<number, (p: TargetPdu | null) => void>();
  private closedFlag = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.closedFlag = true;
      for (const w of this.waiters) w.resolve(null);
      this.waiters = [];
      for (const h of [...this.handlers.values()]) h(null);
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestInitiator> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      s.setNoDelay(true);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new TestInitiator(s));
      });
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  itt(): number {
    const v = this.nextItt;
    this.nextItt = this.nextItt >= 0x7fffffff ? 1 : this.nextItt + 1;
    return v;
  }

  /* ---------------- raw I/O ---------------- */

  send(pdu: Pdu, corrupt: { header?: boolean; data?: boolean } = {}): void {
    this.writeRaw(serialize(pdu, this.negotiated?.digests ?? NO_DIGESTS, corrupt));
  }

  writeRaw(bytes: Buffer): void {
    if (!this.closedFlag && !this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  /** The next PDU matching `match`, or null when the connection closes or the time runs out. */
  waitFor(match: (p: TargetPdu) => boolean, timeoutMs: number): Promise<TargetPdu | null> {
    if (this.closedFlag) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(null);
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves true once the target has closed the connection, false after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closedFlag) return true;
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const c = this.closed.then(() => true);
    const v = await Promise.race([t, c]);
    clearTimeout(timer);
    return v;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.stream.push(chunk);
    for (;;) {
      let p: TargetPdu | null;
      try {
        p = this.stream.next();
      } catch (err) {
        this.protocolErrors.push((err as Error).message);
        this.socket.destroy();
        return;
      }
      if (!p) return;
      if (p.data.length > this.declaredMaxRecv) {
        this.protocolErrors.push(`target sent ${p.data.length} data bytes in opcode 0x${p.opcode.toString(16)}; we declared MaxRecvDataSegmentLength ${this.declaredMaxRecv}`);
      }
      this.track(p);
      this.onPdu?.(p);
      this.handlers.get(p.itt)?.(p);
      const i = this.waiters.findIndex((w) => w.match(p!));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        w!.resolve(p);
      }
    }
  }

  /** Keep ExpStatSN and CmdSN current; answer the target's pings. */
  private track(p: TargetPdu): void {
    const statusBearing =
      p.opcode === TOp.SCSI_RESPONSE ||
      p.opcode === TOp.TMF_RESPONSE ||
      p.opcode === TOp.LOGIN_RESPONSE ||
      p.opcode === TOp.TEXT_RESPONSE ||
      p.opcode === TOp.LOGOUT_RESPONSE ||
      p.opcode === TOp.REJECT ||
      (p.opcode === TOp.NOP_IN && p.itt !== RESERVED) ||
      (p.opcode === TOp.DATA_IN && (p.flags & 0x01) !== 0);
    if (this.negotiated) this.checkSequence(p, statusBearing);
    if (statusBearing) this.expStatSN = (p.statSN + 1) >>> 0;
    if (p.opcode !== TOp.LOGIN_RESPONSE && p.opcode !== TOp.DATA_IN) {
      // ExpCmdSN never goes backwards in a healthy session; adopting it keeps us in the window.
      if (((p.expCmdSN - this.cmdSN) | 0) > 0) this.cmdSN = p.expCmdSN;
    }
    if (p.opcode === TOp.NOP_IN && p.itt === RESERVED && p.ttt !== RESERVED && this.negotiated) {
      this.send(nopOut({ itt: RESERVED, ttt: p.ttt, cmdSN: this.cmdSN, expStatSN: this.expStatSN, immediate: true, lun: p.bhs.subarray(8, 16) }));
    }
  }

  private lastMaxCmdSN: number | null = null;
  private lastExpCmdSN: number | null = null;

  /**
   * RFC 7143 sequence rules the target must keep in full feature phase:
   * StatSN goes up by one per status (§4.2.2.2), ExpCmdSN and MaxCmdSN never
   * go back and MaxCmdSN + 1 >= ExpCmdSN (§4.2.2.1), an R2T asks for at most
   * MaxBurstLength.
   */
  private checkSequence(p: TargetPdu, statusBearing: boolean): void {
    const fail = (what: string): void => void this.protocolErrors.push(`${what} (opcode 0x${p.opcode.toString(16)})`);
    const lt = (a: number, b: number): boolean => a !== b && ((a - b) | 0) < 0;
    if (statusBearing && p.statSN !== this.expStatSN) fail(`StatSN ${p.statSN}, expected ${this.expStatSN}`);
    const carriesWindow = p.opcode !== TOp.DATA_IN || (p.flags & 0x01) !== 0;
    if (carriesWindow) {
      if (this.lastExpCmdSN !== null && lt(p.expCmdSN, this.lastExpCmdSN)) fail(`ExpCmdSN went back from ${this.lastExpCmdSN} to ${p.expCmdSN}`);
      if (this.lastMaxCmdSN !== null && lt(p.maxCmdSN, this.lastMaxCmdSN)) fail(`MaxCmdSN went back from ${this.lastMaxCmdSN} to ${p.maxCmdSN}`);
      if (lt((p.maxCmdSN + 1) >>> 0, p.expCmdSN)) fail(`MaxCmdSN ${p.maxCmdSN} < ExpCmdSN ${p.expCmdSN} - 1`);
      this.lastExpCmdSN = p.expCmdSN;
      this.lastMaxCmdSN = p.maxCmdSN;
    }
    if (p.opcode === TOp.R2T && p.bhs.readUInt32BE(44) > this.negotiated!.maxBurstLength) {
      fail(`R2T for ${p.bhs.readUInt32BE(44)} bytes exceeds MaxBurstLength ${this.negotiated!.maxBurstLength}`);
    }
  }

  /* ---------------- login ---------------- */

  async login(o: LoginOptions): Promise<Negotiated> {
    const timeoutMs = o.timeoutMs ?? 5000;
    const isid = o.isid ?? Buffer.from([0x80, 0x12, 0x34, 0x56, 0x00, 0x01]);
    const itt = this.itt();
    const maxRecv = o.maxRecvDataSegmentLength ?? 65536;
    const exchange = async (f: { transit: boolean; csg: number; nsg: number; pairs: Array<[string, string]> }): Promise<{ pdu: TargetPdu; keys: Map<string, string> }> => {
      this.send(loginRequest({ ...f, isid, tsih: 0, itt, cmdSN: this.cmdSN, expStatSN: this.expStatSN, data: textData(f.pairs) }));
      const r = await this.waitFor((p) => p.opcode === TOp.LOGIN_RESPONSE, timeoutMs);
      if (!r) throw new InitiatorError('no login response (connection closed or timed out)');
      const status = (r.bhs[36]! << 8) | r.bhs[37]!;
      if (status !== 0) throw new InitiatorError(`login failed with status 0x${status.toString(16).padStart(4, '0')}`);
      if (r.flags & 0x40) throw new InitiatorError('login response continues (C=1): not supported by the test initiator');
      return { pdu: r, keys: parseText(r.data) };
    };

    const security: Array<[string, string]> = [
      ['InitiatorName', o.initiatorName],
      ['SessionType', o.targetName ? 'Normal' : 'Discovery'],
      ...(o.targetName ? ([['TargetName', o.targetName]] as Array<[string, string]>) : []),
      ['AuthMethod', 'None'],
    ];
    let r = await exchange({ transit: true, csg: 0, nsg: 1, pairs: security });
    // The target stays in the security stage (T=0) until it is ready to move on.
    for (let i = 0; i < 4 && (r.pdu.flags & 0x80) === 0; i++) {
      r = await exchange({ transit: true, csg: 0, nsg: 1, pairs: [] });
    }
    const ours: Array<[string, string]> = [
      ['HeaderDigest', o.headerDigest ? 'CRC32C' : 'None'],
      ['DataDigest', o.dataDigest ? 'CRC32C' : 'None'],
      ['MaxRecvDataSegmentLength', String(maxRecv)],
      ['ErrorRecoveryLevel', '0'],
    ];
    if (o.targetName) {
      ours.push(
        ['InitialR2T', o.initialR2T === false ? 'No' : 'Yes'],
        ['ImmediateData', o.immediateData === false ? 'No' : 'Yes'],
        ['FirstBurstLength', String(o.firstBurstLength ?? 65536)],
        ['MaxBurstLength', String(o.maxBurstLength ?? 262144)],
        ['MaxConnections', '1'],
        ['MaxOutstandingR2T', '1'],
        ['DataPDUInOrder', 'Yes'],
        ['DataSequenceInOrder', 'Yes'],
      );
    }
    const settled = new Map<string, string>();
    let pairs = ours;
    for (let i = 0; ; i++) {
      if (i >= 5) throw new InitiatorError('operational stage did not end');
      r = await exchange({ transit: true, csg: 1, nsg: 3, pairs });
      const offered = new Set(pairs.map(([k]) => k));
      pairs = [];
      for (const [k, v] of r.keys) {
        settled.set(k, v);
        // A key we did not send and the target does not merely declare is the target's offer: accept it.
        if (!offered.has(k) && !TARGET_DECLARATIONS.has(k)) pairs.push([k, v]);
      }
      if (r.pdu.flags & 0x80 && (r.pdu.flags & 3) === 3) break;
    }
    this.tsih = r.pdu.bhs.readUInt16BE(14);
    this.expStatSN = (r.pdu.statSN + 1) >>> 0;
    this.cmdSN = r.pdu.expCmdSN;
    const num = (k: string, d: number): number => (settled.has(k) && /^\d+$/.test(settled.get(k)!) ? Number(settled.get(k)) : d);
    const digests = { header: settled.get('HeaderDigest') === 'CRC32C', data: settled.get('DataDigest') === 'CRC32C' };
    const maxBurstLength = num('MaxBurstLength', 262144);
    this.negotiated = {
      targetMaxRecv: num('MaxRecvDataSegmentLength', 8192),
      maxBurstLength,
      firstBurstLength: Math.min(num('FirstBurstLength', 65536), maxBurstLength),
      initialR2T: (settled.get('InitialR2T') ?? 'Yes') === 'Yes',
      immediateData: (settled.get('ImmediateData') ?? 'Yes') === 'Yes',
      digests,
    };
    this.stream.digests = digests;
    this.declaredMaxRecv = maxRecv;
    return this.negotiated;
  }

  /* ---------------- full feature phase ---------------- */

  /** Immediate NOP-Out with a fresh ITT; resolves with the NOP-In, or null (closed / timed out). */
  async ping(timeoutMs = 5000, itt = this.itt()): Promise<TargetPdu | null> {
    const reply = this.waitFor((p) => p.opcode === TOp.NOP_IN && p.itt === itt, timeoutMs);
    this.send(nopOut({ itt, ttt: RESERVED, cmdSN: this.cmdSN, expStatSN: this.expStatSN, immediate: true }));
    return reply;
  }

  /** One SCSI command on LUN 0: solicited Data-Out for writes, Data-In gathered for reads. */
  scsi(cdb: Buffer, o: { read?: number; write?: Buffer; timeoutMs?: number; itt?: number } = {}): Promise<ScsiResult> {
    const n = this.negotiated;
    if (!n) return Promise.reject(new InitiatorError('not logged in'));
    const itt = o.itt ?? this.itt();
    const write = o.write ?? null;
    const edtl = write ? write.length : (o.read ?? 0);
    const immediateLen = write && n.immediateData ? Math.min(write.length, n.firstBurstLength, n.targetMaxRecv) : 0;
    const dataIn = Buffer.alloc(o.read ?? 0);
    const done = new Promise<ScsiResult>((resolve, reject) => {
      const finish = (v: ScsiResult | Error): void => {
        if (!this.handlers.delete(itt)) return;
        clearTimeout(timer);
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      const timer = setTimeout(() => finish(new InitiatorError(`SCSI command 0x${cdb[0]!.toString(16)} timed out`)), o.timeoutMs ?? 10_000);
      this.handlers.set(itt, (p) => {
        if (p === null) finish(new InitiatorError('connection closed during a SCSI command'));
        else if (p.opcode === TOp.R2T && write) {
          const offset = p.bhs.readUInt32BE(40);
          const length = p.bhs.readUInt32BE(44);
          let dataSN = 0;
          for (let at = offset; at < offset + length; ) {
            const len = Math.min(n.targetMaxRecv, offset + length - at);
            this.send(dataOut({ itt, ttt: p.ttt, final: at + len >= offset + length, dataSN: dataSN++, offset: at, expStatSN: this.expStatSN, data: write.subarray(at, at + len) }));
            at += len;
          }
        } else if (p.opcode === TOp.DATA_IN) {
          p.data.copy(dataIn, p.bhs.readUInt32BE(40));
          if (p.flags & 0x01) finish({ status: p.bhs[3]!, response: 0, sense: null, dataIn });
        } else if (p.opcode === TOp.SCSI_RESPONSE) {
          const sense = p.data.length >= 2 ? Buffer.from(p.data.subarray(2, 2 + p.data.readUInt16BE(0))) : null;
          finish({ status: p.bhs[3]!, response: p.bhs[2]!, sense, dataIn });
        }
      });
    });
    const cmd = scsiCommand({
      itt,
      cdb,
      edtl,
      read: (o.read ?? 0) > 0,
      write: write !== null,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      data: write ? write.subarray(0, immediateLen) : Buffer.alloc(0),
    });
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    this.send(cmd);
    return done;
  }

  async logout(timeoutMs = 5000): Promise<boolean> {
    const itt = this.itt();
    const reply = this.waitFor((p) => p.opcode === TOp.LOGOUT_RESPONSE && p.itt === itt, timeoutMs);
    this.send(logoutRequest({ reason: 0, itt, cid: 0, cmdSN: this.cmdSN, expStatSN: this.expStatSN, immediate: true }));
    const r = await reply;
    const ok = r !== null && r.bhs[2] === 0;
    await this.waitClosed(timeoutMs);
    this.close();
    return ok;
  }
}

/** READ(10) / WRITE(10) CDBs for the round-trip checks. */
export function rw10(opcode: 0x28 | 0x2a, lba: number, blocks: number, fua = false): Buffer {
  const c = Buffer.alloc(16);
  c[0] = opcode;
  c[1] = fua ? 0x08 : 0;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export { IOp };
