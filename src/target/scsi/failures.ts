/**
 * Typed failure reasons and the one table that maps them to sense key,
 * additional sense code and qualifier. Handlers throw ScsiFailure with a
 * reason (and optionally where in the CDB / parameter list the fault is);
 * only sense.ts turns that into bytes.
 */

export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  MISCOMPARE: 0xe,
} as const;
export type SenseKey = (typeof SenseKey)[keyof typeof SenseKey];

export interface SenseCode {
  readonly key: SenseKey;
  readonly asc: number;
  readonly ascq: number;
  /** The T10 name of the ASC/ASCQ, for logs. */
  readonly text: string;
}

/** Every failure a handler can report, and its sense code. */
export const FAILURE_SENSE = {
  'no-sense': { key: SenseKey.NO_SENSE, asc: 0x00, ascq: 0x00, text: 'NO ADDITIONAL SENSE INFORMATION' },
  'invalid-opcode': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x20, ascq: 0x00, text: 'INVALID COMMAND OPERATION CODE' },
  'invalid-field-in-cdb': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x24, ascq: 0x00, text: 'INVALID FIELD IN CDB' },
  'invalid-field-in-parameter-list': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x00, text: 'INVALID FIELD IN PARAMETER LIST' },
  'parameter-list-length-error': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x1a, ascq: 0x00, text: 'PARAMETER LIST LENGTH ERROR' },
  'lba-out-of-range': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x21, ascq: 0x00, text: 'LOGICAL BLOCK ADDRESS OUT OF RANGE' },
  'lun-not-supported': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x25, ascq: 0x00, text: 'LOGICAL UNIT NOT SUPPORTED' },
  'saving-parameters-not-supported': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x39, ascq: 0x00, text: 'SAVING PARAMETERS NOT SUPPORTED' },
  'invalid-field-in-command-iu': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x0e, ascq: 0x03, text: 'INVALID FIELD IN COMMAND INFORMATION UNIT' },
  'invalid-message-error': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x49, ascq: 0x00, text: 'INVALID MESSAGE ERROR' },
  'miscompare-during-verify': { key: SenseKey.MISCOMPARE, asc: 0x1d, ascq: 0x00, text: 'MISCOMPARE DURING VERIFY OPERATION' },
  'unrecovered-read-error': { key: SenseKey.MEDIUM_ERROR, asc: 0x11, ascq: 0x00, text: 'UNRECOVERED READ ERROR' },
  'write-error': { key: SenseKey.MEDIUM_ERROR, asc: 0x0c, ascq: 0x00, text: 'WRITE ERROR' },
  'write-protected': { key: SenseKey.DATA_PROTECT, asc: 0x27, ascq: 0x00, text: 'WRITE PROTECTED' },
  'space-allocation-failed': { key: SenseKey.DATA_PROTECT, asc: 0x27, ascq: 0x07, text: 'SPACE ALLOCATION FAILED WRITE PROTECT' },
  'invalid-release-of-persistent-reservation': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x04, text: 'INVALID RELEASE OF PERSISTENT RESERVATION' },
  'insufficient-registration-resources': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x55, ascq: 0x04, text: 'INSUFFICIENT REGISTRATION RESOURCES' },
  'internal-target-failure': { key: SenseKey.HARDWARE_ERROR, asc: 0x44, ascq: 0x00, text: 'INTERNAL TARGET FAILURE' },
  // ALUA (alua.ts): retryable answers while a target port group or LU is not accessible.
  'alua-transitioning': { key: SenseKey.NOT_READY, asc: 0x04, ascq: 0x0a, text: 'LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION' },
  'alua-standby': { key: SenseKey.NOT_READY, asc: 0x04, ascq: 0x0b, text: 'LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE' },
  'alua-unavailable': { key: SenseKey.NOT_READY, asc: 0x04, ascq: 0x0c, text: 'LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE' },
  // EXTENDED COPY (extended-copy.ts): parameter list faults, then copy aborts.
  'operation-in-progress': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x00, ascq: 0x16, text: 'OPERATION IN PROGRESS' },
  'too-many-target-descriptors': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x06, text: 'TOO MANY TARGET DESCRIPTORS' },
  'unsupported-target-descriptor-type': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x07, text: 'UNSUPPORTED TARGET DESCRIPTOR TYPE CODE' },
  'too-many-segment-descriptors': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x08, text: 'TOO MANY SEGMENT DESCRIPTORS' },
  'unsupported-segment-descriptor-type': { key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x09, text: 'UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE' },
  'copy-aborted': { key: SenseKey.COPY_ABORTED, asc: 0x00, ascq: 0x00, text: 'NO ADDITIONAL SENSE INFORMATION' },
  'copy-target-unreachable': { key: SenseKey.COPY_ABORTED, asc: 0x08, ascq: 0x04, text: 'UNREACHABLE COPY TARGET' },
  'copy-third-party-device-failure': { key: SenseKey.COPY_ABORTED, asc: 0x0d, ascq: 0x01, text: 'THIRD PARTY DEVICE FAILURE' },
  'copy-target-not-reachable': { key: SenseKey.COPY_ABORTED, asc: 0x0d, ascq: 0x02, text: 'COPY TARGET DEVICE NOT REACHABLE' },
  'copy-target-write-protected': { key: SenseKey.COPY_ABORTED, asc: 0x27, ascq: 0x00, text: 'WRITE PROTECTED' },
} as const satisfies Record<string, SenseCode>;

export type FailureReason = keyof typeof FAILURE_SENSE;

/** Where the offending field is: sense-key specific FIELD POINTER data. */
export interface FieldPointer {
  /** True when the field is in the CDB, false when in the parameter list (data-out). */
  readonly inCdb: boolean;
  /** Byte offset of the field (its most significant byte). */
  readonly byte: number;
  /** Most significant bit of the field within that byte, when meaningful. */
  readonly bit?: number;
}

export interface FailureDetail {
  readonly field?: FieldPointer;
  /** Value for the INFORMATION field (e.g. the offset of a miscompare). */
  readonly information?: number;
}

/** A command failed for a typed reason; sense bytes are built from FAILURE_SENSE. */
export class ScsiFailure extends Error {
  override readonly name = 'ScsiFailure';
  constructor(
    readonly reason: FailureReason,
    readonly detail: FailureDetail = {},
  ) {
    super(FAILURE_SENSE[reason].text);
  }
}

/** INVALID FIELD IN CDB pointing at `byte` (and `bit`, the field's most significant bit). */
export function invalidCdbField(byte: number, bit?: number): ScsiFailure {
  return new ScsiFailure('invalid-field-in-cdb', { field: bit === undefined ? { inCdb: true, byte } : { inCdb: true, byte, bit } });
}

/** INVALID FIELD IN PARAMETER LIST pointing at `byte` of the data-out. */
export function invalidParameterField(byte: number, bit?: number): ScsiFailure {
  return new ScsiFailure('invalid-field-in-parameter-list', {
    field: bit === undefined ? { inCdb: false, byte } : { inCdb: false, byte, bit },
  });
}
