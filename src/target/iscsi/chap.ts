/**
 * Target side of the login security stage: AuthMethod selection and CHAP
 * (RFC 1994 as profiled by RFC 7143 §12.1.3).
 *
 * The exchange, initiator (I) and target (T):
 *
 *   I: AuthMethod=CHAP,None          T: AuthMethod=CHAP
 *   I: CHAP_A=<A1,A2,...>            T: CHAP_A=5 CHAP_I=<id> CHAP_C=<challenge>
 *   I: CHAP_N=<user> CHAP_R=<resp>   (mutual: also CHAP_I=<id'> CHAP_C=<challenge'>)
 *                                    T (mutual only): CHAP_N=<user'> CHAP_R=<resp'>
 *
 * where resp = MD5(id || secret || challenge). The initiator may send
 * AuthMethod together with CHAP_A; keys are consumed state by state, so one
 * request can advance several states.
 *
 * Policy: a target with CHAP credentials requires CHAP (offers only CHAP);
 * a target without accepts only None. Every failure is an authentication
 * failure (login status 0x0201), with an AuthFailure reason for the log.
 *
 * The states and, per state, the one handler that may leave it:
 *
 *   AWAIT_METHOD --AuthMethod=CHAP--> AWAIT_ALGORITHM --CHAP_A--> AWAIT_RESPONSE --CHAP_N/R ok--> AUTHENTICATED
 *        \--AuthMethod=None (policy allows)--> UNAUTHENTICATED
 *   any failure --> FAILED
 */
import { createHash, randomBytes as cryptoRandomBytes, timingSafeEqual } from 'node:crypto';
import { parseNumber } from './params';
import { TextPair } from './text';

/** CHAP_A value for MD5 (the only algorithm we implement). */
export const CHAP_ALGORITHM_MD5 = 5;
/** Our challenge length in bytes (RFC 7143 recommends at least 16). */
export const CHAP_CHALLENGE_BYTES = 16;
/** Largest challenge we accept from an initiator, in bytes. */
export const CHAP_MAX_CHALLENGE_BYTES = 1024;

export const AuthMethod = { CHAP: 'CHAP', NONE: 'None' } as const;
export type AuthMethod = (typeof AuthMethod)[keyof typeof AuthMethod];

/** Credentials of one target (or of discovery). */
export interface ChapCredentials {
  /** What the initiator must present as CHAP_N, and the secret it proves. */
  readonly user: string;
  readonly secret: string;
  /** Mutual CHAP: the name and secret the target answers with. */
  readonly mutualUser?: string;
  readonly mutualSecret?: string;
}

export const AuthState = {
  AWAIT_METHOD: 'await-method',
  AWAIT_ALGORITHM: 'await-algorithm',
  AWAIT_RESPONSE: 'await-response',
  AUTHENTICATED: 'authenticated',
  /** AuthMethod=None agreed (only when the policy asks for no authentication). */
  UNAUTHENTICATED: 'unauthenticated',
  FAILED: 'failed',
} as const;
export type AuthState = (typeof AuthState)[keyof typeof AuthState];

export const AuthFailure = {
  NO_ACCEPTABLE_METHOD: 'no-acceptable-method',
  UNSUPPORTED_ALGORITHM: 'unsupported-algorithm',
  OUT_OF_SEQUENCE: 'out-of-sequence',
  MISSING_KEY: 'missing-key',
  MALFORMED_VALUE: 'malformed-value',
  UNKNOWN_USER: 'unknown-user',
  WRONG_RESPONSE: 'wrong-response',
  MUTUAL_NOT_CONFIGURED: 'mutual-not-configured',
  REFLECTED_CHALLENGE: 'reflected-challenge',
  ALREADY_FAILED: 'already-failed',
} as const;
export type AuthFailure = (typeof AuthFailure)[keyof typeof AuthFailure];

export type AuthStep =
  | { readonly ok: true; readonly responses: TextPair[] }
  | { readonly ok: false; readonly failure: AuthFailure; readonly message: string };

/** May the login leave the security stage? */
export const TransitVerdict = { ALLOW: 'allow', CONTINUE: 'continue', DENY: 'deny' } as const;
export type TransitVerdict = (typeof TransitVerdict)[keyof typeof TransitVerdict];

