/** Channel tunables, backoff and the error code registry (src/mirror/link). */
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../../src/mirror/link/backoff';
import { LINK_ERROR_CODES, isLinkErrorCode } from '../../../../src/mirror/link/errors';
import { CHANNEL_TUNABLES, resolveTunables } from '../../../../src/mirror/link/tunables';

describe('resolveTunables', () => {
  it('fills the defaults, and every default lies within its bounds', () => {
    const r = resolveTunables({});
    for (const [name, t] of Object.entries(CHANNEL_TUNABLES)) {
      expect(r[name as keyof typeof r], name).toBe(t.default);
      expect(t.default, name).toBeGreaterThanOrEqual(t.min);
      expect(t.default, name).toBeLessThanOrEqual(t.max);
      expect(t.doc.length, name).toBeGreaterThan(0);
    }
  });

  it('refuses values out of bounds, naming the tunable, its bounds and unit', () => {
    expect(() => resolveTunables({ heartbeatMs: 5 })).toThrow('heartbeatMs = 5 is outside [10, 60000] ms');
    expect(() => resolveTunables({ maxInFlight: 0 })).toThrow(/maxInFlight = 0 is outside \[1, .*\] requests/);
    expect(() => resolveTunables({ heartbeatMs: Number.NaN })).toThrow(RangeError);
  });

  it('refuses a dead interval not above the heartbeat interval', () => {
    expect(() => resolveTunables({ heartbeatMs: 1000, deadMs: 1000 })).toThrow(/deadMs \(1000\) must exceed heartbeatMs \(1000\)/);
  });
});

describe('Backoff', () => {
  it('doubles from the minimum up to the maximum and starts over after reset', () => {
    const b = new Backoff(100, 1000, 0);
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
  });

  it('spreads each delay by the jitter, never beyond the maximum', () => {
    expect(new Backoff(100, 1000, 0.2, () => 0).next()).toBe(80);
    expect(new Backoff(100, 1000, 0.2, () => 1).next()).toBe(120);
    const high = new Backoff(1000, 1000, 0.2, () => 1);
    expect(high.next()).toBe(1000);
  });
});

describe('LINK_ERROR_CODES', () => {
  it('documents every code', () => {
    for (const [code, doc] of Object.entries(LINK_ERROR_CODES)) {
      expect(code).toMatch(/^E[A-Z]+$/);
      expect(doc.length, code).toBeGreaterThan(20);
      expect(isLinkErrorCode(code)).toBe(true);
    }
    expect(isLinkErrorCode('toString')).toBe(false);
  });
});
