import { describe, expect, test, vi } from 'vitest';
import { expectCheck, expectGood, readyFixture, run } from './helpers';

const startStop = (immed: number, pcm: number, pc: number, noFlush: number, loej: number, start: number): number[] => [
  0x1b,
  immed,
  0,
  pcm,
  (pc << 4) | (noFlush << 2) | (loej << 1) | start,
  0,
];

describe('TEST UNIT READY / START STOP UNIT / PREVENT ALLOW MEDIUM REMOVAL', () => {
  test('testunitready_simple', async () => {
    const { dev } = await readyFixture();
    expectGood(await run(dev, [0x00, 0, 0, 0, 0, 0]));
  });

  test('startstopunit_simple_stays_ready', async () => {
    const { dev, store } = await readyFixture();
    const flush = vi.spyOn(store, 'flush');
    expectGood(await run(dev, startStop(0, 0, 0, 0, 0, 0))); // stop: flushes
    expect(flush).toHaveBeenCalledTimes(1);
    expectGood(await run(dev, [0x00, 0, 0, 0, 0, 0]));
    expectGood(await run(dev, startStop(1, 0, 0, 1, 0, 0))); // stop with NO_FLUSH
    expect(flush).toHaveBeenCalledTimes(1);
    expectGood(await run(dev, startStop(0, 0, 0, 0, 0, 1))); // start
    expectGood(await run(dev, startStop(0, 0, 0, 0, 1, 0))); // LOEJ ignored: not removable
    expectGood(await run(dev, [0x00, 0, 0, 0, 0, 0]));
  });

  test('startstopunit_pwrcnd', async () => {
    const { dev } = await readyFixture();
    for (const pc of [0x1, 0x2, 0x3, 0x7, 0xa, 0xb]) expectGood(await run(dev, startStop(1, 0, pc, 0, 0, 0)));
    for (const pc of [0x4, 0x5, 0x6, 0x8, 0x9, 0xc, 0xf]) {
      const s = expectCheck(await run(dev, startStop(1, 0, pc, 0, 0, 0)), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 4, bit: 7 });
    }
    expectGood(await run(dev, startStop(0, 2, 0x2, 0, 0, 0))); // IDLE_C
    expectCheck(await run(dev, startStop(0, 3, 0x2, 0, 0, 0)), 0x5, 0x24, 0x00);
    expectCheck(await run(dev, startStop(0, 1, 0x0, 0, 0, 1)), 0x5, 0x24, 0x00);
  });

  test('preventallow_simple', async () => {
    const { dev } = await readyFixture();
    expectGood(await run(dev, [0x1e, 0, 0, 0, 1, 0]));
    expectGood(await run(dev, [0x1e, 0, 0, 0, 0, 0]));
    for (const prevent of [2, 3]) {
      const s = expectCheck(await run(dev, [0x1e, 0, 0, 0, prevent, 0]), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 4 });
    }
  });
});
