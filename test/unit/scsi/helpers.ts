/**
 * Test helpers: a nexus factory, a device with one in-memory LU, a command
 * runner and an independent sense-data parser. CDBs are written out by hand
 * in the tests; nothing here builds CDBs with code under test.
 */
import { expect } from 'vitest';
import { MemoryBackingStore } from '../../../src/block';
import { ItNexus, LogicalUnit, LogicalUnitOptions, ScsiResponse, ScsiTargetDevice, TaskAttribute } from '../../../src/target/scsi';

export const VOLUME_ID = '3f1c2a9e-6b1d-4f7a-9c3e-5d2b8a7e1f60';

export function nexus(n = 1, relativeTargetPortId = 1): ItNexus {
  return {
    key: `iqn.1993-08.org.debian:01:init${n},i,0x23d00000000${n}|iqn.2026-11.io.twinsan:vol0,t,0x0001`,
    initiatorPort: `iqn.1993-08.org.debian:01:init${n},i,0x23d00000000${n}`,
    targetPort: 'iqn.2026-11.io.twinsan:vol0,t,0x0001',
    relativeTargetPortId,
    initiatorTransportId: Buffer.from(`iqn.1993-08.org.debian:01:init${n}`),
  };
}

export interface Fixture {
  readonly store: MemoryBackingStore;
  readonly lu: LogicalUnit;
  readonly dev: ScsiTargetDevice;
}

export function fixture(
  options: { blocks?: number; blockSize?: 512 | 4096; thin?: boolean; lu?: Partial<LogicalUnitOptions>; device?: Partial<ConstructorParameters<typeof ScsiTargetDevice>[0]> } = {},
): Fixture {
  const blockSize = options.blockSize ?? 512;
  const store = new MemoryBackingStore((options.blocks ?? 1024) * blockSize, { thin: options.thin ?? false });
  const lu = new LogicalUnit({ store, blockSize, identity: { volumeId: VOLUME_ID }, ...options.lu });
  const dev = new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:vol0', luns: new Map([[0, lu]]), ...options.device });
  return { store, lu, dev };
}

export interface RunOptions {
  readonly lun?: number;
  readonly nexus?: ItNexus;
  readonly dataOut?: readonly Buffer[] | null;
  readonly taskAttribute?: TaskAttribute;
}

/** CDB bytes, zero-padded to 16 like an iSCSI BHS carries them unless `exact`. */
export function cdb(bytes: readonly number[], exact = false): Buffer {
  const b = Buffer.alloc(exact ? bytes.length : Math.max(16, bytes.length));
  Buffer.from(bytes).copy(b);
  return b;
}

export function run(dev: ScsiTargetDevice, bytes: readonly number[] | Buffer, o: RunOptions = {}): Promise<ScsiResponse> {
  const c = Buffer.isBuffer(bytes) ? bytes : cdb(bytes);
  const dataOut = o.dataOut === undefined ? null : o.dataOut;
  return dev.execute({
    nexus: o.nexus ?? nexus(1),
    lun: o.lun ?? 0,
    cdb: c,
    taskAttribute: o.taskAttribute ?? TaskAttribute.SIMPLE,
    expectedDataTransferLength: dataOut ? dataOut.reduce((n, b) => n + b.length, 0) : 0,
    dataOut,
  });
}

/** Issue TEST UNIT READY until GOOD, returning the unit attentions seen (asc<<8|ascq). */
export async function clearUnitAttentions(dev: ScsiTargetDevice, o: RunOptions = {}): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await run(dev, [0x00, 0, 0, 0, 0, 0], o);
    if (r.status === 0) return seen;
    const s = parseSense(r.sense!);
    expect(s.key).toBe(0x6);
    seen.push((s.asc << 8) | s.ascq);
  }
  throw new Error('unit attentions never cleared');
}

/** A fixture whose default nexus has already consumed its power-on unit attention. */
export async function readyFixture(...args: Parameters<typeof fixture>): Promise<Fixture> {
  const f = fixture(...args);
  await clearUnitAttentions(f.dev);
  return f;
}

export interface ParsedSense {
  readonly format: 'fixed' | 'descriptor';
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  readonly information?: number;
  /** Sense-key specific bytes when SKSV is set. */
  readonly sks?: { cd: boolean; bpv: boolean; bit: number; field: number };
}

/** Independent parser for fixed (0x70) and descriptor (0x72) sense data. */
export function parseSense(s: Buffer): ParsedSense {
  const code = s[0]! & 0x7f;
  if (code === 0x70) {
    const sksv = (s[15]! & 0x80) !== 0;
    return {
      format: 'fixed',
      key: s[2]! & 0x0f,
      asc: s[12]!,
      ascq: s[13]!,
      ...(s[0]! & 0x80 ? { information: s.readUInt32BE(3) } : {}),
      ...(sksv ? { sks: { cd: (s[15]! & 0x40) !== 0, bpv: (s[15]! & 0x08) !== 0, bit: s[15]! & 0x07, field: s.readUInt16BE(16) } } : {}),
    };
  }
  if (code !== 0x72) throw new Error(`unexpected sense response code 0x${code.toString(16)}`);
  let information: number | undefined;
  let sks: ParsedSense['sks'];
  for (let at = 8; at < 8 + s[7]!; at += 2 + s[at + 1]!) {
    if (s[at] === 0x00) information = Number(s.readBigUInt64BE(at + 4));
    if (s[at] === 0x02 && s[at + 4]! & 0x80) {
      sks = { cd: (s[at + 4]! & 0x40) !== 0, bpv: (s[at + 4]! & 0x08) !== 0, bit: s[at + 4]! & 0x07, field: s.readUInt16BE(at + 5) };
    }
  }
  return {
    format: 'descriptor',
    key: s[1]! & 0x0f,
    asc: s[2]!,
    ascq: s[3]!,
    ...(information === undefined ? {} : { information }),
    ...(sks ? { sks } : {}),
  };
}

/** Assert CHECK CONDITION with the given key/ASC/ASCQ; returns the parsed sense. */
export function expectCheck(r: ScsiResponse, key: number, asc: number, ascq: number): ParsedSense {
  expect(r.status).toBe(0x02);
  expect(r.sense).not.toBeNull();
  const s = parseSense(r.sense!);
  expect({ key: s.key, asc: s.asc, ascq: s.ascq }).toEqual({ key, asc, ascq });
  return s;
}

export function expectGood(r: ScsiResponse): void {
  if (r.status !== 0) throw new Error(`expected GOOD, got status ${r.status} sense ${r.sense?.toString('hex')}`);
  expect(r.sense).toBeNull();
}

/** Pattern buffer: byte i = (seed + i) & 0xff. */
export function pattern(length: number, seed = 1): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seed + i * 7) & 0xff;
  return b;
}

export const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
export const be16 = (n: number): number[] => [(n >>> 8) & 0xff, n & 0xff];
export const be64 = (n: bigint): number[] => {
  const out: number[] = [];
  for (let i = 7; i >= 0; i--) out.push(Number((n >> BigInt(i * 8)) & 0xffn));
  return out;
};
