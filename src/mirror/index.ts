/**
 * The synchronous mirror (docs/mirror.md). The node process uses MirrorNode
 * and MirroredVolume; the SCSI target sees only a volume's `store`, a
 * BackingStore (src/block). Nothing here imports src/target.
 */
export { MirrorNode, parseHostPort, formatHostPort, CONTROL_SINCE_VERSION } from './node';
export type { MirrorNodeOptions, MirrorNodeEvents, ControlHandler } from './node';
export { OUR_VERSIONS as PROTOCOL_VERSIONS } from './protocol';
export { MirroredVolume, VolumeState } from './volume/volume';
export type { MirroredVolumeEvents } from './volume/volume';
export type { ScsiStateListener } from './volume/scsi-state';
export { REPLICATION_STATES, VERIFY_ALGORITHMS } from './volume/types';
export type {
  ByteRange,
  MirrorStatus,
  ReplicationState,
  ResyncProgress,
  VerifyAlgorithm,
  VerifyOptions,
  VerifyReport,
  VolumeRole,
  VolumeSpec,
} from './volume/types';
export { MIRROR_TUNABLES, ALL_MIRROR_TUNABLES, resolveMirrorTunables } from './tunables';
export type { MirrorTunables, MirrorEngineTunables, MirrorTunable } from './tunables';
export { MIRROR_ERROR_CODES, MirrorError, isMirrorErrorCode } from './errors';
export type { MirrorErrorCode } from './errors';
export { SYNC_RULE_SUMMARIES } from './generations';
export type { Generations } from './generations';
