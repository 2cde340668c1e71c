/**
 * BackingStore errors → failure reasons. One table: EIO is a medium error
 * (read or write flavour), ENOSPC on a thin LU is SPACE ALLOCATION FAILED
 * WRITE PROTECT; anything else is an internal target failure.
 */
import { BlockIoError } from '../../block';
import { FailureReason, ScsiFailure } from './failures';

export const IoDirection = { READ: 'read', WRITE: 'write' } as const;
export type IoDirection = (typeof IoDirection)[keyof typeof IoDirection];

const IO_ERROR_REASONS: Readonly<Record<string, Readonly<Record<IoDirection, FailureReason>>>> = {
  EIO: { read: 'unrecovered-read-error', write: 'write-error' },
};

/** Map a store error to a ScsiFailure; errors that are not BlockIoError are returned unchanged. */
export function ioFailure(err: unknown, direction: IoDirection, thin: boolean): unknown {
  if (err instanceof ScsiFailure || !(err instanceof BlockIoError)) return err;
  if (err.code === 'ENOSPC' && thin && direction === IoDirection.WRITE) return new ScsiFailure('space-allocation-failed');
  return new ScsiFailure(IO_ERROR_REASONS[err.code]?.[direction] ?? 'internal-target-failure');
}
