/**
 * BackingStore errors → failure reasons. One table: EIO is a medium error
 * (read or write flavour); running out of space while writing to a thin LU
 * (ENOSPC, or EDQUOT when the backing file system enforces a quota) is
 * SPACE ALLOCATION FAILED WRITE PROTECT, for every command that writes
 * (WRITE, WRITE SAME, COMPARE AND WRITE, UNMAP...); anything else is an
 * internal target failure.
 */
import { BlockIoError } from '../../block';
import { FailureReason, ScsiFailure } from './failures';

export const IoDirection = { READ: 'read', WRITE: 'write' } as const;
export type IoDirection = (typeof IoDirection)[keyof typeof IoDirection];

/** Errno codes meaning "no space to allocate blocks". */
const OUT_OF_SPACE: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

const IO_ERROR_REASONS: Readonly<Record<string, Readonly<Record<IoDirection, FailureReason>>>> = {
  EIO: { read: 'unrecovered-read-error', write: 'write-error' },
};

/** Map a store error to a ScsiFailure; errors that are not BlockIoError are returned unchanged. */
export function ioFailure(err: unknown, direction: IoDirection, thin: boolean): unknown {
  if (err instanceof ScsiFailure || !(err instanceof BlockIoError)) return err;
  if (OUT_OF_SPACE.has(err.code) && thin && direction === IoDirection.WRITE) return new ScsiFailure('space-allocation-failed');
  return new ScsiFailure(IO_ERROR_REASONS[err.code]?.[direction] ?? 'internal-target-failure');
}
