/**
 * One TCP connection of the target: frames the byte stream into PDUs, runs
 * login, then hands full-feature-phase PDUs to its session by a dispatch
 * table. Owns StatSN, digests on output, batching of socket writes (one
 * flush per turn of the event loop, output-batch.ts), back-pressure and
 * NOP-In liveness pings.
 *
 * Connection states (RFC 7143 §8.1, target side, reduced to what ERL 0 needs)
 * change only in `transition()`.
 */
import { Socket } from 'node:net';
import { Logger } from 'pino';
import { BHS_LENGTH, LoginStatus, RESERVED_TAG, RejectReason } from './constants';
import { PAD, digestBuffer, padLength } from './digest';
import { FramingError, PduFramer } from './framer';
import { LoginMachine, LoginRequestPdu } from './login';
import {
  InitiatorPdu,
  LoginPdu,
  LogoutPdu,
  PduFormatError,
  RawPdu,
  decodePdu,
  encodeLoginResponse,
  encodeLogoutResponse,
  encodeReject,
  joinData,
} from './pdu';
import { ChunkWriter, OutputBatch } from './output-batch';
import { PduSink, Session } from './session';
import { LogoutReason, LogoutResponse } from './constants';

export const ConnectionState = {
  /** Login PDUs only. */
  LOGIN: 'login',
  /** Logged in: commands flow. */
  FULL_FEATURE: 'full-feature',
  /** Logout requested: finishing tasks, then the response, then close. */
  LOGGING_OUT: 'logging-out',
  CLOSED: 'closed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  [ConnectionState.LOGIN]: [ConnectionState.FULL_FEATURE, ConnectionState.CLOSED],
  [ConnectionState.FULL_FEATURE]: [ConnectionState.LOGGING_OUT, ConnectionState.CLOSED],
  [ConnectionState.LOGGING_OUT]: [ConnectionState.CLOSED],
  [ConnectionState.CLOSED]: [],
};

export interface ConnectionTimers {
  /** Close a connection whose login has not completed in this time. */
  readonly loginTimeoutMs: number;
  /** Ping an initiator silent for this long with a NOP-In. */
  readonly nopInIntervalMs: number;
  /** Drop the connection when a ping is unanswered for this long. */
  readonly nopInTimeoutMs: number;
}

/** What the connection needs from the server that accepted it. */
export interface ConnectionHost {
  readonly log: Logger;
  readonly timers: ConnectionTimers;
  /** A login machine for a connection that reached us at `localAddress` (targets bound to portals are found only there). */
  newLoginMachine(localAddress: string, localPort: number): LoginMachine;
  /** Look up the session a non-leading login wants to join (TSIH != 0). */
  findSession(tsih: number): Session | null;
  /** Create (or reinstate) the session for a completed leading login. */
  establishSession(conn: Connection, login: LoginPdu, machine: LoginMachine): Session;
  connectionClosed(conn: Connection): void;
}

/** Stop reading from the socket while this much output is queued. */
const HIGH_WATER_BYTES = 16 * 1024 * 1024;

/** Full-feature-phase dispatch: one row per PDU kind. */
const FFP_HANDLERS: Readonly<Record<InitiatorPdu['kind'], (c: Connection, s: Session, pdu: never) => void>> = {
  'scsi-command': (_c, s, pdu: Extract<InitiatorPdu, { kind: 'scsi-command' }>) => s.orderedScsiCommand(pdu),
  'data-out': (_c, s, pdu: Extract<InitiatorPdu, { kind: 'data-out' }>) => s.onDataOut(pdu),
  'nop-out': (c, s, pdu: Extract<InitiatorPdu, { kind: 'nop-out' }>) => {
    if (pdu.itt === RESERVED_TAG && !pdu.immediate) {
      c.protocolError(pdu.raw.bhs, 'NOP-Out with reserved ITT must be immediate');
      return;
    }
    if (pdu.itt === RESERVED_TAG) s.onNopOut(pdu);
    else s.ordered(pdu.cmdSN, pdu.immediate, () => s.onNopOut(pdu));
  },
  'task-mgmt': (c, s, pdu: Extract<InitiatorPdu, { kind: 'task-mgmt' }>) =>
    s.ordered(pdu.cmdSN, pdu.immediate, () => {
      s.onTaskManagement(pdu).catch((err: unknown) => c.internalError(err));
    }),
  text: (_c, s, pdu: Extract<InitiatorPdu, { kind: 'text' }>) => s.ordered(pdu.cmdSN, pdu.immediate, () => s.onText(pdu)),
  logout: (c, s, pdu: Extract<InitiatorPdu, { kind: 'logout' }>) => s.ordered(pdu.cmdSN, pdu.immediate, () => c.logout(pdu)),
  login: (c, _s, pdu: Extract<InitiatorPdu, { kind: 'login' }>) => c.protocolError(pdu.raw.bhs, 'login PDU in full feature phase'),
  snack: (_c, s, pdu: Extract<InitiatorPdu, { kind: 'snack' }>) => s.reject(pdu.raw.bhs, RejectReason.SNACK_REJECT),
};

