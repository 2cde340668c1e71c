/**
 * Proves the integration helpers against Debian's tgt, which speaks the same
 * protocol twinsan does: discovery, INQUIRY, READ CAPACITY(16), qemu-img,
 * and qemu-io pattern writes verified on the wire and in the backing file.
 *
 * Needs root and the Debian packages (.ci/run installs them). Missing tools
 * fail the file with the install command; nothing is skipped.
 */
import { open } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ExpectedImage,
  INITIATOR_TOOLS,
  MiB,
  TGT_TOOLS,
  canConnectTo,
  describeRun,
  field,
  firstDifference,
  iscsiInq,
  iscsiLs,
  iscsiReadCapacity16,
  iscsiSupportedVpdPages,
  parseDesignators,
  qemuImgInfo,
  qemuIoPatterns,
  qemuVerifyPattern,
  qemuWritePattern,
  requireRoot,
  requireTools,
  sha256File,
  startTgt,
} from './helpers';
import type { IscsiTargetHandle, PatternOp } from './helpers';

const SIZE = 64 * MiB;

describe('integration helpers against Debian tgt', () => {
  let tgt: IscsiTargetHandle;

  beforeAll(async () => {
    requireRoot('tgtd');
    requireTools([...TGT_TOOLS, ...INITIATOR_TOOLS]);
    tgt = await startTgt({ size: SIZE });
  });

  afterAll(async () => {
    await tgt?.stop();
  });

  it('serves the data LUN as LUN 1 on a high loopback port', () => {
    expect(tgt.lun).toBe(1);
    expect(tgt.port).not.toBe(3260);
    expect(tgt.url).toBe(`iscsi://127.0.0.1:${tgt.port}/${tgt.iqn}/1`);
  });

  it('discovers the target with iscsi-ls (SendTargets)', async () => {
    const ls = await iscsiLs(tgt.portalUrl, { showLuns: true });
    expect(ls.run.code, describeRun('iscsi-ls', ls.run)).toBe(0);
    expect(ls.targets).toContainEqual({ iqn: tgt.iqn, portal: `127.0.0.1:${tgt.port},1` });
    expect(ls.luns).toContainEqual({ lun: 0, type: 'STORAGE_ARRAY_CONTROLLER' });
    expect(ls.luns).toContainEqual({ lun: 1, type: 'DIRECT_ACCESS' });
  });

  it('reads the standard INQUIRY data with iscsi-inq', async () => {
    const inq = await iscsiInq(tgt.url);
    expect(inq.run.code, describeRun('iscsi-inq', inq.run)).toBe(0);
    expect(field(inq.fields, 'Peripheral Qualifier')).toBe('CONNECTED');
    expect(field(inq.fields, 'Peripheral Device Type')).toBe('DIRECT_ACCESS');
    expect(field(inq.fields, 'Vendor')).toBe('IET');
    expect(field(inq.fields, 'Product')).toBe('VIRTUAL-DISK');
  });

  it('reads VPD pages, passing page codes in decimal', async () => {
    const supported = await iscsiSupportedVpdPages(tgt.url);
    expect(supported.run.code, describeRun('iscsi-inq page 0', supported.run)).toBe(0);
    expect(supported.pages).toEqual(expect.arrayContaining([0x00, 0x80, 0x83, 0xb0]));

    const serial = await iscsiInq(tgt.url, { page: 0x80 });
    expect(serial.run.code, describeRun('iscsi-inq page 0x80', serial.run)).toBe(0);
    expect(field(serial.fields, 'Unit Serial Number')).toMatch(/beaf11/);

    const ident = await iscsiInq(tgt.url, { page: 0x83 });
    expect(ident.run.code, describeRun('iscsi-inq page 0x83', ident.run)).toBe(0);
    expect(parseDesignators(ident.run.stdout).map((d) => d.type)).toContain('(3) NAA');
  });

  it('rejects an unsupported VPD page', async () => {
    const r = await iscsiInq(tgt.url, { page: 0xc7 });
    expect(r.run.code).not.toBe(0);
    expect(r.run.stderr).toMatch(/ILLEGAL_REQUEST/);
  });

  it('reports the capacity with iscsi-readcapacity16 and qemu-img', async () => {
    const cap = await iscsiReadCapacity16(tgt.url);
    expect(cap.run.code, describeRun('iscsi-readcapacity16', cap.run)).toBe(0);
    expect(cap.blockLength).toBe(512);
    expect(cap.lastLba).toBe(131_071n);
    expect(cap.totalSize).toBe(67_108_864n);
    expect(cap.lbpme).toBe(0);

    const info = await qemuImgInfo(tgt.url);
    expect(info.run.code, describeRun('qemu-img info', info.run)).toBe(0);
    expect(info.virtualSize).toBe(67_108_864);
  });

  it('round-trips qemu-io pattern writes to the wire and the backing file', async () => {
    const ops: PatternOp[] = [
      { op: 'write', offset: 0, length: 512, pattern: 0x5a },
      { op: 'write', offset: 1 * MiB, length: 4096, pattern: 0xa5 },
      { op: 'write', offset: 2 * MiB + 1536, length: 3584, pattern: 0x3c },
    ];
    const w = await qemuIoPatterns(tgt.url, ops);
    expect(w.ok, describeRun('qemu-io write', w.run)).toBe(true);

    const image = new ExpectedImage(SIZE).apply(ops);
    const verify = image.verifyOps([
      { offset: 0, length: 8192 },
      { offset: 1 * MiB - 512, length: 8192 },
      { offset: 2 * MiB, length: 8192 },
    ]);
    const v = await qemuIoPatterns(tgt.url, verify);
    expect(v.ok, describeRun('qemu-io verify', v.run)).toBe(true);

    const fh = await open(tgt.backingPath, 'r');
    const onDisk = Buffer.alloc(3584);
    await fh.read(onDisk, 0, onDisk.length, 2 * MiB + 1536);
    await fh.close();
    expect(onDisk.equals(Buffer.alloc(3584, 0x3c))).toBe(true);
    expect(await firstDifference(tgt.backingPath, image.bytes)).toBeUndefined();
    expect(await sha256File(tgt.backingPath)).toBe(image.sha256());
  });

  it('detects a wrong pattern (the verifier can fail)', async () => {
    const w = await qemuWritePattern(tgt.url, 8 * MiB, 4096, 0x11);
    expect(w.ok, describeRun('qemu-io write', w.run)).toBe(true);
    const wrong = await qemuVerifyPattern(tgt.url, 8 * MiB, 4096, 0x12);
    expect(wrong.ok).toBe(false);
    expect(wrong.run.stdout + wrong.run.stderr).toMatch(/Pattern verification failed/);
  });

  it('fails a read past the end of the LUN', async () => {
    const r = await qemuVerifyPattern(tgt.url, SIZE, 512, 0);
    expect(r.ok).toBe(false);
  });
});

