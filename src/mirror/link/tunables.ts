/**
 * The tunables of a PeerChannel, each with its bounds, default and unit in
 * one place; resolveTunables checks what a caller gives against them.
 */

export interface Tunable {
  readonly min: number;
  readonly max: number;
  readonly default: number;
  readonly unit: 'ms' | 'bytes' | 'requests' | 'replies';
  readonly doc: string;
}

export const CHANNEL_TUNABLES = {
  heartbeatMs: { min: 10, max: 60_000, default: 1_000, unit: 'ms', doc: 'heartbeat interval on each link' },
  deadMs: { min: 20, max: 600_000, default: 5_000, unit: 'ms', doc: 'a link that received nothing for this long is dead (more than heartbeatMs)' },
  handshakeTimeoutMs: { min: 10, max: 600_000, default: 5_000, unit: 'ms', doc: 'a connection whose handshake takes longer is closed' },
  reconnectMinMs: { min: 1, max: 60_000, default: 100, unit: 'ms', doc: 'first redial delay; doubles per failure' },
  reconnectMaxMs: { min: 1, max: 600_000, default: 5_000, unit: 'ms', doc: 'largest redial delay' },
  unavailableAfterMs: {
    min: 0,
    max: 3_600_000,
    default: 10_000,
    unit: 'ms',
    doc: 'with no link up for this long the peer is unavailable: requests fail with PeerUnavailableError',
  },
  requestTimeoutMs: { min: 0, max: 3_600_000, default: 0, unit: 'ms', doc: 'a request unanswered this long fails with RequestTimeoutError; 0: never' },
  maxInFlight: { min: 1, max: 1_048_576, default: 1_024, unit: 'requests', doc: 'requests sent and not answered; more wait in the queue' },
  maxInFlightBytes: { min: 1, max: 2 ** 40, default: 64 * 1024 * 1024, unit: 'bytes', doc: 'payload bytes sent and not answered; more wait in the queue' },
  linkHighWaterBytes: {
    // Above the socket's own high-water mark (16 KiB), so a link over it has seen a write return false and will emit 'drain'.
    min: 64 * 1024,
    max: 2 ** 32,
    default: 4 * 1024 * 1024,
    unit: 'bytes',
    doc: 'a link with this much unflushed output takes no new frames until it drains',
  },
  replayWindow: {
    min: 1,
    max: 16_777_216,
    default: 16_384,
    unit: 'replies',
    doc: 'answered requests remembered behind the oldest unanswered one, so resends are not applied twice',
  },
} as const satisfies Record<string, Tunable>;

export type ChannelTunables = { readonly [K in keyof typeof CHANNEL_TUNABLES]: number };

export function resolveTunables(given: Partial<ChannelTunables>): ChannelTunables {
  const out: Record<string, number> = {};
  for (const [name, t] of Object.entries(CHANNEL_TUNABLES) as [keyof ChannelTunables, Tunable][]) {
    const v = given[name] ?? t.default;
    if (!Number.isFinite(v) || v < t.min || v > t.max) {
      throw new RangeError(`${name} = ${v} is outside [${t.min}, ${t.max}] ${t.unit}`);
    }
    out[name] = v;
  }
  const r = out as ChannelTunables;
  if (r.deadMs <= r.heartbeatMs) throw new RangeError(`deadMs (${r.deadMs}) must exceed heartbeatMs (${r.heartbeatMs})`);
  if (r.reconnectMaxMs < r.reconnectMinMs) throw new RangeError(`reconnectMaxMs (${r.reconnectMaxMs}) is below reconnectMinMs (${r.reconnectMinMs})`);
  return r;
}
