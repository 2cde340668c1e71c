import { describe, expect, test } from 'vitest';
import { MemoryBackingStore } from '../../../src/block';
import { LogicalUnit, ScsiTargetDevice } from '../../../src/target/scsi';
import { be32, clearUnitAttentions, expectCheck, expectGood, fixture, readyFixture, run } from './helpers';

const reportLuns = (select: number, alloc: number): number[] => [0xa0, 0, select, 0, 0, 0, ...be32(alloc), 0, 0];

function lunList(d: Buffer): Buffer[] {
  const n = d.readUInt32BE(0) / 8;
  return Array.from({ length: n }, (_, i) => d.subarray(8 + i * 8, 16 + i * 8));
}

function makeLu(id: string): LogicalUnit {
  return new LogicalUnit({ store: new MemoryBackingStore(64 * 512), blockSize: 512, identity: { volumeId: id } });
}

describe('REPORT LUNS', () => {
  test('reportluns_simple', async () => {
    const dev = new ScsiTargetDevice({
      name: 't',
      luns: new Map([
        [3, makeLu('c')],
        [0, makeLu('a')],
        [1, makeLu('b')],
      ]),
    });
    const r = await run(dev, reportLuns(0, 512));
    expectGood(r);
    expect(r.dataIn!.readUInt32BE(0)).toBe(24);
    expect(lunList(r.dataIn!).map((l) => l.toString('hex'))).toEqual(['0000000000000000', '0001000000000000', '0003000000000000']);
    expect(dev.luns()).toEqual([0, 1, 3]);
  });

  test('reportluns_flat_space_addressing_above_255', async () => {
    const dev = new ScsiTargetDevice({ name: 't', luns: new Map([[300, makeLu('x')]]) });
    const l = lunList((await run(dev, reportLuns(0, 512), { lun: 300 })).dataIn!);
    expect(l[0]!.toString('hex')).toBe('412c000000000000');
  });

  test('reportluns_alloc_length', async () => {
    const { dev } = fixture();
    for (const alloc of [0, 1, 15]) {
      const s = expectCheck(await run(dev, reportLuns(0, alloc)), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 6 });
    }
    const two = new ScsiTargetDevice({ name: 't', luns: new Map([[0, makeLu('a')], [1, makeLu('b')]]) });
    const r = await run(two, reportLuns(0, 16));
    expect(r.dataIn!.length).toBe(16);
    expect(r.dataIn!.readUInt32BE(0)).toBe(16); // LUN LIST LENGTH describes the whole list
  });

  test('reportluns_select_report', async () => {
    const { dev } = fixture();
    expect(lunList((await run(dev, reportLuns(2, 64))).dataIn!).length).toBe(1);
    const wk = await run(dev, reportLuns(1, 64));
    expectGood(wk);
    expect(wk.dataIn!.readUInt32BE(0)).toBe(0);
    for (const select of [3, 0x10, 0xff]) expectCheck(await run(dev, reportLuns(select, 64)), 0x5, 0x24, 0x00);
  });

  test('reportluns_works_on_a_lun_that_does_not_exist', async () => {
    const { dev } = fixture();
    const r = await run(dev, reportLuns(0, 64), { lun: 42 });
    expectGood(r);
    expect(lunList(r.dataIn!).length).toBe(1);
  });

  test('reportluns_does_not_report_power_on_unit_attention', async () => {
    const { dev } = fixture();
    expectGood(await run(dev, reportLuns(0, 64)));
    expectCheck(await run(dev, [0x00, 0, 0, 0, 0, 0]), 0x6, 0x29, 0x00);
  });

  test('reportluns_data_has_changed_and_report_luns_clears_it', async () => {
    const { dev } = await readyFixture();
    dev.addLun(1, makeLu('new'));
    expect(dev.luns()).toEqual([0, 1]);
    expectGood(await run(dev, reportLuns(0, 64))); // clears 3Fh/0Eh on every LU for this nexus
    expectGood(await run(dev, [0x00, 0, 0, 0, 0, 0]));
    expect(await clearUnitAttentions(dev, { lun: 1 })).toEqual([0x2900]); // new LU: power on only
    dev.removeLun(1);
    expectCheck(await run(dev, [0x00, 0, 0, 0, 0, 0]), 0x6, 0x3f, 0x0e);
    expectCheck(await run(dev, [0x00, 0, 0, 0, 0, 0], { lun: 1 }), 0x5, 0x25, 0x00);
    expect(() => dev.addLun(0, makeLu('dup'))).toThrow(/exists/);
    expect(() => dev.addLun(16384, makeLu('big'))).toThrow(RangeError);
  });
});
