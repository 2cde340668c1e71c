/**
 * The protobuf codec of Envelope. The schema comes from the descriptor
 * generated from replication.proto (replication-descriptor.ts), so nothing
 * reads the .proto at run time and dist/ needs no copy of it.
 *
 * Decoding is tolerant the way protobuf is: unknown fields are skipped, and
 * an Envelope whose body this release does not know decodes with
 * `body: undefined` (its header fields intact), for the receiver to answer
 * ENOTSUP. No I/O here.
 */
import { IConversionOptions, Root, Type } from 'protobufjs';
import { Envelope, OutgoingEnvelope } from './messages';
import { decodeHotEnvelope, encodeHotEnvelope } from './hot-codec';
import { REPLICATION_DESCRIPTOR } from './replication-descriptor';

export const PROTO_PACKAGE = 'twinsan.mirror.v1';

export const schemaRoot: Root = Root.fromJSON(REPLICATION_DESCRIPTOR);
export const EnvelopeType: Type = schemaRoot.lookupType(`${PROTO_PACKAGE}.Envelope`);

const TO_OBJECT: IConversionOptions = { longs: Number, defaults: true, oneofs: true };

/**
 * Singular message-typed fields, per body kind, that protobuf leaves `null`
 * when absent; decoding fills them with their type's defaults so decoded
 * messages are complete (`Complete<T>`).
 */
const NESTED_DEFAULTS: ReadonlyMap<string, readonly (readonly [string, () => object])[]> = (() => {
  const out = new Map<string, (readonly [string, () => object])[]>();
  const bodyOneof = EnvelopeType.oneofs['body'];
  if (!bodyOneof) throw new Error('replication schema: Envelope has no oneof body');
  for (const member of bodyOneof.fieldsArray) {
    const bodyType = member.resolve().resolvedType;
    if (!(bodyType instanceof Type)) continue;
    const nested: (readonly [string, () => object])[] = [];
    for (const f of bodyType.fieldsArray) {
      const t = f.resolve().resolvedType;
      if (t instanceof Type && !f.repeated) nested.push([f.name, () => t.toObject(t.create(), TO_OBJECT)]);
    }
    if (nested.length > 0) out.set(member.name, nested);
  }
  return out;
})();

export class EnvelopeDecodeError extends Error {
  override readonly name = 'EnvelopeDecodeError';
}

/** Protobuf bytes of an Envelope (Write and Ack envelopes by hot-codec.ts, the rest by protobufjs). */
export function encodeEnvelope(envelope: OutgoingEnvelope): Buffer {
  const hot = encodeHotEnvelope(envelope, 0);
  if (hot) return hot;
  const bytes = EnvelopeType.encode(envelope).finish();
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes an Envelope (the plain Write and Ack forms by hot-codec.ts); bytes fields of the result are views of `bytes`. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (Buffer.isBuffer(bytes)) {
    const hot = decodeHotEnvelope(bytes);
    if (hot) return hot;
  }
  let message;
  try {
    message = EnvelopeType.decode(bytes);
  } catch (err) {
    throw new EnvelopeDecodeError(`undecodable envelope: ${(err as Error).message}`);
  }
  const obj = EnvelopeType.toObject(message, TO_OBJECT);
  const kind = obj['body'] as string | undefined;
  if (kind !== undefined) {
    const fixes = NESTED_DEFAULTS.get(kind);
    if (fixes) {
      const body = obj[kind] as Record<string, unknown>;
      for (const [name, make] of fixes) if (body[name] == null) body[name] = make();
    }
  }
  return obj as Envelope;
}
