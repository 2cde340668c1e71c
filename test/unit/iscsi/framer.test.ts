/**
 * PduFramer (src/target/iscsi/framer.ts) and the digest helpers
 * (src/target/iscsi/digest.ts).
 *
 * The byte streams are assembled here by hand: BHS bytes at their RFC 7143
 * §11.2 offsets, padding to four bytes, and CRC32C digests from the small
 * bitwise reference below (never from the code under test), least
 * significant byte first.
 */
import { describe, expect, it } from 'vitest';
import { RejectReason } from '../../../src/target/iscsi/constants';
import { PAD, digestBuffer, digestOf, padLength } from '../../../src/target/iscsi/digest';
import { FramingError, FramingErrorKind, PduFramer } from '../../../src/target/iscsi/framer';
import { RawPdu } from '../../../src/target/iscsi/pdu';

/* ---------------- reference CRC32C (Castagnoli, reflected 0x82F63B78) ---------------- */

function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A digest as it goes on the wire: least significant byte first. */
const wireDigest = (bytes: Uint8Array): number[] => {
  const c = crc32c(bytes);
  return [c & 0xff, (c >>> 8) & 0xff, (c >>> 16) & 0xff, (c >>> 24) & 0xff];
};

/* ---------------- hand-built PDUs ---------------- */

const be24 = (n: number): number[] => [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

interface WirePdu {
  readonly bhs: Buffer;
  readonly ahs: Buffer;
  readonly data: Buffer;
  /** Padding bytes as sent; zeros of the right count unless given. */
  readonly padding: Buffer;
}

/** A PDU with opcode byte, flags, AHS and data; DSL and TotalAHSLength are filled in from them. */
function pdu(opcode: number, itt: number, data: Buffer = Buffer.alloc(0), ahs: Buffer = Buffer.alloc(0), padding?: Buffer): WirePdu {
  if (ahs.length % 4 !== 0) throw new Error('test AHS must be whole words');
  const bhs = Buffer.alloc(48);
  bhs[0] = opcode;
  bhs[1] = 0x80;
  bhs[4] = ahs.length / 4;
  be24(data.length).forEach((v, i) => (bhs[5 + i] = v));
  be32(itt).forEach((v, i) => (bhs[16 + i] = v));
  const pad = (4 - (data.length % 4)) % 4;
  return { bhs, ahs, data, padding: padding ?? Buffer.alloc(pad) };
}

interface Digests {
  readonly header: boolean;
  readonly data: boolean;
}
const NO_DIGESTS: Digests = { header: false, data: false };

/** The PDU as it travels: BHS, AHS, header digest, data, padding, data digest. */
function wire(p: WirePdu, digests: Digests = NO_DIGESTS): Buffer {
  const header = Buffer.concat([p.bhs, p.ahs]);
  const parts: Buffer[] = [header];
  if (digests.header) parts.push(Buffer.from(wireDigest(header)));
  if (p.data.length > 0) {
    const padded = Buffer.concat([p.data, p.padding]);
    parts.push(padded);
    if (digests.data) parts.push(Buffer.from(wireDigest(padded)));
  }
  return Buffer.concat(parts);
}

function framer(digests: Digests = NO_DIGESTS, maxDataSegmentLength = 8192): PduFramer {
  const f = new PduFramer();
  f.headerDigest = digests.header;
  f.dataDigest = digests.data;
  f.maxDataSegmentLength = maxDataSegmentLength;
  return f;
}

/** Every PDU the framer can produce right now. */
function drain(f: PduFramer): RawPdu[] {
  const out: RawPdu[] = [];
  for (let p = f.next(); p; p = f.next()) out.push(p);
  return out;
}

/** What a framed PDU says, with its data slices joined, for comparison. */
function summary(p: RawPdu): { bhs: string; ahs: string | null; data: string; dataLength: number } {
  return {
    bhs: p.bhs.toString('hex'),
    ahs: p.ahs ? p.ahs.toString('hex') : null,
    data: Buffer.concat(p.data as Buffer[]).toString('hex'),
    dataLength: p.dataLength,
  };
}
function expected(p: WirePdu): ReturnType<typeof summary> {
  return {
    bhs: p.bhs.toString('hex'),
    ahs: p.ahs.length ? p.ahs.toString('hex') : null,
    data: p.data.toString('hex'),
    dataLength: p.data.length,
  };
}

function framingError(fn: () => unknown): FramingError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FramingError);
    return err as FramingError;
  }
  throw new Error('expected a FramingError, nothing was thrown');
}

