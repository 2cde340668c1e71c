/**
 * Announcing that this node now answers for an address: bursts of
 * gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6) so
 * that hosts and switches move their caches to our MAC at once instead of
 * when their entries expire.
 *
 * One announcement is a first burst of `repeat` rounds `intervalMs` apart
 * (default 5 × 200 ms, as IPaddr2 sends), then, `garpRefreshDelayMs` after
 * the first round (default 5 s, keepalived's garp_master_delay), a refresh
 * burst of `garpRefreshRepeat` rounds for the caches and switches that
 * missed or rate-limited the first. A round is one frame per configured ARP
 * form (request, reply or both) for IPv4, one NA for IPv6.
 *
 * Announcing an address again replaces its pending refresh; cancel() (on
 * remove) stops a running burst before its next round and drops the
 * refresh, so a node that gave an address away never announces it again.
 * The refresh re-checks that the address is still served before sending.
 */
import { Alias } from './address';
import { encodeGratuitousArp, GarpForm } from './arp';
import { isUsableSourceMac } from './ethernet';
import { AliasIpError } from './errors';
import { ARPHRD_ETHER, LinkLayer } from './link';
import { encodeUnsolicitedNa } from './ndisc';

export interface AnnounceConfig {
  /** Rounds in the first burst. Default 5. */
  readonly repeat: number;
  /** Gap between rounds of a burst. Default 200 ms. */
  readonly intervalMs: number;
  /** IPv4: which gratuitous ARP forms each round sends, in order. Default both. */
  readonly arpForms: readonly GarpForm[];
  /** From the first round to the refresh burst; 0 disables the refresh. Default 5000 ms. */
  readonly garpRefreshDelayMs: number;
  /** Rounds in the refresh burst. Default 5. */
  readonly garpRefreshRepeat: number;
}

export const DEFAULT_ANNOUNCE_CONFIG: AnnounceConfig = {
  repeat: 5,
  intervalMs: 200,
  arpForms: ['request', 'reply'],
  garpRefreshDelayMs: 5000,
  garpRefreshRepeat: 5,
};

/** Bounds, so a typo cannot make the node flood its LAN. */
const LIMITS = {
  repeat: [1, 100],
  intervalMs: [0, 60_000],
  garpRefreshDelayMs: [0, 3_600_000],
  garpRefreshRepeat: [0, 100],
} as const;

/** Defaults overlaid with `overrides`, validated (AliasIpError EINVAL). */
export function resolveAnnounceConfig(base: AnnounceConfig, overrides: Partial<AnnounceConfig> = {}): AnnounceConfig {
  const config: AnnounceConfig = { ...base, ...stripUndefined(overrides) };
  for (const [key, [min, max]] of Object.entries(LIMITS) as [keyof typeof LIMITS, readonly [number, number]][]) {
    const value = config[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new AliasIpError('EINVAL', `announce option ${key} must be an integer from ${min} to ${max}, got ${String(value)}`);
    }
  }
  const forms = config.arpForms;
  if (
    !Array.isArray(forms) ||
    forms.length === 0 ||
    !forms.every((f) => f === 'request' || f === 'reply') ||
    new Set(forms).size !== forms.length
  ) {
    throw new AliasIpError('EINVAL', `announce option arpForms must be a non-empty list of 'request' and/or 'reply'`);
  }
  return { ...config, arpForms: [...forms] };
}

/** The frames of one round for `alias` from `mac`. */
export function roundFrames(alias: Alias, mac: Buffer, config: Pick<AnnounceConfig, 'arpForms'>): Buffer[] {
  if (alias.family === 4) return config.arpForms.map((form) => encodeGratuitousArp({ mac, address: alias.bytes, form }));
  return [encodeUnsolicitedNa({ mac, target: alias.bytes })];
}

export interface AnnounceResult {
  /** Frames sent by the first burst (rounds × frames per round). */
  readonly framesSent: number;
  /** True when remove() (or another announce of the address) cut the burst short. */
  readonly cancelled: boolean;
  /** When the refresh burst is due, if one is scheduled. */
  readonly refreshAt?: Date;
}

