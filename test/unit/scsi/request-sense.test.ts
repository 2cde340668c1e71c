import { describe, expect, test } from 'vitest';
import { clearUnitAttentions, expectGood, fixture, parseSense, readyFixture, run } from './helpers';

const requestSense = (desc: number, alloc: number): number[] => [0x03, desc, 0, 0, alloc, 0];

describe('REQUEST SENSE', () => {
  test('requestsense_no_sense', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, requestSense(0, 252));
    expectGood(r);
    expect(r.dataIn!.length).toBe(18);
    expect(parseSense(r.dataIn!)).toMatchObject({ format: 'fixed', key: 0, asc: 0, ascq: 0 });
  });

  test('requestsense_returns_and_clears_unit_attention', async () => {
    const { dev } = fixture();
    const r = await run(dev, requestSense(0, 252));
    expectGood(r);
    expect(parseSense(r.dataIn!)).toMatchObject({ key: 0x6, asc: 0x29, ascq: 0x00 });
    expect(await clearUnitAttentions(dev)).toEqual([]);
  });

  test('requestsense_descriptor_format', async () => {
    const { dev } = fixture();
    const r = await run(dev, requestSense(1, 252));
    expect(parseSense(r.dataIn!)).toMatchObject({ format: 'descriptor', key: 0x6, asc: 0x29, ascq: 0x00 });
    const none = await run(dev, requestSense(1, 252));
    expect([...none.dataIn!]).toEqual([0x72, 0, 0, 0, 0, 0, 0, 0]);
  });

  test('requestsense_alloc_length_truncates', async () => {
    const { dev } = await readyFixture();
    expect((await run(dev, requestSense(0, 8))).dataIn!.length).toBe(8);
    expect((await run(dev, requestSense(0, 0))).dataIn!.length).toBe(0);
  });

  test('requestsense_lun_that_does_not_exist', async () => {
    const { dev } = fixture();
    const r = await run(dev, requestSense(0, 252), { lun: 9 });
    expectGood(r);
    expect(parseSense(r.dataIn!)).toMatchObject({ key: 0x5, asc: 0x25, ascq: 0x00 });
  });
});
