import { describe, expect, test } from 'vitest';
import { CommandTable, DataDirection, luCommand, ReservationClass, SBC_COMMAND_ROWS } from '../../../src/target/scsi';
import { be32, clearUnitAttentions, expectCheck, expectGood, readyFixture, run } from './helpers';

const rc10 = (lba = 0, pmi = 0): number[] => [0x25, 0, ...be32(lba), 0, 0, pmi, 0];
const rc16 = (alloc: number): number[] => [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(alloc), 0, 0];

describe('READ CAPACITY', () => {
  test('readcapacity10_simple', async () => {
    const { dev } = await readyFixture({ blocks: 2048 });
    const r = await run(dev, rc10());
    expectGood(r);
    expect(r.dataIn!.length).toBe(8);
    expect(r.dataIn!.readUInt32BE(0)).toBe(2047);
    expect(r.dataIn!.readUInt32BE(4)).toBe(512);
  });

  test('readcapacity10_lba_requires_pmi', async () => {
    const { dev } = await readyFixture();
    const s = expectCheck(await run(dev, rc10(5, 0)), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 2 });
    expectGood(await run(dev, rc10(5, 1)));
  });

  test('readcapacity16_simple', async () => {
    const { dev } = await readyFixture({ blocks: 2048 });
    const r = await run(dev, rc16(32));
    expectGood(r);
    const d = r.dataIn!;
    expect(d.length).toBe(32);
    expect(d.readBigUInt64BE(0)).toBe(2047n);
    expect(d.readUInt32BE(8)).toBe(512);
    expect(d[12]).toBe(0); // no protection
    expect(d[13]! & 0x0f).toBe(3); // 8 logical blocks per 4096-byte physical block
    expect(d[14]! & 0xc0).toBe(0); // thick: no LBPME / LBPRZ
  });

  test('readcapacity16_4096_byte_blocks', async () => {
    const { dev } = await readyFixture({ blocks: 16, blockSize: 4096 });
    const d = (await run(dev, rc16(32))).dataIn!;
    expect(d.readBigUInt64BE(0)).toBe(15n);
    expect(d.readUInt32BE(8)).toBe(4096);
    expect(d[13]! & 0x0f).toBe(0);
  });

  test('readcapacity16_alloclen', async () => {
    const { dev } = await readyFixture();
    for (let i = 0; i < 40; i++) {
      const r = await run(dev, rc16(i));
      expectGood(r);
      expect(r.dataIn!.length).toBe(Math.min(i, 32));
    }
  });

  test('readcapacity16_thin_lbpme_follows_the_command_table', async () => {
    const bare = SBC_COMMAND_ROWS.filter((r) => Object.keys(r.provides).length === 0);
    const thin = await readyFixture({ thin: true, device: { commands: new CommandTable(bare) } });
    expect((await run(thin.dev, rc16(32))).dataIn![14]! & 0xc0).toBe(0);
    const unmapRow = luCommand<void>({
      name: 'UNMAP',
      opcode: 0x42,
      cdbLength: 10,
      direction: DataDirection.OUT,
      reservation: ReservationClass.WRITE,
      usage: [0x42, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
      provides: { unmap: { maxLbaCount: 1024, maxDescriptorCount: 16, granularity: 8 } },
      parse: () => undefined,
      execute: () => ({}),
    });
    const withUnmap = await readyFixture({ thin: true, device: { commands: new CommandTable([...bare, unmapRow]) } });
    expect((await run(withUnmap.dev, rc16(32))).dataIn![14]! & 0xc0).toBe(0xc0); // LBPME, LBPRZ
  });

  test('readcapacity_capacity_data_has_changed_after_resize', async () => {
    const { dev, lu, store } = await readyFixture({ blocks: 1024 });
    await store.resize(2048 * 512);
    lu.notifyCapacityChanged();
    expectCheck(await run(dev, rc10()), 0x6, 0x2a, 0x09);
    expect((await run(dev, rc10())).dataIn!.readUInt32BE(0)).toBe(2047);
    expect(await clearUnitAttentions(dev)).toEqual([]);
  });

  test('readcapacity10_large_volume_reports_ffffffff', async () => {
    const { lu, dev } = await readyFixture({ blocks: 8 });
    Object.defineProperty(lu.store, 'sizeBytes', { get: () => 0x1_0000_0002 * 512 });
    expect((await run(dev, rc10())).dataIn!.readUInt32BE(0)).toBe(0xffffffff);
    expect((await run(dev, rc16(32))).dataIn!.readBigUInt64BE(0)).toBe(0x1_0000_0001n);
  });
});
