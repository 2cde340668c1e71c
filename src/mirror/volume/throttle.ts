/**
 * The resync rate: a pacer with an adaptive ceiling, and a meter.
 *
 * `take(bytes)` waits until sending `bytes` more keeps the copy at or below
 * the current rate. The rate starts at the maximum and adapts every
 * ADJUST_INTERVAL_MS: when foreground writes during the last interval took
 * longer than the latency target on average it halves (never below the
 * minimum), otherwise it grows by half (never above the maximum). So the
 * resync backs off while it hurts foreground latency and takes the link
 * back when foreground I/O is quiet (additive-increase would be too slow to
 * matter on resyncs that last minutes; multiplicative both ways converges in
 * a few seconds).
 */

export const ADJUST_INTERVAL_MS = 200;
/** The measured rate is averaged over this window. */
const METER_WINDOW_MS = 2_000;

export interface ThrottleOptions {
  readonly minBytesPerSec: number;
  readonly maxBytesPerSec: number;
  readonly latencyTargetMs: number;
  /** Injectable clock (ms) for tests. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ResyncThrottle {
  private allowed: number;
  private nextFree = 0;
  private latencySum = 0;
  private latencyCount = 0;
  private lastAdjust: number;
  private readonly samples: { at: number; bytes: number }[] = [];
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: ThrottleOptions) {
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? realSleep;
    this.allowed = opts.maxBytesPerSec;
    this.lastAdjust = this.now();
  }

  /** The rate the pacer allows now (bytes/s). */
  get allowedBytesPerSec(): number {
    return this.allowed;
  }

  /** A foreground write took `ms` (the write path reports every write while a resync runs). */
  noteWriteLatency(ms: number): void {
    this.latencySum += ms;
    this.latencyCount++;
  }

  /** Waits until `bytes` more may be sent. */
  async take(bytes: number): Promise<void> {
    this.adjust();
    const now = this.now();
    const start = Math.max(now, this.nextFree);
    this.nextFree = start + (bytes / this.allowed) * 1000;
    if (start > now) await this.sleep(start - now);
  }

  /** `bytes` were copied. */
  record(bytes: number): void {
    const at = this.now();
    this.samples.push({ at, bytes });
    this.trim(at);
  }

  /** Bytes per second copied over the last couple of seconds. */
  measuredBytesPerSec(): number {
    const now = this.now();
    this.trim(now);
    if (this.samples.length === 0) return 0;
    let bytes = 0;
    for (const s of this.samples) bytes += s.bytes;
    const span = Math.max(now - this.samples[0]!.at, ADJUST_INTERVAL_MS);
    return (bytes * 1000) / span;
  }

  private trim(now: number): void {
    while (this.samples.length > 0 && now - this.samples[0]!.at > METER_WINDOW_MS) this.samples.shift();
  }

  private adjust(): void {
    const now = this.now();
    if (now - this.lastAdjust < ADJUST_INTERVAL_MS) return;
    this.lastAdjust = now;
    const { minBytesPerSec: min, maxBytesPerSec: max, latencyTargetMs } = this.opts;
    const slow = this.latencyCount > 0 && this.latencySum / this.latencyCount > latencyTargetMs;
    this.allowed = slow ? Math.max(min, this.allowed / 2) : Math.min(max, this.allowed * 1.5);
    this.latencySum = 0;
    this.latencyCount = 0;
  }
}
