/**
 * Login/text keys of RFC 7143 (§12 security keys, §13 operational keys) as
 * data, and the Negotiator that applies them from the target's side.
 *
 * Every key is one row of KEYS: when it may be sent, by whom, what values it
 * takes and how an offer and the target's own value merge into the result.
 * The Negotiator holds no per-key code: it reads the row.
 *
 * What the Negotiator does with an initiator's key=value:
 *   - negotiated key (boolean/numeric/list): answer with the merged result,
 *     or "Reject" when the offered value is malformed or out of range;
 *   - declarative key (InitiatorName, MaxRecvDataSegmentLength, ...):
 *     validate and record it, no answer;
 *   - key not relevant to the session type (operational keys of a Discovery
 *     session) or FirstBurstLength when InitialR2T=Yes and ImmediateData=No:
 *     "Irrelevant";
 *   - unknown key, X-/X# extension keys: "NotUnderstood";
 *   - obsolete marker keys (§13.25): IFMarker/OFMarker "No",
 *     IFMarkInt/OFMarkInt "Reject";
 *   - security keys (AuthMethod, CHAP_*): handed back to the caller (chap.ts).
 * It throws NegotiationError, a protocol error the login maps to status
 * 0x0200, for: a key sent twice in one login (§6.2), a key sent in the
 * wrong stage, a target-only key sent by the initiator, a leading-only key
 * in a non-leading login, an invalid declaration, and a bad answer to one of
 * the target's own offers.
 *
 * The target offers keys itself only where the RFC default is outside its
 * limits (e.g. MaxBurstLength configured below 262144, or digests that must
 * be CRC32C); it declares its MaxRecvDataSegmentLength once in the
 * operational stage.
 */
import { TextPair } from './text';

export const SessionType = { NORMAL: 'Normal', DISCOVERY: 'Discovery' } as const;
export type SessionType = (typeof SessionType)[keyof typeof SessionType];

export const Digest = { NONE: 'None', CRC32C: 'CRC32C' } as const;
export type Digest = (typeof Digest)[keyof typeof Digest];

/** Login stage a negotiation step runs in. */
export const NegotiationStage = { SECURITY: 'security', OPERATIONAL: 'operational' } as const;
export type NegotiationStage = (typeof NegotiationStage)[keyof typeof NegotiationStage];

/** Answers a responder may give instead of a value (RFC 7143 §6.2). */
export const KeyAnswer = { REJECT: 'Reject', IRRELEVANT: 'Irrelevant', NOT_UNDERSTOOD: 'NotUnderstood' } as const;

/**
 * When a key may be sent: only in the security stage, only in the
 * operational stage, in any login stage ("Any-Stage"), or only in full
 * feature phase text requests.
 */
export type KeyPhase = 'security' | 'operational' | 'any' | 'full-feature';
export type KeyScope = 'session' | 'connection';
export type KeyKind = 'boolean' | 'numeric' | 'list' | 'string' | 'binary';
export type MergeRule = 'and' | 'or' | 'min' | 'max' | 'list-first-match' | 'declarative' | 'none';
export type KeySender = 'initiator' | 'target' | 'both';

export interface KeyDefinition {
  readonly key: string;
  readonly phase: KeyPhase;
  readonly scope: KeyScope;
  readonly kind: KeyKind;
  readonly merge: MergeRule;
  /** RFC default, as sent on the wire; null when the key has none. */
  readonly default: string | null;
  readonly range?: { readonly min: number; readonly max: number };
  /** Values the RFC defines (lists and enumerated strings). */
  readonly values?: readonly string[];
  readonly sender: KeySender;
  /** LO: only in the leading login of a session. */
  readonly leadingOnly: boolean;
  /** Session types the key is relevant for; answered "Irrelevant" otherwise. */
  readonly sessionTypes: readonly SessionType[];
  /** Longest value (each item, for lists) in bytes. */
  readonly maxLength: number;
  /** Obsoleted by RFC 7143 §13.25. */
  readonly obsolete?: boolean;
}

