/**
 * The login phase of one connection (RFC 7143 §6.3, §11.12-11.13), as a
 * pure machine: one Login Request in, one Login Response out. No I/O, no
 * timers; the connection layer parses PDUs, calls step() and sends what it
 * returns (filling ITT, StatSN, ExpCmdSN, MaxCmdSN, ISID and, on the final
 * response, the TSIH it assigns).
 *
 * Phases, after LIO:
 *   1. header checks: version, fields that must not change, T/C and CSG/NSG
 *      legality (every violation is "initiator error", 0x0200);
 *   2. text assembly: a request with C=1 is acknowledged with an empty
 *      response until the whole text has arrived;
 *   3. the first complete text names the initiator, the session type and
 *      (Normal) the target: missing names 0x0207, unknown target 0x0203,
 *      ACL denial 0x0202, admission hook refusal 0x0302;
 *   4. keys: security keys go to the authenticator (chap.ts), the rest to the
 *      Negotiator (params.ts);
 *   5. stage transition: the target sets T only when the initiator did and
 *      nothing is left to settle; it stays in the stage (T=0) while CHAP is
 *      under way or its own offers await answers. Leaving security without
 *      required authentication fails with 0x0201.
 * A response too long for one PDU goes out in pieces with C=1; the initiator
 * collects them with empty requests, and only the last piece may carry T.
 *
 * Any failure ends the machine: the response carries the status and the
 * connection layer closes the connection after sending it.
 */
import { ChapConfigError, ChapCredentials, TargetAuthenticator, TransitVerdict } from './chap';
import { ConnectionParams, NegotiationError, NegotiationStage, Negotiator, SessionParams, SessionType, TargetLimits } from './params';
import { TextAccumulator, TextError, TextPair, decodeText, encodeText, splitText } from './text';

export const LoginStage = { SECURITY: 0, OPERATIONAL: 1, FULL_FEATURE: 3 } as const;
export type LoginStage = (typeof LoginStage)[keyof typeof LoginStage];

/** The only protocol version there is (RFC 7143 §11.12.4). */
export const ISCSI_VERSION = 0x00;
/** Largest login data segment we send (the RFC 7143 default MaxRecvDataSegmentLength). */
export const LOGIN_MAX_SEGMENT = 8192;

export interface LoginRequestPdu {
  transit: boolean;
  cont: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionMin: number;
  isid: Buffer;
  tsih: number;
  cid: number;
  data: Buffer;
}

export interface LoginResponsePdu {
  transit: boolean;
  cont: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionActive: number;
  statusClass: number;
  statusDetail: number;
  data: Buffer;
}

export interface TargetLoginPolicy {
  name: string;
  alias?: string;
  initiatorAllowed(initiatorName: string): boolean;
  /** Present: CHAP is required for this target. */
  chap?: ChapCredentials;
  /**
   * False when the target is served, but not at the portal this connection
   * reached (a resource group's target at a node's own address): the login
   * is refused as "not found at this address". Absent: served everywhere.
   */
  atThisPortal?: boolean;
}

/** What the admission hook is told about a login about to proceed. */
export interface LoginAdmission {
  readonly initiatorName: string;
  readonly sessionType: SessionType;
  readonly targetName?: string;
  readonly isid: Buffer;
  readonly tsih: number;
  readonly cid: number;
}

export interface LoginContext {
  portalGroupTag: number;
  findTarget(name: string): TargetLoginPolicy | null;
  /** Present: CHAP is required for discovery sessions. */
  discoveryChap?: ChapCredentials | null;
  limits?: Partial<TargetLimits>;
  /** Called once the initiator and target are known; false answers "out of resources" (0x0302). */
  admit?(login: LoginAdmission): boolean;
  /** Random source for CHAP challenges (tests inject a fixed one). */
  randomBytes?: (size: number) => Buffer;
  /** Data segment size for our responses; default 8192. */
  maxResponseSegment?: number;
  /** Cap on one request's text across C-bit PDUs; default 64 KiB. */
  maxRequestText?: number;
}

export interface LoginResult {
  readonly sessionType: SessionType;
  readonly initiatorName: string;
  readonly initiatorAlias?: string;
  readonly targetName?: string;
  /** CHAP_N the initiator authenticated with, when CHAP was used. */
  readonly chapUser?: string;
  /** The CHAP credentials this login was checked against (null: none were required). */
  readonly credentials: ChapCredentials | null;
  readonly session: SessionParams;
  readonly connection: ConnectionParams;
}

