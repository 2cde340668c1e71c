/**
 * The Envelope codec (src/mirror/protocol/schema.ts), the generated
 * descriptor against replication.proto, and the body table
 * (src/mirror/protocol/messages.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  BODY_KINDS,
  BODY_TABLE,
  BodyKind,
  BodyMap,
  EnvelopeDecodeError,
  EnvelopeType,
  OutgoingMessage,
  Role,
  decodeEnvelope,
  encodeEnvelope,
  kindOf,
} from '../../../../src/mirror/protocol';
import { REPLICATION_DESCRIPTOR } from '../../../../src/mirror/protocol/replication-descriptor';

const PROTO_PATH = path.join(__dirname, '..', '..', '..', '..', 'src', 'mirror', 'protocol', 'replication.proto');
const PROTO_SOURCE = fs.readFileSync(PROTO_PATH, 'utf8');

/** One sample of every body, every field set to a non-default value. */
const SAMPLES: { readonly [K in BodyKind]: BodyMap[K] } = {
  ack: { ok: false, code: 'ENOSPC', message: 'no space left' },
  write: { volumeId: 'vol-a', offset: 2 ** 45 + 512, length: 65536, fua: true },
  heartbeat: { sentAtMs: 1_725_000_000_123, seq: 42, echo: true },
  flush: { volumeId: 'vol-a' },
  resyncData: { volumeId: 'vol-a', offset: 1 << 20, length: 4096 },
  writeSame: { volumeId: 'vol-a', offset: 4096, length: 2 ** 33, unmap: true },
  unmap: { volumeId: 'vol-a', offset: 8192, length: 2 ** 34 },
  writeZeroes: { volumeId: 'vol-a', offset: 0, length: 2 ** 20, unmap: true },
  hello: {
    protocolMin: 1,
    protocolMax: 3,
    nodeId: 'node-a',
    clusterId: 'c1',
    nonce: Buffer.alloc(32, 7),
    linkIndex: 1,
    sessionId: 'f00d',
    features: ['x', 'y'],
  },
  challenge: {
    hello: { protocolMin: 1, protocolMax: 1, nodeId: 'node-b', clusterId: 'c1', nonce: Buffer.alloc(32, 9), linkIndex: 0, sessionId: 'beef', features: [] },
  },
  challengeResponse: { proof: Buffer.alloc(32, 2) },
  welcome: { protocolVersion: 2, features: ['x'], proof: Buffer.alloc(32, 1) },
  volumeHello: {
    volumeId: 'vol-a',
    sizeBytes: 2 ** 42,
    regionSize: 1 << 20,
    generations: { current: 'c0ffee', bitmap: 'decade', history: ['a1', 'b2'] },
    role: Role.SECONDARY,
    dirtyBytes: 3 << 20,
    blockSize: 4096,
  },
  resyncRequest: {
    volumeId: 'vol-a',
    ranges: [
      { offset: 0, length: 4096 },
      { offset: 2 ** 40, length: 1 << 20 },
    ],
  },
  verifyRequest: { volumeId: 'vol-a', offset: 0, length: 2 ** 30, regionSize: 1 << 20, algorithm: 'sha256' },
  verifyDigests: { volumeId: 'vol-a', offset: 0, regionSize: 1 << 20, algorithm: 'sha256', digests: Buffer.alloc(64, 0xab) },
  scsiState: { volumeId: 'vol-a', kind: 'reservations', json: Buffer.from('{"holder":null}'), version: 2 ** 40 + 1 },
  resize: { volumeId: 'vol-a', sizeBytes: 2 ** 43 },
  generationUpdate: { volumeId: 'vol-a', generations: { current: 'c1', bitmap: '', history: ['c0'] }, reason: 'resync-done' },
  control: { topic: 'cluster-config', data: Buffer.from('{"version":3}') },
};