/** A 32-byte CDB's extended-CDB AHS: length 17, type 1, reserved, 16 CDB bytes (5 words). */
const EXTENDED_CDB_AHS = Buffer.from([0x00, 0x11, 0x01, 0x00, ...Array.from({ length: 16 }, (_, i) => 0xb0 + i)]);

/** Four PDUs covering: no data, AHS + padded data, unpadded data, one byte of data. */
const STREAM: readonly WirePdu[] = [
  pdu(0x40, 0x01), // NOP-Out, no data
  pdu(0x01, 0x02, Buffer.from('immed'), EXTENDED_CDB_AHS), // command, AHS, 5 bytes + 3 pad
  pdu(0x05, 0x03, Buffer.from('0123456789abcdef')), // Data-Out, 16 bytes, no pad
  pdu(0x44, 0x04, Buffer.from('X')), // Text, 1 byte + 3 pad
];

const DIGEST_MODES: readonly Digests[] = [
  { header: false, data: false },
  { header: true, data: false },
  { header: false, data: true },
  { header: true, data: true },
];
const modeName = (d: Digests): string => `header digest ${d.header ? 'on' : 'off'}, data digest ${d.data ? 'on' : 'off'}`;

/* ---------------- reference CRC and digest.ts ---------------- */

describe('reference CRC32C used by these tests', () => {
  it('gives the published check value for "123456789"', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });
});

describe('digest helpers', () => {
  it('digestOf computes CRC32C: 0xE3069283 for "123456789"', () => {
    expect(digestOf([Buffer.from('123456789')])).toBe(0xe3069283);
  });

  it('digestOf over several slices equals the digest of their concatenation', () => {
    const whole = Buffer.from('The quick brown fox jumps over the lazy dog');
    for (let k = 0; k <= whole.length; k++) {
      const got = digestOf([whole.subarray(0, k), whole.subarray(k)]);
      if (got !== crc32c(whole)) expect.fail(`split at ${k}: 0x${got.toString(16)}`);
    }
    expect(digestOf([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')])).toBe(crc32c(Buffer.from('abc')));
  });

  it('digestOf with padding covers that many zero bytes after the data', () => {
    const data = Buffer.from('abcde');
    expect(digestOf([data], 3)).toBe(crc32c(Buffer.from([...data, 0, 0, 0])));
    expect(digestOf([data], 3)).not.toBe(crc32c(data));
  });

  it('digestOf of nothing is 0', () => {
    expect(digestOf([])).toBe(0);
  });

  it('digestBuffer writes the digest least significant byte first', () => {
    expect([...digestBuffer([Buffer.from('123456789')])]).toEqual([0x83, 0x92, 0x06, 0xe3]);
    expect([...digestBuffer([Buffer.from('abcde')], 3)]).toEqual(wireDigest(Buffer.from('abcde\0\0\0')));
  });

  it('padLength pads to the next multiple of four', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 8191, 8192].map(padLength)).toEqual([0, 3, 2, 1, 0, 3, 2, 1, 0, 1, 0]);
  });

  it('PAD is four zero bytes', () => {
    expect([...PAD]).toEqual([0, 0, 0, 0]);
  });
});

/* ---------------- framing ---------------- */

