/** The metadata file format: pinned offsets, codecs, validation. */
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { EMPTY_GENERATION } from '../../../../src/mirror/generations';
import {
  AL,
  AL_OFFSET,
  decodeAlRecord,
  decodeSuperblock,
  encodeAlRecord,
  encodeSuperblock,
  layoutFor,
  META_FLAGS,
  newest,
  SB,
  Superblock,
  SUPERBLOCK_SIZE,
} from '../../../../src/mirror/meta/format';
import { MAX_REGIONS, META_TUNABLES, regionCount, tunable } from '../../../../src/mirror/meta/tunables';
import { MetadataConfigError, META_ERROR_CODES } from '../../../../src/mirror/meta/errors';

const KiB = 1024;
const MiB = 1024 * KiB;
const TiB = 1024 * 1024 * MiB;

function sample(overrides: Partial<Superblock> = {}): Superblock {
  const sizeBytes = 10 * MiB + 5;
  return {
    sequence: 7,
    volumeId: 'vol-ä1',
    sizeBytes,
    regionSize: 64 * KiB,
    alExtentSize: 4 * MiB,
    alExtents: 1024,
    flags: META_FLAGS.consistent | META_FLAGS.primary,
    layout: layoutFor(sizeBytes, 64 * KiB, 1024),
    bitmapCrc: 0x12345678,
    generations: { current: '00000000000000c3', bitmap: '00000000000000c1', history: ['00000000000000c2', '00000000000000c1'] },
    ...overrides,
  };
}

describe('layout', () => {
  it('places superblock slots, two activity-log copies, then the bitmap', () => {
    const l = layoutFor(16 * TiB, 64 * KiB, 1024);
    expect(l.alOffset).toBe(8192);
    expect(l.alCopySize).toBe(8192); // 24 + 4 * 1024 bytes, rounded up to 4096
    expect(l.bitmapOffset).toBe(8192 + 2 * 8192);
    expect(l.bitmapBytes).toBe(32 * MiB); // 256 Mi regions
    expect(l.fileSize).toBe(l.bitmapOffset + 32 * MiB);
  });

  it('rounds a partial region and byte up', () => {
    const l = layoutFor(64 * KiB * 9 + 1, 64 * KiB, 7);
    expect(l.bitmapBytes).toBe(2); // 10 regions
    expect(l.alCopySize).toBe(4096);
    expect(l.fileSize % 4096).toBe(0);
  });

  it('limits the bitmap to MAX_REGIONS regions', () => {
    expect(regionCount(MAX_REGIONS * 4096, 4096)).toBe(MAX_REGIONS);
    expect(() => regionCount(MAX_REGIONS * 4096 + 1, 4096)).toThrow(/larger regionSize/);
    expect(() => layoutFor(16 * TiB, 4 * KiB, 1024)).toThrow(MetadataConfigError);
  });
});

describe('tunables', () => {
  it('have defaults inside their bounds and a unit', () => {
    for (const [name, t] of Object.entries(META_TUNABLES)) {
      expect(tunable(name as keyof typeof META_TUNABLES, undefined)).toBe(t.default);
      expect(t.min).toBeLessThanOrEqual(t.default);
      expect(t.default).toBeLessThanOrEqual(t.max);
      expect(t.doc.length).toBeGreaterThan(10);
    }
    expect(META_TUNABLES.regionSize).toMatchObject({ min: 4 * KiB, max: 16 * MiB, default: 64 * KiB, unit: 'bytes' });
  });

  it.each([
    ['regionSize', 2 * KiB, /outside/],
    ['regionSize', 32 * MiB, /outside/],
    ['regionSize', 96 * KiB, /power of two/],
    ['alExtents', 3, /outside/],
    ['alExtentSize', 1.5, /outside/],
  ] as const)('refuses %s %d', (name, value, message) => {
    expect(() => tunable(name, value)).toThrow(message);
  });

  it('every error code is documented', () => {
    for (const doc of Object.values(META_ERROR_CODES)) expect(doc.length).toBeGreaterThan(10);
  });
});

