/**
 * Splits the byte stream of a connection into PDUs. Keeps received chunks in
 * a list with an offset into the first one (no concatenation per chunk); data
 * segments come out as slices of the received chunks. Verifies digests when
 * enabled. No I/O here: the connection pushes chunks and pulls PDUs.
 */
import { BHS_LENGTH, BhsOffset, DIGEST_LENGTH, RejectReason } from './constants';
import { digestOf, padLength } from './digest';
import { RawPdu } from './pdu';

export const FramingErrorKind = {
  HEADER_DIGEST: 'header-digest',
  DATA_DIGEST: 'data-digest',
  SEGMENT_TOO_LONG: 'segment-too-long',
} as const;
export type FramingErrorKind = (typeof FramingErrorKind)[keyof typeof FramingErrorKind];

export class FramingError extends Error {
  override readonly name = 'FramingError';
  constructor(
    readonly kind: FramingErrorKind,
    message: string,
    /** The offending PDU's header, when it could be read. */
    readonly bhs: Buffer | null,
    /** Whether the stream can go on after the PDU (it was consumed whole). */
    readonly recoverable: boolean,
    readonly rejectReason: number,
  ) {
    super(message);
  }
}

const NO_DATA: readonly Buffer[] = [];

/** A copy of the BHS at `at` (for an error that outlives the received chunks). */
function copyOfBhs(view: Buffer, at: number): Buffer {
  return Buffer.from(view.subarray(at, at + BHS_LENGTH));
}

export class PduFramer {
  headerDigest = false;
  dataDigest = false;
  /** Largest data segment we accept (our declared MaxRecvDataSegmentLength). */
  maxDataSegmentLength = 8192;

  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete PDU, or null when more bytes are needed. */
  next(): RawPdu | null {
    if (this.buffered < BHS_LENGTH) return null;
    // The header's fields are read in place when it sits in the first chunk
    // (the common case): no Buffer is made for a header that is not complete yet.
    const first = this.chunks[0]!;
    const inPlace = first.length - this.head >= BHS_LENGTH;
    const view = inPlace ? first : this.peek(BHS_LENGTH);
    const at = inPlace ? this.head : 0;
    const ahsLength = view[at + BhsOffset.TOTAL_AHS_LENGTH]! * 4;
    const hdLen = this.headerDigest ? DIGEST_LENGTH : 0;
    const headerLength = BHS_LENGTH + ahsLength;
    if (hdLen) {
      // Check the header before trusting its length fields.
      if (this.buffered < headerLength + hdLen) return null;
      const withDigest = this.peek(headerLength + hdLen);
      const expected = withDigest.readUInt32LE(headerLength);
      if (digestOf([withDigest.subarray(0, headerLength)]) !== expected) {
        throw new FramingError(FramingErrorKind.HEADER_DIGEST, 'header digest mismatch', copyOfBhs(view, at), false, RejectReason.PROTOCOL_ERROR);
      }
    }
    const dataLength = view.readUIntBE(at + BhsOffset.DATA_SEGMENT_LENGTH, 3);
    if (dataLength > this.maxDataSegmentLength) {
      throw new FramingError(
        FramingErrorKind.SEGMENT_TOO_LONG,
        `data segment of ${dataLength} bytes exceeds MaxRecvDataSegmentLength ${this.maxDataSegmentLength}`,
        copyOfBhs(view, at),
        false,
        RejectReason.PROTOCOL_ERROR,
      );
    }
    const pad = padLength(dataLength);
    const ddLen = this.dataDigest && dataLength > 0 ? DIGEST_LENGTH : 0;
    const total = headerLength + hdLen + dataLength + pad + ddLen;
    if (this.buffered < total) return null;

    const headerBuf = this.takeContiguous(headerLength);
    const bhsOut = ahsLength > 0 ? headerBuf.subarray(0, BHS_LENGTH) : headerBuf;
    const ahs = ahsLength > 0 ? headerBuf.subarray(BHS_LENGTH) : null;
    if (hdLen) this.skip(hdLen);
    const data = dataLength > 0 ? this.take(dataLength) : NO_DATA;
    // The digest covers the padding as sent (it should be zero, but need not be).
    if (ddLen) {
      const padBytes = pad ? this.take(pad) : NO_DATA;
      const expected = this.takeUInt32LE();
      const actual = digestOf(pad ? [...data, ...padBytes] : data);
      if (expected !== actual) {
        throw new FramingError(FramingErrorKind.DATA_DIGEST, 'data digest mismatch', Buffer.from(bhsOut), true, RejectReason.DATA_DIGEST_ERROR);
      }
    } else if (pad) {
      this.skip(pad);
    }
    return { bhs: bhsOut, ahs, data, dataLength };
  }

  /** Consume `n` bytes as one buffer: a slice when they sit in one chunk, else a copy. */
  private takeContiguous(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head > n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      this.buffered -= n;
      return out;
    }
    const parts = this.take(n);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Consume `n` bytes without looking at them. */
  private skip(n: number): void {
    let need = n;
    while (need > 0) {
      const c = this.chunks[0]!;
      const avail = c.length - this.head;
      if (avail <= need) {
        need -= avail;
        this.chunks.shift();
        this.head = 0;
      } else {
        this.head += need;
        need = 0;
      }
    }
    this.buffered -= n;
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

  /** Consume `n` bytes as slices of the received chunks. */
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

  private takeUInt32LE(): number {
    const parts = this.take(4);
    const b = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    return b.readUInt32LE(0);
  }
}
