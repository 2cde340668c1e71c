/**
 * Framing of the replication stream. No I/O: a link pushes the chunks it
 * reads and pulls whole frames; it writes what `encodeFrame` returns with
 * one gathered write.
 *
 *   offset 0   u32 BE  total length: the whole frame, these 8 bytes included
 *   offset 4   u32 BE  header length: bytes of the protobuf Envelope (>= 1)
 *   offset 8           header: the Envelope
 *   8 + header         payload: total - 8 - header bytes of block data
 *
 * Block data travels as the payload, never inside protobuf: `encodeFrame`
 * returns the caller's payload buffers themselves after the encoded prefix
 * and header (no copy), and `FrameDecoder` returns the payload as slices of
 * the chunks it was given (one slice when the payload lies in one chunk,
 * several when it spans chunks; never copied). The decoder keeps the
 * received chunks in a list with an offset into the first, so a push never
 * concatenates.
 *
 * A length beyond the limits, a header length that does not fit the total,
 * or a header that is not an Envelope is a FrameError; the decoder then
 * stays failed (the stream has lost its framing) and the link must close.
 */
import { Ack, Envelope, OutgoingEnvelope, Write } from './messages';
import { encodeAckReply, encodeHotEnvelope, encodeWriteRequest } from './hot-codec';
import { EnvelopeDecodeError, decodeEnvelope, encodeEnvelope } from './schema';

export const FRAME_PREFIX_BYTES = 8;

export interface FrameLimits {
  /** Largest Envelope accepted. */
  readonly maxHeaderBytes: number;
  /** Largest payload accepted. */
  readonly maxPayloadBytes: number;
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = {
  maxHeaderBytes: 1024 * 1024,
  maxPayloadBytes: 16 * 1024 * 1024,
};

export const FrameErrorKind = {
  /** Total length below the prefix plus a one-byte header. */
  TOTAL_TOO_SHORT: 'total-too-short',
  /** Header length zero or beyond the total. */
  BAD_HEADER_LENGTH: 'bad-header-length',
  HEADER_TOO_LONG: 'header-too-long',
  PAYLOAD_TOO_LONG: 'payload-too-long',
  /** The header bytes are not an Envelope. */
  BAD_HEADER: 'bad-header',
} as const;
export type FrameErrorKind = (typeof FrameErrorKind)[keyof typeof FrameErrorKind];

export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly kind: FrameErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export type Payload = Buffer | readonly Buffer[];

export function payloadLength(payload: Payload | undefined): number {
  if (payload === undefined) return 0;
  if (Buffer.isBuffer(payload)) return payload.length;
  let n = 0;
  for (const b of payload as readonly Buffer[]) n += b.length;
  return n;
}

/**
 * The frame's buffers, for one gathered write: prefix and header in one
 * buffer, then the payload buffers as given (empty ones left out).
 */
export function encodeFrame(envelope: OutgoingEnvelope, payload?: Payload, limits: FrameLimits = DEFAULT_FRAME_LIMITS): Buffer[] {
  const dataLength = payloadLength(payload);
  if (dataLength > limits.maxPayloadBytes) {
    throw new RangeError(`payload of ${dataLength} bytes exceeds the ${limits.maxPayloadBytes}-byte limit`);
  }
  // Write and Ack envelopes are encoded straight after the prefix; the rest is copied there.
  let head = encodeHotEnvelope(envelope, FRAME_PREFIX_BYTES);
  if (head === null) {
    const header = encodeEnvelope(envelope);
    head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + header.length);
    header.copy(head, FRAME_PREFIX_BYTES);
  }
  return frameAround(head, payload, dataLength, limits);
}

/**
 * encodeFrame({ seq, expectsReply: true, ackFloor, write }, payload) for the
 * write path, without building the envelope object; the same bytes.
 */
export function encodeWriteFrame(seq: number, ackFloor: number, write: Write, payload: Payload, limits: FrameLimits = DEFAULT_FRAME_LIMITS): Buffer[] {
  const head = encodeWriteRequest(seq, ackFloor, write, FRAME_PREFIX_BYTES);
  if (head === null) return encodeFrame({ seq, expectsReply: true, ackFloor, write }, payload, limits);
  const dataLength = payloadLength(payload);
  if (dataLength > limits.maxPayloadBytes) {
    throw new RangeError(`payload of ${dataLength} bytes exceeds the ${limits.maxPayloadBytes}-byte limit`);
  }
  return frameAround(head, payload, dataLength, limits);
}

/** encodeFrame({ replyTo, ackFloor, ack }) without building the envelope object; the same bytes. */
export function encodeAckFrame(replyTo: number, ackFloor: number, ack: Ack, limits: FrameLimits = DEFAULT_FRAME_LIMITS): Buffer[] {
  const head = encodeAckReply(replyTo, ackFloor, ack, FRAME_PREFIX_BYTES);
  if (head === null) return encodeFrame({ replyTo, ackFloor, ack }, undefined, limits);
  return frameAround(head, undefined, 0, limits);
}

