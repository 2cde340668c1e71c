/**
 * One resource group on one node: its resources, started in order and
 * stopped in reverse, and its ownership state (state.ts), changed only
 * through apply().
 *
 * Each resource's start and stop are idempotent (IPaddr2 style: "do we
 * already serve this address?" comes first), so a stop after a partial
 * start, a retried stop after 'failed', or a repeated request all do the
 * right thing. Operations on one RG run one at a time (a queue), so a
 * fence arriving during a start waits for the start to end and then stops.
 *
 * The usual order (resources.ts builds it):
 *   1 mirror     promote the RG's volumes (new generation id)
 *   2 scsi-state restore reservations and unit attentions from the replicated snapshot
 *   3 alias-ips  add the RG's addresses
 *   4 announce   GARP burst (refresh later) and unsolicited NA
 *   5 targets    add the targets, listen on the alias IPs
 *   6 alua       ALUA active/optimized, accept commands
 */
import { EventEmitter } from 'node:events';
import { RgEvent, RgState, transition } from './state';

/** Why a resource is being stopped: lets a target refuse commands retryably during a move. */
export type StopReason = 'stop' | 'fence' | 'move' | 'rollback';

export interface Resource {
  readonly name: string;
  /**
   * Starts together with the resource before it (and any others so marked
   * in between) instead of after it: it needs nothing they do, and what it
   * does is harmless before they are up. The next unmarked resource waits
   * for all of them.
   */
  readonly startsAlongside?: boolean;
  /** Bring the resource up; a no-op when it is up already. */
  start(): Promise<void>;
  /** Take it down; a no-op when it is down already (also after a failed start). */
  stop(reason: StopReason): Promise<void>;
  /**
   * After a move-out, once the peer serves the group: let go of what
   * stop('move') kept for the handover (the alias IPs, so that initiators
   * reconnecting in between are refused at once rather than left waiting).
   */
  handedOver?(): Promise<void>;
}

export interface ResourceGroupEvents {
  state: [to: RgState, from: RgState, event: RgEvent];
}

export class ResourceGroupError extends Error {
  override readonly name = 'ResourceGroupError';
  constructor(
    readonly rg: string,
    readonly code: 'RG_TRANSITION_REFUSED' | 'RG_START_FAILED' | 'RG_STOP_FAILED' | 'RG_MOVE_ABANDONED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${rg}: ${message}`, options);
  }
}

export interface GroupLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface StartOutcome {
  /** The RG served already: nothing was done. */
  readonly noop: boolean;
  readonly ms: number;
}

export class ResourceGroup extends EventEmitter<ResourceGroupEvents> {
  private current: RgState = 'stopped';
  private queue: Promise<unknown> = Promise.resolve();
  /** How long each resource's start or stop took in the running operation (logged with its final transition). */
  private timings: Record<string, number> = {};

  constructor(
    readonly name: string,
    private readonly resources: readonly Resource[],
    private readonly log?: GroupLogger,
  ) {
    super();
  }

  get state(): RgState {
    return this.current;
  }

  /** Start every resource in order; on a failure, stop the started ones (and the failing one) in reverse and throw. */
  start(): Promise<StartOutcome> {
    return this.serial(() => this.bringUp('start', 'started'));
  }

  /** As start(), for a planned switchover from the peer. */
  moveIn(): Promise<StartOutcome> {
    return this.serial(() => this.bringUp('move-in', 'moved-in'));
  }

  /** Stop every resource in reverse; every one is tried even when one fails. */
  stop(): Promise<StartOutcome> {
    return this.serial(() => this.takeDown('stop', 'stopped', 'stop'));
  }

  /** Stop at once because the lease is lost or the node is isolated. */
  fence(): Promise<StartOutcome> {
    return this.serial(() => this.takeDown('fence', 'stopped', 'fence'));
  }

  /** Planned switchover to the peer: resources stop with reason 'move' (targets answer retryably while they drain). */
  moveOut(): Promise<StartOutcome> {
    return this.serial(() => this.takeDown('move-out', 'moved-out', 'move'));
  }

  /** The peer serves the group after moveOut(): each resource lets go of what it kept for the handover. */
  handedOver(): Promise<void> {
    return this.serial(async () => {
      if (this.current !== 'stopped') return; // taken back meanwhile: keep everything
      for (const r of [...this.resources].reverse()) {
        await r.handedOver?.().catch((err: unknown) => this.log?.error({ rg: this.name, resource: r.name, err }, `resource group ${this.name}: ${r.name} failed to let go after the move`));
      }
    });
  }

