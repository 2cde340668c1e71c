import { describe, expect, test, vi } from 'vitest';
import { BlockIoError } from '../../../src/block';
import { be16, be32, be64, expectCheck, expectGood, readyFixture, run } from './helpers';

const rc16 = [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(32), 0, 0];
const inquiry = (page: number): number[] => [0x12, 1, page, ...be16(255), 0];

describe('thin provisioning', () => {
  test('readcapacity16_lbpme_lbprz', async () => {
    const thin = await readyFixture({ thin: true });
    expect((await run(thin.dev, rc16)).dataIn![14]! & 0xc0).toBe(0xc0); // LBPME, LBPRZ
    const thick = await readyFixture();
    expect((await run(thick.dev, rc16)).dataIn![14]! & 0xc0).toBe(0);
    // LOWEST ALIGNED LBA 0, the alignment UNMAP GRANULARITY ALIGNMENT is reported against.
    expect((await run(thin.dev, rc16)).dataIn!.readUInt16BE(14) & 0x3fff).toBe(0);
  });

  test('inquiry_logical_block_provisioning_vpd', async () => {
    const thin = await readyFixture({ thin: true });
    const d = (await run(thin.dev, inquiry(0xb2))).dataIn!;
    expect(d.readUInt16BE(2)).toBe(4);
    expect(d[4]).toBe(0); // THRESHOLD EXPONENT 0: no provisioning thresholds
    expect(d[5]).toBe(0x80 | 0x40 | 0x20 | 0x04); // LBPU, LBPWS, LBPWS10, LBPRZ; no ANC_SUP, no DP
    expect(d[6]! & 0x07).toBe(2); // thin provisioned
    const thick = await readyFixture();
    const t = (await run(thick.dev, inquiry(0xb2))).dataIn!;
    expect([t[4], t[5], t[6]! & 0x07]).toEqual([0, 0, 0]);
  });

  test('inquiry_block_limits_vaai', async () => {
    const { dev } = await readyFixture({ thin: true });
    const d = (await run(dev, inquiry(0xb0))).dataIn!;
    expect(d[3]).toBe(0x3c);
    expect(d[4]! & 0x01).toBe(1); // WSNZ
    expect(d[5]).toBe(255); // MAXIMUM COMPARE AND WRITE LENGTH
    expect(d.readUInt32BE(20)).toBe(1024 * 1024); // MAXIMUM UNMAP LBA COUNT
    expect(d.readUInt32BE(24)).toBe(256); // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
    expect(d.readUInt32BE(28)).toBe(8); // OPTIMAL UNMAP GRANULARITY
    expect(d.readUInt32BE(32)).toBe(0x80000000); // UGAVALID, alignment 0
    expect(d.readBigUInt64BE(36)).toBe(0xffffn); // MAXIMUM WRITE SAME LENGTH
  });

  test('space_allocation_failed_for_every_writing_command', async () => {
    const commands: [string, number[], number][] = [
      ['WRITE (10)', [0x2a, 0, ...be32(64), 0, ...be16(1), 0], 512],
      ['WRITE (16)', [0x8a, 0, ...be64(64n), ...be32(1), 0, 0], 512],
      ['WRITE AND VERIFY (10)', [0x2e, 0, ...be32(64), 0, ...be16(1), 0], 512],
      ['WRITE SAME (10)', [0x41, 0, ...be32(64), 0, ...be16(8), 0], 512],
      ['WRITE SAME (16)', [0x93, 0, ...be64(64n), ...be32(8), 0, 0], 512],
      ['WRITE SAME (16) NDOB', [0x93, 0x01, ...be64(64n), ...be32(8), 0, 0], 0],
      ['COMPARE AND WRITE', [0x89, 0, ...be64(64n), 0, 0, 0, 1, 0, 0], 1024],
    ];
    for (const code of ['ENOSPC', 'EDQUOT']) {
      const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
      store.capacityLimitBytes = 0;
      const fail = (): never => {
        throw new BlockIoError(code, 'no space');
      };
      if (code === 'EDQUOT') {
        vi.spyOn(store, 'writev').mockImplementation(async () => fail());
        vi.spyOn(store, 'writeZeroes').mockImplementation(async () => fail());
      }
      for (const [name, c, bytes] of commands) {
        const r = await run(dev, c, bytes > 0 ? { dataOut: [Buffer.alloc(bytes, name.startsWith('COMPARE') ? 0 : 7).fill(0, 0, bytes / 2)] } : {});
        expect(r.status, `${code} ${name}`).toBe(0x02);
        expectCheck(r, 0x7, 0x27, 0x07);
      }
      // Reading and deallocating still work on a full volume.
      expectGood(await run(dev, [0x28, 0, ...be32(64), 0, ...be16(1), 0]));
      expectGood(await run(dev, [0x93, 0x09, ...be64(64n), ...be32(8), 0, 0]));
    }
  });

  test('out_of_space_on_a_thick_lu_is_not_a_provisioning_failure', async () => {
    const { dev, store } = await readyFixture();
    vi.spyOn(store, 'writev').mockRejectedValue(new BlockIoError('ENOSPC', 'disk full'));
    const r = await run(dev, [0x93, 0, ...be64(0n), ...be32(8), 0, 0], { dataOut: [Buffer.alloc(512, 1)] });
    expectCheck(r, 0x4, 0x44, 0x00);
  });
});