export interface AnnouncerLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

export interface AnnouncerDeps {
  readonly link: LinkLayer;
  /** Asked before the refresh burst: false skips it. */
  readonly stillServed: (alias: Alias) => Promise<boolean>;
  readonly logger: AnnouncerLogger;
}

interface Pending {
  readonly controller: AbortController;
  timer?: NodeJS.Timeout;
}

export class Announcer {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly deps: AnnouncerDeps) {}

  /** Sends the first burst (resolving when it is done) and schedules the refresh. */
  async announce(alias: Alias, config: AnnounceConfig): Promise<AnnounceResult> {
    this.cancel(alias.key);
    const entry: Pending = { controller: new AbortController() };
    this.pending.set(alias.key, entry);
    const { signal } = entry.controller;
    const started = Date.now();
    let framesSent: number;
    try {
      framesSent = await this.burst(alias, config, config.repeat, signal);
    } catch (err) {
      this.forget(alias.key, entry);
      throw err;
    }
    if (signal.aborted) {
      this.forget(alias.key, entry);
      return { framesSent, cancelled: true };
    }
    if (config.garpRefreshDelayMs === 0 || config.garpRefreshRepeat === 0) {
      this.forget(alias.key, entry);
      return { framesSent, cancelled: false };
    }
    const refreshAt = new Date(started + config.garpRefreshDelayMs);
    entry.timer = setTimeout(() => void this.refresh(alias, config, entry), Math.max(0, refreshAt.getTime() - Date.now()));
    entry.timer.unref();
    return { framesSent, cancelled: false, refreshAt };
  }

  /** Stops the burst or refresh pending for an address (by Alias.key). */
  cancel(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    entry.controller.abort();
    if (entry.timer) clearTimeout(entry.timer);
    this.pending.delete(key);
  }

  cancelAll(): void {
    for (const key of [...this.pending.keys()]) this.cancel(key);
  }

  /** Keys of the addresses with a burst running or a refresh scheduled. */
  pendingKeys(): string[] {
    return [...this.pending.keys()];
  }

  private async refresh(alias: Alias, config: AnnounceConfig, entry: Pending): Promise<void> {
    const { signal } = entry.controller;
    const where = { address: alias.address, interface: alias.interface };
    try {
      if (signal.aborted) return;
      if (!(await this.deps.stillServed(alias))) {
        this.deps.logger.warn(where, 'alias no longer served: refresh announcement skipped');
        return;
      }
      if (signal.aborted) return;
      const frames = await this.burst(alias, config, config.garpRefreshRepeat, signal);
      this.deps.logger.info({ ...where, frames }, 'alias refresh announcement sent');
    } catch (err) {
      this.deps.logger.warn({ ...where, err }, 'alias refresh announcement failed');
    } finally {
      this.forget(alias.key, entry);
    }
  }

  private async burst(alias: Alias, config: AnnounceConfig, rounds: number, signal: AbortSignal): Promise<number> {
    const info = this.deps.link.info(alias.interface);
    if (info.hwType !== ARPHRD_ETHER) {
      throw new AliasIpError('ENOTETHER', `${alias.interface} is not an Ethernet link (ARPHRD ${info.hwType}): cannot announce ${alias.address}`);
    }
    if (!isUsableSourceMac(info.mac)) {
      throw new AliasIpError('ENOTETHER', `${alias.interface} has no unicast MAC address: cannot announce ${alias.address}`);
    }
    const frames = roundFrames(alias, info.mac, config);
    let sent = 0;
    for (let round = 0; round < rounds && !signal.aborted; round++) {
      if (round > 0) await sleep(config.intervalMs, signal);
      if (signal.aborted) break;
      for (const frame of frames) {
        this.deps.link.send(alias.interface, frame);
        sent++;
      }
    }
    return sent;
  }

  private forget(key: string, entry: Pending): void {
    if (this.pending.get(key) === entry) this.pending.delete(key);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