const BOTH: readonly SessionType[] = [SessionType.NORMAL, SessionType.DISCOVERY];
const NORMAL_ONLY: readonly SessionType[] = [SessionType.NORMAL];
const SIMPLE = 255; // simple-value, §6.1
const NAME = 223; // iSCSI-name-value, §6.1
const LARGE_BINARY = 8192;
const SEGMENT_RANGE = { min: 512, max: 2 ** 24 - 1 } as const;

/** Every key of RFC 7143 §12-13 (plus X#NodeArchitecture, RFC 4850, folded into 7143). */
export const KEYS: readonly KeyDefinition[] = [
  // §13.1
  { key: 'HeaderDigest', phase: 'operational', scope: 'connection', kind: 'list', merge: 'list-first-match', default: 'None', values: ['CRC32C', 'None'], sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'DataDigest', phase: 'operational', scope: 'connection', kind: 'list', merge: 'list-first-match', default: 'None', values: ['CRC32C', 'None'], sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  // §13.2 - §13.9
  { key: 'MaxConnections', phase: 'operational', scope: 'session', kind: 'numeric', merge: 'min', default: '1', range: { min: 1, max: 65535 }, sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'SendTargets', phase: 'full-feature', scope: 'session', kind: 'string', merge: 'none', default: null, sender: 'initiator', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'TargetName', phase: 'any', scope: 'session', kind: 'string', merge: 'declarative', default: null, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: NAME },
  { key: 'InitiatorName', phase: 'any', scope: 'session', kind: 'string', merge: 'declarative', default: null, sender: 'initiator', leadingOnly: false, sessionTypes: BOTH, maxLength: NAME },
  { key: 'TargetAlias', phase: 'any', scope: 'session', kind: 'string', merge: 'declarative', default: null, sender: 'target', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'InitiatorAlias', phase: 'any', scope: 'session', kind: 'string', merge: 'declarative', default: null, sender: 'initiator', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'TargetAddress', phase: 'any', scope: 'session', kind: 'string', merge: 'declarative', default: null, sender: 'target', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'TargetPortalGroupTag', phase: 'any', scope: 'session', kind: 'numeric', merge: 'declarative', default: null, range: { min: 0, max: 65535 }, sender: 'target', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  // §13.10 - §13.20
  { key: 'InitialR2T', phase: 'operational', scope: 'session', kind: 'boolean', merge: 'or', default: 'Yes', sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'ImmediateData', phase: 'operational', scope: 'session', kind: 'boolean', merge: 'and', default: 'Yes', sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'MaxRecvDataSegmentLength', phase: 'operational', scope: 'connection', kind: 'numeric', merge: 'declarative', default: '8192', range: SEGMENT_RANGE, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'MaxBurstLength', phase: 'operational', scope: 'session', kind: 'numeric', merge: 'min', default: '262144', range: SEGMENT_RANGE, sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'FirstBurstLength', phase: 'operational', scope: 'session', kind: 'numeric', merge: 'min', default: '65536', range: SEGMENT_RANGE, sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'DefaultTime2Wait', phase: 'operational', scope: 'session', kind: 'numeric', merge: 'max', default: '2', range: { min: 0, max: 3600 }, sender: 'both', leadingOnly: true, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'DefaultTime2Retain', phase: 'operational', scope: 'session', kind: 'numeric', merge: 'min', default: '20', range: { min: 0, max: 3600 }, sender: 'both', leadingOnly: true, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'MaxOutstandingR2T', phase: 'operational', scope: 'session', kind: 'numeric', merge: 'min', default: '1', range: { min: 1, max: 65535 }, sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'DataPDUInOrder', phase: 'operational', scope: 'session', kind: 'boolean', merge: 'or', default: 'Yes', sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'DataSequenceInOrder', phase: 'operational', scope: 'session', kind: 'boolean', merge: 'or', default: 'Yes', sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'ErrorRecoveryLevel', phase: 'operational', scope: 'session', kind: 'numeric', merge: 'min', default: '0', range: { min: 0, max: 2 }, sender: 'both', leadingOnly: true, sessionTypes: BOTH, maxLength: SIMPLE },
  // §13.21 - §13.24
  { key: 'SessionType', phase: 'any', scope: 'session', kind: 'string', merge: 'declarative', default: 'Normal', values: ['Discovery', 'Normal'], sender: 'initiator', leadingOnly: true, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'TaskReporting', phase: 'operational', scope: 'session', kind: 'list', merge: 'list-first-match', default: 'RFC3720', values: ['RFC3720', 'ResponseFence', 'FastAbort'], sender: 'both', leadingOnly: true, sessionTypes: NORMAL_ONLY, maxLength: SIMPLE },
  { key: 'X#NodeArchitecture', phase: 'operational', scope: 'session', kind: 'string', merge: 'declarative', default: null, sender: 'both', leadingOnly: true, sessionTypes: BOTH, maxLength: SIMPLE },
  // §13.25 obsoleted keys
  { key: 'IFMarker', phase: 'operational', scope: 'connection', kind: 'boolean', merge: 'and', default: 'No', sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE, obsolete: true },
  { key: 'OFMarker', phase: 'operational', scope: 'connection', kind: 'boolean', merge: 'and', default: 'No', sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE, obsolete: true },
  { key: 'IFMarkInt', phase: 'operational', scope: 'connection', kind: 'numeric', merge: 'none', default: null, range: { min: 1, max: 65535 }, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE, obsolete: true },
  { key: 'OFMarkInt', phase: 'operational', scope: 'connection', kind: 'numeric', merge: 'none', default: null, range: { min: 1, max: 65535 }, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE, obsolete: true },
  // §12.1 security keys (exchanged by chap.ts)
  { key: 'AuthMethod', phase: 'security', scope: 'connection', kind: 'list', merge: 'list-first-match', default: 'None', values: ['KRB5', 'SRP', 'CHAP', 'None'], sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'CHAP_A', phase: 'security', scope: 'connection', kind: 'list', merge: 'list-first-match', default: null, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'CHAP_I', phase: 'security', scope: 'connection', kind: 'numeric', merge: 'none', default: null, range: { min: 0, max: 255 }, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'CHAP_C', phase: 'security', scope: 'connection', kind: 'binary', merge: 'none', default: null, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: LARGE_BINARY },
  { key: 'CHAP_N', phase: 'security', scope: 'connection', kind: 'string', merge: 'none', default: null, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: SIMPLE },
  { key: 'CHAP_R', phase: 'security', scope: 'connection', kind: 'binary', merge: 'none', default: null, sender: 'both', leadingOnly: false, sessionTypes: BOTH, maxLength: LARGE_BINARY },
];

const KEY_INDEX: ReadonlyMap<string, KeyDefinition> = new Map(KEYS.map((row) => [row.key, row]));

/** The table row for a key, or undefined for unknown and extension keys. */
export function keyDefinition(key: string): KeyDefinition | undefined {
  return KEY_INDEX.get(key);
}

/** Private (X-) and public (X#) extension keys (§13.22); answered NotUnderstood unless in KEYS. */
export function isExtensionKey(key: string): boolean {
  return key.startsWith('X-') || key.startsWith('X#');
}

/** numerical-value (§6.1): decimal or 0x-hex. Null if malformed or beyond 2^53. */
export function parseNumber(text: string): number | null {
  let n: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) n = parseInt(text.slice(2), 16);
  else if (/^[0-9]+$/.test(text)) n = Number(text);
  else return null;
  return Number.isSafeInteger(n) ? n : null;
}

/** boolean-value (§6.1): exactly "Yes" or "No". */
export function parseBoolean(text: string): boolean | null {
  return text === 'Yes' ? true : text === 'No' ? false : null;
}

const yesNo = (b: boolean): string => (b ? 'Yes' : 'No');

/* ------------------------------------------------------------------ */
/* Target limits and negotiated results                               */
/* ------------------------------------------------------------------ */

/** What the target accepts; each is the target's side of the merge. */
export interface TargetLimits {
  /** Largest data segment we receive (declared to the initiator). */
  readonly maxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly maxOutstandingR2T: number;
  /** Our vote for InitialR2T (OR): true keeps R2T mandatory for every write. */
  readonly initialR2T: boolean;
  /** Our vote for ImmediateData (AND). */
  readonly immediateData: boolean;
  readonly dataPDUInOrder: boolean;
  readonly dataSequenceInOrder: boolean;
  readonly defaultTime2Wait: number;
  readonly defaultTime2Retain: number;
  /** Digests we accept; the initiator's order decides among them. */
  readonly headerDigests: readonly Digest[];
  readonly dataDigests: readonly Digest[];
}

export const DEFAULT_TARGET_LIMITS: TargetLimits = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1024 * 1024,
  firstBurstLength: 65536,
  maxOutstandingR2T: 1,
  initialR2T: true,
  immediateData: true,
  dataPDUInOrder: true,
  dataSequenceInOrder: true,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
  headerDigests: [Digest.NONE, Digest.CRC32C],
  dataDigests: [Digest.NONE, Digest.CRC32C],
};