describe('startTgt lifecycle', () => {
  beforeAll(() => {
    requireRoot('tgtd');
    requireTools([...TGT_TOOLS, ...INITIATOR_TOOLS]);
  });

  it('logs in with CHAP in libiscsi URL form and refuses a wrong secret', async () => {
    const tgt = await startTgt({ size: 8 * MiB, chap: 'harness-user:harness-secret-1' });
    const good = await iscsiInq(tgt.urlWithChap('harness-user', 'harness-secret-1'));
    expect(good.run.code, describeRun('iscsi-inq with CHAP', good.run)).toBe(0);
    expect(good.run.stdout).toMatch(/Peripheral Device Type:DIRECT_ACCESS/);

    const bad = await iscsiInq(tgt.urlWithChap('harness-user', 'wrong-secret-99'));
    expect(bad.run.code).not.toBe(0);
    expect(bad.run.stderr).toMatch(/Authentication failure/);

    const none = await iscsiInq(tgt.url);
    expect(none.run.code).not.toBe(0);
  });

  it('keeps data across a restart on the same backing file, and stops cleanly', async () => {
    const first = await startTgt({ size: 8 * MiB });
    const w = await qemuWritePattern(first.url, 4096, 4096, 0x77);
    expect(w.ok, describeRun('qemu-io write', w.run)).toBe(true);
    expect(await first.stop()).toBe(0);
    expect(await canConnectTo(first.port)).toBe(false);

    const second = await startTgt({ size: 8 * MiB, backingPath: first.backingPath });
    const v = await qemuVerifyPattern(second.url, 4096, 4096, 0x77);
    expect(v.ok, describeRun('qemu-io verify after restart', v.run)).toBe(true);
    expect(await second.stop()).toBe(0);
  });
});
