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
    const bhs = this.peek(BHS_LENGTH);
    const ahsLength = bhs[BhsOffset.TOTAL_AHS_LENGTH]! * 4;
    const hdLen = this.headerDigest ? DIGEST_LENGTH : 0;
    const headerLength = BHS_LENGTH + ahsLength;
    if (hdLen) {
      // Check the header before trusting its length fields.
      if (this.buffered < headerLength + hdLen) return null;
      const withDigest = this.peek(headerLength + hdLen);
      const expected = withDigest.readUInt32LE(headerLength);
      if (digestOf([withDigest.subarray(0, headerLength)]) !== expected) {
        throw new FramingError(FramingErrorKind.HEADER_DIGEST, 'header digest mismatch', Buffer.from(bhs), false, RejectReason.PROTOCOL_ERROR);
      }
    }
    const dataLength = bhs.readUIntBE(BhsOffset.DATA_SEGMENT_LENGTH, 3);
    if (dataLength > this.maxDataSegmentLength) {
      throw new FramingError(
        FramingErrorKind.SEGMENT_TOO_LONG,
        `data segment of ${dataLength} bytes exceeds MaxRecvDataSegmentLength ${this.maxDataSegmentLength}`,
        Buffer.from(bhs),
        false,
        RejectReason.PROTOCOL_ERROR,
      );
    }
    const pad = padLength(dataLength);
    const ddLen = this.dataDigest && dataLength > 0 ? DIGEST_LENGTH : 0;
    const total = headerLength + hdLen + dataLength + pad + ddLen;
    if (this.buffered < total) return null;

    const header = this.take(headerLength);
    const headerBuf = header.length === 1 ? header[0]! : Buffer.concat(header);
    const bhsOut = headerBuf.subarray(0, BHS_LENGTH);
    const ahs = ahsLength > 0 ? headerBuf.subarray(BHS_LENGTH) : null;
    if (hdLen) this.take(hdLen);
    const data = dataLength > 0 ? this.take(dataLength) : [];
    // The digest covers the padding as sent (it should be zero, but need not be).
    const padBytes = pad ? this.take(pad) : [];
    if (ddLen) {
      const expected = this.takeUInt32LE();
      const actual = digestOf(pad ? [...data, ...padBytes] : data);
      if (expected !== actual) {
        throw new FramingError(FramingErrorKind.DATA_DIGEST, 'data digest mismatch', Buffer.from(bhsOut), true, RejectReason.DATA_DIGEST_ERROR);
      }
    }
    return { bhs: bhsOut, ahs, data, dataLength };
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
