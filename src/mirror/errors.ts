/**
 * Errors of the mirror engine: one registry of codes, each with what it
 * means. The codes are errno-style so they travel in Ack.code when the peer
 * refuses a request about a volume.
 *
 * I/O through a MirroredVolume's store fails with BlockIoError (src/block),
 * which the SCSI layer maps to sense data; control operations (openVolume,
 * promote, resolveSplitBrain, verify ...) fail with MirrorError.
 */

export const MIRROR_ERROR_CODES = {
  ENOENT: 'no volume with this id is open on the node',
  EEXIST: 'a volume with this id is already open on the node',
  EINVAL: 'a bad argument (volume spec, range, option) or an operation that does not apply in the volume state',
  EROFS: 'the volume is secondary on this node: writes through its store are refused',
  EBADF: 'the volume (or node) is closed',
  ENOTCONN: 'the volume is not connected to the peer in a state that takes this request (the sender goes degraded)',
  EAGAIN: 'the volume is busy with another handshake; the sender tries again shortly',
  EPROTO: 'the peer sent something this release cannot make sense of',
  EMISMATCH: 'the two replicas of the volume differ in size or region size',
  EDUALPRIMARY: 'both nodes are primary for the volume: neither replicates to the other until one is demoted',
  ETARGETPRIMARY: 'the sync rules make the primary the resync target (its data would change under its initiators): demote it first',
  EINCONSISTENT: 'the replica is an unfinished resync target (or newly created): it may not be promoted or opened as primary',
  ESPLITBRAIN: 'both replicas wrote while apart; an operator must choose the survivor (resolveSplitBrain)',
  EUNRELATED: 'the replicas share no generation (different volumes, or both newly created): refused',
  ETIMEDOUT: 'the peer did not answer a volume handshake in time',
  EIO: 'a local I/O or metadata failure',
  ENOTSUP: 'the peer cannot do this: no handler for the control topic, or the link runs a protocol version without it',
} as const;

export type MirrorErrorCode = keyof typeof MIRROR_ERROR_CODES;

export function isMirrorErrorCode(code: string): code is MirrorErrorCode {
  return Object.prototype.hasOwnProperty.call(MIRROR_ERROR_CODES, code);
}

export class MirrorError extends Error {
  override readonly name = 'MirrorError';
  constructor(
    readonly code: MirrorErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
