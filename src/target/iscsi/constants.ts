/**
 * iSCSI wire constants (RFC 7143). Tables are `as const` with derived types;
 * test/unit/iscsi/pdu-layout.test.ts pins the offsets.
 */

export const BHS_LENGTH = 48;
export const DIGEST_LENGTH = 4;
/** Reserved tag value: "no task" / "no transfer". */
export const RESERVED_TAG = 0xffffffff;

/** Opcodes sent by the initiator. */
export const InitiatorOpcode = {
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TASK_MGMT_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  SCSI_DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
} as const;
export type InitiatorOpcode = (typeof InitiatorOpcode)[keyof typeof InitiatorOpcode];

/** Opcodes sent by the target. */
export const TargetOpcode = {
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TASK_MGMT_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  SCSI_DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;
export type TargetOpcode = (typeof TargetOpcode)[keyof typeof TargetOpcode];

/** Byte offsets inside the basic header segment shared by several PDUs. */
export const BhsOffset = {
  OPCODE: 0,
  FLAGS: 1,
  TOTAL_AHS_LENGTH: 4,
  DATA_SEGMENT_LENGTH: 5,
  LUN: 8,
  ITT: 16,
  TTT: 20,
  /** SCSI command: expected data transfer length. */
  EDTL: 20,
  CMD_SN: 24,
  STAT_SN: 24,
  EXP_STAT_SN: 28,
  EXP_CMD_SN: 28,
  MAX_CMD_SN: 32,
  CDB: 32,
  DATA_SN: 36,
  BUFFER_OFFSET: 40,
  RESIDUAL_COUNT: 44,
  DESIRED_LENGTH: 44,
} as const;

export const OPCODE_MASK = 0x3f;
export const IMMEDIATE_BIT = 0x40;
export const FINAL_BIT = 0x80;

/** SCSI Command flags (byte 1). */
export const ScsiCommandFlag = { FINAL: 0x80, READ: 0x40, WRITE: 0x20, ATTR_MASK: 0x07 } as const;
/** SCSI Response / Data-In residual and status flags (byte 1). */
export const ResponseFlag = {
  FINAL: 0x80,
  ACK: 0x40,
  BIDI_OVERFLOW: 0x10,
  BIDI_UNDERFLOW: 0x08,
  OVERFLOW: 0x04,
  UNDERFLOW: 0x02,
  STATUS: 0x01,
} as const;
/** Login flags (byte 1). */
export const LoginFlag = { TRANSIT: 0x80, CONTINUE: 0x40, CSG_MASK: 0x0c, CSG_SHIFT: 2, NSG_MASK: 0x03 } as const;
/** Text flags (byte 1). */
export const TextFlag = { FINAL: 0x80, CONTINUE: 0x40 } as const;

/** iSCSI task attribute field values (SCSI Command byte 1, bits 0-2). */
export const IscsiTaskAttr = { UNTAGGED: 0, SIMPLE: 1, ORDERED: 2, HEAD_OF_QUEUE: 3, ACA: 4 } as const;

/** Task management function codes. */
export const TmfFunction = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
} as const;
export type TmfFunction = (typeof TmfFunction)[keyof typeof TmfFunction];

/** Task management response codes. */
export const TmfResponse = {
  FUNCTION_COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  REASSIGNMENT_NOT_SUPPORTED: 4,
  FUNCTION_NOT_SUPPORTED: 5,
  AUTHORIZATION_FAILED: 6,
  FUNCTION_REJECTED: 255,
} as const;
export type TmfResponse = (typeof TmfResponse)[keyof typeof TmfResponse];

/** SCSI Response "response" field. */
export const ScsiServiceResponse = { COMMAND_COMPLETED: 0x00, TARGET_FAILURE: 0x01 } as const;

/** Reject reasons. */
export const RejectReason = {
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  LONG_OPERATION_REJECT: 0x0a,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** Logout reason codes and responses. */
export const LogoutReason = { CLOSE_SESSION: 0, CLOSE_CONNECTION: 1, REMOVE_FOR_RECOVERY: 2 } as const;
export const LogoutResponse = {
  SUCCESS: 0,
  CID_NOT_FOUND: 1,
  RECOVERY_NOT_SUPPORTED: 2,
  CLEANUP_FAILED: 3,
} as const;

/** Async message events. */
export const AsyncEvent = {
  SCSI_ASYNC_EVENT: 0,
  LOGOUT_REQUEST: 1,
  CONNECTION_DROP: 2,
  SESSION_DROP: 3,
  NEGOTIATION_REQUEST: 4,
} as const;

/** Login status class / detail pairs used by the target. */
export const LoginStatus = {
  SUCCESS: [0x00, 0x00],
  TARGET_MOVED_TEMPORARILY: [0x01, 0x01],
  INITIATOR_ERROR: [0x02, 0x00],
  AUTHENTICATION_FAILURE: [0x02, 0x01],
  AUTHORIZATION_FAILURE: [0x02, 0x02],
  TARGET_NOT_FOUND: [0x02, 0x03],
  TARGET_REMOVED: [0x02, 0x04],
  UNSUPPORTED_VERSION: [0x02, 0x05],
  TOO_MANY_CONNECTIONS: [0x02, 0x06],
  MISSING_PARAMETER: [0x02, 0x07],
  CANT_INCLUDE_IN_SESSION: [0x02, 0x08],
  SESSION_TYPE_NOT_SUPPORTED: [0x02, 0x09],
  SESSION_DOES_NOT_EXIST: [0x02, 0x0a],
  INVALID_DURING_LOGIN: [0x02, 0x0b],
  TARGET_ERROR: [0x03, 0x00],
  SERVICE_UNAVAILABLE: [0x03, 0x01],
  OUT_OF_RESOURCES: [0x03, 0x02],
} as const;
