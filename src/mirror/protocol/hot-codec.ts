/**
 * A hand-written protobuf codec for the two envelopes of the write path: a
 * request whose body is a Write, and a reply whose body is an Ack. Every
 * replicated write is one of each, on both nodes; protobufjs spent several
 * microseconds on each (a Writer and its operation list, toObject and the
 * default-filling pass, a copy of the header into the frame). No I/O.
 *
 * The bytes are ordinary protobuf, readable by protobufjs and by any
 * release (protocol versions 1 and 2 included): fields in id order, proto3
 * defaults left out (protobufjs writes some of them; both are valid). The
 * decoder takes only the plainest form of these two envelopes: header
 * fields 1-4, one body (Ack or Write) with its known fields, each at most
 * once, integers below 2^53, ASCII strings. Anything else (another body,
 * an unknown or repeated field, a non-ASCII string) returns null and the
 * caller decodes with protobufjs, so the result is the same either way.
 */
import { Envelope, OutgoingEnvelope } from './messages';

/* Wire tags: (field << 3) | wire type (0 varint, 2 length-delimited). */
const ENV_SEQ = 0x08;
const ENV_REPLY_TO = 0x10;
const ENV_EXPECTS_REPLY = 0x18;
const ENV_ACK_FLOOR = 0x20;
const ENV_ACK = 0x2a;
const ENV_WRITE = 0x32;
const ACK_OK = 0x08;
const ACK_CODE = 0x12;
const ACK_MESSAGE = 0x1a;
const WRITE_VOLUME_ID = 0x0a;
const WRITE_OFFSET = 0x10;
const WRITE_LENGTH = 0x18;
const WRITE_FUA = 0x20;

