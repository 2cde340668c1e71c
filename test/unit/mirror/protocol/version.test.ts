/** Version range negotiation (src/mirror/protocol/version.ts). */
import { describe, expect, it } from 'vitest';
import { OUR_VERSIONS, PROTOCOL_VERSION, formatRange, negotiateVersion } from '../../../../src/mirror/protocol';

describe('negotiateVersion', () => {
  const cases: [string, [number, number], [number, number], number | null][] = [
    ['release N and N+1 run N', [1, 1], [1, 2], 1],
    ['the same on either side', [1, 2], [1, 1], 1],
    ['the highest common version', [1, 3], [2, 5], 3],
    ['equal single versions', [2, 2], [2, 2], 2],
    ['a range inside the other', [1, 9], [4, 5], 5],
    ['disjoint ranges', [2, 3], [1, 1], null],
    ['disjoint the other way', [1, 1], [3, 4], null],
    ['an inverted range', [3, 1], [1, 3], null],
    ['version 0', [0, 1], [0, 1], null],
  ];
  for (const [what, a, b, expected] of cases) {
    it(`${what}: ${JSON.stringify(a)} and ${JSON.stringify(b)} -> ${expected}`, () => {
      expect(negotiateVersion({ min: a[0], max: a[1] }, { min: b[0], max: b[1] })).toBe(expected);
    });
  }

  it('this release speaks the versions it declares', () => {
    expect(OUR_VERSIONS).toEqual({ min: PROTOCOL_VERSION.MIN, max: PROTOCOL_VERSION.MAX });
    expect(negotiateVersion(OUR_VERSIONS, OUR_VERSIONS)).toBe(PROTOCOL_VERSION.MAX);
  });

  it('formats ranges for error messages', () => {
    expect(formatRange({ min: 1, max: 1 })).toBe('[1]');
    expect(formatRange({ min: 1, max: 2 })).toBe('[1, 2]');
  });
});
