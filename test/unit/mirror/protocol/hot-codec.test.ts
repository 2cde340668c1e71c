/**
 * The hand-written codec of Write and Ack envelopes (src/mirror/protocol/hot-codec.ts)
 * against protobufjs: what it encodes protobufjs reads back the same, what
 * protobufjs encodes it decodes the same or leaves to protobufjs (null).
 */
import { describe, expect, it } from 'vitest';
import { EnvelopeType, OutgoingEnvelope, decodeEnvelope, encodeAckFrame, encodeFrame, encodeWriteFrame, FrameDecoder } from '../../../../src/mirror/protocol';
import { decodeHotEnvelope, encodeHotEnvelope } from '../../../../src/mirror/protocol/hot-codec';

const TO_OBJECT = { longs: Number, defaults: true, oneofs: true } as const;

/** protobufjs's reading of `bytes`, as schema.ts did before the hot codec. */
function slowDecode(bytes: Uint8Array): Record<string, unknown> {
  return EnvelopeType.toObject(EnvelopeType.decode(bytes), TO_OBJECT);
}

function pbEncode(env: Record<string, unknown>): Buffer {
  return Buffer.from(EnvelopeType.encode(env).finish());
}

const UUID = '3b0e6c7a-9d41-4f25-8a63-5c2e1f0d7b94';

const HOT: OutgoingEnvelope[] = [
  { seq: 1, expectsReply: true, ackFloor: 1, write: { volumeId: UUID, offset: 0, length: 4096, fua: false } },
  { seq: 2 ** 53 - 1, expectsReply: true, ackFloor: 2 ** 40, write: { volumeId: 'v', offset: 2 ** 53 - 1, length: 0xffff_ffff, fua: true } },
  { seq: 300, write: { volumeId: '', offset: 127, length: 128 } },
  { seq: 7, write: { volumeId: 'volume-é-ü', offset: 16384, length: 512, fua: true } },
  { replyTo: 1, ack: { ok: true } },
  { replyTo: 2 ** 45, ackFloor: 3, ack: { ok: false, code: 'ENOSPC', message: 'no space left on device' } },
  { replyTo: 9, ack: { ok: false, code: 'EIO', message: 'écriture échouée' } },
  { replyTo: 9, ack: { ok: false } },
  { ack: { ok: true, code: '', message: '' } },
];

describe('hot codec: encoding', () => {
  for (const env of HOT) {
    it(`protobufjs reads ${JSON.stringify(env)} back unchanged`, () => {
      const bytes = encodeHotEnvelope(env, 0);
      expect(bytes).not.toBeNull();
      const back = slowDecode(bytes!);
      const kind = 'write' in env ? 'write' : 'ack';
      expect(back['body']).toBe(kind);
      expect(back).toMatchObject({ seq: env.seq ?? 0, replyTo: env.replyTo ?? 0, expectsReply: env.expectsReply ?? false, ackFloor: env.ackFloor ?? 0 });
      const body = (env as Record<string, Record<string, unknown>>)[kind]!;
      const defaults = kind === 'write' ? { volumeId: '', offset: 0, length: 0, fua: false } : { ok: false, code: '', message: '' };
      expect(back[kind]).toEqual({ ...defaults, ...body });
    });
  }

  it('leaves room for the frame prefix in front', () => {
    const env = HOT[0]!;
    const plain = encodeHotEnvelope(env, 0)!;
    const reserved = encodeHotEnvelope(env, 8)!;
    expect(reserved.length).toBe(plain.length + 8);
    expect(reserved.subarray(8)).toEqual(plain);
  });

  it('leaves other bodies and malformed fields to protobufjs', () => {
    expect(encodeHotEnvelope({ seq: 1, flush: { volumeId: 'v' } }, 0)).toBeNull();
    expect(encodeHotEnvelope({ seq: 1, heartbeat: { sentAtMs: 1, seq: 1 } }, 0)).toBeNull();
    expect(encodeHotEnvelope({ seq: -1, write: { volumeId: 'v', offset: 0, length: 1 } }, 0)).toBeNull();
    expect(encodeHotEnvelope({ seq: 1.5, write: { volumeId: 'v', offset: 0, length: 1 } }, 0)).toBeNull();
    expect(encodeHotEnvelope({ seq: 2 ** 53, write: { volumeId: 'v', offset: 0, length: 1 } }, 0)).toBeNull();
    expect(encodeHotEnvelope({ write: { volumeId: 'v', offset: 0, length: 2 ** 32 } }, 0)).toBeNull();
    expect(encodeHotEnvelope({ write: { volumeId: 'v', offset: -4096, length: 1 } }, 0)).toBeNull();
  });

  it('a frame of a Write request decodes to the same envelope and payload', () => {
    const payload = [Buffer.alloc(1000, 1), Buffer.alloc(3096, 2)];
    const env = { seq: 12, expectsReply: true, ackFloor: 10, write: { volumeId: UUID, offset: 8192, length: 4096, fua: true } };
    const dec = new FrameDecoder();
    for (const b of encodeFrame(env, payload)) dec.push(b);
    const frame = dec.next()!;
    expect(frame.envelope).toEqual({ seq: 12, replyTo: 0, expectsReply: true, ackFloor: 10, body: 'write', write: env.write });
    expect(Buffer.concat(frame.payload)).toEqual(Buffer.concat(payload));
    expect(dec.next()).toBeNull();
  });
});