/** We implement ErrorRecoveryLevel 0 and one connection per session only. */
export const SUPPORTED_ERROR_RECOVERY_LEVEL = 0;
export const SUPPORTED_MAX_CONNECTIONS = 1;
const SUPPORTED_TASK_REPORTING = ['RFC3720'] as const;

/** Session-wide operational parameters once login completes. */
export interface SessionParams {
  readonly initialR2T: boolean;
  readonly immediateData: boolean;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly maxOutstandingR2T: number;
  readonly dataPDUInOrder: boolean;
  readonly dataSequenceInOrder: boolean;
  readonly errorRecoveryLevel: number;
  readonly defaultTime2Wait: number;
  readonly defaultTime2Retain: number;
  readonly maxConnections: number;
}

/** Per-connection parameters once login completes. */
export interface ConnectionParams {
  readonly headerDigest: Digest;
  readonly dataDigest: Digest;
  /** Largest data segment the target may SEND: the initiator's declared MaxRecvDataSegmentLength (default 8192). */
  readonly maxRecvDataSegmentLength: number;
  /** Largest data segment the target will RECEIVE: what it declared (8192 if it never got to declare). */
  readonly targetMaxRecvDataSegmentLength: number;
}

/** Check limits against the table's ranges and our fixed capabilities; throws RangeError. */
export function resolveTargetLimits(partial: Partial<TargetLimits> = {}): TargetLimits {
  const limits: TargetLimits = { ...DEFAULT_TARGET_LIMITS, ...partial };
  const numeric: Array<[keyof TargetLimits, string]> = [
    ['maxRecvDataSegmentLength', 'MaxRecvDataSegmentLength'],
    ['maxBurstLength', 'MaxBurstLength'],
    ['firstBurstLength', 'FirstBurstLength'],
    ['maxOutstandingR2T', 'MaxOutstandingR2T'],
    ['defaultTime2Wait', 'DefaultTime2Wait'],
    ['defaultTime2Retain', 'DefaultTime2Retain'],
  ];
  for (const [field, key] of numeric) {
    const range = keyDefinition(key)!.range!;
    const v = limits[field] as number;
    if (!Number.isInteger(v) || v < range.min || v > range.max) {
      throw new RangeError(`${field} ${v} is outside ${range.min}..${range.max}`);
    }
  }
  if (limits.firstBurstLength > limits.maxBurstLength) {
    throw new RangeError(`firstBurstLength ${limits.firstBurstLength} exceeds maxBurstLength ${limits.maxBurstLength}`);
  }
  for (const field of ['headerDigests', 'dataDigests'] as const) {
    const list = limits[field];
    if (list.length === 0 || list.some((d) => d !== Digest.NONE && d !== Digest.CRC32C)) {
      throw new RangeError(`${field} must be a non-empty list of None/CRC32C`);
    }
  }
  return limits;
}