const UINT32_MAX = 0xffff_ffff;

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, at: number, v: number): number {
  while (v >= 128) {
    buf[at++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** UTF-8 length of a string (the common all-ASCII case without a native call). */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

function writeString(buf: Buffer, at: number, s: string, bytes: number): number {
  if (bytes === s.length) {
    for (let i = 0; i < bytes; i++) buf[at + i] = s.charCodeAt(i);
  } else {
    buf.write(s, at, bytes, 'utf8');
  }
  return at + bytes;
}

/** Bytes of a string field (tag, length, data), 0 when it is empty (left out). */
function stringFieldSize(bytes: number): number {
  return bytes === 0 ? 0 : 1 + varintSize(bytes) + bytes;
}

function scalarFieldSize(v: number): number {
  return v === 0 ? 0 : 1 + varintSize(v);
}

function writeScalar(buf: Buffer, at: number, tag: number, v: number): number {
  if (v === 0) return at;
  buf[at++] = tag;
  return writeVarint(buf, at, v);
}

function writeStringField(buf: Buffer, at: number, tag: number, s: string, bytes: number): number {
  if (bytes === 0) return at;
  buf[at++] = tag;
  at = writeVarint(buf, at, bytes);
  return writeString(buf, at, s, bytes);
}

/** The header fields' bytes; the caller checked they are safe unsigned integers. */
function headerBytes(seq: number, replyTo: number, expectsReply: boolean, ackFloor: number): number {
  return scalarFieldSize(seq) + scalarFieldSize(replyTo) + (expectsReply ? 2 : 0) + scalarFieldSize(ackFloor);
}

/** Writes the header fields and the body's tag and length; returns where the body's fields go. */
function writeHeader(buf: Buffer, at: number, seq: number, replyTo: number, expectsReply: boolean, ackFloor: number, bodyTag: number, bodyBytes: number): number {
  at = writeScalar(buf, at, ENV_SEQ, seq);
  at = writeScalar(buf, at, ENV_REPLY_TO, replyTo);
  if (expectsReply) {
    buf[at++] = ENV_EXPECTS_REPLY;
    buf[at++] = 1;
  }
  at = writeScalar(buf, at, ENV_ACK_FLOOR, ackFloor);
  buf[at++] = bodyTag;
  return writeVarint(buf, at, bodyBytes);
}

/** The fields of a Write body, as the encoder reads them. */
interface WriteFields {
  readonly volumeId?: unknown;
  readonly offset?: unknown;
  readonly length?: unknown;
  readonly fua?: unknown;
}

/** The fields of an Ack body, as the encoder reads them. */
interface AckFields {
  readonly ok?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
}

function encodeWrite(seq: number, replyTo: number, expectsReply: boolean, ackFloor: number, w: WriteFields, reserve: number): Buffer | null {
  const { volumeId, offset, length, fua = false } = w;
  if (typeof volumeId !== 'string' || !isUint(offset) || !isUint(length) || length > UINT32_MAX || typeof fua !== 'boolean') return null;
  const idBytes = utf8Length(volumeId);
  const body = stringFieldSize(idBytes) + scalarFieldSize(offset) + scalarFieldSize(length) + (fua ? 2 : 0);
  const buf = Buffer.allocUnsafe(reserve + headerBytes(seq, replyTo, expectsReply, ackFloor) + 1 + varintSize(body) + body);
  let at = writeHeader(buf, reserve, seq, replyTo, expectsReply, ackFloor, ENV_WRITE, body);
  at = writeStringField(buf, at, WRITE_VOLUME_ID, volumeId, idBytes);
  at = writeScalar(buf, at, WRITE_OFFSET, offset);
  at = writeScalar(buf, at, WRITE_LENGTH, length);
  if (fua) {
    buf[at++] = WRITE_FUA;
    buf[at++] = 1;
  }
  return buf;
}

function encodeAck(seq: number, replyTo: number, expectsReply: boolean, ackFloor: number, a: AckFields, reserve: number): Buffer | null {
  const { ok, code = '', message = '' } = a;
  if (typeof ok !== 'boolean' || typeof code !== 'string' || typeof message !== 'string') return null;
  const codeBytes = utf8Length(code);
  const messageBytes = utf8Length(message);
  const body = (ok ? 2 : 0) + stringFieldSize(codeBytes) + stringFieldSize(messageBytes);
  const buf = Buffer.allocUnsafe(reserve + headerBytes(seq, replyTo, expectsReply, ackFloor) + 1 + varintSize(body) + body);
  let at = writeHeader(buf, reserve, seq, replyTo, expectsReply, ackFloor, ENV_ACK, body);
  if (ok) {
    buf[at++] = ACK_OK;
    buf[at++] = 1;
  }
  at = writeStringField(buf, at, ACK_CODE, code, codeBytes);
  writeStringField(buf, at, ACK_MESSAGE, message, messageBytes);
  return buf;
}

/**
 * `env` encoded after `reserve` free bytes (for the frame prefix), when it
 * is a Write or Ack envelope with well-formed fields; null otherwise (use
 * protobufjs). The buffer is exactly `reserve` + the envelope's bytes.
 */
export function encodeHotEnvelope(env: OutgoingEnvelope, reserve: number): Buffer | null {
  const { seq = 0, replyTo = 0, ackFloor = 0, expectsReply = false } = env;
  if (!isUint(seq) || !isUint(replyTo) || !isUint(ackFloor) || typeof expectsReply !== 'boolean') return null;
  if ('write' in env && env.write !== undefined) return encodeWrite(seq, replyTo, expectsReply, ackFloor, env.write, reserve);
  if ('ack' in env && env.ack !== undefined) return encodeAck(seq, replyTo, expectsReply, ackFloor, env.ack, reserve);
  return null;
}

/**
 * A request whose body is `write` (the write path's), from its fields rather
 * than an envelope object; same bytes as encodeHotEnvelope. Null when a
 * field is not of the plain form.
 */
export function encodeWriteRequest(seq: number, ackFloor: number, write: WriteFields, reserve: number): Buffer | null {
  if (!isUint(seq) || !isUint(ackFloor)) return null;
  return encodeWrite(seq, 0, true, ackFloor, write, reserve);
}

/** The reply whose body is `ack`, from its fields; same bytes as encodeHotEnvelope. */
export function encodeAckReply(replyTo: number, ackFloor: number, ack: AckFields, reserve: number): Buffer | null {
  if (!isUint(replyTo) || !isUint(ackFloor)) return null;
  return encodeAck(0, replyTo, false, ackFloor, ack, reserve);
}

/* ---------------- decoding ---------------- */

/** The decoder's cursor; `pos` is -1 once the bytes turned out to be a form left to protobufjs. */
const cur = { pos: 0 };

function giveUp(): null {
  cur.pos = -1;
  return null;
}

/** A varint below 2^53 (at most 8 bytes), or -1 (and the cursor gives up). */
function readVarint(b: Buffer, end: number): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 8 && cur.pos < end; i++) {
    const byte = b[cur.pos++]!;
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) {
      if (v <= Number.MAX_SAFE_INTEGER) return v;
      break;
    }
    mul *= 128;
  }
  giveUp();
  return -1;
}

/** Recently decoded volume ids: the same string object again (its hash already computed for the Map lookups). */
const ID_CACHE_SIZE = 8;
const ID_CACHE_MAX_BYTES = 256;
const cachedIdBytes: Buffer[] = [];
const cachedIds: string[] = [];
let idCacheNext = 0;

