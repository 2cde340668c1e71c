/**
 * Reconnect delays: exponential from `minMs` to `maxMs`, each spread by
 * ±`jitter` so the two nodes' dialers do not stay in step.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly jitter = 0.2,
    private readonly random: () => number = Math.random,
  ) {
    if (!(minMs > 0) || maxMs < minMs) throw new RangeError(`bad backoff bounds [${minMs}, ${maxMs}]`);
  }

  /** The delay before the next attempt. */
  next(): number {
    const base = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const spread = base * this.jitter * (2 * this.random() - 1);
    return Math.max(1, Math.round(Math.min(this.maxMs, base + spread)));
  }

  /** After a success: start again from `minMs`. */
  reset(): void {
    this.attempt = 0;
  }
}
