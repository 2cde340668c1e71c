/**
 * The messages of replication.proto as TypeScript types, and the table that
 * says, for every body of an Envelope, which protocol version introduced it,
 * whether a payload follows its header and how long it must be, and whether
 * it belongs to the link (handshake, heartbeats) or to the channel above.
 *
 * Field names are the .proto's in camelCase. Outgoing messages may leave out
 * the fields marked optional here (protobuf's zero value then applies);
 * decoded messages always have every field (`Complete<T>`), with protobuf's
 * defaults filled in. 64-bit integers are JavaScript numbers (see the .proto).
 */

/** Versions of this protocol this release speaks (inclusive). */
/**
 * Versions of this protocol this release speaks (inclusive).
 *   1: volumes, resync, verify, SCSI state.
 *   2: adds Control (opaque messages between the nodes' owners).
 */
export const PROTOCOL_VERSION = { MIN: 1, MAX: 2 } as const;

export const Role = { UNSPECIFIED: 0, PRIMARY: 1, SECONDARY: 2 } as const;
/** A newer peer may send a value not listed in `Role` (proto3 enums are open). */
export type Role = (typeof Role)[keyof typeof Role];

/* ---------------- link handshake ---------------- */

export interface Hello {
  readonly protocolMin: number;
  readonly protocolMax: number;
  readonly nodeId: string;
  readonly clusterId: string;
  /** 32 random bytes: the sender's challenge. */
  readonly nonce: Buffer;
  readonly linkIndex: number;
  /** Random id of the sender's PeerChannel; a new one means the peer restarted. */
  readonly sessionId: string;
  readonly features?: readonly string[];
}

/** The acceptor's Hello. */
export interface Challenge {
  readonly hello: Hello;
}

/** The dialer's proof. */
export interface ChallengeResponse {
  readonly proof: Buffer;
}

/** The version chosen and the acceptor's proof. */
export interface Welcome {
  readonly protocolVersion: number;
  readonly features?: readonly string[];
  readonly proof: Buffer;
}

export interface Heartbeat {
  readonly sentAtMs: number;
  readonly seq: number;
  readonly echo?: boolean;
}

export interface Ack {
  readonly ok: boolean;
  /** When !ok: an errno-style name such as 'EIO' or 'ENOTSUP'. */
  readonly code?: string;
  readonly message?: string;
}

/* ---------------- volumes ---------------- */