describe('write path frames from fields (encodeWriteFrame, encodeAckFrame)', () => {
  const bytes = (bufs: Buffer[]): Buffer => Buffer.concat(bufs);

  it('are byte for byte the frames encodeFrame makes of the same envelopes, the fallback forms included', () => {
    const payload = [Buffer.alloc(512, 3), Buffer.alloc(0), Buffer.alloc(3584, 4)];
    const writes = [
      { seq: 1, ackFloor: 1, write: { volumeId: UUID, offset: 0, length: 4096, fua: false } },
      { seq: 2 ** 53 - 1, ackFloor: 2 ** 40, write: { volumeId: 'v', offset: 2 ** 53 - 1, length: 4096, fua: true } },
      { seq: 5, ackFloor: 0, write: { volumeId: 'volume-é', offset: 4096, length: 4096 } },
      // Not of the plain form (an offset beyond 2^53): protobufjs encodes it, through encodeFrame.
      { seq: 6, ackFloor: 2, write: { volumeId: 'v', offset: 2 ** 53, length: 4096 } },
    ];
    for (const w of writes) {
      expect(bytes(encodeWriteFrame(w.seq, w.ackFloor, w.write, payload))).toEqual(bytes(encodeFrame({ seq: w.seq, expectsReply: true, ackFloor: w.ackFloor, write: w.write }, payload)));
    }
    const acks = [
      { replyTo: 1, ackFloor: 1, ack: { ok: true } },
      { replyTo: 2 ** 45, ackFloor: 3, ack: { ok: false, code: 'ENOSPC', message: 'no space left on device' } },
      { replyTo: 9, ackFloor: 0, ack: { ok: false, code: 'EIO', message: 'écriture échouée' } },
    ];
    for (const a of acks) {
      expect(bytes(encodeAckFrame(a.replyTo, a.ackFloor, a.ack))).toEqual(bytes(encodeFrame({ replyTo: a.replyTo, ackFloor: a.ackFloor, ack: a.ack })));
    }
  });

  it('keep the frame limits', () => {
    const limits = { maxHeaderBytes: 1024, maxPayloadBytes: 1024 };
    expect(() => encodeWriteFrame(1, 1, { volumeId: 'v', offset: 0, length: 4096 }, Buffer.alloc(4096), limits)).toThrow(/exceeds the 1024-byte limit/);
    expect(() => encodeAckFrame(1, 1, { ok: false, code: 'EIO', message: 'x'.repeat(2000) }, limits)).toThrow(/header limit/);
  });
});

