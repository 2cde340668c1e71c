/**
 * The mirror engine's tunables, each with its bounds, default and unit in
 * one place. MirrorNode takes these and the PeerChannel's (link/tunables.ts)
 * in one object; resolveMirrorTunables checks both.
 */
import { CHANNEL_TUNABLES, ChannelTunables, resolveTunables as resolveChannelTunables } from './link';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface MirrorTunable {
  readonly min: number;
  readonly max: number;
  readonly default: number;
  readonly unit: 'ms' | 'bytes' | 'bytes/s' | 'requests';
  readonly doc: string;
}

export const MIRROR_TUNABLES = {
  degradeAfterMs: {
    min: 10,
    max: 600_000,
    default: 5_000,
    unit: 'ms',
    doc:
      'a write (or flush) the peer has not acknowledged after this long completes without it: its regions are marked dirty ' +
      '(durably) and the volume goes degraded; also bounds a volume handshake',
  },
  volumeRetryMs: {
    min: 10,
    max: 600_000,
    default: 2_000,
    unit: 'ms',
    doc: 'a volume that is not replicating while the peer is reachable tries its handshake again after this long',
  },
  resyncMaxBytesPerSec: {
    min: 64 * KiB,
    max: 2 ** 40,
    default: 100 * MiB,
    unit: 'bytes/s',
    doc: 'highest resync rate',
  },
  resyncMinBytesPerSec: {
    min: 4 * KiB,
    max: 2 ** 40,
    default: 4 * MiB,
    unit: 'bytes/s',
    doc: 'lowest resync rate: the rate never backs off below it, however slow foreground writes get',
  },
  resyncLatencyTargetMs: {
    min: 1,
    max: 60_000,
    default: 50,
    unit: 'ms',
    doc: 'while foreground writes take longer than this on average the resync rate halves (every adjustment interval); below it, it grows back',
  },
  resyncChunkBytes: {
    min: 4 * KiB,
    max: 8 * MiB,
    default: 1 * MiB,
    unit: 'bytes',
    doc: 'largest run of dirty regions copied by one resync message (rounded down to whole regions, at least one)',
  },
  resyncWindow: {
    min: 1,
    max: 256,
    default: 8,
    unit: 'requests',
    doc: 'resync chunks in flight at once',
  },
  lazyFlushMs: {
    min: 10,
    max: 600_000,
    default: 1_000,
    unit: 'ms',
    doc: 'during a resync, dirty bits cleared for copied regions are written to the metadata at least this often',
  },
  durableReleaseMs: {
    min: 1,
    max: 60_000,
    default: 100,
    unit: 'ms',
    doc:
      'a completed write that was not FUA keeps its activity-log extent busy until the next fdatasync of the backing store, ' +
      'which runs at most this long after the write completed (or with the next flush)',
  },
  verifyChunkBytes: {
    min: 4 * KiB,
    max: 64 * MiB,
    default: 4 * MiB,
    unit: 'bytes',
    doc: 'bytes digested per verify request (rounded down to whole regions, at least one)',
  },
  statusIntervalMs: {
    min: 10,
    max: 600_000,
    default: 1_000,
    unit: 'ms',
    doc: "a resyncing volume emits 'status' with its progress at most this often",
  },
} as const satisfies Record<string, MirrorTunable>;

export type MirrorEngineTunables = { readonly [K in keyof typeof MIRROR_TUNABLES]: number };
/** The engine's tunables and the PeerChannel's, as MirrorNode takes them. */
export type MirrorTunables = MirrorEngineTunables & ChannelTunables;

/** Every tunable the engine knows, for documentation and checks. */
export const ALL_MIRROR_TUNABLES: Readonly<Record<keyof MirrorTunables, { readonly min: number; readonly max: number; readonly default: number; readonly unit: string; readonly doc: string }>> = {
  ...CHANNEL_TUNABLES,
  ...MIRROR_TUNABLES,
};

/** The given values over the defaults; throws RangeError for a value out of bounds or inconsistent ones. */
export function resolveMirrorTunables(given: Partial<MirrorTunables> = {}): MirrorTunables {
  for (const name of Object.keys(given)) {
    if (!Object.prototype.hasOwnProperty.call(ALL_MIRROR_TUNABLES, name)) throw new RangeError(`unknown mirror tunable ${name}`);
  }
  const engine: Record<string, number> = {};
  for (const [name, t] of Object.entries(MIRROR_TUNABLES) as [keyof MirrorEngineTunables, MirrorTunable][]) {
    const v = given[name] ?? t.default;
    if (!Number.isFinite(v) || v < t.min || v > t.max) throw new RangeError(`${name} = ${v} is outside [${t.min}, ${t.max}] ${t.unit}`);
    engine[name] = v;
  }
  const e = engine as MirrorEngineTunables;
  if (e.resyncMinBytesPerSec > e.resyncMaxBytesPerSec) {
    throw new RangeError(`resyncMinBytesPerSec (${e.resyncMinBytesPerSec}) exceeds resyncMaxBytesPerSec (${e.resyncMaxBytesPerSec})`);
  }
  const channelGiven: { -readonly [K in keyof ChannelTunables]?: number } = {};
  for (const name of Object.keys(CHANNEL_TUNABLES) as (keyof ChannelTunables)[]) {
    const v = given[name];
    if (v !== undefined) channelGiven[name] = v;
  }
  return { ...resolveChannelTunables(channelGiven), ...e };
}
