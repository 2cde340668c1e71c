/**
 * Metadata tunables, each with its bounds, default and unit in one place.
 *
 * Region size, activity-log extent size and activity-log capacity are fixed
 * when the metadata file is created and recorded in its superblock; reopening
 * uses the recorded values.
 */
import { MetadataConfigError } from './errors';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface MetaTunable {
  readonly min: number;
  readonly max: number;
  readonly default: number;
  readonly unit: 'bytes' | 'extents';
  /** The value must be a power of two. */
  readonly powerOfTwo: boolean;
  readonly doc: string;
}

export const META_TUNABLES = {
  regionSize: {
    min: 4 * KiB,
    max: 16 * MiB,
    default: 64 * KiB,
    unit: 'bytes',
    powerOfTwo: true,
    doc: 'bytes of volume data per dirty-bitmap bit: the resync granularity',
  },
  alExtentSize: {
    min: 64 * KiB,
    max: 1 * GiB,
    default: 4 * MiB,
    unit: 'bytes',
    powerOfTwo: true,
    doc: 'bytes of volume data per activity-log extent',
  },
  alExtents: {
    min: 7,
    max: 4096,
    default: 1024,
    unit: 'extents',
    powerOfTwo: false,
    doc: 'hot extents the activity log may hold: after a primary crash at most alExtents * alExtentSize bytes are resynced',
  },
} as const satisfies Record<string, MetaTunable>;

export type MetaTunableName = keyof typeof META_TUNABLES;
export type MetaTunables = { readonly [K in MetaTunableName]: number };

/**
 * The dirty bitmap is held in memory whole. It may have at most this many
 * regions (64 MiB of bitmap): 16 TiB at the default 64 KiB regions needs
 * 256 Mi regions (32 MiB); larger volumes need larger regions (4 PiB at 16 MiB).
 */
export const MAX_REGIONS = 512 * 1024 * 1024;

/** The value of a tunable, or its default; throws MetadataConfigError when out of bounds. */
export function tunable(name: MetaTunableName, value: number | undefined): number {
  const t: MetaTunable = META_TUNABLES[name];
  const v = value ?? t.default;
  if (!Number.isSafeInteger(v) || v < t.min || v > t.max) {
    throw new MetadataConfigError(`${name} ${v} is outside ${t.min}..${t.max} ${t.unit}`);
  }
  if (t.powerOfTwo && (v & (v - 1)) !== 0) throw new MetadataConfigError(`${name} ${v} is not a power of two`);
  return v;
}

/** Number of regions of `regionSize` covering `sizeBytes`; throws when the bitmap would be too large. */
export function regionCount(sizeBytes: number, regionSize: number): number {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new MetadataConfigError(`volume size ${sizeBytes} is not a byte count`);
  const n = Math.ceil(sizeBytes / regionSize);
  if (n > MAX_REGIONS) {
    throw new MetadataConfigError(
      `a ${sizeBytes}-byte volume needs ${n} regions of ${regionSize} bytes, more than ${MAX_REGIONS}; use a larger regionSize`,
    );
  }
  return n;
}

/** Number of activity-log extents covering `sizeBytes`; they are stored as u32. */
export function extentCount(sizeBytes: number, extentSize: number): number {
  const n = Math.ceil(sizeBytes / extentSize);
  if (n > 0xffffffff) throw new MetadataConfigError(`a ${sizeBytes}-byte volume has more than 2^32 extents of ${extentSize} bytes; use a larger alExtentSize`);
  return n;
}
