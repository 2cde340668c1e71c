/**
 * Acceptance tests for `twinsan target`, driven by real initiators: libiscsi's
 * iscsi-inq / iscsi-ls / iscsi-readcapacity16, qemu-img and qemu-io.
 *
 * The target serves one 512-byte-block LUN 0 from a backing file. Expected
 * values are written out as literals, computed by hand from the sizes:
 * 64 MiB = 67,108,864 bytes = 131,072 blocks of 512, so the last LBA is 131,071.
 *
 * Needs the Debian packages (.ci/run installs them) and the built CLI
 * (dist/cli/bin.js; `npm test` runs tsc first).
 */
import { createCipheriv } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ExpectedImage,
  INITIATOR_TOOLS,
  canConnectTo,
  describeRun,
  field,
  firstDifference,
  iscsiInq,
  iscsiLs,
  iscsiReadCapacity16,
  iscsiSupportedVpdPages,
  parseDesignators,
  qemuImgCompare,
  qemuImgInfo,
  qemuIo,
  qemuIoPatterns,
  qemuVerifyPattern,
  qemuWriteFile,
  requireTools,
  run,
  sha256File,
  stampedBytes,
  startTarget,
} from './helpers';
import type { Extent, IscsiTargetHandle, PatternOp } from './helpers';

const SIZE = 67_108_864; // 64 MiB
const LAST_LBA = 131_071n;
const BLOCK = 512;
/**
 * VPD pages libiscsi 1.19's iscsi-inq can decode; for others (e.g. 0x86
 * Extended INQUIRY Data) it exits 10 with "failed to unmarshall inquiry
 * datain blob" whatever the target sent, so those are not checked here.
 */