/** The target's side of each negotiated key: a single value, or a list of accepted values. */
function targetSide(key: string, l: TargetLimits): string | readonly string[] | undefined {
  switch (key) {
    case 'HeaderDigest': return l.headerDigests;
    case 'DataDigest': return l.dataDigests;
    case 'MaxConnections': return String(SUPPORTED_MAX_CONNECTIONS);
    case 'InitialR2T': return yesNo(l.initialR2T);
    case 'ImmediateData': return yesNo(l.immediateData);
    case 'MaxBurstLength': return String(l.maxBurstLength);
    case 'FirstBurstLength': return String(l.firstBurstLength);
    case 'DefaultTime2Wait': return String(l.defaultTime2Wait);
    case 'DefaultTime2Retain': return String(l.defaultTime2Retain);
    case 'MaxOutstandingR2T': return String(l.maxOutstandingR2T);
    case 'DataPDUInOrder': return yesNo(l.dataPDUInOrder);
    case 'DataSequenceInOrder': return yesNo(l.dataSequenceInOrder);
    case 'ErrorRecoveryLevel': return String(SUPPORTED_ERROR_RECOVERY_LEVEL);
    case 'TaskReporting': return SUPPORTED_TASK_REPORTING;
    case 'IFMarker':
    case 'OFMarker': return 'No';
    default: return undefined;
  }
}