/** Bad CHAP configuration (a target problem, not the initiator's). */
export class ChapConfigError extends Error {
  override readonly name = 'ChapConfigError';
}

export interface AuthenticatorOptions {
  /** Null: no authentication; AuthMethod=None is the only method accepted. */
  readonly credentials: ChapCredentials | null;
  /** Random source (tests inject a fixed one). */
  readonly randomBytes?: (size: number) => Buffer;
  readonly challengeBytes?: number;
}

/* ---------------- encodings and the CHAP function ---------------- */

/** The CHAP response: MD5(identifier || secret || challenge) (RFC 1994 §4.1). */
export function chapMd5Response(identifier: number, secret: string | Buffer, challenge: Buffer): Buffer {
  return createHash('md5')
    .update(Buffer.from([identifier & 0xff]))
    .update(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret)
    .update(challenge)
    .digest();
}

/** large-binary-value (§6.1): "0x" + hex (either case) or "0b" + base64. Null if malformed. */
export function decodeBinaryValue(text: string): Buffer | null {
  const prefix = text.slice(0, 2).toLowerCase();
  const body = text.slice(2);
  if (body.length === 0) return null;
  if (prefix === '0x') {
    if (!/^[0-9a-fA-F]+$/.test(body)) return null;
    return Buffer.from(body.length % 2 === 1 ? `0${body}` : body, 'hex');
  }
  if (prefix === '0b') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return null;
    const padded = body.includes('=');
    if ((padded && body.length % 4 !== 0) || (!padded && body.length % 4 === 1)) return null;
    return Buffer.from(body, 'base64');
  }
  return null;
}