  /**
   * Runs `op` between the group's operations (never during a start, stop or move), told whether
   * the group is served here: a change of a served group's resources in place (alias IPs at run time).
   */
  whileIdle<T>(op: (serving: boolean) => Promise<T>): Promise<T> {
    return this.serial(() => op(this.current === 'serving'));
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The only place the state changes. */
  private apply(event: RgEvent): { noop: boolean } {
    const t = transition(this.current, event);
    if (!t.ok) throw new ResourceGroupError(this.name, 'RG_TRANSITION_REFUSED', t.reason);
    const from = this.current;
    this.current = t.next;
    if (from !== t.next) {
      this.log?.info({ rg: this.name, from, to: t.next, event, resourceMs: this.timings }, `resource group ${this.name}: ${from} → ${t.next}`);
      this.emit('state', t.next, from, event);
    }
    return { noop: t.noop };
  }

  private async bringUp(request: 'start' | 'move-in', done: 'started' | 'moved-in'): Promise<StartOutcome> {
    const t0 = performance.now();
    this.timings = {};
    if (this.apply(request).noop) return { noop: true, ms: 0 };
    let failedAt = -1;
    let startedTo = -1;
    let cause: unknown;
    for (let i = 0; i < this.resources.length && failedAt < 0; ) {
      // One stage: this resource and the ones after it marked startsAlongside, started together.
      let end = i + 1;
      while (end < this.resources.length && this.resources[end]!.startsAlongside) end++;
      const stage = this.resources.slice(i, end);
      const results = await Promise.allSettled(stage.map((r) => this.timed(r, () => r.start())));
      startedTo = end - 1;
      const failed = results.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) {
        failedAt = i + failed;
        cause = (results[failed] as PromiseRejectedResult).reason;
      }
      i = end;
    }
    if (failedAt < 0) {
      this.apply(done);
      return { noop: false, ms: performance.now() - t0 };
    }
    const failing = this.resources[failedAt]!;
    this.log?.error({ rg: this.name, resource: failing.name, err: cause }, `resource group ${this.name}: ${failing.name} failed to start; rolling back`);
    // Stop every resource of the failed stage too (a stop after a failed start is a no-op).
    const rollbackErrors = await this.stopFrom(startedTo, 'rollback');
    this.apply(rollbackErrors.length === 0 ? 'start-failed' : 'rollback-failed');
    throw new ResourceGroupError(this.name, 'RG_START_FAILED', `${failing.name} failed to start${rollbackErrors.length ? ' and the rollback failed' : ''}`, { cause });
  }

  private async takeDown(request: 'stop' | 'fence' | 'move-out', done: 'stopped' | 'moved-out', reason: StopReason): Promise<StartOutcome> {
    const t0 = performance.now();
    this.timings = {};
    if (this.apply(request).noop) return { noop: true, ms: 0 };
    let from = this.resources.length - 1;
    if (reason === 'move' && from >= 0) {
      // The last resource (ALUA) drains in-flight commands for a move. If it cannot, nothing
      // else has been touched yet: bring it back and keep serving here rather than hand over
      // a group with commands still running.
      const drain = this.resources[from]!;
      try {
        await this.timed(drain, () => drain.stop('move'));
        from--;
      } catch (err) {
        const back = await drain.start().then(
          () => true,
          (e: unknown) => (this.log?.error({ rg: this.name, resource: drain.name, err: e }, `resource group ${this.name}: ${drain.name} failed to restart`), false),
        );
        if (back) {
          this.apply('move-abandoned');
          throw new ResourceGroupError(this.name, 'RG_MOVE_ABANDONED', `move abandoned, serving here again: ${errorText(err)}`, { cause: err });
        }
        // It cannot even come back: stop the rest as for any failed stop.
        await this.stopFrom(from - 1, reason);
        this.apply('stop-failed');
        throw new ResourceGroupError(this.name, 'RG_STOP_FAILED', `${drain.name} failed to stop and to restart`, { cause: err });
      }
    }
    const errors = await this.stopFrom(from, reason);
    if (errors.length > 0) {
      this.apply('stop-failed');
      throw new ResourceGroupError(this.name, 'RG_STOP_FAILED', `${errors.map((e) => e.resource).join(', ')} failed to stop`, { cause: errors[0]!.err });
    }
    this.apply(done);
    return { noop: false, ms: performance.now() - t0 };
  }

  private async timed(r: Resource, op: () => Promise<void>): Promise<void> {
    const t0 = performance.now();
    try {
      await op();
    } finally {
      this.timings[r.name] = Math.round((performance.now() - t0) * 10) / 10;
    }
  }

  /** Stop resources[from], resources[from-1], ..., resources[0]; every one is tried. */
  private async stopFrom(from: number, reason: StopReason): Promise<{ resource: string; err: unknown }[]> {
    const errors: { resource: string; err: unknown }[] = [];
    for (let i = from; i >= 0; i--) {
      const r = this.resources[i]!;
      try {
        await this.timed(r, () => r.stop(reason));
      } catch (err) {
        this.log?.error({ rg: this.name, resource: r.name, err, reason }, `resource group ${this.name}: ${r.name} failed to stop`);
        errors.push({ resource: r.name, err });
      }
    }
    return errors;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
