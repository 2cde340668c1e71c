/**
 * Commands a logical unit is working on: counted from the moment a command
 * passes the access gate (alua.ts) until its response is built. A quiesce
 * (ScsiTargetDevice.quiesce) marks the LU MOVING, so new commands get BUSY
 * at the gate and are never counted, and then waits here for the count to
 * reach zero: at that point every command the LU accepted has been answered.
 */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.count;
  }

  enter(): void {
    this.count++;
  }

  leave(): void {
    if (this.count === 0) throw new Error('InFlight.leave() without enter()');
    if (--this.count === 0 && this.waiters.length > 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves true once nothing is in flight, or false when `timeoutMs` passes first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(done);
    });
  }
}