/** Encode binary as "0x" + lowercase hex. */
export function encodeBinaryValue(bytes: Buffer): string {
  return `0x${bytes.toString('hex')}`;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  // Lengths are public (16 for MD5); contents are compared in constant time.
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Throws ChapConfigError if the credentials cannot be used. */
export function validateChapCredentials(c: ChapCredentials): void {
  if (c.user.length === 0 || c.secret.length === 0) throw new ChapConfigError('CHAP user and secret must not be empty');
  const mutual = [c.mutualUser, c.mutualSecret].filter((v) => v !== undefined && v.length > 0).length;
  if (mutual === 1) throw new ChapConfigError('mutual CHAP needs both mutualUser and mutualSecret');
  // RFC 7143 §12.1.3: a secret used to authenticate initiators must not authenticate targets.
  if (mutual === 2 && c.mutualSecret === c.secret) throw new ChapConfigError('mutual CHAP secret must differ from the initiator secret');
}

/* ---------------- the state machine ---------------- */

type Outcome = { readonly ok: true; readonly next: AuthState; readonly responses: TextPair[] } | Extract<AuthStep, { ok: false }>;

/** Mutable view a state handler works on. */
interface Machine {
  readonly credentials: ChapCredentials | null;
  readonly random: (size: number) => Buffer;
  readonly challengeBytes: number;
  proposedMethod: boolean;
  identifier: number;
  challenge: Buffer;
  authenticatedUser: string | null;
}

const fail = (failure: AuthFailure, message: string): Outcome => ({ ok: false, failure, message });
const stay = (state: AuthState): Outcome => ({ ok: true, next: state, responses: [] });

/** Take a key out of the request (handlers consume what they use). */
function take(keys: Map<string, string>, key: string): string | undefined {
  const v = keys.get(key);
  keys.delete(key);
  return v;
}

type Handler = (m: Machine, keys: Map<string, string>) => Outcome;

const HANDLERS: Record<AuthState, Handler> = {
  [AuthState.AWAIT_METHOD](m, keys) {
    const offered = take(keys, 'AuthMethod');
    if (offered === undefined) {
      // Having proposed AuthMethod ourselves, the initiator had to answer it.
      return m.proposedMethod ? fail(AuthFailure.MISSING_KEY, 'initiator did not answer our AuthMethod proposal') : stay(AuthState.AWAIT_METHOD);
    }
    const accepted: AuthMethod = m.credentials ? AuthMethod.CHAP : AuthMethod.NONE;
    const chosen = offered.split(',').includes(accepted) ? accepted : null;
    // An answer to our proposal is not answered again.
    const respond = (value: string): TextPair[] => (m.proposedMethod ? [] : [['AuthMethod', value]]);
    if (chosen === AuthMethod.CHAP) return { ok: true, next: AuthState.AWAIT_ALGORITHM, responses: respond(AuthMethod.CHAP) };
    if (chosen === AuthMethod.NONE) return { ok: true, next: AuthState.UNAUTHENTICATED, responses: respond(AuthMethod.NONE) };
    if (m.credentials) return fail(AuthFailure.NO_ACCEPTABLE_METHOD, `target requires CHAP; initiator offered AuthMethod=${offered}`);
    // We need no authentication, the initiator insists on some: say so and let it decide.
    return { ok: true, next: AuthState.UNAUTHENTICATED, responses: respond('Reject') };
  },

  [AuthState.AWAIT_ALGORITHM](m, keys) {
    const algorithms = take(keys, 'CHAP_A');
    if (algorithms === undefined) return stay(AuthState.AWAIT_ALGORITHM);
    if (!algorithms.split(',').some((a) => parseNumber(a) === CHAP_ALGORITHM_MD5)) {
      return fail(AuthFailure.UNSUPPORTED_ALGORITHM, `CHAP_A=${algorithms}: only ${CHAP_ALGORITHM_MD5} (MD5) is supported`);
    }
    m.identifier = m.random(1)[0]!;
    m.challenge = m.random(m.challengeBytes);
    return {
      ok: true,
      next: AuthState.AWAIT_RESPONSE,
      responses: [
        ['CHAP_A', String(CHAP_ALGORITHM_MD5)],
        ['CHAP_I', String(m.identifier)],
        ['CHAP_C', encodeBinaryValue(m.challenge)],
      ],
    };
  },

  [AuthState.AWAIT_RESPONSE](m, keys) {
    if (!keys.has('CHAP_N') && !keys.has('CHAP_R')) return stay(AuthState.AWAIT_RESPONSE);
    const name = take(keys, 'CHAP_N');
    const responseText = take(keys, 'CHAP_R');
    const mutualId = take(keys, 'CHAP_I');
    const mutualChallengeText = take(keys, 'CHAP_C');
    if (name === undefined || responseText === undefined) return fail(AuthFailure.MISSING_KEY, 'CHAP_N and CHAP_R must come together');
    if ((mutualId === undefined) !== (mutualChallengeText === undefined)) return fail(AuthFailure.MISSING_KEY, 'mutual CHAP needs both CHAP_I and CHAP_C');
    const creds = m.credentials!;

    let mutual: { id: number; challenge: Buffer } | null = null;
    if (mutualId !== undefined && mutualChallengeText !== undefined) {
      const id = parseNumber(mutualId);
      const challenge = decodeBinaryValue(mutualChallengeText);
      if (id === null || id > 255) return fail(AuthFailure.MALFORMED_VALUE, `CHAP_I=${mutualId} is not 0..255`);
      if (challenge === null || challenge.length > CHAP_MAX_CHALLENGE_BYTES) return fail(AuthFailure.MALFORMED_VALUE, 'CHAP_C is not a binary value of 1..1024 bytes');
      // §12.1.3: the initiator must not hand our own challenge back to us.
      if (sameBytes(challenge, m.challenge)) return fail(AuthFailure.REFLECTED_CHALLENGE, 'initiator reused the target challenge');
      mutual = { id, challenge };
    }

    const response = decodeBinaryValue(responseText);
    if (response === null) return fail(AuthFailure.MALFORMED_VALUE, 'CHAP_R is not a binary value');
    const expected = chapMd5Response(m.identifier, creds.secret, m.challenge);
    const nameOk = name === creds.user;
    const responseOk = sameBytes(response, expected);
    if (!nameOk) return fail(AuthFailure.UNKNOWN_USER, `CHAP_N=${name} is not the configured user`);
    if (!responseOk) return fail(AuthFailure.WRONG_RESPONSE, `CHAP_R from ${name} does not match`);
    m.authenticatedUser = name;

    if (mutual === null) return { ok: true, next: AuthState.AUTHENTICATED, responses: [] };
    if (!creds.mutualUser || !creds.mutualSecret) return fail(AuthFailure.MUTUAL_NOT_CONFIGURED, 'initiator asked for mutual CHAP; no target credentials are configured');
    return {
      ok: true,
      next: AuthState.AUTHENTICATED,
      responses: [
        ['CHAP_N', creds.mutualUser],
        ['CHAP_R', encodeBinaryValue(chapMd5Response(mutual.id, creds.mutualSecret, mutual.challenge))],
      ],
    };
  },

  // Terminal states consume nothing: any further security key is out of sequence.
  [AuthState.AUTHENTICATED]: () => stay(AuthState.AUTHENTICATED),
  [AuthState.UNAUTHENTICATED]: () => stay(AuthState.UNAUTHENTICATED),
  [AuthState.FAILED]: () => fail(AuthFailure.ALREADY_FAILED, 'authentication already failed'),
};

export class TargetAuthenticator {
  private current: AuthState = AuthState.AWAIT_METHOD;
  private readonly m: Machine;

  constructor(options: AuthenticatorOptions) {
    if (options.credentials) validateChapCredentials(options.credentials);
    const challengeBytes = options.challengeBytes ?? CHAP_CHALLENGE_BYTES;
    if (!Number.isInteger(challengeBytes) || challengeBytes < 16 || challengeBytes > CHAP_MAX_CHALLENGE_BYTES) {
      throw new ChapConfigError(`challenge length ${challengeBytes} is outside 16..${CHAP_MAX_CHALLENGE_BYTES}`);
    }
    this.m = {
      credentials: options.credentials,
      random: options.randomBytes ?? cryptoRandomBytes,
      challengeBytes,
      proposedMethod: false,
      identifier: 0,
      challenge: Buffer.alloc(0),
      authenticatedUser: null,
    };
  }

  get state(): AuthState {
    return this.current;
  }

  /** True when the policy requires CHAP. */
  get required(): boolean {
    return this.m.credentials !== null;
  }

  /** CHAP_N the initiator authenticated as, once AUTHENTICATED. */
  get authenticatedUser(): string | null {
    return this.m.authenticatedUser;
  }

  /** Feed the security keys of one request, in order. */
  step(pairs: ReadonlyArray<TextPair>): AuthStep {
    const keys = new Map(pairs);
    const responses: TextPair[] = [];
    // Run at least once so that an unanswered proposal is noticed.
    do {
      const before = keys.size;
      const out = HANDLERS[this.current](this.m, keys);
      if (!out.ok) {
        this.current = AuthState.FAILED;
        return out;
      }
      responses.push(...out.responses);
      const progressed = out.next !== this.current || keys.size < before;
      this.current = out.next;
      if (!progressed && keys.size > 0) {
        this.current = AuthState.FAILED;
        return { ok: false, failure: AuthFailure.OUT_OF_SEQUENCE, message: `unexpected ${[...keys.keys()].join(', ')} in state ${out.next}` };
      }
    } while (keys.size > 0);
    return { ok: true, responses };
  }

  /**
   * When the initiator wants to leave the security stage without having
   * offered AuthMethod and we require CHAP, propose it (once).
   */
  propose(): TextPair[] {
    if (this.current !== AuthState.AWAIT_METHOD || !this.required || this.m.proposedMethod) return [];
    this.m.proposedMethod = true;
    return [['AuthMethod', AuthMethod.CHAP]];
  }

  /** Whether the security stage may end now. */
  transitVerdict(): TransitVerdict {
    switch (this.current) {
      case AuthState.AUTHENTICATED:
        return TransitVerdict.ALLOW;
      case AuthState.AWAIT_ALGORITHM:
      case AuthState.AWAIT_RESPONSE:
        return TransitVerdict.CONTINUE;
      case AuthState.AWAIT_METHOD:
        if (!this.required) return TransitVerdict.ALLOW;
        return this.m.proposedMethod ? TransitVerdict.CONTINUE : TransitVerdict.DENY;
      case AuthState.UNAUTHENTICATED:
        return this.required ? TransitVerdict.DENY : TransitVerdict.ALLOW;
      case AuthState.FAILED:
        return TransitVerdict.DENY;
    }
  }
}