const ISCSI_INQ_DECODES = new Set([0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);

beforeAll(() => {
  requireTools(INITIATOR_TOOLS);
});

describe('twinsan target: identity and capacity', () => {
  let target: IscsiTargetHandle;

  beforeAll(async () => {
    target = await startTarget({ size: SIZE });
  });

  it('creates the backing file at the requested size', async () => {
    expect((await stat(target.backingPath)).size).toBe(67_108_864);
  });

  it('is found by SendTargets discovery with its IQN and portal, serving LUN 0', async () => {
    const ls = await iscsiLs(target.portalUrl, { showLuns: true });
    expect(ls.run.code, describeRun('iscsi-ls', ls.run)).toBe(0);
    expect(ls.targets.map((t) => t.iqn)).toEqual([target.iqn]);
    expect(ls.targets[0]!.portal).toMatch(new RegExp(`^127\\.0\\.0\\.1:${target.port},\\d+$`));
    expect(ls.luns).toEqual([{ lun: 0, type: 'DIRECT_ACCESS' }]);
  });

  it('answers a standard INQUIRY as a connected direct-access device', async () => {
    const inq = await iscsiInq(target.url);
    expect(inq.run.code, describeRun('iscsi-inq', inq.run)).toBe(0);
    expect(field(inq.fields, 'Peripheral Qualifier')).toBe('CONNECTED');
    expect(field(inq.fields, 'Peripheral Device Type')).toBe('DIRECT_ACCESS');
    expect(field(inq.fields, 'Removable')).toBe('0');
    expect(field(inq.fields, 'ReponseDataFormat')).toBe('2'); // libiscsi's spelling
    // Version 5 = SPC-3, 6 = SPC-4, 7 = SPC-5.
    expect(Number.parseInt(field(inq.fields, 'Version') ?? '', 10)).toBeGreaterThanOrEqual(5);
    expect(field(inq.fields, 'Vendor')).toMatch(/\S/);
    expect(field(inq.fields, 'Product')).toMatch(/\S/);
  });

  it('lists the VPD pages an SBC target needs and serves every page it lists', async () => {
    const supported = await iscsiSupportedVpdPages(target.url);
    expect(supported.run.code, describeRun('iscsi-inq page 0x00', supported.run)).toBe(0);
    // 0x00 supported pages, 0x80 unit serial number, 0x83 device identification, 0xb0 block limits.
    expect(supported.pages).toEqual(expect.arrayContaining([0x00, 0x80, 0x83, 0xb0]));
    for (const page of supported.pages.filter((p) => ISCSI_INQ_DECODES.has(p))) {
      const r = await iscsiInq(target.url, { page });
      expect(r.run.code, describeRun(`iscsi-inq page 0x${page.toString(16)}`, r.run)).toBe(0);
    }
  });

  it('gives a unit serial number (VPD 0x80)', async () => {
    const r = await iscsiInq(target.url, { page: 0x80 });
    expect(r.run.code, describeRun('iscsi-inq page 0x80', r.run)).toBe(0);
    expect(field(r.fields, 'Unit Serial Number')).toMatch(/^\[\s*\S+\]$/);
  });

  it('identifies the logical unit by a designator in VPD 0x83', async () => {
    const r = await iscsiInq(target.url, { page: 0x83 });
    expect(r.run.code, describeRun('iscsi-inq page 0x83', r.run)).toBe(0);
    const lu = parseDesignators(r.run.stdout).filter((d) => d.association === '(0) LOGICAL_UNIT');
    expect(lu.map((d) => d.type), r.run.stdout).toEqual(expect.arrayContaining([expect.stringMatching(/NAA|EUI|T10/)]));
  });

  it('rejects an unsupported VPD page with ILLEGAL REQUEST / INVALID FIELD IN CDB', async () => {
    const r = await iscsiInq(target.url, { page: 0xc7 });
    expect(r.run.code).not.toBe(0);
    expect(r.run.stderr).toMatch(/ILLEGAL_REQUEST/);
    expect(r.run.stderr).toMatch(/INVALID_FIELD_IN_CDB/);
  });

  it('reports 64 MiB in 512-byte blocks in READ CAPACITY(16), fully provisioned', async () => {
    const cap = await iscsiReadCapacity16(target.url);
    expect(cap.run.code, describeRun('iscsi-readcapacity16', cap.run)).toBe(0);
    expect(cap.blockLength).toBe(BLOCK);
    expect(cap.lastLba).toBe(LAST_LBA);
    expect(cap.totalSize).toBe(67_108_864n);
    expect(cap.lbpme).toBe(0);
  });

  it('reports 64 MiB to qemu-img', async () => {
    const info = await qemuImgInfo(target.url);
    expect(info.run.code, describeRun('qemu-img info', info.run)).toBe(0);
    expect(info.virtualSize).toBe(67_108_864);
  });

  it('fails a read past the last block', async () => {
    const r = await qemuVerifyPattern(target.url, 67_108_864, 512, 0);
    expect(r.ok).toBe(false);
  });
});

describe('twinsan target: data path', () => {
  // Offsets are spelled out; the comment gives each one's derivation.
  const WRITES: readonly PatternOp[] = [
    { op: 'write', offset: 0, length: 512, pattern: 0x11 }, // one block at LBA 0
    { op: 'write', offset: 4_096, length: 4_096, pattern: 0x22 }, // 4 KiB, 4 KiB-aligned
    { op: 'write', offset: 8_388_608, length: 1_048_576, pattern: 0x33 }, // 1 MiB at 8 MiB
    { op: 'write', offset: 8_392_704, length: 512, pattern: 0x34 }, // overwrites inside the 1 MiB (8 MiB + 4 KiB)
    { op: 'write', offset: 20_973_056, length: 3_584, pattern: 0x44 }, // 20 MiB + 1536, 7 blocks: 512-aligned, not 4 KiB-aligned
    { op: 'write', offset: 64_512, length: 2_048, pattern: 0x55 }, // 64 KiB - 1 KiB: straddles a 4 KiB and a 64 KiB boundary
    { op: 'write', offset: 67_108_352, length: 512, pattern: 0x66 }, // the last block, LBA 131,071
  ];
  const STAMPED_OFFSET = 33_554_432 + 1_024; // 32 MiB + 2 blocks
  const STAMPED_LENGTH = 1_048_576 + 1_536; // 1 MiB + 3 blocks: spans many PDUs, ends off 4 KiB
  const stamped = stampedBytes(STAMPED_LENGTH, 0x5eed);
  const expected = new ExpectedImage(SIZE).apply(WRITES).applyBytes(STAMPED_OFFSET, stamped);
  // Every write plus 4 KiB either side, so a write that spills is caught.
  const CHECKED: Extent[] = WRITES.map(({ offset, length }) => {
    const start = Math.max(0, offset - 4_096);
    return { offset: start, length: Math.min(SIZE, offset + length + 4_096) - start };
  });

  let target: IscsiTargetHandle;
  let iqn: string;
  let backingPath: string;
  let workDir: string;

  beforeAll(async () => {
    target = await startTarget({ size: SIZE });
    iqn = target.iqn;
    backingPath = target.backingPath;
    workDir = target.dir!;
    await writeFile(path.join(workDir, 'stamped.bin'), stamped);
    await expected.writeTo(path.join(workDir, 'expected.img'));
  });

  afterAll(async () => {
    await target?.stop();
  });

  it('writes 512 B, 4 KiB, 1 MiB and 512-aligned-but-not-4K-aligned patterns and reads them back', async () => {
    const w = await qemuIoPatterns(target.url, WRITES);
    expect(w.ok, describeRun('qemu-io writes', w.run)).toBe(true);
    const v = await qemuIoPatterns(target.url, expected.verifyOps(CHECKED));
    expect(v.ok, describeRun('qemu-io verify', v.run)).toBe(true);
  });

  it('keeps the order of sectors within a large non-uniform write', async () => {
    const w = await qemuWriteFile(target.url, path.join(workDir, 'stamped.bin'), STAMPED_OFFSET, STAMPED_LENGTH);
    expect(w.ok, describeRun('qemu-io write -s', w.run)).toBe(true);
    const cmp = await qemuImgCompare(target.url, path.join(workDir, 'expected.img'));
    expect(cmp.identical, describeRun('qemu-img compare', cmp.run)).toBe(true);
  });

  it('exits 0 on SIGTERM after serving I/O', async () => {
    expect(await target.stop()).toBe(0);
    expect(await canConnectTo(target.port)).toBe(false);
  });

  it('leaves a backing file whose sha256 is that of the data written', async () => {
    expect(await firstDifference(backingPath, expected.bytes)).toBeUndefined();
    expect(await sha256File(backingPath)).toBe(expected.sha256());
  });

  it('serves the same data after a restart on the same backing file without --create', async () => {
    target = await startTarget({ size: SIZE, iqn, backingPath, create: false });
    const v = await qemuIoPatterns(target.url, expected.verifyOps(CHECKED));
    expect(v.ok, describeRun('qemu-io verify after restart', v.run)).toBe(true);
    const cmp = await qemuImgCompare(target.url, path.join(workDir, 'expected.img'));
    expect(cmp.identical, describeRun('qemu-img compare after restart', cmp.run)).toBe(true);
    expect(await target.stop()).toBe(0);
    expect(await sha256File(backingPath)).toBe(expected.sha256());
  });
});

describe('twinsan target: whole-LUN copies with qemu-img and qemu-io', () => {
  let target: IscsiTargetHandle;
  let source: string;
  let sourceBytes: Buffer;

  beforeAll(async () => {
    target = await startTarget({ size: SIZE });
    // 64 MiB of pseudo-random bytes, the same on every run: AES-256-CTR of zeros under a fixed key.
    const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 0x7a), Buffer.alloc(16, 0));
    sourceBytes = Buffer.concat([cipher.update(Buffer.alloc(SIZE)), cipher.final()]);
    source = path.join(target.dir!, 'random.img');
    await writeFile(source, sourceBytes);
  });

  it('qemu-img convert copies a 64 MiB random image into the LUN byte for byte', async () => {
    // -n: the iSCSI LUN exists, do not try to create it.
    const conv = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', source, target.url], { timeoutMs: 120_000 });
    expect(conv.code, describeRun('qemu-img convert', conv)).toBe(0);
    const cmp = await qemuImgCompare(target.url, source, 120_000);
    expect(cmp.identical, describeRun('qemu-img compare', cmp.run)).toBe(true);
    expect(cmp.run.stdout).toMatch(/Images are identical/);
    expect(await firstDifference(target.backingPath, sourceBytes)).toBeUndefined();
  });

  it("qemu-io 'write -P 0x5a 0 8M' then 'read -P 0x5a 0 8M' in one session", async () => {
    const r = await qemuIo(target.url, ['write -P 0x5a 0 8M', 'read -P 0x5a 0 8M']);
    expect(r.ok, describeRun('qemu-io', r.run)).toBe(true);
    expect(r.run.stdout).toMatch(/^wrote 8388608\/8388608 bytes at offset 0$/m);
    expect(r.run.stdout).toMatch(/^read 8388608\/8388608 bytes at offset 0$/m);
    // The rest of the random image is untouched.
    const rest = await qemuIo(target.url, ['read -v 8388608 512']);
    expect(rest.ok, describeRun('qemu-io read', rest.run)).toBe(true);
    const cmp = await qemuImgCompare(target.url, source, 120_000);
    expect(cmp.run.code).toBe(1); // differs: the first 8 MiB are now 0x5a
    expect(cmp.run.stdout).toMatch(/Content mismatch at offset 0!/);
    const expected = Buffer.from(sourceBytes);
    expected.fill(0x5a, 0, 8_388_608);
    expect(await firstDifference(target.backingPath, expected)).toBeUndefined();
  });
});