describe('replication schema', () => {
  it('the committed descriptor is what replication.proto parses to (run generate-descriptor.js after editing the .proto)', () => {
    const parsed = parse(PROTO_SOURCE, { keepCase: false }).root.toJSON();
    expect(JSON.parse(JSON.stringify(REPLICATION_DESCRIPTOR))).toEqual(JSON.parse(JSON.stringify(parsed)));
  });

  it('the body table lists exactly the members of Envelope.body', () => {
    const members = EnvelopeType.oneofs['body']!.oneof;
    expect([...BODY_KINDS].sort()).toEqual([...members].sort());
  });

  it('every body type has a sample here (keeps the round trip below complete)', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...BODY_KINDS].sort());
  });

  for (const kind of BODY_KINDS) {
    it(`round-trips ${kind} with its header fields`, () => {
      const message = { [kind]: SAMPLES[kind] } as OutgoingMessage;
      expect(kindOf(message)).toBe(kind);
      const bytes = encodeEnvelope({ seq: 2 ** 40 + 3, replyTo: 17, expectsReply: true, ackFloor: 2 ** 40, ...message });
      const env = decodeEnvelope(bytes);
      expect(env.body).toBe(kind);
      expect(env).toMatchObject({ seq: 2 ** 40 + 3, replyTo: 17, expectsReply: true, ackFloor: 2 ** 40 });
      expect((env as unknown as Record<string, unknown>)[kind]).toEqual(SAMPLES[kind]);
    });
  }

  it('fills every field a sender left out with its default, nested messages included', () => {
    const env = decodeEnvelope(encodeEnvelope({ volumeHello: { volumeId: 'v' } as BodyMap['volumeHello'] }));
    expect(env).toEqual({
      seq: 0,
      replyTo: 0,
      expectsReply: false,
      ackFloor: 0,
      body: 'volumeHello',
      volumeHello: {
        volumeId: 'v',
        sizeBytes: 0,
        regionSize: 0,
        generations: { current: '', bitmap: '', history: [] },
        role: Role.UNSPECIFIED,
        dirtyBytes: 0,
        blockSize: 0,
      },
    });
    const ack = decodeEnvelope(encodeEnvelope({ replyTo: 1, ack: { ok: true } }));
    expect(ack.body === 'ack' && ack.ack).toEqual({ ok: true, code: '', message: '' });
  });

  it('decodes bytes fields as views of the input (no copy)', () => {
    const bytes = encodeEnvelope({ challengeResponse: { proof: Buffer.alloc(32, 5) } });
    const env = decodeEnvelope(bytes);
    expect(env.body === 'challengeResponse' && env.challengeResponse.proof.buffer).toBe(bytes.buffer);
  });

  it('tolerates a newer peer: an unknown body decodes as body undefined with its header intact', () => {
    const newer = parse(
      PROTO_SOURCE.replace('GenerationUpdate generation_update = 26;', 'GenerationUpdate generation_update = 26;\n    Snapshot snapshot = 40;') +
        '\nmessage Snapshot { string volume_id = 1; string name = 2; }\n',
      { keepCase: false },
    ).root.lookupType('twinsan.mirror.v1.Envelope');
    const bytes = newer.encode({ seq: 99, expectsReply: true, ackFloor: 98, snapshot: { volumeId: 'v', name: 'nightly' } }).finish();
    const env = decodeEnvelope(bytes);
    expect(env.body).toBeUndefined();
    expect(env).toMatchObject({ seq: 99, expectsReply: true, ackFloor: 98, replyTo: 0 });
  });

  it('tolerates a newer peer: unknown fields inside a known body and the envelope are skipped', () => {
    const newer = parse(
      PROTO_SOURCE.replace('bool fua = 4;', 'bool fua = 4;\n  uint32 priority = 15;\n  bytes checksum = 16;').replace(
        'uint64 ack_floor = 4;',
        'uint64 ack_floor = 4;\n  string trace_id = 1000;',
      ),
      { keepCase: false },
    ).root.lookupType('twinsan.mirror.v1.Envelope');
    const bytes = newer
      .encode({ seq: 5, traceId: 'abc', write: { volumeId: 'v', offset: 4096, length: 512, fua: true, priority: 3, checksum: Buffer.alloc(4, 1) } })
      .finish();
    const env = decodeEnvelope(bytes);
    expect(env.body).toBe('write');
    expect(env.body === 'write' && env.write).toEqual({ volumeId: 'v', offset: 4096, length: 512, fua: true });
  });

  it('rejects bytes that are not an Envelope with EnvelopeDecodeError', () => {
    expect(() => decodeEnvelope(Buffer.from([0x32, 0x7f, 0x01]))).toThrow(EnvelopeDecodeError);
  });

  it('kindOf names the one body of an outgoing message', () => {
    expect(kindOf({ flush: { volumeId: 'v' } })).toBe('flush');
    expect(() => kindOf({} as OutgoingMessage)).toThrow(/no body/);
    expect(() => kindOf({ flush: { volumeId: 'v' }, unmap: { volumeId: 'v', offset: 0, length: 1 } } as unknown as OutgoingMessage)).toThrow(/two bodies/);
  });

  it('the body table: link-level bodies carry no payload; the data-bearing ones require one', () => {
    for (const kind of BODY_KINDS) {
      const rule = BODY_TABLE[kind];
      if (rule.scope === 'link') expect(rule.payload, kind).toBe('none');
    }
    expect(BODY_KINDS.filter((k) => BODY_TABLE[k].payload === 'required').sort()).toEqual(['resyncData', 'write', 'writeSame']);
  });
});