/* ------------------------------------------------------------------ */
/* Merge rules                                                        */
/* ------------------------------------------------------------------ */

/** Result of merging an offered value with ours: the value to answer, or null for Reject. */
type Merge = (row: KeyDefinition, offered: string, ours: string | readonly string[]) => string | null;

function inRange(row: KeyDefinition, text: string): number | null {
  const n = parseNumber(text);
  if (n === null || text.length > row.maxLength) return null;
  if (row.range && (n < row.range.min || n > row.range.max)) return null;
  return n;
}

function mergeBoolean(fn: (a: boolean, b: boolean) => boolean): Merge {
  return (_row, offered, ours) => {
    const a = parseBoolean(offered);
    return a === null ? null : yesNo(fn(a, parseBoolean(ours as string)!));
  };
}

function mergeNumeric(fn: (a: number, b: number) => number): Merge {
  return (row, offered, ours) => {
    const a = inRange(row, offered);
    return a === null ? null : String(fn(a, Number(ours as string)));
  };
}

const MERGES: Record<'and' | 'or' | 'min' | 'max' | 'list-first-match', Merge> = {
  and: mergeBoolean((a, b) => a && b),
  or: mergeBoolean((a, b) => a || b),
  min: mergeNumeric(Math.min),
  max: mergeNumeric(Math.max),
  // §6.2.1: the first value of the offer we support; values we do not know are ignored.
  'list-first-match': (row, offered, ours) => {
    const accepted = ours as readonly string[];
    for (const item of offered.split(',')) {
      if (item.length > 0 && item.length <= row.maxLength && accepted.includes(item)) return item;
    }
    return null;
  },
};

/**
 * Is an answer to our own offer acceptable? §6.2: a numeric answer must not
 * lie beyond what we offered in the direction of the merge function; a
 * boolean answer must be consistent with the function; a list answer must be
 * one of the values we offered.
 */
function validAnswer(row: KeyDefinition, offered: string, answer: string): boolean {
  switch (row.merge) {
    case 'min':
    case 'max': {
      const n = inRange(row, answer);
      if (n === null) return false;
      return row.merge === 'min' ? n <= Number(offered) : n >= Number(offered);
    }
    case 'and':
      return parseBoolean(answer) !== null && (offered === 'Yes' || answer === 'No');
    case 'or':
      return parseBoolean(answer) !== null && (offered === 'No' || answer === 'Yes');
    case 'list-first-match':
      return offered.split(',').includes(answer);
    default:
      return false;
  }
}

/* ------------------------------------------------------------------ */
/* Negotiator                                                         */
/* ------------------------------------------------------------------ */

export const NegotiationFailure = {
  RENEGOTIATION: 'renegotiation',
  WRONG_STAGE: 'wrong-stage',
  WRONG_SENDER: 'wrong-sender',
  LEADING_ONLY: 'leading-only',
  INVALID_DECLARATION: 'invalid-declaration',
  INVALID_ANSWER: 'invalid-answer',
  OFFER_REFUSED: 'offer-refused',
} as const;
export type NegotiationFailure = (typeof NegotiationFailure)[keyof typeof NegotiationFailure];