export interface Generations {
  readonly current: string;
  readonly bitmap?: string;
  readonly history?: readonly string[];
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface VolumeHello {
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly regionSize: number;
  readonly generations: Generations;
  readonly role: Role;
  readonly dirtyBytes: number;
  readonly blockSize: number;
}

/** Payload: `length` bytes. */
export interface Write {
  readonly volumeId: string;
  readonly offset: number;
  readonly length: number;
  readonly fua?: boolean;
}

/** Payload: one block. */
export interface WriteSame {
  readonly volumeId: string;
  readonly offset: number;
  readonly length: number;
  readonly unmap?: boolean;
}

export interface Unmap {
  readonly volumeId: string;
  readonly offset: number;
  readonly length: number;
}

export interface WriteZeroes {
  readonly volumeId: string;
  readonly offset: number;
  readonly length: number;
  readonly unmap?: boolean;
}

export interface Flush {
  readonly volumeId: string;
}

export interface ResyncRequest {
  readonly volumeId: string;
  readonly ranges: readonly ByteRange[];
}

/** Payload: `length` bytes. */
export interface ResyncData {
  readonly volumeId: string;
  readonly offset: number;
  readonly length: number;
}

export interface VerifyRequest {
  readonly volumeId: string;
  readonly offset: number;
  readonly length: number;
  readonly regionSize: number;
  readonly algorithm: string;
}

export interface VerifyDigests {
  readonly volumeId: string;
  readonly offset: number;
  readonly regionSize: number;
  readonly algorithm: string;
  readonly digests: Buffer;
}

export interface ScsiState {
  readonly volumeId: string;
  readonly kind: string;
  readonly json: Buffer;
  readonly version: number;
}

export interface Resize {
  readonly volumeId: string;
  readonly sizeBytes: number;
}

export interface GenerationUpdate {
  readonly volumeId: string;
  readonly generations: Generations;
  readonly reason?: string;
}

/** Since version 2: an opaque message for the mirror node's owner. */
export interface Control {
  readonly topic: string;
  readonly data: Buffer;
}

/** Envelope.body members, by their (camelCase) oneof name. */
export interface BodyMap {
  ack: Ack;
  write: Write;
  heartbeat: Heartbeat;
  flush: Flush;
  resyncData: ResyncData;
  writeSame: WriteSame;
  unmap: Unmap;
  writeZeroes: WriteZeroes;
  hello: Hello;
  challenge: Challenge;
  challengeResponse: ChallengeResponse;
  welcome: Welcome;
  volumeHello: VolumeHello;
  resyncRequest: ResyncRequest;
  verifyRequest: VerifyRequest;
  verifyDigests: VerifyDigests;
  scsiState: ScsiState;
  resize: Resize;
  generationUpdate: GenerationUpdate;
  control: Control;
}
export type BodyKind = keyof BodyMap;

/** Every field present, recursively (what decoding yields). */
export type Complete<T> = T extends Buffer
  ? T
  : T extends readonly (infer U)[]
    ? Complete<U>[]
    : T extends object
      ? { readonly [K in keyof T]-?: Complete<T[K]> }
      : T;

/* ---------------- the dispatch table ---------------- */

/**
 * Who handles a body: the link itself ('link': handshake and heartbeats,
 * never seen by the channel) or the channel and its handlers ('channel').
 * Ack is both: a request's reply, and a refused handshake.
 */
export type BodyScope = 'link' | 'channel' | 'both';

/** Whether a payload follows the header: 'none' (one that does is ignored) or 'required'. */
export type PayloadRule = 'none' | 'required';

export interface BodyRule {
  /** The protocol version that introduced the body: not sent on links that negotiated less. */
  readonly since: number;
  readonly scope: BodyScope;
  readonly payload: PayloadRule;
  /** The exact payload length the body announces, when it announces one. */
  readonly payloadLength?: (body: never) => number;
}

export const BODY_TABLE = {
  ack: { since: 1, scope: 'both', payload: 'none' },
  write: { since: 1, scope: 'channel', payload: 'required', payloadLength: (b: Write) => b.length },
  heartbeat: { since: 1, scope: 'link', payload: 'none' },
  flush: { since: 1, scope: 'channel', payload: 'none' },
  resyncData: { since: 1, scope: 'channel', payload: 'required', payloadLength: (b: ResyncData) => b.length },
  writeSame: { since: 1, scope: 'channel', payload: 'required' },
  unmap: { since: 1, scope: 'channel', payload: 'none' },
  writeZeroes: { since: 1, scope: 'channel', payload: 'none' },
  hello: { since: 1, scope: 'link', payload: 'none' },
  challenge: { since: 1, scope: 'link', payload: 'none' },
  challengeResponse: { since: 1, scope: 'link', payload: 'none' },
  welcome: { since: 1, scope: 'link', payload: 'none' },
  volumeHello: { since: 1, scope: 'channel', payload: 'none' },
  resyncRequest: { since: 1, scope: 'channel', payload: 'none' },
  verifyRequest: { since: 1, scope: 'channel', payload: 'none' },
  verifyDigests: { since: 1, scope: 'channel', payload: 'none' },
  scsiState: { since: 1, scope: 'channel', payload: 'none' },
  resize: { since: 1, scope: 'channel', payload: 'none' },
  generationUpdate: { since: 1, scope: 'channel', payload: 'none' },
  control: { since: 2, scope: 'channel', payload: 'none' },
} as const satisfies { readonly [K in BodyKind]: BodyRule };

export const BODY_KINDS = Object.keys(BODY_TABLE) as readonly BodyKind[];

export function isBodyKind(name: string): name is BodyKind {
  return Object.prototype.hasOwnProperty.call(BODY_TABLE, name);
}

/* ---------------- envelopes ---------------- */

/** The Envelope fields around the body. */
export interface EnvelopeHeader {
  /** Sender-assigned, > 0 for channel messages; 0 for link-level ones. */
  readonly seq: number;
  /** Non-zero in a reply: the seq of the request answered. */
  readonly replyTo: number;
  readonly expectsReply: boolean;
  /** The lowest seq the sender still waits a reply for. */
  readonly ackFloor: number;
}

/** A decoded Envelope whose body this release knows. Narrow on `body`. */
export type KnownEnvelope = {
  [K in BodyKind]: EnvelopeHeader & { readonly body: K } & { readonly [P in K]: Complete<BodyMap[K]> };
}[BodyKind];

/** A decoded Envelope whose body is absent or unknown (from a newer peer). */
export type UnknownEnvelope = EnvelopeHeader & { readonly body: undefined };

export type Envelope = KnownEnvelope | UnknownEnvelope;

/** A decoded Envelope with body K. */
export type EnvelopeOf<K extends BodyKind> = Extract<KnownEnvelope, { readonly body: K }>;

/** A body to send: exactly one member, for example `{ write: { volumeId, offset, length } }`. */
export type OutgoingMessage = { [K in BodyKind]: { readonly [P in K]: BodyMap[K] } }[BodyKind];

/** An outgoing message with body K. */
export type OutgoingOf<K extends BodyKind> = { readonly [P in K]: BodyMap[K] };

/** What goes on the wire: the header fields (zero when left out) and one body. */
export type OutgoingEnvelope = Partial<EnvelopeHeader> & OutgoingMessage;

/** The body kind of an outgoing message; throws when it has none or several. */
export function kindOf(message: OutgoingMessage): BodyKind {
  let found: BodyKind | undefined;
  for (const key of Object.keys(message)) {
    if (!isBodyKind(key)) continue;
    if (found !== undefined) throw new TypeError(`message has two bodies: ${found} and ${key}`);
    found = key;
  }
  if (found === undefined) throw new TypeError('message has no body');
  return found;
}