describe('hot codec: decoding', () => {
  it('decodes what protobufjs encodes (explicit zeros included) to what protobufjs decodes', () => {
    const cases: Record<string, unknown>[] = [
      { seq: 5, replyTo: 0, expectsReply: true, ackFloor: 0, write: { volumeId: UUID, offset: 0, length: 4096, fua: false } },
      { seq: 2 ** 52 + 1, ackFloor: 2 ** 50, write: { volumeId: 'v', offset: 2 ** 52, length: 0xffff_ffff, fua: true } },
      { replyTo: 5, ack: { ok: true } },
      { replyTo: 5, ack: {} },
      { replyTo: 5, ack: { ok: false, code: 'EAGAIN', message: 'busy' } },
      { write: {} },
    ];
    for (const c of cases) {
      const bytes = pbEncode(c);
      const hot = decodeHotEnvelope(bytes);
      expect(hot, JSON.stringify(c)).not.toBeNull();
      expect(hot).toEqual(slowDecode(bytes));
    }
  });

  it('returns the same id string for the same bytes and a new one for other bytes', () => {
    const a = decodeHotEnvelope(pbEncode({ seq: 1, write: { volumeId: 'vol-a', offset: 0, length: 1 } }));
    const b = decodeHotEnvelope(pbEncode({ seq: 2, write: { volumeId: 'vol-b', offset: 0, length: 1 } }));
    const a2 = decodeHotEnvelope(pbEncode({ seq: 3, write: { volumeId: 'vol-a', offset: 0, length: 1 } }));
    expect(a?.body === 'write' && a.write.volumeId).toBe('vol-a');
    expect(b?.body === 'write' && b.write.volumeId).toBe('vol-b');
    expect(a2?.body === 'write' && a2.write.volumeId).toBe('vol-a');
    for (let i = 0; i < 20; i++) {
      const id = `volume-${i}`;
      const e = decodeHotEnvelope(pbEncode({ seq: 1, write: { volumeId: id, offset: 0, length: 1 } }));
      expect(e?.body === 'write' && e.write.volumeId).toBe(id);
    }
  });

  it('leaves every other form to protobufjs, and decodeEnvelope still decodes it', () => {
    const other: Buffer[] = [
      pbEncode({ seq: 1, flush: { volumeId: 'v' } }),
      pbEncode({ seq: 1 }),
      pbEncode({ seq: 2 ** 53 + 2, write: { volumeId: 'v', offset: 0, length: 1 } }),
      pbEncode({ seq: 1, write: { volumeId: 'vé', offset: 0, length: 1 } }),
      pbEncode({ replyTo: 1, ack: { ok: false, code: 'EIO', message: 'échec' } }),
      // A field repeated (protobufjs: the last one wins), two bodies, a trailing unknown field.
      Buffer.concat([pbEncode({ seq: 1 }), pbEncode({ seq: 2, write: { volumeId: 'v', offset: 0, length: 1 } })]),
      Buffer.concat([pbEncode({ seq: 1, ack: { ok: true } }), pbEncode({ write: { volumeId: 'v', offset: 0, length: 1 } })]),
      Buffer.concat([pbEncode({ seq: 1, ack: { ok: true } }), Buffer.from([0xf8, 0x3e, 0x01])]),
    ];
    for (const bytes of other) {
      expect(decodeHotEnvelope(bytes), bytes.toString('hex')).toBeNull();
      expect(decodeEnvelope(bytes)).toEqual(slowDecode(bytes));
    }
  });

  it('an unknown field inside a Write goes to protobufjs, which skips it', () => {
    // Write{volume_id: "v", priority(15): 3} then length 512.
    const inner = Buffer.from([0x0a, 0x01, 0x76, 0x78, 0x03, 0x18, 0x80, 0x04]);
    const bytes = Buffer.concat([Buffer.from([0x08, 0x05, 0x32, inner.length]), inner]);
    expect(decodeHotEnvelope(bytes)).toBeNull();
    const env = decodeEnvelope(bytes);
    expect(env.body === 'write' && env.write).toEqual({ volumeId: 'v', offset: 0, length: 512, fua: false });
  });

  it('truncated or overlong bytes are not decoded here (protobufjs rejects them)', () => {
    const good = pbEncode({ seq: 300, write: { volumeId: UUID, offset: 2 ** 40, length: 4096 } });
    for (let cut = 1; cut < good.length; cut++) expect(decodeHotEnvelope(good.subarray(0, cut))).toBeNull();
    expect(decodeHotEnvelope(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x2a, 0x00]))).toBeNull();
  });
});