describe('twinsan target: thin provisioning (--thin)', () => {
  let target: IscsiTargetHandle;

  beforeAll(async () => {
    target = await startTarget({ size: SIZE, thin: true });
  });

  it('creates a sparse backing file', async () => {
    const st = await stat(target.backingPath);
    expect(st.size).toBe(67_108_864);
    expect(st.blocks * 512).toBeLessThan(1_048_576);
  });

  it('reports the same provisioning in READ CAPACITY(16) LBPME and VPD 0xb2', async () => {
    const cap = await iscsiReadCapacity16(target.url);
    expect(cap.run.code, describeRun('iscsi-readcapacity16', cap.run)).toBe(0);
    expect(cap.lastLba).toBe(LAST_LBA);
    const supported = await iscsiSupportedVpdPages(target.url);
    expect(supported.pages).toContain(0xb2);
    const lbp = await iscsiInq(target.url, { page: 0xb2 });
    expect(lbp.run.code, describeRun('iscsi-inq page 0xb2', lbp.run)).toBe(0);
    // SBC-4: LBPME = 0 means fully provisioned (PROVISIONING TYPE 000b); a
    // thin type (010b) goes with LBPME = 1 and at least one way to unmap.
    const type = Number(field(lbp.fields, 'provisioning type'));
    expect([0, 2]).toContain(type);
    expect({ provisioningType: type, lbpme: cap.lbpme }).toEqual(type === 2 ? { provisioningType: 2, lbpme: 1 } : { provisioningType: 0, lbpme: 0 });
    if (cap.lbpme === 1) {
      const unmapWays = ['lbpu', 'lbpws', 'lbpws10'].map((k) => Number(field(lbp.fields, k)));
      expect(unmapWays, lbp.run.stdout).toContain(1);
    }
  });

  it('reads unwritten blocks as zeros and written ones back', async () => {
    const ops: PatternOp[] = [
      { op: 'write', offset: 1_048_576, length: 4_096, pattern: 0xa1 },
      { op: 'verify', offset: 1_048_576, length: 4_096, pattern: 0xa1 },
      { op: 'verify', offset: 0, length: 1_048_576, pattern: 0x00 },
      { op: 'verify', offset: 1_052_672, length: 1_048_576, pattern: 0x00 },
    ];
    const r = await qemuIoPatterns(target.url, ops);
    expect(r.ok, describeRun('qemu-io', r.run)).toBe(true);
  });
});

