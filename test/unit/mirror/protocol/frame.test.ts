/**
 * Frame codec (src/mirror/protocol/frame.ts).
 *
 * The wire bytes are assembled here by hand: big-endian length prefixes and
 * Envelope headers in protobuf wire format from the small varint/tag
 * helpers below, with field numbers read off replication.proto — never from
 * the code under test. Streams are then fed to the decoder split at every
 * boundary.
 */
import { describe, expect, it } from 'vitest';
import { DecodedFrame, FrameDecoder, FrameError, FrameErrorKind, encodeFrame } from '../../../../src/mirror/protocol';

/* ---------------- protobuf wire format, by hand ---------------- */

const varint = (n: number): number[] => {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
};
const VARINT = 0;
const LEN = 2;
const key = (field: number, wire: number): number[] => varint((field << 3) | wire);
const uintField = (field: number, n: number): number[] => [...key(field, VARINT), ...varint(n)];
const bytesField = (field: number, bytes: number[]): number[] => [...key(field, LEN), ...varint(bytes.length), ...bytes];
const strField = (field: number, s: string): number[] => bytesField(field, [...Buffer.from(s, 'utf8')]);

// Field numbers from replication.proto.
const ENV = { seq: 1, replyTo: 2, expectsReply: 3, ackFloor: 4, ack: 5, write: 6, flush: 8 } as const;
const WRITE = { volumeId: 1, offset: 2, length: 3, fua: 4 } as const;

const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

function frameBytes(header: number[], payload: number[] = []): Buffer {
  return Buffer.from([...be32(8 + header.length + payload.length), ...be32(header.length), ...header, ...payload]);
}

/** A Write request (seq 7) carrying `data`, a Flush request (seq 8), an Ack reply to 7. */
const DATA = Array.from({ length: 37 }, (_, i) => (i * 7 + 3) & 0xff);
const WRITE_HEADER = [
  ...uintField(ENV.seq, 7),
  ...uintField(ENV.expectsReply, 1),
  ...uintField(ENV.ackFloor, 5),
  ...bytesField(ENV.write, [
    ...strField(WRITE.volumeId, 'vol0'),
    ...uintField(WRITE.offset, 2 ** 40 + 4096),
    ...uintField(WRITE.length, DATA.length),
    ...uintField(WRITE.fua, 1),
  ]),
];
const FLUSH_HEADER = [...uintField(ENV.seq, 8), ...uintField(ENV.expectsReply, 1), ...bytesField(ENV.flush, strField(1, 'vol0'))];
const ACK_HEADER = [...uintField(ENV.replyTo, 7), ...bytesField(ENV.ack, [...uintField(1, 1)])];

const WRITE_FRAME = frameBytes(WRITE_HEADER, DATA);
const FLUSH_FRAME = frameBytes(FLUSH_HEADER);
const ACK_FRAME = frameBytes(ACK_HEADER);
const STREAM = Buffer.concat([WRITE_FRAME, FLUSH_FRAME, ACK_FRAME]);

function expectStreamFrames(frames: DecodedFrame[]): void {
  expect(frames).toHaveLength(3);
  const [w, f, a] = frames as [DecodedFrame, DecodedFrame, DecodedFrame];

  expect(w.envelope).toMatchObject({ seq: 7, replyTo: 0, expectsReply: true, ackFloor: 5, body: 'write' });
  expect(w.envelope.body === 'write' && w.envelope.write).toEqual({ volumeId: 'vol0', offset: 2 ** 40 + 4096, length: DATA.length, fua: true });
  expect(w.payloadLength).toBe(DATA.length);
  expect([...Buffer.concat(w.payload)]).toEqual(DATA);
  expect(w.frameLength).toBe(WRITE_FRAME.length);

  expect(f.envelope).toMatchObject({ seq: 8, expectsReply: true, body: 'flush', flush: { volumeId: 'vol0' } });
  expect(f.payload).toEqual([]);
  expect(f.payloadLength).toBe(0);

  expect(a.envelope).toMatchObject({ seq: 0, replyTo: 7, expectsReply: false, body: 'ack', ack: { ok: true, code: '', message: '' } });
}

function drain(d: FrameDecoder, into: DecodedFrame[]): void {
  for (let f = d.next(); f; f = d.next()) into.push(f);
}