/** Fills in the prefix of `head` (the envelope after FRAME_PREFIX_BYTES) and lists the frame's buffers. */
function frameAround(head: Buffer, payload: Payload | undefined, dataLength: number, limits: FrameLimits): Buffer[] {
  const headerLength = head.length - FRAME_PREFIX_BYTES;
  if (headerLength > limits.maxHeaderBytes) {
    throw new RangeError(`envelope of ${headerLength} bytes exceeds the ${limits.maxHeaderBytes}-byte header limit`);
  }
  head.writeUInt32BE(head.length + dataLength, 0);
  head.writeUInt32BE(headerLength, 4);
  if (payload === undefined) return [head];
  if (Buffer.isBuffer(payload)) return payload.length > 0 ? [head, payload] : [head];
  const out: Buffer[] = [head];
  for (const b of payload as readonly Buffer[]) if (b.length > 0) out.push(b);
  return out;
}

export interface DecodedFrame {
  readonly envelope: Envelope;
  /** Slices of the pushed chunks, in order; empty when there is no payload. */
  readonly payload: Buffer[];
  readonly payloadLength: number;
  /** Bytes of the whole frame on the wire. */
  readonly frameLength: number;
}

export class FrameDecoder {
  private readonly limits: FrameLimits;
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private failed: FrameError | null = null;

  constructor(limits: Partial<FrameLimits> = {}) {
    this.limits = { ...DEFAULT_FRAME_LIMITS, ...limits };
  }

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next whole frame, or null when more bytes are needed. Throws FrameError. */
  next(): DecodedFrame | null {
    if (this.failed) throw this.failed;
    if (this.buffered < FRAME_PREFIX_BYTES) return null;
    const prefix = this.peek(FRAME_PREFIX_BYTES);
    const total = prefix.readUInt32BE(0);
    const headerLength = prefix.readUInt32BE(4);
    this.check(total, headerLength);
    if (this.buffered < total) return null;

    this.skip(FRAME_PREFIX_BYTES);
    const headerParts = this.take(headerLength);
    const header = headerParts.length === 1 ? headerParts[0]! : Buffer.concat(headerParts, headerLength);
    const dataLength = total - FRAME_PREFIX_BYTES - headerLength;
    const payload = dataLength > 0 ? this.take(dataLength) : [];
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(header);
    } catch (err) {
      if (err instanceof EnvelopeDecodeError) this.fail(FrameErrorKind.BAD_HEADER, err.message);
      throw err;
    }
    return { envelope, payload, payloadLength: dataLength, frameLength: total };
  }

  private check(total: number, headerLength: number): void {
    if (total < FRAME_PREFIX_BYTES + 1) {
      this.fail(FrameErrorKind.TOTAL_TOO_SHORT, `frame length ${total} is shorter than its ${FRAME_PREFIX_BYTES}-byte prefix and a header`);
    }
    if (headerLength === 0 || headerLength > total - FRAME_PREFIX_BYTES) {
      this.fail(FrameErrorKind.BAD_HEADER_LENGTH, `header length ${headerLength} does not fit a frame of ${total} bytes`);
    }
    if (headerLength > this.limits.maxHeaderBytes) {
      this.fail(FrameErrorKind.HEADER_TOO_LONG, `header of ${headerLength} bytes exceeds the ${this.limits.maxHeaderBytes}-byte limit`);
    }
    const dataLength = total - FRAME_PREFIX_BYTES - headerLength;
    if (dataLength > this.limits.maxPayloadBytes) {
      this.fail(FrameErrorKind.PAYLOAD_TOO_LONG, `payload of ${dataLength} bytes exceeds the ${this.limits.maxPayloadBytes}-byte limit`);
    }
  }

  private fail(kind: FrameErrorKind, message: string): never {
    this.failed = new FrameError(kind, message);
    this.chunks = [];
    this.head = 0;
    this.buffered = 0;
    throw this.failed;
  }

  /** The next `n` bytes without consuming them (copied only when they span chunks). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let off = this.head;
    for (const c of this.chunks) {
      const k = Math.min(n - filled, c.length - off);
      c.copy(out, filled, off, off + k);
      filled += k;
      off = 0;
      if (filled === n) break;
    }
    return out;
  }

  private skip(n: number): void {
    this.take(n);
  }

  /** Consumes `n` bytes as slices of the received chunks. */
  private take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.chunks[0]!;
      const avail = c.length - this.head;
      if (avail <= need) {
        out.push(this.head === 0 ? c : c.subarray(this.head));
        need -= avail;
        this.chunks.shift();
        this.head = 0;
      } else {
        out.push(c.subarray(this.head, this.head + need));
        this.head += need;
        need = 0;
      }
    }
    this.buffered -= n;
    return out;
  }
}
