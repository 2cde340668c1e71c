import { describe, expect, test } from 'vitest';
import { CommandTable, luCommand, DataDirection, ReservationClass, SBC_COMMAND_ROWS, UnitAttention } from '../../../src/target/scsi';
import { expectCheck, fixture, run } from './helpers';

const inquiry = (evpd: number, page: number, alloc: number): number[] => [0x12, evpd, page, alloc >> 8, alloc & 0xff, 0];

describe('INQUIRY', () => {
  test('inquiry_standard', async () => {
    const { dev } = fixture();
    const r = await run(dev, inquiry(0, 0, 260));
    expect(r.status).toBe(0);
    const d = r.dataIn!;
    expect(d.length).toBeGreaterThanOrEqual(36);
    expect(d[0]).toBe(0x00); // qualifier 0, direct access block device
    expect(d[2]).toBe(0x06); // SPC-4
    expect(d[3]! & 0x0f).toBe(2); // response data format
    expect(d[3]! & 0x40).toBe(0); // TRMTSK clear (SPC-2 and later)
    expect(d[3]! & 0x20).toBe(0); // NORMACA clear: ACA is not supported
    expect(d[4]).toBe(d.length - 5); // additional length
    expect(d[3]! & 0x80).toBe(0); // AERC clear
    expect(d[1]! & 0x80).toBe(0); // not removable
    expect(d[7]! & 0x02).toBe(0x02); // CMDQUE
    expect(d.subarray(8, 16).toString('latin1')).toBe('TWINSAN ');
    expect(d.subarray(16, 32).toString('latin1')).toBe('twinsan volume  ');
    expect(d.subarray(32, 36).toString('latin1')).toBe('0001');
    const descriptors = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => d.readUInt16BE(58 + i * 2));
    expect(descriptors).toContain(0x0460); // SPC-4
    expect(descriptors).toContain(0x04c0); // SBC-3 (iscsi-test-cu derives sbc3_support from it)
  });

  test('inquiry_configured_identity_strings', async () => {
    const { dev } = fixture({ lu: { identity: { volumeId: 'v1', vendor: 'ACME', product: 'disk', revision: '2' } } });
    const d = (await run(dev, inquiry(0, 0, 96))).dataIn!;
    expect(d.subarray(8, 36).toString('latin1')).toBe('ACME    disk            2   ');
  });

  test('inquiry_alloc_length', async () => {
    const { dev } = fixture();
    const full = (await run(dev, inquiry(0, 0, 255))).dataIn!;
    for (let i = 0; i < 256; i++) {
      const r = await run(dev, inquiry(0, 0, i));
      expect(r.status).toBe(0);
      expect(r.dataIn!.length).toBe(Math.min(i, full.length));
      expect(r.dataIn!.equals(full.subarray(0, r.dataIn!.length))).toBe(true);
    }
    // 16-bit allocation length: 511 and 512 give the same data.
    const a = await run(dev, inquiry(0, 0, 511));
    const b = await run(dev, inquiry(0, 0, 512));
    expect(a.dataIn!.equals(b.dataIn!)).toBe(true);
  });

  test('inquiry_evpd_clear_with_page_code_is_invalid', async () => {
    const { dev } = fixture();
    const s = expectCheck(await run(dev, inquiry(0, 1, 256)), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 2 });
  });

  test('inquiry_cmddt_is_invalid', async () => {
    const { dev } = fixture();
    const s = expectCheck(await run(dev, inquiry(0x02, 0, 256)), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 1, bpv: true, bit: 1 });
  });

  test('inquiry_unsupported_vpd_page', async () => {
    const { dev } = fixture();
    expectCheck(await run(dev, inquiry(1, 0x89, 255)), 0x5, 0x24, 0x00);
  });

  test('inquiry_supported_vpd', async () => {
    const { dev } = fixture();
    const d = (await run(dev, inquiry(1, 0x00, 255))).dataIn!;
    expect(d[1]).toBe(0x00);
    const pages = [...d.subarray(4, 4 + d.readUInt16BE(2))];
    expect(pages).toEqual([0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2]);
    for (const p of pages) {
      const r = await run(dev, inquiry(1, p, 255));
      expect(r.status).toBe(0);
      expect(r.dataIn![1]).toBe(p);
      expect(r.dataIn!.readUInt16BE(2)).toBe(r.dataIn!.length - 4);
    }
  });

  test('inquiry_vpd_page_codes_sorted', async () => {
    const { dev } = fixture();
    const d = (await run(dev, inquiry(1, 0x00, 255))).dataIn!;
    const pages = [...d.subarray(4)];
    for (let i = 1; i < pages.length; i++) expect(pages[i]!).toBeGreaterThan(pages[i - 1]!);
  });

  test('inquiry_vpd_alloc_length_truncates', async () => {
    const { dev } = fixture();
    const r = await run(dev, inquiry(1, 0x83, 10));
    expect(r.dataIn!.length).toBe(10);
    expect(r.dataIn!.readUInt16BE(2)).toBe(0x50); // page length still describes the full page
  });

  test('inquiry_block_limits', async () => {
    const { dev, lu } = fixture({ lu: { maxTransferBytes: 1024 * 1024 } });
    const d = (await run(dev, inquiry(1, 0xb0, 255))).dataIn!;
    expect(d.length).toBe(64);
    expect(d[3]).toBe(0x3c); // SBC-3 page length
    expect(d[5]).toBe(255); // MAXIMUM COMPARE AND WRITE LENGTH
    expect(d.readUInt16BE(6)).toBe(8); // optimal granularity: 4096 / 512
    expect(d.readUInt32BE(8)).toBe(2048); // max transfer length in blocks
    expect(d.readUInt32BE(8)).toBe(lu.maxTransferBlocks);
    expect(d.readUInt32BE(20)).toBe(0); // MAXIMUM UNMAP LBA COUNT (no UNMAP)
    expect(d.readUInt32BE(24)).toBe(0); // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
  });

  test('inquiry_block_device_characteristics_non_rotating', async () => {
    const { dev } = fixture();
    const d = (await run(dev, inquiry(1, 0xb1, 255))).dataIn!;
    expect(d[3]).toBe(0x3c);
    expect(d.readUInt16BE(4)).toBe(1);
  });

  test('inquiry_extended_inquiry_data', async () => {
    const { dev } = fixture();
    const d = (await run(dev, inquiry(1, 0x86, 255))).dataIn!;
    expect(d.readUInt16BE(2)).toBe(0x3c);
    expect(d[5]! & 0x07).toBe(0x07); // HEADSUP ORDSUP SIMPSUP
    expect(d[6]! & 0x01).toBe(0x01); // V_SUP
    expect(d[4]).toBe(0); // no protection information
  });

  test('inquiry_logical_block_provisioning_thick', async () => {
    const { dev } = fixture();
    const d = (await run(dev, inquiry(1, 0xb2, 255))).dataIn!;
    expect(d.readUInt16BE(2)).toBe(4);
    expect(d[5]).toBe(0);
    expect(d[6]! & 0x07).toBe(0);
  });

  test('inquiry_logical_block_provisioning_thin_follows_the_command_table', async () => {
    // Without UNMAP / WRITE SAME rows nothing is advertised beyond the provisioning type.
    const bare = SBC_COMMAND_ROWS.filter((r) => Object.keys(r.provides).length === 0);
    const plain = fixture({ thin: true, device: { commands: new CommandTable(bare) } });
    const d = (await run(plain.dev, inquiry(1, 0xb2, 255))).dataIn!;
    expect(d[5]).toBe(0x00);
    expect(d[6]! & 0x07).toBe(2); // thin provisioned
    // A table with an UNMAP row (as the next step adds) lights up LBPU, LBPWS, LBPRZ and the limits.
    const unmapRow = luCommand<void>({
      name: 'UNMAP',
      opcode: 0x42,
      cdbLength: 10,
      direction: DataDirection.OUT,
      reservation: ReservationClass.WRITE,
      usage: [0x42, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
      provides: { unmap: { maxLbaCount: 8192, maxDescriptorCount: 64, granularity: 8 }, writeSame16Unmap: true },
      parse: () => undefined,
      execute: () => ({}),
    });
    const withUnmap = fixture({ thin: true, device: { commands: new CommandTable([...bare, unmapRow]) } });
    const lbp = (await run(withUnmap.dev, inquiry(1, 0xb2, 255))).dataIn!;
    expect(lbp[5]).toBe(0x80 | 0x40 | 0x04); // LBPU, LBPWS, LBPRZ
    const bl = (await run(withUnmap.dev, inquiry(1, 0xb0, 255))).dataIn!;
    expect(bl.readUInt32BE(20)).toBe(8192);
    expect(bl.readUInt32BE(24)).toBe(64);
    expect(bl.readUInt32BE(28)).toBe(8);
    // A thick LU on the same table still claims nothing.
    const thick = fixture({ device: { commands: new CommandTable([...bare, unmapRow]) } });
    expect((await run(thick.dev, inquiry(1, 0xb2, 255))).dataIn![5]).toBe(0);
    expect((await run(thick.dev, inquiry(1, 0xb0, 255))).dataIn!.readUInt32BE(20)).toBe(0);
  });

  test('inquiry_not_present_lun', async () => {
    const { dev } = fixture();
    const r = await run(dev, inquiry(0, 0, 96), { lun: 5 });
    expect(r.status).toBe(0);
    expect(r.dataIn![0]).toBe(0x7f); // qualifier 011b, type 1Fh
    expect(r.dataIn![2]).toBe(0x06);
    const vpd = await run(dev, inquiry(1, 0, 255), { lun: 5 });
    expect([...vpd.dataIn!]).toEqual([0x7f, 0x00, 0x00, 0x01, 0x00]);
    expectCheck(await run(dev, inquiry(1, 0x83, 255), { lun: 5 }), 0x5, 0x24, 0x00);
  });

  test('inquiry_does_not_report_or_clear_unit_attention', async () => {
    const { dev, lu } = fixture();
    const r = await run(dev, inquiry(0, 0, 96));
    expect(r.status).toBe(0);
    expect(lu.unitAttentions.peek('iqn.1993-08.org.debian:01:init1,i,0x23d000000001|iqn.2026-11.io.twinsan:vol0,t,0x0001')).toEqual(
      UnitAttention.POWER_ON_RESET,
    );
    expectCheck(await run(dev, [0x00, 0, 0, 0, 0, 0]), 0x6, 0x29, 0x00);
  });
});