describe('twinsan target: CHAP (--chap USER:SECRET)', () => {
  const USER = 'twinsan-user';
  const SECRET = 'twinsan-secret-0123';
  let target: IscsiTargetHandle;

  beforeAll(async () => {
    target = await startTarget({ size: 8_388_608, chap: `${USER}:${SECRET}` });
  });

  it('logs in with the right secret (iscsi://user%secret@host:port/iqn/lun)', async () => {
    const url = target.urlWithChap(USER, SECRET);
    expect(url).toBe(`iscsi://${USER}%${SECRET}@127.0.0.1:${target.port}/${target.iqn}/0`);
    const inq = await iscsiInq(url);
    expect(inq.run.code, describeRun('iscsi-inq with CHAP', inq.run)).toBe(0);
    expect(field(inq.fields, 'Peripheral Device Type')).toBe('DIRECT_ACCESS');
    const io = await qemuIoPatterns(url, [
      { op: 'write', offset: 0, length: 4_096, pattern: 0xc4 },
      { op: 'verify', offset: 0, length: 4_096, pattern: 0xc4 },
    ]);
    expect(io.ok, describeRun('qemu-io with CHAP', io.run)).toBe(true);
  });

  it('refuses a wrong secret with an authentication failure (status 0x0201)', async () => {
    const inq = await iscsiInq(target.urlWithChap(USER, 'wrong-secret-0123'));
    expect(inq.run.code).not.toBe(0);
    expect(inq.run.stderr).toMatch(/Authentication failure\(513\)/);
  });

  it('refuses a wrong user name', async () => {
    const inq = await iscsiInq(target.urlWithChap('someone-else', SECRET));
    expect(inq.run.code).not.toBe(0);
  });

  it('refuses a login without credentials', async () => {
    const inq = await iscsiInq(target.url);
    expect(inq.run.code).not.toBe(0);
  });

  it('keeps serving after failed logins', async () => {
    const inq = await iscsiInq(target.urlWithChap(USER, SECRET));
    expect(inq.run.code, describeRun('iscsi-inq', inq.run)).toBe(0);
  });
});

describe('twinsan target: shutdown', () => {
  it('exits 0 on SIGTERM and stops listening', async () => {
    const target = await startTarget({ size: 8_388_608 });
    const inq = await iscsiInq(target.url);
    expect(inq.run.code, describeRun('iscsi-inq', inq.run)).toBe(0);
    expect(await target.stop({ signal: 'SIGTERM' })).toBe(0);
    expect(await canConnectTo(target.port)).toBe(false);
  });

  it('exits 0 on SIGINT', async () => {
    const target = await startTarget({ size: 8_388_608 });
    expect(await target.stop({ signal: 'SIGINT' })).toBe(0);
  });

  it('exits 0 on SIGTERM with an idle TCP connection open', async () => {
    const target = await startTarget({ size: 8_388_608 });
    const net = await import('node:net');
    const socket = net.connect({ host: '127.0.0.1', port: target.port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.on('error', () => undefined);
    try {
      expect(await target.stop({ signal: 'SIGTERM', timeoutMs: 10_000 })).toBe(0);
    } finally {
      socket.destroy();
    }
  });
});