describe('PduFramer', () => {
  it('returns nothing before a whole BHS has arrived', () => {
    const f = framer();
    expect(f.next()).toBeNull();
    f.push(wire(STREAM[0]!).subarray(0, 47));
    expect(f.next()).toBeNull();
    expect(f.bufferedBytes).toBe(47);
  });

  it('frames a PDU with neither AHS nor data', () => {
    const f = framer();
    f.push(wire(STREAM[0]!));
    const p = f.next()!;
    expect(summary(p)).toEqual(expected(STREAM[0]!));
    expect(p.ahs).toBeNull();
    expect(p.data).toEqual([]);
    expect(f.next()).toBeNull();
    expect(f.bufferedBytes).toBe(0);
  });

  it('frames a PDU with an AHS of TotalAHSLength words between the BHS and the data', () => {
    const f = framer();
    f.push(wire(STREAM[1]!));
    const p = f.next()!;
    expect(p.bhs.length).toBe(48);
    expect(p.ahs?.length).toBe(20);
    expect(summary(p)).toEqual(expected(STREAM[1]!));
  });

  it('waits for the padding after a data segment before returning the PDU', () => {
    const bytes = wire(pdu(0x44, 1, Buffer.from('abcde')));
    expect(bytes.length).toBe(48 + 8);
    const f = framer();
    f.push(bytes.subarray(0, 48 + 5));
    expect(f.next()).toBeNull();
    f.push(bytes.subarray(48 + 5));
    expect(summary(f.next()!).data).toBe(Buffer.from('abcde').toString('hex'));
    expect(f.bufferedBytes).toBe(0);
  });

  it('consumes the padding of every data length so the next PDU starts on its own BHS', () => {
    for (let len = 1; len <= 9; len++) {
      const first = pdu(0x44, 0x100 + len, Buffer.alloc(len, len));
      const second = pdu(0x40, 0x200 + len);
      const f = framer();
      f.push(Buffer.concat([wire(first), wire(second)]));
      expect(drain(f).map(summary), `data length ${len}`).toEqual([expected(first), expected(second)]);
      expect(f.bufferedBytes).toBe(0);
    }
  });

  it('ignores empty chunks', () => {
    const f = framer();
    f.push(Buffer.alloc(0));
    expect(f.bufferedBytes).toBe(0);
    expect(f.next()).toBeNull();
  });

  it('keeps count of the bytes it holds', () => {
    const bytes = Buffer.concat(STREAM.map((p) => wire(p)));
    const f = framer();
    f.push(bytes.subarray(0, 100));
    expect(f.bufferedBytes).toBe(100);
    f.next();
    expect(f.bufferedBytes).toBe(100 - 48);
    f.push(bytes.subarray(100));
    drain(f);
    expect(f.bufferedBytes).toBe(0);
  });

  describe.each(DIGEST_MODES.map((d) => [modeName(d), d] as const))('a stream of several PDUs, %s', (_name, digests) => {
    const bytes = Buffer.concat(STREAM.map((p) => wire(p, digests)));
    const want = STREAM.map(expected);

    it('frames the whole stream pushed at once', () => {
      const f = framer(digests);
      f.push(bytes);
      expect(drain(f).map(summary)).toEqual(want);
      expect(f.bufferedBytes).toBe(0);
    });

    it('frames the stream fed one byte at a time, returning each PDU on its last byte', () => {
      const f = framer(digests);
      const got: RawPdu[] = [];
      const completedAt: number[] = [];
      for (let i = 0; i < bytes.length; i++) {
        f.push(bytes.subarray(i, i + 1));
        for (const p of drain(f)) {
          got.push(p);
          completedAt.push(i + 1);
        }
      }
      expect(got.map(summary)).toEqual(want);
      const ends = STREAM.map((p) => wire(p, digests).length).map((_, i, lens) => lens.slice(0, i + 1).reduce((a, b) => a + b, 0));
      expect(completedAt).toEqual(ends);
    });

    it('frames the stream split into two chunks at every boundary k', () => {
      for (let k = 0; k <= bytes.length; k++) {
        const f = framer(digests);
        f.push(bytes.subarray(0, k));
        const got = drain(f);
        f.push(bytes.subarray(k));
        got.push(...drain(f));
        const s = got.map(summary);
        if (JSON.stringify(s) !== JSON.stringify(want)) expect(s, `split at ${k}`).toEqual(want);
        if (f.bufferedBytes !== 0) expect.fail(`split at ${k}: ${f.bufferedBytes} bytes left`);
      }
    });
  });

  it('frames the stream split into three chunks at every pair of boundaries, with both digests', () => {
    const digests = { header: true, data: true };
    const bytes = Buffer.concat(STREAM.map((p) => wire(p, digests)));
    const want = JSON.stringify(STREAM.map(expected));
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        const f = framer(digests);
        const got: RawPdu[] = [];
        for (const chunk of [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]) {
          f.push(chunk);
          got.push(...drain(f));
        }
        if (JSON.stringify(got.map(summary)) !== want) expect.fail(`split at ${i} and ${j}`);
      }
    }
  });

  describe('zero copy', () => {
    it('hands out the data segment as a view of the received chunk when the PDU lies within it', () => {
      const chunk = wire(pdu(0x05, 1, Buffer.from('payload!')));
      const f = framer();
      f.push(chunk);
      const p = f.next()!;
      expect(p.data.length).toBe(1);
      const d = p.data[0]!;
      expect(d.buffer).toBe(chunk.buffer);
      expect(d.byteOffset).toBe(chunk.byteOffset + 48);
      chunk[48] = 0x50; // 'P'
      expect(d.toString()).toBe('Payload!');
    });

    it('hands out a data segment that spans chunks as views of each chunk, in order', () => {
      const bytes = wire(pdu(0x05, 1, Buffer.from('0123456789ab')));
      const a = Buffer.from(bytes.subarray(0, 52)); // BHS + "0123"
      const b = Buffer.from(bytes.subarray(52)); // "456789ab"
      const f = framer();
      f.push(a);
      f.push(b);
      const p = f.next()!;
      expect(p.data.map((d) => d.toString())).toEqual(['0123', '456789ab']);
      expect(p.data[0]!.buffer).toBe(a.buffer);
      expect(p.data[1]!.buffer).toBe(b.buffer);
    });

    it('slices the data segment out of the middle of a chunk that holds several PDUs', () => {
      const first = pdu(0x40, 1);
      const second = pdu(0x05, 2, Buffer.from('ZZZZ'));
      const chunk = Buffer.concat([wire(first), wire(second), wire(first)]);
      const f = framer();
      f.push(chunk);
      const [, p] = drain(f);
      expect(p!.data[0]!.buffer).toBe(chunk.buffer);
      expect(p!.data[0]!.byteOffset).toBe(chunk.byteOffset + 48 + 48);
    });
  });

  describe('header digest', () => {
    it('covers the BHS and the AHS together', () => {
      const p = STREAM[1]!;
      const bytes = Buffer.concat([p.bhs, p.ahs, Buffer.from(wireDigest(Buffer.concat([p.bhs, p.ahs]))), p.data, p.padding]);
      const f = framer({ header: true, data: false });
      f.push(bytes);
      expect(summary(f.next()!)).toEqual(expected(p));
    });

    it('rejects a digest sent most significant byte first', () => {
      const p = STREAM[0]!;
      const bytes = Buffer.concat([p.bhs, Buffer.from(be32(crc32c(p.bhs)))]);
      const f = framer({ header: true, data: false });
      f.push(bytes);
      expect(framingError(() => f.next()).kind).toBe(FramingErrorKind.HEADER_DIGEST);
    });

    it('reports a mismatch as an unrecoverable header-digest error carrying a copy of the BHS', () => {
      const p = STREAM[2]!;
      const bytes = wire(p, { header: true, data: false });
      bytes[48 + 1] ^= 0x01; // flip one bit of the digest
      const f = framer({ header: true, data: false });
      f.push(bytes);
      const err = framingError(() => f.next());
      expect(err.kind).toBe('header-digest');
      expect(err.recoverable).toBe(false);
      expect(err.bhs?.toString('hex')).toBe(p.bhs.toString('hex'));
      bytes.fill(0);
      expect(err.bhs?.toString('hex')).toBe(p.bhs.toString('hex'));
    });

    it('detects a corrupted header byte', () => {
      const bytes = wire(STREAM[0]!, { header: true, data: false });
      bytes[17] ^= 0x80; // ITT
      const f = framer({ header: true, data: false });
      f.push(bytes);
      expect(framingError(() => f.next()).kind).toBe(FramingErrorKind.HEADER_DIGEST);
    });

    it('reports a bad header digest as soon as the header and its digest are in, without waiting for the data its length field announces', () => {
      // A corrupted DataSegmentLength is exactly what the digest guards
      // against; waiting for that many bytes can stall the connection forever.
      const bytes = wire(pdu(0x05, 1, Buffer.alloc(64)), { header: true, data: false });
      bytes[7] = 0xf0; // DSL now 0xf0 = 240 instead of 64, digest no longer matches
      const f = framer({ header: true, data: false });
      f.push(bytes.subarray(0, 52)); // BHS + header digest only
      expect(framingError(() => f.next()).kind).toBe(FramingErrorKind.HEADER_DIGEST);
    });
  });

  describe('data digest', () => {
    it('covers the data segment and its padding', () => {
      const p = pdu(0x44, 1, Buffer.from('abcde'));
      const bytes = Buffer.concat([p.bhs, p.data, p.padding, Buffer.from(wireDigest(Buffer.from('abcde\0\0\0')))]);
      const f = framer({ header: false, data: true });
      f.push(bytes);
      expect(summary(f.next()!)).toEqual(expected(p));
      expect(f.bufferedBytes).toBe(0);
    });

    it('is absent from a PDU without a data segment', () => {
      const bytes = Buffer.concat([wire(STREAM[0]!), wire(STREAM[0]!)]);
      const f = framer({ header: false, data: true });
      f.push(bytes);
      expect(drain(f).length).toBe(2);
      expect(f.bufferedBytes).toBe(0);
    });

    it('reports a mismatch as a recoverable data-digest error with reject reason 0x02, then frames the next PDU', () => {
      const damaged = STREAM[2]!;
      const bytes = Buffer.concat([wire(damaged, { header: false, data: true }), wire(STREAM[3]!, { header: false, data: true })]);
      bytes[48 + 3] ^= 0x20; // one bit of the data segment
      const f = framer({ header: false, data: true });
      f.push(bytes);
      const err = framingError(() => f.next());
      expect(err.kind).toBe(FramingErrorKind.DATA_DIGEST);
      expect(err.recoverable).toBe(true);
      expect(err.rejectReason).toBe(RejectReason.DATA_DIGEST_ERROR);
      expect(err.bhs?.toString('hex')).toBe(damaged.bhs.toString('hex'));
      expect(summary(f.next()!)).toEqual(expected(STREAM[3]!));
      expect(f.bufferedBytes).toBe(0);
    });

    it('detects a corrupted digest byte', () => {
      const bytes = wire(STREAM[3]!, { header: false, data: true });
      bytes[bytes.length - 1] ^= 0xff;
      const f = framer({ header: false, data: true });
      f.push(bytes);
      expect(framingError(() => f.next()).kind).toBe(FramingErrorKind.DATA_DIGEST);
    });

    it('accepts padding bytes that are not zero when the digest covers them as sent', () => {
      // RFC 7143 §11.1: padding bytes SHOULD (not MUST) be 0; the digest
      // covers the bytes on the wire.
      const p = pdu(0x44, 1, Buffer.from('abcde'), Buffer.alloc(0), Buffer.from([0xaa, 0xbb, 0xcc]));
      const f = framer({ header: false, data: true });
      f.push(wire(p, { header: false, data: true }));
      expect(summary(f.next()!).data).toBe(Buffer.from('abcde').toString('hex'));
    });
  });

  describe('data segment length limit', () => {
    it('accepts a data segment of exactly maxDataSegmentLength bytes', () => {
      const p = pdu(0x05, 1, Buffer.alloc(64, 7));
      const f = framer(NO_DIGESTS, 64);
      f.push(wire(p));
      expect(f.next()?.dataLength).toBe(64);
    });

    it('throws an unrecoverable segment-too-long error for one byte more, as soon as the BHS is in', () => {
      const p = pdu(0x05, 1, Buffer.alloc(65, 7));
      const f = framer(NO_DIGESTS, 64);
      f.push(wire(p).subarray(0, 48));
      const err = framingError(() => f.next());
      expect(err.kind).toBe(FramingErrorKind.SEGMENT_TOO_LONG);
      expect(err.recoverable).toBe(false);
      expect(err.rejectReason).toBe(RejectReason.PROTOCOL_ERROR);
      expect(err.bhs?.toString('hex')).toBe(p.bhs.toString('hex'));
    });

    it('measures against the default 8192 bytes', () => {
      const f = new PduFramer();
      expect(f.maxDataSegmentLength).toBe(8192);
      f.push(pdu(0x05, 1, Buffer.alloc(8193)).bhs);
      expect(framingError(() => f.next()).kind).toBe('segment-too-long');
    });

    it('reads all three bytes of DataSegmentLength', () => {
      const bhs = pdu(0x05, 1).bhs;
      bhs[5] = 0x01; // 65536
      const f = framer(NO_DIGESTS, 0xffff);
      f.push(bhs);
      expect(framingError(() => f.next()).message).toContain('65536');
    });
  });

  it('FramingError is an Error named FramingError', () => {
    const err = new FramingError('data-digest', 'x', null, true, 2);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('FramingError');
  });
});
