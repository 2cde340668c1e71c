/**
 * iSCSI text data segments (RFC 7143 §6.1): the payload of Login and Text
 * PDUs is a list of "key=value" entries, each terminated by one NUL byte,
 * the last one included.
 *
 * This module is a pure codec. It checks the syntax only: it does not know
 * which keys exist or what their values mean (that is params.ts). It enforces
 * the limits every key shares:
 *   - a key is 1..63 bytes (§6.1, "standard-label"),
 *   - no value is longer than 8192 bytes (the largest a key may carry: a
 *     large-binary-value such as CHAP_C; simple values are capped at 255
 *     bytes per key in params.ts),
 *   - the bytes are UTF-8,
 *   - a key appears at most once in one request (§6.2: a repeated key is a
 *     renegotiation, which is a protocol error).
 *
 * Text may span several PDUs (C bit, §11.10.1, §11.12.2), split anywhere,
 * even inside a key or value; TextAccumulator joins the pieces, with a cap so
 * that an initiator cannot make us buffer without limit.
 */
import { TextDecoder } from 'node:util';

/** Longest key, in bytes (RFC 7143 §6.1). */
export const TEXT_KEY_MAX_BYTES = 63;
/** Longest value this codec accepts, in bytes (large-binary-value). */
export const TEXT_VALUE_MAX_BYTES = 8192;
/** Default cap on the text of one negotiation step spread over PDUs. */
export const TEXT_ACCUMULATOR_DEFAULT_LIMIT = 64 * 1024;

/** One key=value entry, in the order it appeared. */
export type TextPair = readonly [key: string, value: string];

export const TextErrorCode = {
  MISSING_EQUALS: 'missing-equals',
  EMPTY_KEY: 'empty-key',
  KEY_TOO_LONG: 'key-too-long',
  VALUE_TOO_LONG: 'value-too-long',
  INVALID_UTF8: 'invalid-utf8',
  DUPLICATE_KEY: 'duplicate-key',
  UNTERMINATED: 'unterminated',
  TOO_LARGE: 'too-large',
  NOT_ENCODABLE: 'not-encodable',
} as const;
export type TextErrorCode = (typeof TextErrorCode)[keyof typeof TextErrorCode];

/** Malformed text. Login maps it to "initiator error" (0x0200). */
export class TextError extends Error {
  override readonly name = 'TextError';
  constructor(
    readonly code: TextErrorCode,
    message: string,
    /** The key concerned, when one could be read. */
    readonly key?: string,
  ) {
    super(message);
  }
}

export interface DecodeOptions {
  /** Allow a key to appear more than once (true for responses such as SendTargets'). Default false. */
  readonly allowDuplicates?: boolean;
}

const NUL = 0x00;
const EQUALS = 0x3d;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8String(bytes: Buffer, what: string, key?: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new TextError(TextErrorCode.INVALID_UTF8, `${what} is not valid UTF-8`, key);
  }
}

/**
 * Decode a complete text (all PDUs of one request joined). Empty entries
 * (consecutive NULs, e.g. zero padding) are skipped.
 */