/** Why a login failed; LOGIN_FAILURE_STATUS gives the status class/detail of each. */
export const LoginFailure = {
  UNSUPPORTED_VERSION: 'unsupported-version',
  HEADER_CHANGED: 'header-changed',
  TRANSIT_WITH_CONTINUE: 'transit-with-continue',
  INVALID_STAGE: 'invalid-stage',
  INVALID_TRANSITION: 'invalid-transition',
  MALFORMED_TEXT: 'malformed-text',
  NEGOTIATION_ERROR: 'negotiation-error',
  LATE_DECLARATION: 'late-declaration',
  UNEXPECTED_DATA: 'unexpected-data',
  MISSING_INITIATOR_NAME: 'missing-initiator-name',
  MISSING_TARGET_NAME: 'missing-target-name',
  UNSUPPORTED_SESSION_TYPE: 'unsupported-session-type',
  TARGET_NOT_FOUND: 'target-not-found',
  TARGET_NOT_AT_PORTAL: 'target-not-at-portal',
  INITIATOR_NOT_AUTHORIZED: 'initiator-not-authorized',
  AUTHENTICATION_FAILED: 'authentication-failed',
  AUTHENTICATION_REQUIRED: 'authentication-required',
  OUT_OF_RESOURCES: 'out-of-resources',
  TARGET_MISCONFIGURED: 'target-misconfigured',
} as const;
export type LoginFailure = (typeof LoginFailure)[keyof typeof LoginFailure];

export interface LoginStatusCode {
  readonly statusClass: number;
  readonly statusDetail: number;
}

const INITIATOR_ERROR: LoginStatusCode = { statusClass: 0x02, statusDetail: 0x00 };
const AUTHENTICATION_FAILURE: LoginStatusCode = { statusClass: 0x02, statusDetail: 0x01 };

/** RFC 7143 §11.13.5 status of each failure reason. */
export const LOGIN_FAILURE_STATUS: Readonly<Record<LoginFailure, LoginStatusCode>> = {
  [LoginFailure.UNSUPPORTED_VERSION]: { statusClass: 0x02, statusDetail: 0x05 },
  [LoginFailure.HEADER_CHANGED]: INITIATOR_ERROR,
  [LoginFailure.TRANSIT_WITH_CONTINUE]: INITIATOR_ERROR,
  [LoginFailure.INVALID_STAGE]: INITIATOR_ERROR,
  [LoginFailure.INVALID_TRANSITION]: INITIATOR_ERROR,
  [LoginFailure.MALFORMED_TEXT]: INITIATOR_ERROR,
  [LoginFailure.NEGOTIATION_ERROR]: INITIATOR_ERROR,
  [LoginFailure.LATE_DECLARATION]: INITIATOR_ERROR,
  [LoginFailure.UNEXPECTED_DATA]: INITIATOR_ERROR,
  [LoginFailure.MISSING_INITIATOR_NAME]: { statusClass: 0x02, statusDetail: 0x07 },
  [LoginFailure.MISSING_TARGET_NAME]: { statusClass: 0x02, statusDetail: 0x07 },
  [LoginFailure.UNSUPPORTED_SESSION_TYPE]: { statusClass: 0x02, statusDetail: 0x09 },
  [LoginFailure.TARGET_NOT_FOUND]: { statusClass: 0x02, statusDetail: 0x03 },
  // RFC 7143 §11.13.5: 0203 "the requested ITN does not exist at this address".
  [LoginFailure.TARGET_NOT_AT_PORTAL]: { statusClass: 0x02, statusDetail: 0x03 },
  [LoginFailure.INITIATOR_NOT_AUTHORIZED]: { statusClass: 0x02, statusDetail: 0x02 },
  [LoginFailure.AUTHENTICATION_FAILED]: AUTHENTICATION_FAILURE,
  [LoginFailure.AUTHENTICATION_REQUIRED]: AUTHENTICATION_FAILURE,
  [LoginFailure.OUT_OF_RESOURCES]: { statusClass: 0x03, statusDetail: 0x02 },
  [LoginFailure.TARGET_MISCONFIGURED]: { statusClass: 0x03, statusDetail: 0x00 },
};

/** Keys that may only appear in the first (complete) request of a login. */
const FIRST_REQUEST_ONLY = ['InitiatorName', 'TargetName', 'SessionType'] as const;

const STAGE_NAME: Readonly<Record<number, NegotiationStage>> = {
  [LoginStage.SECURITY]: NegotiationStage.SECURITY,
  [LoginStage.OPERATIONAL]: NegotiationStage.OPERATIONAL,
};

/** Internal: ends the current step with a failure. */
class LoginAbort extends Error {
  constructor(
    readonly reason: LoginFailure,
    message: string,
  ) {
    super(message);
  }
}