/** A protocol error in negotiation; the login answers 0x0200 (initiator error). */
export class NegotiationError extends Error {
  override readonly name = 'NegotiationError';
  constructor(
    readonly failure: NegotiationFailure,
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

export interface NegotiatorOptions {
  readonly limits?: Partial<TargetLimits>;
  readonly sessionType?: SessionType;
  /** False for a login adding a connection to an existing session (TSIH != 0): LO keys are refused. */
  readonly leading?: boolean;
}

export interface NegotiationOutput {
  /** Answers, in the order the offers came. */
  readonly responses: TextPair[];
  /** Security keys (AuthMethod, CHAP_*), in order, for the authenticator. */
  readonly security: TextPair[];
}

type KeyState =
  | { readonly status: 'offered'; readonly value: string } // our proposal, awaiting the initiator's answer
  | { readonly status: 'settled'; readonly value: string }; // negotiated, declared or irrelevant

/** Keys whose answer depends on others in the same request; handled last. */
const DEFERRED = new Set(['FirstBurstLength']);

export class Negotiator {
  readonly limits: TargetLimits;
  readonly sessionType: SessionType;
  readonly leading: boolean;
  private readonly states = new Map<string, KeyState>();
  private readonly declaredByTarget = new Set<string>();

  constructor(options: NegotiatorOptions = {}) {
    this.limits = resolveTargetLimits(options.limits);
    this.sessionType = options.sessionType ?? SessionType.NORMAL;
    this.leading = options.leading ?? true;
  }

  /** The settled value of a key (negotiated or declared), if any. */
  settled(key: string): string | undefined {
    const s = this.states.get(key);
    return s?.status === 'settled' ? s.value : undefined;
  }

  /** True while the initiator owes an answer to one of our offers. */
  get awaitingAnswers(): boolean {
    for (const s of this.states.values()) if (s.status === 'offered') return true;
    return false;
  }

  /**
   * Process the initiator's keys of one request in the given stage. Throws
   * NegotiationError on a protocol error.
   */
  handle(pairs: ReadonlyArray<TextPair>, stage: NegotiationStage): NegotiationOutput {
    const answers = new Map<string, string>();
    const security: TextPair[] = [];
    const deferred: TextPair[] = [];
    for (const pair of pairs) {
      const [key, value] = pair;
      const row = keyDefinition(key);
      if (!row) {
        answers.set(key, KeyAnswer.NOT_UNDERSTOOD);
        continue;
      }
      this.checkAdmissible(row, stage);
      if (row.phase === 'security') {
        security.push(pair);
        continue;
      }
      if (DEFERRED.has(key)) {
        deferred.push(pair);
        answers.set(key, ''); // keeps the request's order; filled below
        continue;
      }
      const answer = this.apply(row, value);
      if (answer !== null) answers.set(key, answer);
    }
    for (const [key, value] of deferred) {
      const answer = this.apply(keyDefinition(key)!, value);
      if (answer === null) answers.delete(key);
      else answers.set(key, answer);
    }
    return { responses: [...answers], security };
  }

  /**
   * Declarations the target owes in this stage, each made once: our
   * MaxRecvDataSegmentLength in the operational stage.
   */
  declarations(stage: NegotiationStage): TextPair[] {
    if (stage !== NegotiationStage.OPERATIONAL || this.declaredByTarget.has('MaxRecvDataSegmentLength')) return [];
    this.declaredByTarget.add('MaxRecvDataSegmentLength');
    return [['MaxRecvDataSegmentLength', String(this.limits.maxRecvDataSegmentLength)]];
  }

  /**
   * Keys the target must propose because the RFC default is outside its
   * limits and the initiator has not negotiated them. Marks them offered;
   * the initiator answers in its next request.
   */
  makeOffers(): TextPair[] {
    const offers: TextPair[] = [];
    for (const [key, value] of this.requiredOffers()) {
      this.states.set(key, { status: 'offered', value });
      offers.push([key, value]);
    }
    return offers;
  }

  /**
   * True if the operational stage cannot be skipped: we have keys to offer,
   * or our receive limit is below the 8192 the initiator assumes by default.
   */
  needsOperationalStage(): boolean {
    return this.requiredOffers().length > 0 || (!this.declaredByTarget.has('MaxRecvDataSegmentLength') && this.limits.maxRecvDataSegmentLength < 8192);
  }

  /** The negotiated parameters. Throws if offers are still unanswered. */
  finish(): { session: SessionParams; connection: ConnectionParams } {
    if (this.awaitingAnswers) throw new Error('negotiation not finished: offers are unanswered');
    const num = (key: string): number => {
      const v = this.settled(key);
      const n = v === undefined ? null : parseNumber(v);
      return n ?? Number(keyDefinition(key)!.default);
    };
    const bool = (key: string): boolean => parseBoolean(this.settled(key) ?? '') ?? keyDefinition(key)!.default === 'Yes';
    const digest = (key: string): Digest => (this.settled(key) === Digest.CRC32C ? Digest.CRC32C : Digest.NONE);
    const maxBurstLength = num('MaxBurstLength');
    const session: SessionParams = {
      initialR2T: bool('InitialR2T'),
      immediateData: bool('ImmediateData'),
      maxBurstLength,
      // §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
      firstBurstLength: Math.min(num('FirstBurstLength'), maxBurstLength),
      maxOutstandingR2T: num('MaxOutstandingR2T'),
      dataPDUInOrder: bool('DataPDUInOrder'),
      dataSequenceInOrder: bool('DataSequenceInOrder'),
      errorRecoveryLevel: Math.min(num('ErrorRecoveryLevel'), SUPPORTED_ERROR_RECOVERY_LEVEL),
      defaultTime2Wait: num('DefaultTime2Wait'),
      defaultTime2Retain: num('DefaultTime2Retain'),
      maxConnections: this.sessionType === SessionType.DISCOVERY ? 1 : Math.min(num('MaxConnections'), SUPPORTED_MAX_CONNECTIONS),
    };
    const connection: ConnectionParams = {
      headerDigest: digest('HeaderDigest'),
      dataDigest: digest('DataDigest'),
      maxRecvDataSegmentLength: num('MaxRecvDataSegmentLength'),
      targetMaxRecvDataSegmentLength: this.declaredByTarget.has('MaxRecvDataSegmentLength') ? this.limits.maxRecvDataSegmentLength : 8192,
    };
    return { session, connection };
  }

  /* ---------------- internals ---------------- */

  private checkAdmissible(row: KeyDefinition, stage: NegotiationStage): void {
    const fail = (failure: NegotiationFailure, why: string): never => {
      throw new NegotiationError(failure, row.key, `${row.key}: ${why}`);
    };
    if (row.sender === 'target') fail(NegotiationFailure.WRONG_SENDER, 'only the target sends this key');
    if (row.phase === 'full-feature') fail(NegotiationFailure.WRONG_STAGE, 'only valid in full feature phase');
    if (row.phase === 'security' && stage !== NegotiationStage.SECURITY) fail(NegotiationFailure.WRONG_STAGE, 'security key outside the security stage');
    if (row.phase === 'operational' && stage !== NegotiationStage.OPERATIONAL) fail(NegotiationFailure.WRONG_STAGE, 'operational key outside the operational stage');
    if (row.leadingOnly && !this.leading && row.merge !== 'declarative') fail(NegotiationFailure.LEADING_ONLY, 'only allowed in the leading login');
    if (this.states.get(row.key)?.status === 'settled') fail(NegotiationFailure.RENEGOTIATION, 'already negotiated in this login');
  }

  /** Apply one offer/declaration/answer; returns our answer, or null for none. */
  private apply(row: KeyDefinition, value: string): string | null {
    const state = this.states.get(row.key);
    if (state?.status === 'offered') {
      this.acceptAnswer(row, state.value, value);
      return null;
    }
    if (row.merge === 'declarative') {
      this.declare(row, value);
      return null;
    }
    if (!row.sessionTypes.includes(this.sessionType) || this.firstBurstIrrelevant(row)) {
      this.settle(row.key, KeyAnswer.IRRELEVANT);
      return KeyAnswer.IRRELEVANT;
    }
    const ours = targetSide(row.key, this.limits);
    if (row.merge === 'none' || ours === undefined) return KeyAnswer.REJECT; // obsolete IFMarkInt/OFMarkInt
    let answer = MERGES[row.merge](row, value, ours);
    if (answer === null) return KeyAnswer.REJECT;
    if (row.key === 'FirstBurstLength') answer = String(Math.min(Number(answer), this.currentMaxBurst()));
    this.settle(row.key, answer);
    return answer;
  }

  private declare(row: KeyDefinition, value: string): void {
    const bad = (why: string): never => {
      throw new NegotiationError(NegotiationFailure.INVALID_DECLARATION, row.key, `${row.key}=${value.slice(0, 64)}: ${why}`);
    };
    if (Buffer.byteLength(value) > row.maxLength) bad(`longer than ${row.maxLength} bytes`);
    if (row.kind === 'numeric' && inRange(row, value) === null) bad('not a number in range');
    if (row.values && !row.values.includes(value)) bad('not an allowed value');
    if (row.kind === 'string' && row.key.endsWith('Name') && value.length === 0) bad('empty name');
    this.settle(row.key, value);
  }

  private acceptAnswer(row: KeyDefinition, offered: string, answer: string): void {
    if (answer === KeyAnswer.IRRELEVANT) {
      this.settle(row.key, KeyAnswer.IRRELEVANT);
      return;
    }
    if (answer === KeyAnswer.REJECT || answer === KeyAnswer.NOT_UNDERSTOOD) {
      throw new NegotiationError(NegotiationFailure.OFFER_REFUSED, row.key, `${row.key}: initiator answered ${answer} to our ${offered}, and the default is outside our limits`);
    }
    if (!validAnswer(row, offered, answer)) {
      throw new NegotiationError(NegotiationFailure.INVALID_ANSWER, row.key, `${row.key}: answer ${answer} is not valid for our offer ${offered}`);
    }
    this.settle(row.key, answer);
  }

  private settle(key: string, value: string): void {
    this.states.set(key, { status: 'settled', value });
  }

  /** §13.14: FirstBurstLength is irrelevant when InitialR2T=Yes and ImmediateData=No. */
  private firstBurstIrrelevant(row: KeyDefinition): boolean {
    if (row.key !== 'FirstBurstLength') return false;
    const current = (key: string) => this.settled(key) ?? keyDefinition(key)!.default;
    return current('InitialR2T') === 'Yes' && current('ImmediateData') === 'No';
  }

  private currentMaxBurst(): number {
    return parseNumber(this.settled('MaxBurstLength') ?? '') ?? Math.min(262144, this.limits.maxBurstLength);
  }

  /** Keys whose RFC default our limits do not accept, not yet negotiated. */
  private requiredOffers(): TextPair[] {
    const offers: TextPair[] = [];
    for (const row of KEYS) {
      if (row.phase !== 'operational' || row.merge === 'declarative' || row.merge === 'none' || row.obsolete) continue;
      if (!row.sessionTypes.includes(this.sessionType) || (row.leadingOnly && !this.leading)) continue;
      if (this.states.has(row.key) || row.default === null) continue;
      const ours = targetSide(row.key, this.limits);
      if (ours === undefined) continue;
      if (row.merge === 'list-first-match') {
        const list = ours as readonly string[];
        if (!list.includes(row.default)) offers.push([row.key, list.join(',')]);
        continue;
      }
      if (row.key === 'FirstBurstLength' && this.firstBurstIrrelevant(row)) continue;
      const merged = MERGES[row.merge](row, row.default, ours);
      if (merged !== row.default) offers.push([row.key, ours as string]);
    }
    return offers;
  }
}