function decodeChunks(chunks: Buffer[]): DecodedFrame[] {
  const d = new FrameDecoder();
  const out: DecodedFrame[] = [];
  for (const c of chunks) {
    d.push(c);
    drain(d, out);
  }
  expect(d.bufferedBytes).toBe(0);
  return out;
}

describe('FrameDecoder', () => {
  it('decodes a stream of frames given in one chunk', () => {
    expectStreamFrames(decodeChunks([STREAM]));
  });

  it('decodes the stream split in two at every byte boundary', () => {
    for (let i = 1; i < STREAM.length; i++) {
      expectStreamFrames(decodeChunks([STREAM.subarray(0, i), STREAM.subarray(i)]));
    }
  });

  it('decodes the stream split in three at every pair of boundaries', () => {
    for (let i = 1; i < STREAM.length - 1; i++) {
      for (let j = i + 1; j < STREAM.length; j++) {
        const frames = decodeChunks([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]);
        expect(frames.map((f) => f.envelope.seq)).toEqual([7, 8, 0]);
        expect([...Buffer.concat(frames[0]!.payload)]).toEqual(DATA);
      }
    }
  });

  it('decodes the stream fed one byte at a time', () => {
    expectStreamFrames(decodeChunks([...STREAM].map((b) => Buffer.from([b]))));
  });

  it('returns null until a frame is complete and keeps the bytes buffered', () => {
    const d = new FrameDecoder();
    d.push(WRITE_FRAME.subarray(0, 5));
    expect(d.next()).toBeNull();
    d.push(WRITE_FRAME.subarray(5, WRITE_FRAME.length - 1));
    expect(d.next()).toBeNull();
    expect(d.bufferedBytes).toBe(WRITE_FRAME.length - 1);
    d.push(WRITE_FRAME.subarray(WRITE_FRAME.length - 1));
    expect(d.next()?.envelope.seq).toBe(7);
    expect(d.next()).toBeNull();
    expect(d.bufferedBytes).toBe(0);
  });

  it('returns a payload inside one chunk as a view of that chunk (no copy)', () => {
    const chunk = Buffer.concat([FLUSH_FRAME, WRITE_FRAME]);
    const d = new FrameDecoder();
    d.push(chunk);
    d.next();
    const w = d.next()!;
    expect(w.payload).toHaveLength(1);
    const p = w.payload[0]!;
    expect(p.buffer).toBe(chunk.buffer);
    expect(p.byteOffset).toBe(chunk.byteOffset + FLUSH_FRAME.length + 8 + WRITE_HEADER.length);
    expect(p.length).toBe(DATA.length);
  });

  it('returns a payload spanning chunks as one view per chunk (no copy)', () => {
    const split = 8 + WRITE_HEADER.length + 10;
    const a = Buffer.from(WRITE_FRAME.subarray(0, split));
    const b = Buffer.from(WRITE_FRAME.subarray(split));
    const d = new FrameDecoder();
    d.push(a);
    d.push(b);
    const w = d.next()!;
    expect(w.payload).toHaveLength(2);
    expect(w.payload[0]!.buffer).toBe(a.buffer);
    expect(w.payload[0]!.length).toBe(10);
    expect(w.payload[1]!.buffer).toBe(b.buffer);
    expect(w.payload[1]!.length).toBe(DATA.length - 10);
  });

  const failures: [string, Buffer, FrameErrorKind][] = [
    ['a total length shorter than the prefix', Buffer.from([...be32(7), ...be32(0)]), FrameErrorKind.TOTAL_TOO_SHORT],
    ['a zero header length', Buffer.from([...be32(12), ...be32(0), 1, 2, 3, 4]), FrameErrorKind.BAD_HEADER_LENGTH],
    ['a header length beyond the total', Buffer.from([...be32(12), ...be32(5), 1, 2, 3, 4]), FrameErrorKind.BAD_HEADER_LENGTH],
    ['a header beyond the header limit', Buffer.from([...be32(8 + 2 ** 21), ...be32(2 ** 21)]), FrameErrorKind.HEADER_TOO_LONG],
    ['a payload beyond the payload limit', Buffer.from([...be32(8 + 2 + 16 * 2 ** 20 + 1), ...be32(2)]), FrameErrorKind.PAYLOAD_TOO_LONG],
    ['text instead of frames', Buffer.from('GET / HTTP/1.1\r\nHost: twinsan\r\n\r\n'), FrameErrorKind.HEADER_TOO_LONG],
    // A header whose first field claims 0x7f bytes of a length-delimited field.
    ['a header that is not an Envelope', frameBytes([...key(ENV.write, LEN), 0x7f, 1, 2]), FrameErrorKind.BAD_HEADER],
  ];
  for (const [what, bytes, kind] of failures) {
    it(`fails on ${what} (${kind}) before waiting for the rest of the frame`, () => {
      const d = new FrameDecoder();
      d.push(bytes);
      let caught: unknown;
      try {
        d.next();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(FrameError);
      expect((caught as FrameError).kind).toBe(kind);
      // The stream has lost its framing: the decoder stays failed.
      d.push(ACK_FRAME);
      expect(() => d.next()).toThrow(FrameError);
    });
  }

  it('applies the limits it is given', () => {
    const d = new FrameDecoder({ maxPayloadBytes: DATA.length - 1 });
    d.push(WRITE_FRAME);
    expect(() => d.next()).toThrow(/payload of 37 bytes exceeds the 36-byte limit/);
    const ok = new FrameDecoder({ maxPayloadBytes: DATA.length });
    ok.push(WRITE_FRAME);
    expect(ok.next()?.payloadLength).toBe(DATA.length);
  });
});

describe('encodeFrame', () => {
  it('writes the frame byte for byte as built by hand', () => {
    const data = Buffer.from(DATA);
    const out = encodeFrame(
      { seq: 7, expectsReply: true, ackFloor: 5, write: { volumeId: 'vol0', offset: 2 ** 40 + 4096, length: DATA.length, fua: true } },
      data,
    );
    expect(Buffer.concat(out)).toEqual(WRITE_FRAME);
    expect(Buffer.concat(encodeFrame({ seq: 8, expectsReply: true, flush: { volumeId: 'vol0' } }))).toEqual(FLUSH_FRAME);
    expect(Buffer.concat(encodeFrame({ replyTo: 7, ack: { ok: true } }))).toEqual(ACK_FRAME);
  });

  it('returns the payload buffers themselves after the prefix and header (no copy)', () => {
    const a = Buffer.from('first part ');
    const b = Buffer.from('second part');
    const out = encodeFrame({ seq: 1, write: { volumeId: 'v', offset: 0, length: a.length + b.length } }, [a, Buffer.alloc(0), b]);
    expect(out).toHaveLength(3);
    expect(out[1]).toBe(a);
    expect(out[2]).toBe(b);
    expect(out[0]!.readUInt32BE(0)).toBe(out[0]!.length + a.length + b.length);
    expect(out[0]!.readUInt32BE(4)).toBe(out[0]!.length - 8);
  });

  it('refuses a payload beyond the limit', () => {
    expect(() => encodeFrame({ seq: 1, flush: { volumeId: 'v' } }, Buffer.alloc(9), { maxHeaderBytes: 1024, maxPayloadBytes: 8 })).toThrow(RangeError);
  });

  it('round-trips through the decoder split at every boundary', () => {
    const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    const wire = Buffer.concat([
      ...encodeFrame({ seq: 1, expectsReply: true, writeSame: { volumeId: 'x', offset: 512, length: 4096, unmap: true } }, payload),
      ...encodeFrame({ heartbeat: { sentAtMs: 1_700_000_000_000, seq: 3 } }),
    ]);
    for (let i = 1; i < wire.length; i++) {
      const frames = decodeChunks([wire.subarray(0, i), wire.subarray(i)]);
      expect(frames).toHaveLength(2);
      expect(frames[0]!.envelope).toMatchObject({ body: 'writeSame', writeSame: { volumeId: 'x', offset: 512, length: 4096, unmap: true } });
      expect(Buffer.concat(frames[0]!.payload)).toEqual(payload);
      expect(frames[1]!.envelope).toMatchObject({ body: 'heartbeat', heartbeat: { sentAtMs: 1_700_000_000_000, seq: 3, echo: false } });
    }
  });
});