function abort(reason: LoginFailure, message: string): never {
  throw new LoginAbort(reason, message);
}

/** Everything settled by the first complete request. */
interface Established {
  readonly sessionType: SessionType;
  readonly initiatorName: string;
  readonly targetName?: string;
  readonly negotiator: Negotiator;
  readonly auth: TargetAuthenticator;
  readonly credentials: ChapCredentials | null;
}

/** The fields every request of a login must repeat unchanged. */
interface FixedHeader {
  readonly versionMax: number;
  readonly versionMin: number;
  readonly isid: Buffer;
  readonly tsih: number;
  readonly cid: number;
}

/** A response being sent in pieces (C=1). */
interface Outgoing {
  readonly pieces: Buffer[];
  /** Stage to enter once the last piece is sent; null to stay. */
  readonly nextStage: LoginStage | null;
}

export class LoginMachine {
  private current: 'in-progress' | 'complete' | 'failed' = 'in-progress';
  private outcome: LoginResult | null = null;
  private failed: { reason: LoginFailure; message: string } | null = null;
  private stage: LoginStage | null = null;
  private header: FixedHeader | null = null;
  private established: Established | null = null;
  private outgoing: Outgoing | null = null;
  private readonly incoming: TextAccumulator;
  private readonly maxSegment: number;

  constructor(private readonly ctx: LoginContext) {
    this.incoming = new TextAccumulator(ctx.maxRequestText);
    this.maxSegment = ctx.maxResponseSegment ?? LOGIN_MAX_SEGMENT;
    if (!Number.isInteger(ctx.portalGroupTag) || ctx.portalGroupTag < 0 || ctx.portalGroupTag > 0xffff) {
      throw new RangeError(`portal group tag ${ctx.portalGroupTag} is not 0..65535`);
    }
  }

  get state(): 'in-progress' | 'complete' | 'failed' {
    return this.current;
  }

  /** Set when state is 'complete'. */
  get result(): LoginResult | null {
    return this.outcome;
  }

  /** Why the login failed, for the log; set when state is 'failed'. */
  get failure(): { readonly reason: LoginFailure; readonly message: string } | null {
    return this.failed;
  }

  /** The stage the login is in (null before the first request). */
  get currentStage(): LoginStage | null {
    return this.stage;
  }

  /** Process one Login Request. Throws only if called after the login ended. */
  step(req: LoginRequestPdu): LoginResponsePdu {
    if (this.current !== 'in-progress') throw new Error(`login already ${this.current}`);
    try {
      return this.process(req);
    } catch (err) {
      if (err instanceof LoginAbort) return this.fail(req, err.reason, err.message);
      if (err instanceof TextError) return this.fail(req, LoginFailure.MALFORMED_TEXT, err.message);
      if (err instanceof NegotiationError) return this.fail(req, LoginFailure.NEGOTIATION_ERROR, err.message);
      throw err;
    }
  }

  /* ---------------- phase 1: header ---------------- */

  private checkHeader(req: LoginRequestPdu): void {
    if (this.header === null) {
      if (req.versionMin > ISCSI_VERSION || req.versionMax < req.versionMin) {
        abort(LoginFailure.UNSUPPORTED_VERSION, `initiator supports versions ${req.versionMin}..${req.versionMax}; we support ${ISCSI_VERSION}`);
      }
      this.header = { versionMax: req.versionMax, versionMin: req.versionMin, isid: Buffer.from(req.isid), tsih: req.tsih, cid: req.cid };
    } else {
      const h = this.header;
      if (req.versionMax !== h.versionMax || req.versionMin !== h.versionMin) abort(LoginFailure.HEADER_CHANGED, 'version fields changed during login');
      if (!req.isid.equals(h.isid) || req.tsih !== h.tsih || req.cid !== h.cid) abort(LoginFailure.HEADER_CHANGED, 'ISID, TSIH or CID changed during login');
    }
    if (req.transit && req.cont) abort(LoginFailure.TRANSIT_WITH_CONTINUE, 'T and C bits are both set');
    if (this.stage === null) {
      if (req.csg !== LoginStage.SECURITY && req.csg !== LoginStage.OPERATIONAL) abort(LoginFailure.INVALID_STAGE, `login cannot start in stage ${req.csg}`);
      this.stage = req.csg as LoginStage;
    } else if (req.csg !== this.stage) {
      abort(LoginFailure.INVALID_STAGE, `request is for stage ${req.csg}; login is in stage ${this.stage}`);
    }
    if (req.transit && (req.nsg <= req.csg || (req.nsg !== LoginStage.OPERATIONAL && req.nsg !== LoginStage.FULL_FEATURE))) {
      abort(LoginFailure.INVALID_TRANSITION, `cannot move from stage ${req.csg} to ${req.nsg}`);
    }
  }

