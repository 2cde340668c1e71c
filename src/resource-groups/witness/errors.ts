/**
 * Errors of the resource-group witness: one class per kind of failure, each
 * with a code from one registry (WITNESS_ERROR_CODES says what each means).
 *
 *   WitnessUnavailableError  the witness could not be asked (down, cut off,
 *                            timed out, read-only replica, not replicated)
 *   LeaseLostError           a renewal found the lease gone or someone else's
 *   LeaseHeldByOtherError    an acquire found the lease held by another node
 *   WitnessReplyError        the witness answered something we cannot read
 *   WitnessClosedError       the witness client (or lease keeper) is closed
 *   WitnessConfigError       bad options: names, connection, risky mode not opted into
 */
import type { LeaseHolder } from './witness';

export const WITNESS_ERROR_CODES = {
  EWITNESSDOWN: 'the witness could not be asked or did not answer in time; nothing is known about the lease',
  ELEASELOST: 'the lease is no longer ours (expired, released, or taken by another node with a newer epoch)',
  ELEASEHELD: 'another node holds the lease; it can only be acquired once that node releases it or it expires',
  EWITNESSREPLY: 'the witness answered with something this release cannot make sense of (a script error or a foreign key)',
  EWITNESSCLOSED: 'the witness client or the lease keeper was closed',
  EWITNESSCONFIG: 'bad witness options: a name, a connection, a tunable, or the risky mode used without opting in',
} as const;

export type WitnessErrorCode = keyof typeof WITNESS_ERROR_CODES;

/** Base of every witness error; `code` is one of WITNESS_ERROR_CODES. */
export abstract class WitnessError extends Error {
  abstract readonly code: WitnessErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class WitnessUnavailableError extends WitnessError {
  override readonly name = 'WitnessUnavailableError';
  readonly code = 'EWITNESSDOWN' as const;
  constructor(
    /** What we were doing: "acquire rg-a", "renew rg-a" ... */
    readonly operation: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`witness unavailable during ${operation}: ${reason}`, options);
  }
}

export class LeaseLostError extends WitnessError {
  override readonly name = 'LeaseLostError';
  readonly code = 'ELEASELOST' as const;
  constructor(
    readonly rg: string,
    readonly nodeId: string,
    readonly epoch: number,
    /** Who holds the lease now; null when it is free. */
    readonly current: LeaseHolder | null,
  ) {
    super(
      `lease of ${rg} at epoch ${epoch} is no longer held by ${nodeId}: ` +
        (current ? `${current.node} holds it at epoch ${current.epoch}` : 'it expired or was released'),
    );
  }
}

export class LeaseHeldByOtherError extends WitnessError {
  override readonly name = 'LeaseHeldByOtherError';
  readonly code = 'ELEASEHELD' as const;
  constructor(
    readonly rg: string,
    readonly nodeId: string,
    /** The holder, when the witness told us (null when it could not be asked again). */
    readonly holder: LeaseHolder | null,
  ) {
    super(
      `${nodeId} cannot acquire the lease of ${rg}: ` +
        (holder === null
          ? 'another node holds it'
          : holder.node.startsWith('!')
            ? `the witness lost track of it (restart or failover) and keeps it free of holders for another ${holder.ttlMs} ms`
            : `${holder.node} holds it at epoch ${holder.epoch} for another ${holder.ttlMs} ms`),
    );
  }
}

export class WitnessReplyError extends WitnessError {
  override readonly name = 'WitnessReplyError';
  readonly code = 'EWITNESSREPLY' as const;
  constructor(
    readonly operation: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`unexpected witness reply to ${operation}: ${reason}`, options);
  }
}

export class WitnessClosedError extends WitnessError {
  override readonly name = 'WitnessClosedError';
  readonly code = 'EWITNESSCLOSED' as const;
  constructor(readonly operation: string) {
    super(`${operation}: the witness is closed`);
  }
}

export class WitnessConfigError extends WitnessError {
  override readonly name = 'WitnessConfigError';
  readonly code = 'EWITNESSCONFIG' as const;
  constructor(message: string) {
    super(message);
  }
}
