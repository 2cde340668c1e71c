/**
 * Protocol version ranges. Each side announces the versions it speaks as an
 * inclusive range; the link runs the highest version in both ranges, so a
 * node of release N ([1, N]) and one of release N+1 ([1, N+1]) run N.
 */
import { PROTOCOL_VERSION } from './messages';

export interface VersionRange {
  readonly min: number;
  readonly max: number;
}

export const OUR_VERSIONS: VersionRange = { min: PROTOCOL_VERSION.MIN, max: PROTOCOL_VERSION.MAX };

export function isValidRange(r: VersionRange): boolean {
  return Number.isInteger(r.min) && Number.isInteger(r.max) && r.min >= 1 && r.min <= r.max;
}

/** The highest version in both ranges, or null when they do not intersect. */
export function negotiateVersion(ours: VersionRange, theirs: VersionRange): number | null {
  if (!isValidRange(ours) || !isValidRange(theirs)) return null;
  const high = Math.min(ours.max, theirs.max);
  const low = Math.max(ours.min, theirs.min);
  return high >= low ? high : null;
}

export function formatRange(r: VersionRange): string {
  return r.min === r.max ? `[${r.min}]` : `[${r.min}, ${r.max}]`;
}