  private process(req: LoginRequestPdu): LoginResponsePdu {
    this.checkHeader(req);
    if (this.outgoing) return this.sendNextPiece(req);

    /* phase 2: text assembly */
    const text = this.incoming.push(req.data, req.cont);
    if (text === null) return this.respond(req, Buffer.alloc(0), { cont: false, nextStage: null });
    const pairs = decodeText(text);

    /* phase 3: first request */
    const out: TextPair[] = [];
    if (this.established === null) out.push(...this.establish(req, pairs));
    else {
      const late = pairs.find(([key]) => (FIRST_REQUEST_ONLY as readonly string[]).includes(key));
      if (late) abort(LoginFailure.LATE_DECLARATION, `${late[0]} is only allowed in the first login request`);
    }
    const { negotiator, auth } = this.established!;

    /* phase 4: keys */
    const stage = STAGE_NAME[req.csg]!;
    const { responses, security } = negotiator.handle(pairs, stage);
    if (stage === NegotiationStage.SECURITY) {
      const step = auth.step(security);
      if (!step.ok) abort(LoginFailure.AUTHENTICATION_FAILED, `${step.failure}: ${step.message}`);
      out.push(...step.responses);
    }
    out.push(...responses);
    if (stage === NegotiationStage.OPERATIONAL) out.push(...negotiator.declarations(stage));

    /* phase 5: transition */
    const nextStage = req.transit ? this.nextStage(req, out) : null;
    return this.emit(req, encodeText(out), nextStage);
  }

  /* ---------------- phase 3: who is logging in to what ---------------- */

  private establish(req: LoginRequestPdu, pairs: ReadonlyArray<TextPair>): TextPair[] {
    const get = (key: string): string | undefined => pairs.find(([k]) => k === key)?.[1];
    const initiatorName = get('InitiatorName');
    if (!initiatorName) abort(LoginFailure.MISSING_INITIATOR_NAME, 'first login request has no InitiatorName');
    const type = get('SessionType') ?? SessionType.NORMAL;
    if (type !== SessionType.NORMAL && type !== SessionType.DISCOVERY) abort(LoginFailure.UNSUPPORTED_SESSION_TYPE, `SessionType=${type}`);

    let policy: TargetLoginPolicy | null = null;
    let targetName: string | undefined;
    if (type === SessionType.NORMAL) {
      targetName = get('TargetName');
      if (!targetName) abort(LoginFailure.MISSING_TARGET_NAME, 'normal session login has no TargetName');
      policy = this.ctx.findTarget(targetName);
      if (!policy) abort(LoginFailure.TARGET_NOT_FOUND, `no target ${targetName}`);
      if (policy.atThisPortal === false) abort(LoginFailure.TARGET_NOT_AT_PORTAL, `${targetName} is not served at this portal`);
      if (!policy.initiatorAllowed(initiatorName)) abort(LoginFailure.INITIATOR_NOT_AUTHORIZED, `${initiatorName} may not log in to ${targetName}`);
    }
    const credentials = policy ? (policy.chap ?? null) : (this.ctx.discoveryChap ?? null);
    const h = this.header!;

    let auth: TargetAuthenticator;
    let negotiator: Negotiator;
    try {
      auth = new TargetAuthenticator({ credentials, ...(this.ctx.randomBytes ? { randomBytes: this.ctx.randomBytes } : {}) });
      negotiator = new Negotiator({ limits: this.ctx.limits ?? {}, sessionType: type, leading: h.tsih === 0 });
    } catch (err) {
      if (err instanceof ChapConfigError || err instanceof RangeError) abort(LoginFailure.TARGET_MISCONFIGURED, err.message);
      throw err;
    }
    if (req.csg === LoginStage.OPERATIONAL && auth.required) {
      abort(LoginFailure.AUTHENTICATION_REQUIRED, 'initiator skipped the security stage; CHAP is required');
    }
    // Last, so that the hook only sees logins that could otherwise proceed.
    const admission: LoginAdmission = { initiatorName, sessionType: type, isid: h.isid, tsih: h.tsih, cid: h.cid, ...(targetName !== undefined ? { targetName } : {}) };
    if (this.ctx.admit && !this.ctx.admit(admission)) abort(LoginFailure.OUT_OF_RESOURCES, 'admission hook refused the login');
    this.established = { sessionType: type, initiatorName, negotiator, auth, credentials, ...(targetName !== undefined ? { targetName } : {}) };

    // §13.9: TargetPortalGroupTag answers the first request that names a target; the alias goes with it.
    const declarations: TextPair[] = [];
    if (policy) {
      declarations.push(['TargetPortalGroupTag', String(this.ctx.portalGroupTag)]);
      if (policy.alias) declarations.push(['TargetAlias', policy.alias]);
    }
    return declarations;
  }