describe('superblock', () => {
  it('pins every field offset (bytes built by hand)', () => {
    const sb = sample();
    const b = encodeSuperblock(sb);
    expect(b.length).toBe(SUPERBLOCK_SIZE);
    expect(b.toString('latin1', 0, 8)).toBe('TWSNMETA');
    expect(b.readUInt32LE(8)).toBe(1);
    expect(b.readUInt32LE(12)).toBe(512);
    expect(b.readBigUInt64LE(16)).toBe(7n);
    expect(b.readBigUInt64LE(24)).toBe(BigInt(sb.sizeBytes));
    expect(b.readUInt32LE(32)).toBe(64 * KiB);
    expect(b.readUInt32LE(36)).toBe(4 * MiB);
    expect(b.readUInt32LE(40)).toBe(1024);
    expect(b.readUInt32LE(44)).toBe(0b11);
    expect(b.readBigUInt64LE(48)).toBe(8192n);
    expect(b.readUInt32LE(56)).toBe(8192);
    expect(b.readBigUInt64LE(64)).toBe(BigInt(sb.layout.bitmapOffset));
    expect(b.readBigUInt64LE(72)).toBe(BigInt(sb.layout.bitmapBytes));
    expect(b.readUInt32LE(80)).toBe(0x12345678);
    expect(b.readBigUInt64LE(88)).toBe(0xc3n);
    expect(b.readBigUInt64LE(96)).toBe(0xc1n);
    expect(b.readUInt32LE(104)).toBe(2);
    expect(b.readBigUInt64LE(112)).toBe(0xc2n);
    expect(b.readBigUInt64LE(120)).toBe(0xc1n);
    expect(b.readUInt16LE(176)).toBe(Buffer.byteLength('vol-ä1'));
    expect(b.toString('utf8', 178, 178 + Buffer.byteLength('vol-ä1'))).toBe('vol-ä1');
    expect(b.readUInt32LE(508)).toBe(crc32c(b.subarray(0, 508)));
    expect(SB).toMatchObject({ sequence: 16, flags: 44, genCurrent: 88, volumeId: 178, crc: 508 });
  });

  it('round-trips, including an EMPTY current and no bitmap base', () => {
    const sb = sample({ generations: { current: EMPTY_GENERATION, bitmap: null, history: [] } });
    const d = decodeSuperblock(encodeSuperblock(sb));
    expect(d).toEqual({ ok: true, value: sb });
  });

  it('detects every single-byte change', () => {
    const good = encodeSuperblock(sample());
    for (let i = 0; i < SUPERBLOCK_SIZE; i += 7) {
      const bad = Buffer.from(good);
      bad[i] ^= 0x40;
      expect(decodeSuperblock(bad).ok, `byte ${i}`).toBe(false);
    }
  });

  it.each([
    ['blank', Buffer.alloc(4096), /blank/],
    ['foreign', Buffer.from('x'.repeat(4096)), /magic/],
  ])('refuses a %s slot', (_name, bytes, reason) => {
    expect(decodeSuperblock(bytes)).toMatchObject({ ok: false, reason: expect.stringMatching(reason) });
  });

  it('refuses a checksummed superblock with inconsistent fields', () => {
    const reseal = (mutate: (b: Buffer) => void): Buffer => {
      const b = encodeSuperblock(sample());
      mutate(b);
      b.writeUInt32LE(crc32c(b.subarray(0, 508)), 508);
      return b;
    };
    expect(decodeSuperblock(reseal((b) => b.writeUInt32LE(2, 8)))).toMatchObject({ ok: false, reason: /version 2/ });
    expect(decodeSuperblock(reseal((b) => b.writeUInt32LE(1 << 20, 44)))).toMatchObject({ ok: false, reason: /unknown flags/ });
    expect(decodeSuperblock(reseal((b) => b.writeBigUInt64LE(0n, 72)))).toMatchObject({ ok: false, reason: /bitmapBytes/ });
    expect(decodeSuperblock(reseal((b) => b.writeBigUInt64LE(0xc3n, 96)))).toMatchObject({ ok: false, reason: /bitmap equals current/ });
    expect(decodeSuperblock(reseal((b) => b.writeUInt32LE(3000, 32)))).toMatchObject({ ok: false, reason: /regionSize/ });
  });

  it('newest picks the valid copy with the highest sequence', () => {
    const a = decodeSuperblock(encodeSuperblock(sample({ sequence: 4 })));
    const b = decodeSuperblock(encodeSuperblock(sample({ sequence: 5 })));
    const torn = decodeSuperblock(Buffer.alloc(512, 1));
    expect(newest([a, b])?.sequence).toBe(5);
    expect(newest([b, a])?.sequence).toBe(5);
    expect(newest([a, torn])?.sequence).toBe(4);
    expect(newest([torn, torn])).toBeNull();
  });
});

describe('activity-log record', () => {
  it('pins its layout and round-trips', () => {
    const b = encodeAlRecord({ sequence: 9, extentSize: 4 * MiB, extents: [3, 1, 70000] }, 4096);
    expect(b.length).toBe(4096);
    expect(b.toString('latin1', 0, 4)).toBe('TSAL');
    expect(b.readBigUInt64LE(8)).toBe(9n);
    expect(b.readUInt32LE(16)).toBe(3);
    expect(b.readUInt32LE(20)).toBe(4 * MiB);
    expect([b.readUInt32LE(24), b.readUInt32LE(28), b.readUInt32LE(32)]).toEqual([3, 1, 70000]);
    expect(b.readUInt32LE(4)).toBe(crc32c(b.subarray(8, 36)));
    expect(AL).toMatchObject({ crc: 4, sequence: 8, count: 16, extents: 24 });
    expect(decodeAlRecord(b, 1024, 4 * MiB)).toEqual({ ok: true, value: { sequence: 9, extentSize: 4 * MiB, extents: [3, 1, 70000] } });
  });

  it('refuses torn, oversized or foreign records', () => {
    const b = encodeAlRecord({ sequence: 1, extentSize: 4 * MiB, extents: [5] }, 4096);
    const torn = Buffer.from(b);
    torn[24] ^= 1;
    expect(decodeAlRecord(torn, 1024, 4 * MiB)).toMatchObject({ ok: false, reason: /checksum/ });
    expect(decodeAlRecord(b, 0, 4 * MiB)).toMatchObject({ ok: false, reason: /capacity/ });
    expect(decodeAlRecord(b, 1024, 1 * MiB)).toMatchObject({ ok: false, reason: /extent size/ });
    expect(decodeAlRecord(Buffer.alloc(4096), 1024, 4 * MiB)).toMatchObject({ ok: false, reason: /magic/ });
    expect(() => encodeAlRecord({ sequence: 1, extentSize: 1, extents: new Array(1100).fill(0) }, 4096)).toThrow(RangeError);
  });

  it('starts after the superblock slots', () => {
    expect(AL_OFFSET).toBe(8192);
  });
});
