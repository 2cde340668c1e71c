/** Per-volume mirror metadata: generations, flags, dirty bitmap, activity log. */
export { VolumeMetadata, metadataPath, META_SUFFIX } from './volume-metadata';
export type { VolumeMetadataOptions, MetaFlags, SettableFlag, MetaStats } from './volume-metadata';
export { DirtyBitmap } from './bitmap';
export { ActivityLog } from './activity-log';
export type { ActivityLogStats } from './activity-log';
export { META_TUNABLES, MAX_REGIONS } from './tunables';
export type { MetaTunable, MetaTunableName, MetaTunables } from './tunables';
export { META_FLAGS } from './format';
export type { MetaFlag } from './format';
export {
  META_ERROR_CODES,
  MetadataError,
  MetadataCorruptError,
  MetadataMismatchError,
  MetadataNotFoundError,
  MetadataConfigError,
  MetadataFailedError,
  MetadataClosedError,
  MetadataBusyError,
} from './errors';
export type { MetaErrorCode } from './errors';
