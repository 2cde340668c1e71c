/**
 * Metadata errors: one class per kind, each with a stable code.
 *
 * I/O errors from the file itself pass through as BlockIoError (errno code).
 * After a failed write or fdatasync the metadata object is failed for good:
 * every later call rejects with MetadataFailedError (the kernel may have
 * dropped the unwritten pages, so a later successful fdatasync proves nothing).
 */
export const META_ERROR_CODES = {
  META_CORRUPT: 'The file is not a valid metadata file, or is torn or damaged beyond what the redundant copies cover.',
  META_MISMATCH: 'The file belongs to another volume, or records another size or region size than asked for.',
  META_NOT_FOUND: 'No metadata file exists and creation was not asked for.',
  META_CONFIG: 'A tunable or size is out of bounds.',
  META_FAILED: 'An earlier write or fdatasync failed; the metadata must be reopened.',
  META_CLOSED: 'The metadata was closed.',
  META_BUSY: 'The operation needs the activity log idle (markClean with writes in flight).',
} as const;

export type MetaErrorCode = keyof typeof META_ERROR_CODES;

export abstract class MetadataError extends Error {
  abstract readonly code: MetaErrorCode;
}

export class MetadataCorruptError extends MetadataError {
  override readonly name = 'MetadataCorruptError';
  readonly code = 'META_CORRUPT';
}

export class MetadataMismatchError extends MetadataError {
  override readonly name = 'MetadataMismatchError';
  readonly code = 'META_MISMATCH';
}

export class MetadataNotFoundError extends MetadataError {
  override readonly name = 'MetadataNotFoundError';
  readonly code = 'META_NOT_FOUND';
}

export class MetadataConfigError extends MetadataError {
  override readonly name = 'MetadataConfigError';
  readonly code = 'META_CONFIG';
}

export class MetadataFailedError extends MetadataError {
  override readonly name = 'MetadataFailedError';
  readonly code = 'META_FAILED';
  constructor(message: string, cause: unknown) {
    super(message, { cause });
  }
}

export class MetadataClosedError extends MetadataError {
  override readonly name = 'MetadataClosedError';
  readonly code = 'META_CLOSED';
}

export class MetadataBusyError extends MetadataError {
  override readonly name = 'MetadataBusyError';
  readonly code = 'META_BUSY';
}