  /* ---------------- phase 5: may we leave the stage? ---------------- */

  /** The stage to move to (the initiator asked to), or null to stay; may add keys to out. */
  private nextStage(req: LoginRequestPdu, out: TextPair[]): LoginStage | null {
    const { negotiator, auth } = this.established!;
    if (req.csg === LoginStage.SECURITY) {
      out.push(...auth.propose());
      const verdict = auth.transitVerdict();
      if (verdict === TransitVerdict.DENY) {
        abort(LoginFailure.AUTHENTICATION_REQUIRED, `cannot leave the security stage unauthenticated (${auth.state})`);
      }
      if (verdict === TransitVerdict.CONTINUE) return null;
      // Keys to offer or a receive limit to declare need the operational stage.
      if (req.nsg === LoginStage.FULL_FEATURE && negotiator.needsOperationalStage()) return LoginStage.OPERATIONAL;
      return req.nsg as LoginStage;
    }
    if (negotiator.awaitingAnswers) return null;
    const offers = negotiator.makeOffers();
    if (offers.length > 0) {
      out.push(...offers);
      return null;
    }
    return LoginStage.FULL_FEATURE;
  }

  /* ---------------- responses ---------------- */

  private emit(req: LoginRequestPdu, text: Buffer, nextStage: LoginStage | null): LoginResponsePdu {
    const pieces = splitText(text, this.maxSegment);
    if (pieces.length === 1) return this.respond(req, pieces[0]!, { cont: false, nextStage });
    this.outgoing = { pieces: pieces.slice(1), nextStage };
    return this.respond(req, pieces[0]!, { cont: true, nextStage: null });
  }

  private sendNextPiece(req: LoginRequestPdu): LoginResponsePdu {
    if (req.data.length > 0 || req.cont) abort(LoginFailure.UNEXPECTED_DATA, 'request carries data while our response is still being sent');
    const outgoing = this.outgoing!;
    const piece = outgoing.pieces.shift()!;
    if (outgoing.pieces.length > 0) return this.respond(req, piece, { cont: true, nextStage: null });
    this.outgoing = null;
    return this.respond(req, piece, { cont: false, nextStage: outgoing.nextStage });
  }

  /**
   * Build a success response. We transit only if the initiator asked to in
   * this very request (§11.13.1) and to no further than it asked.
   */
  private respond(req: LoginRequestPdu, data: Buffer, opts: { cont: boolean; nextStage: LoginStage | null }): LoginResponsePdu {
    const next = opts.nextStage;
    const transitTo = next !== null && req.transit && req.nsg >= next ? next : null;
    if (transitTo !== null) this.enter(transitTo);
    return {
      transit: transitTo !== null,
      cont: opts.cont,
      csg: req.csg,
      nsg: transitTo ?? 0,
      versionMax: ISCSI_VERSION,
      versionActive: ISCSI_VERSION,
      statusClass: 0,
      statusDetail: 0,
      data,
    };
  }

  private enter(stage: LoginStage): void {
    this.stage = stage;
    if (stage !== LoginStage.FULL_FEATURE) return;
    const e = this.established!;
    const { session, connection } = e.negotiator.finish();
    const alias = e.negotiator.settled('InitiatorAlias');
    const chapUser = e.auth.authenticatedUser;
    this.outcome = {
      sessionType: e.sessionType,
      initiatorName: e.initiatorName,
      ...(alias !== undefined ? { initiatorAlias: alias } : {}),
      ...(e.targetName !== undefined ? { targetName: e.targetName } : {}),
      ...(chapUser !== null ? { chapUser } : {}),
      credentials: e.credentials,
      session,
      connection,
    };
    this.current = 'complete';
  }

  private fail(req: LoginRequestPdu, reason: LoginFailure, message: string): LoginResponsePdu {
    this.current = 'failed';
    this.failed = { reason, message };
    this.outgoing = null;
    this.incoming.reset();
    const status = LOGIN_FAILURE_STATUS[reason];
    return {
      transit: false,
      cont: false,
      csg: req.csg & 0x03,
      nsg: 0,
      versionMax: ISCSI_VERSION,
      versionActive: ISCSI_VERSION,
      statusClass: status.statusClass,
      statusDetail: status.statusDetail,
      data: Buffer.alloc(0),
    };
  }
}