export class Connection implements PduSink {
  readonly id: number;
  state: ConnectionState = ConnectionState.LOGIN;
  session: Session | null = null;
  cid = 0;
  readonly log: Logger;

  private readonly framer = new PduFramer();
  private login: LoginMachine | null = null;
  private statSN = 0;
  private headerDigest = false;
  private dataDigest = false;
  /** PDUs of this turn, written at its end (output-batch.ts). */
  private readonly output = new OutputBatch();
  private flushScheduled = false;
  private readonly writer: ChunkWriter;
  private readingPaused = false;
  maxSendDataSegmentLength = 8192;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;

  private loginTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private lastReceive = Date.now();
  private outstandingPing: { ttt: number; sentAt: number } | null = null;
  private nextPingTtt = 0x80000000;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;
  /** Why the connection is ending: the first reason given wins. */
  private reasonForClose: string | null = null;

  constructor(
    readonly socket: Socket,
    private readonly host: ConnectionHost,
    id: number,
  ) {
    this.id = id;
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    this.log = host.log.child({ conn: id, peer: this.remoteAddress });
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
    this.writer = {
      write: (chunk, done) => void socket.write(chunk, done && (() => done())),
      cork: () => socket.cork(),
      uncork: () => socket.uncork(),
    };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.noteCloseReason(`socket error: ${err.message}`);
      this.log.debug({ err: err.message }, 'socket error');
    });
    socket.on('end', () => this.noteCloseReason('initiator closed the connection'));
    socket.on('close', () => this.onSocketClosed());
    socket.on('drain', () => this.resumeReading());
    this.loginTimer = setTimeout(() => this.fail('login did not complete in time'), host.timers.loginTimeoutMs);
  }

  /** Resolves once the connection is fully closed and its session cleaned up. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Why the connection closed (or is closing); the server logs it with "connection closed". */
  get closeReason(): string {
    return this.reasonForClose ?? 'socket closed';
  }

  private noteCloseReason(reason: string): void {
    this.reasonForClose ??= reason;
  }

  private isClosed(): boolean {
    return this.state === ConnectionState.CLOSED;
  }

  private transition(next: ConnectionState): boolean {
    if (this.state === next) return false;
    if (!TRANSITIONS[this.state].includes(next)) {
      this.log.error({ from: this.state, to: next }, 'illegal connection state transition');
      return false;
    }
    this.log.debug({ from: this.state, to: next }, 'connection state');
    this.state = next;
    return true;
  }

  /* ---------------- input ---------------- */

  private onData(chunk: Buffer): void {
    if (this.state === ConnectionState.CLOSED) return;
    this.lastReceive = Date.now();
    this.framer.push(chunk);
    try {
      for (let raw = this.framer.next(); raw; raw = this.framer.next()) {
        this.onPdu(raw);
        if (this.isClosed()) return;
      }
    } catch (err) {
      if (err instanceof FramingError) {
        this.log.warn({ kind: err.kind, err: err.message }, 'framing error');
        // A header that failed its digest cannot be trusted enough to quote in a Reject.
        if (err.recoverable && err.bhs && this.session) {
          this.session.reject(err.bhs, err.rejectReason as RejectReason);
          // ERL 0 cannot recover the lost data: close, but only once the Reject is written
          // (destroying the socket now would discard it: it is queued for the end of this turn).
          this.socket.pause();
          this.endAfterFlush(err.message);
          return;
        }
        this.fail(err.message);
        return;
      }
      this.internalError(err);
    }
  }

  private onPdu(raw: RawPdu): void {
    let pdu: InitiatorPdu;
    try {
      pdu = decodePdu(raw);
    } catch (err) {
      if (err instanceof PduFormatError) {
        this.log.warn({ err: err.message }, 'malformed PDU');
        if (this.session) this.session.reject(raw.bhs, err.rejectReason as RejectReason);
        else this.fail(err.message);
        return;
      }
      throw err;
    }
    if (this.state === ConnectionState.LOGIN) {
      if (pdu.kind !== 'login') {
        this.fail(`${pdu.kind} PDU before login completed`);
        return;
      }
      this.onLogin(pdu);
      return;
    }
    const session = this.session!;
    if (this.state === ConnectionState.LOGGING_OUT && pdu.kind !== 'data-out' && pdu.kind !== 'nop-out') {
      session.reject(raw.bhs, RejectReason.WAITING_FOR_LOGOUT);
      return;
    }
    (FFP_HANDLERS[pdu.kind] as (c: Connection, s: Session, p: InitiatorPdu) => void)(this, session, pdu);
  }

  /* ---------------- login ---------------- */

  private onLogin(pdu: LoginPdu): void {
    // After a failed login the connection is closing: later PDUs are ignored.
    if (this.login && this.login.state !== 'in-progress') return;
    if (!this.login) {
      // First login PDU of the connection.
      this.statSN = pdu.expStatSN;
      this.cid = pdu.cid;
      if (pdu.tsih !== 0) {
        const existing = this.host.findSession(pdu.tsih);
        const status = existing ? LoginStatus.TOO_MANY_CONNECTIONS : LoginStatus.SESSION_DOES_NOT_EXIST;
        this.sendLoginFailure(pdu, status);
        return;
      }
      this.login = this.host.newLoginMachine(this.localAddress, this.localPort);
    }
    const machine = this.login;
    const req: LoginRequestPdu = {
      transit: pdu.transit,
      cont: pdu.cont,
      csg: pdu.csg,
      nsg: pdu.nsg,
      versionMax: pdu.versionMax,
      versionMin: pdu.versionMin,
      isid: pdu.isid,
      tsih: pdu.tsih,
      cid: pdu.cid,
      data: joinData(pdu.raw),
    };
    const resp = machine.step(req);
    let tsih = 0;
    let session: Session | null = null;
    if (machine.state === 'complete') {
      session = this.host.establishSession(this, pdu, machine);
      tsih = session.tsih;
    }
    const window = session ? session.window() : { expCmdSN: pdu.cmdSN, maxCmdSN: pdu.cmdSN };
    const bhs = encodeLoginResponse({
      statSN: this.takeStatSN(),
      expCmdSN: window.expCmdSN,
      maxCmdSN: window.maxCmdSN,
      itt: pdu.itt,
      transit: resp.transit,
      cont: resp.cont,
      csg: resp.csg,
      nsg: resp.nsg,
      versionMax: resp.versionMax,
      versionActive: resp.versionActive,
      isid: pdu.isid,
      tsih,
      statusClass: resp.statusClass,
      statusDetail: resp.statusDetail,
      dataLength: resp.data.length,
    });
    this.send(bhs, resp.data.length ? [resp.data] : [], resp.data.length);
    if (machine.state === 'failed') {
      const why = machine.failure?.message ?? 'login failed';
      this.log.info({ status: [resp.statusClass, resp.statusDetail], reason: why }, 'login failed');
      this.endAfterFlush(`login failed: ${why}`);
      return;
    }
    if (session) this.enterFullFeature(session, machine);
  }

  private sendLoginFailure(pdu: LoginPdu, status: readonly [number, number]): void {
    this.send(
      encodeLoginResponse({
        statSN: this.takeStatSN(),
        expCmdSN: pdu.cmdSN,
        maxCmdSN: pdu.cmdSN,
        itt: pdu.itt,
        transit: false,
        cont: false,
        csg: pdu.csg,
        nsg: 0,
        versionMax: 0,
        versionActive: 0,
        isid: pdu.isid,
        tsih: 0,
        statusClass: status[0],
        statusDetail: status[1],
        dataLength: 0,
      }),
    );
    this.endAfterFlush(`login refused with status 0x${((status[0] << 8) | status[1]).toString(16).padStart(4, '0')} (TSIH ${pdu.tsih})`);
  }

  private enterFullFeature(session: Session, machine: LoginMachine): void {
    const result = machine.result!;
    this.session = session;
    session.attach(this);
    // Digests and segment limits apply from the first PDU after the final login response.
    this.headerDigest = result.connection.headerDigest === 'CRC32C';
    this.dataDigest = result.connection.dataDigest === 'CRC32C';
    this.framer.headerDigest = this.headerDigest;
    this.framer.dataDigest = this.dataDigest;
    this.framer.maxDataSegmentLength = result.connection.targetMaxRecvDataSegmentLength;
    this.maxSendDataSegmentLength = result.connection.maxRecvDataSegmentLength;
    this.login = null;
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = null;
    this.transition(ConnectionState.FULL_FEATURE);
    this.startPings();
    this.log.info(
      { session: session.tsih, initiator: session.initiatorName, target: session.target?.name ?? null, type: session.type },
      'logged in',
    );
  }

  /* ---------------- logout ---------------- */

  logout(pdu: LogoutPdu): void {
    if (!this.transition(ConnectionState.LOGGING_OUT)) return;
    const session = this.session!;
    const respond = (response: number): void => {
      if (this.state === ConnectionState.CLOSED) return;
      this.send(
        encodeLogoutResponse({ ...session.seq(true), itt: pdu.itt, response, time2Wait: 0, time2Retain: 0 }),
      );
      this.endAfterFlush(`logout (reason ${pdu.reason}, response ${response})`);
    };
    if (pdu.reason === LogoutReason.REMOVE_FOR_RECOVERY) {
      respond(LogoutResponse.RECOVERY_NOT_SUPPORTED);
      return;
    }
    if (pdu.reason === LogoutReason.CLOSE_CONNECTION && pdu.cid !== this.cid) {
      respond(LogoutResponse.CID_NOT_FOUND);
      return;
    }
    session.drain().then(
      () => respond(LogoutResponse.SUCCESS),
      () => respond(LogoutResponse.CLEANUP_FAILED),
    );
  }

  /* ---------------- output (PduSink) ---------------- */

  send(bhs: Buffer, data: readonly Buffer[] = [], dataLength = 0, onSent?: () => void): void {
    if (this.state === ConnectionState.CLOSED || this.socket.destroyed) {
      onSent?.();
      return;
    }
    const out = this.output;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushAtEndOfTurn);
    }
    out.push(bhs);
    if (this.headerDigest) out.push(digestBuffer([bhs.subarray(0, BHS_LENGTH)]));
    if (dataLength > 0) {
      // The digest is computed now, from data still untouched.
      const pad = padLength(dataLength);
      const digest = this.dataDigest ? digestBuffer(data, pad) : null;
      for (let i = 0; i < data.length; i++) out.push(data[i]!);
      if (onSent) out.onSent(onSent);
      if (pad) out.push(PAD.subarray(0, pad));
      if (digest) out.push(digest);
    } else {
      onSent?.();
    }
  }

  private readonly flushAtEndOfTurn = (): void => {
    this.flushScheduled = false;
    this.flushOutput();
  };

  /** Write this turn's PDUs now (at the end of the turn, or before the socket is ended). */
  private flushOutput(): void {
    if (this.output.empty) return;
    if (this.state === ConnectionState.CLOSED || this.socket.destroyed) {
      this.output.discard();
      return;
    }
    this.output.flush(this.writer);
    const s = this.socket;
    if (s.writableLength > HIGH_WATER_BYTES && !this.readingPaused) {
      this.readingPaused = true;
      s.pause();
    }
  }

  private resumeReading(): void {
    if (this.readingPaused && this.state !== ConnectionState.CLOSED) {
      this.readingPaused = false;
      this.socket.resume();
    }
  }

  takeStatSN(): number {
    const sn = this.statSN;
    this.statSN = (this.statSN + 1) >>> 0;
    return sn;
  }

  peekStatSN(): number {
    return this.statSN;
  }

  tasksChanged(): void {
    /* MaxCmdSN in the next response reflects the new task count. */
  }

  pingAnswered(ttt: number): void {
    if (this.outstandingPing && this.outstandingPing.ttt === ttt) this.outstandingPing = null;
  }

  /* ---------------- liveness ---------------- */

  private startPings(): void {
    const { nopInIntervalMs, nopInTimeoutMs } = this.host.timers;
    if (nopInIntervalMs <= 0) return;
    const tick = Math.max(100, Math.min(nopInIntervalMs, nopInTimeoutMs) / 2);
    this.pingTimer = setInterval(() => {
      const now = Date.now();
      if (this.outstandingPing) {
        if (now - this.outstandingPing.sentAt >= nopInTimeoutMs) this.fail('initiator did not answer NOP-In ping');
        return;
      }
      if (this.state === ConnectionState.FULL_FEATURE && now - this.lastReceive >= nopInIntervalMs && this.session) {
        const ttt = this.nextPingTtt;
        this.nextPingTtt = this.nextPingTtt >= 0xfffffffe ? 0x80000000 : this.nextPingTtt + 1;
        this.outstandingPing = { ttt, sentAt: now };
        this.session.ping(ttt);
      }
    }, tick);
    this.pingTimer.unref();
  }

  /* ---------------- errors and teardown ---------------- */

  protocolError(bhs: Buffer, reason: string): void {
    this.log.warn({ reason }, 'protocol error');
    if (this.session) {
      this.send(encodeReject({ ...this.session.seq(true), reason: RejectReason.PROTOCOL_ERROR, dataSN: 0 }), [bhs], BHS_LENGTH);
    }
    this.endAfterFlush(`protocol error: ${reason}`);
  }

  internalError(err: unknown): void {
    this.log.error({ err }, 'internal error; dropping connection');
    this.fail('internal error');
  }

  /** Drop the connection now. */
  fail(reason: string): void {
    if (this.state === ConnectionState.CLOSED) return;
    this.noteCloseReason(reason);
    this.log.info({ reason }, 'closing connection');
    this.socket.destroy();
    this.onSocketClosed();
  }

  /** Close after queued output has been written. */
  endAfterFlush(reason: string): void {
    if (this.state === ConnectionState.CLOSED) return;
    this.noteCloseReason(reason);
    this.flushOutput();
    this.socket.end();
    // A peer that never reads must not keep us waiting forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  /** Graceful stop for shutdown: let running tasks finish, then close. */
  async shutdown(): Promise<void> {
    if (this.state === ConnectionState.CLOSED) return;
    if (this.state === ConnectionState.LOGIN) {
      // Nothing in flight before login completes: close at once.
      this.fail('target shutting down');
      await this.closedPromise;
      return;
    }
    this.socket.pause();
    if (this.session) await this.session.drain().catch(() => undefined);
    // The socket is paused, so the initiator's FIN would never be read: close once our output is
    // flushed instead of waiting for it (endAfterFlush would sit out its 5 s guard).
    this.noteCloseReason('target shutting down');
    this.flushOutput();
    this.socket.end(() => this.socket.destroy());
    setTimeout(() => this.socket.destroy(), 5000).unref();
    await this.closedPromise;
  }

  private onSocketClosed(): void {
    if (this.state === ConnectionState.CLOSED) return;
    this.transition(ConnectionState.CLOSED);
    // Lent buffers queued for this turn go back to their owners.
    this.output.discard();
    if (this.loginTimer) clearTimeout(this.loginTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.loginTimer = null;
    this.pingTimer = null;
    const session = this.session;
    const done = session ? session.close() : Promise.resolve();
    done
      .catch((err: unknown) => this.log.error({ err }, 'session cleanup failed'))
      .finally(() => {
        this.host.connectionClosed(this);
        this.resolveClosed();
      });
  }
}