export function decodeText(data: Buffer, options: DecodeOptions = {}): TextPair[] {
  const pairs: TextPair[] = [];
  const seen = new Set<string>();
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(NUL, start);
    if (end < 0) {
      // Every entry must end in NUL; without it the text was cut short.
      const eq = data.indexOf(EQUALS, start);
      const key = eq > start ? data.subarray(start, Math.min(eq, start + TEXT_KEY_MAX_BYTES + 1)).toString('utf8') : undefined;
      throw new TextError(TextErrorCode.UNTERMINATED, 'last key=value entry is not NUL-terminated', key);
    }
    if (end === start) {
      start = end + 1;
      continue;
    }
    const eq = data.indexOf(EQUALS, start);
    if (eq < 0 || eq > end) {
      throw new TextError(TextErrorCode.MISSING_EQUALS, `entry at byte ${start} has no '='`);
    }
    if (eq === start) throw new TextError(TextErrorCode.EMPTY_KEY, `entry at byte ${start} has an empty key`);
    if (eq - start > TEXT_KEY_MAX_BYTES) {
      throw new TextError(TextErrorCode.KEY_TOO_LONG, `key at byte ${start} is ${eq - start} bytes (max ${TEXT_KEY_MAX_BYTES})`);
    }
    const key = utf8String(data.subarray(start, eq), 'key');
    if (end - eq - 1 > TEXT_VALUE_MAX_BYTES) {
      throw new TextError(TextErrorCode.VALUE_TOO_LONG, `value of ${key} is ${end - eq - 1} bytes (max ${TEXT_VALUE_MAX_BYTES})`, key);
    }
    const value = utf8String(data.subarray(eq + 1, end), `value of ${key}`, key);
    if (!options.allowDuplicates) {
      if (seen.has(key)) throw new TextError(TextErrorCode.DUPLICATE_KEY, `key ${key} appears more than once`, key);
      seen.add(key);
    }
    pairs.push([key, value]);
    start = end + 1;
  }
  return pairs;
}

/** Encode pairs as "key=value\0..." (UTF-8). */
export function encodeText(pairs: ReadonlyArray<TextPair>): Buffer {
  const parts: string[] = [];
  for (const [key, value] of pairs) {
    if (key.length === 0 || key.includes('=') || key.includes('\0')) {
      throw new TextError(TextErrorCode.NOT_ENCODABLE, `key ${JSON.stringify(key)} cannot be encoded`, key);
    }
    if (value.includes('\0')) throw new TextError(TextErrorCode.NOT_ENCODABLE, `value of ${key} contains NUL`, key);
    parts.push(`${key}=${value}\0`);
  }
  return Buffer.from(parts.join(''), 'utf8');
}

/**
 * Cut an encoded text into data segments of at most maxSegment bytes, for
 * responses sent with the C bit across several PDUs. Cuts may fall inside an
 * entry (RFC 7143 allows it). Always returns at least one (possibly empty) segment.
 */
export function splitText(text: Buffer, maxSegment: number): Buffer[] {
  if (!Number.isInteger(maxSegment) || maxSegment < 1) throw new RangeError(`bad segment size ${maxSegment}`);
  if (text.length <= maxSegment) return [text];
  const out: Buffer[] = [];
  for (let off = 0; off < text.length; off += maxSegment) out.push(text.subarray(off, off + maxSegment));
  return out;
}

/**
 * Joins the data segments of one request sent with the C (continue) bit.
 * push() returns null while more is to come and the whole text once a segment
 * arrives with C clear; it then starts afresh. Pieces are kept as received
 * and joined once, at the end.
 */
export class TextAccumulator {
  private chunks: Buffer[] = [];
  private size = 0;
  private continuing = false;

  constructor(readonly limit: number = TEXT_ACCUMULATOR_DEFAULT_LIMIT) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`bad accumulator limit ${limit}`);
  }

  /** Bytes held from earlier segments. */
  get pendingBytes(): number {
    return this.size;
  }

  /** True between a segment with C set and the one that clears it. */
  get inProgress(): boolean {
    return this.continuing;
  }

  /** Add one data segment; throws TextError(TOO_LARGE), and forgets everything, past the limit. */
  push(segment: Buffer, cont: boolean): Buffer | null {
    if (this.size + segment.length > this.limit) {
      const total = this.size + segment.length;
      this.reset();
      throw new TextError(TextErrorCode.TOO_LARGE, `text of ${total} bytes exceeds the ${this.limit}-byte limit`);
    }
    if (segment.length > 0) {
      this.chunks.push(segment);
      this.size += segment.length;
    }
    if (cont) {
      this.continuing = true;
      return null;
    }
    const whole = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.reset();
    return whole;
  }

  reset(): void {
    this.chunks = [];
    this.size = 0;
    this.continuing = false;
  }
}