/** A length-prefixed ASCII string at the cursor, or null (and the cursor gives up). */
function readAscii(b: Buffer, end: number, cache: boolean): string | null {
  const n = readVarint(b, end);
  if (n < 0) return null;
  const start = cur.pos;
  if (n > end - start) return giveUp();
  for (let i = start; i < start + n; i++) if (b[i]! >= 0x80) return giveUp();
  cur.pos = start + n;
  if (!cache) return b.toString('latin1', start, start + n);
  for (let k = 0; k < cachedIdBytes.length; k++) {
    const c = cachedIdBytes[k]!;
    if (c.length === n && b.compare(c, 0, n, start, start + n) === 0) return cachedIds[k]!;
  }
  const s = b.toString('latin1', start, start + n);
  if (n <= ID_CACHE_MAX_BYTES) {
    cachedIdBytes[idCacheNext] = Buffer.from(b.subarray(start, start + n));
    cachedIds[idCacheNext] = s;
    idCacheNext = (idCacheNext + 1) % ID_CACHE_SIZE;
  }
  return s;
}

/** Bit of a field in a `seen` mask (a field given twice is left to protobufjs). */
function once(seen: { mask: number }, field: number): boolean {
  const bit = 1 << field;
  if (seen.mask & bit) return false;
  seen.mask |= bit;
  return true;
}

interface HotWrite {
  volumeId: string;
  offset: number;
  length: number;
  fua: boolean;
}

interface HotAck {
  ok: boolean;
  code: string;
  message: string;
}

function decodeWrite(b: Buffer, end: number): HotWrite | null {
  const w: HotWrite = { volumeId: '', offset: 0, length: 0, fua: false };
  const seen = { mask: 0 };
  while (cur.pos < end) {
    const tag = b[cur.pos++]!;
    if (!once(seen, tag >> 3)) return giveUp();
    switch (tag) {
      case WRITE_VOLUME_ID: {
        const s = readAscii(b, end, true);
        if (s === null) return null;
        w.volumeId = s;
        break;
      }
      case WRITE_OFFSET:
      case WRITE_LENGTH:
      case WRITE_FUA: {
        const v = readVarint(b, end);
        if (v < 0) return null;
        if (tag === WRITE_OFFSET) w.offset = v;
        else if (tag === WRITE_FUA) w.fua = v !== 0;
        else if (v > UINT32_MAX) return giveUp();
        else w.length = v;
        break;
      }
      default:
        return giveUp();
    }
  }
  return cur.pos === end ? w : giveUp();
}

function decodeAck(b: Buffer, end: number): HotAck | null {
  const a: HotAck = { ok: false, code: '', message: '' };
  const seen = { mask: 0 };
  while (cur.pos < end) {
    const tag = b[cur.pos++]!;
    if (!once(seen, tag >> 3)) return giveUp();
    switch (tag) {
      case ACK_OK: {
        const v = readVarint(b, end);
        if (v < 0) return null;
        a.ok = v !== 0;
        break;
      }
      case ACK_CODE:
      case ACK_MESSAGE: {
        const s = readAscii(b, end, false);
        if (s === null) return null;
        if (tag === ACK_CODE) a.code = s;
        else a.message = s;
        break;
      }
      default:
        return giveUp();
    }
  }
  return cur.pos === end ? a : giveUp();
}

/**
 * Decodes an Envelope of the write path (see the header); null when `bytes`
 * hold anything else, to be decoded by protobufjs.
 */
export function decodeHotEnvelope(bytes: Buffer): Envelope | null {
  const end = bytes.length;
  cur.pos = 0;
  let seq = 0;
  let replyTo = 0;
  let expectsReply = false;
  let ackFloor = 0;
  const seen = { mask: 0 };
  let write: HotWrite | null = null;
  let ack: HotAck | null = null;
  while (cur.pos >= 0 && cur.pos < end) {
    const tag = bytes[cur.pos++]!;
    switch (tag) {
      case ENV_SEQ:
      case ENV_REPLY_TO:
      case ENV_EXPECTS_REPLY:
      case ENV_ACK_FLOOR: {
        if (!once(seen, tag >> 3)) return null;
        const v = readVarint(bytes, end);
        if (v < 0) return null;
        if (tag === ENV_SEQ) seq = v;
        else if (tag === ENV_REPLY_TO) replyTo = v;
        else if (tag === ENV_EXPECTS_REPLY) expectsReply = v !== 0;
        else ackFloor = v;
        break;
      }
      case ENV_ACK:
      case ENV_WRITE: {
        if (write !== null || ack !== null) return null;
        const n = readVarint(bytes, end);
        if (n < 0 || n > end - cur.pos) return null;
        const bodyEnd = cur.pos + n;
        if (tag === ENV_WRITE) write = decodeWrite(bytes, bodyEnd);
        else ack = decodeAck(bytes, bodyEnd);
        if (write === null && ack === null) return null;
        break;
      }
      default:
        return null;
    }
  }
  if (cur.pos !== end) return null;
  if (write !== null) return { seq, replyTo, expectsReply, ackFloor, body: 'write', write };
  if (ack !== null) return { seq, replyTo, expectsReply, ackFloor, body: 'ack', ack };
  return null;
}
