/**
 * The boundary between a SCSI transport (iSCSI, in src/target/iscsi) and the
 * SCSI device layer. Nothing here knows about iSCSI.
 */

/** An I_T nexus: one initiator port talking to one target port. */
export interface ItNexus {
  /** Stable unique key of the nexus (initiator port id + target port id). */
  readonly key: string;
  /** SCSI initiator port name, e.g. "iqn.1993-08.org.debian:01:abc,i,0x23d000000001". */
  readonly initiatorPort: string;
  /** SCSI target port name, e.g. "iqn.2026-11.io.twinsan:vol0,t,0x0001". */
  readonly targetPort: string;
  /** Relative target port identifier (1-based) of the target port. */
  readonly relativeTargetPortId: number;
  /** Transport id bytes of the initiator (SPC-4 TransportID, iSCSI format), used by persistent reservations. */
  readonly initiatorTransportId: Buffer;
}

/** SAM task attributes. */
export const TaskAttribute = {
  SIMPLE: 'simple',
  ORDERED: 'ordered',
  HEAD_OF_QUEUE: 'head-of-queue',
  ACA: 'aca',
} as const;
export type TaskAttribute = (typeof TaskAttribute)[keyof typeof TaskAttribute];

/** A SCSI command as the transport hands it to the device layer. */
export interface ScsiCommand {
  readonly nexus: ItNexus;
  /** Logical unit number (flat, 0..16383). */
  readonly lun: number;
  readonly cdb: Buffer;
  readonly taskAttribute: TaskAttribute;
  /** Transport-level expected data transfer length in bytes (direction given by dataOut !== null). */
  readonly expectedDataTransferLength: number;
  /**
   * Data-out received from the initiator, in order, as received (not
   * concatenated); null for commands without a data-out phase.
   */
  readonly dataOut: readonly Buffer[] | null;
}

/** SAM status codes. */
export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;
export type ScsiStatus = (typeof ScsiStatus)[keyof typeof ScsiStatus];

/** What the device layer answers. */
export interface ScsiResponse {
  readonly status: ScsiStatus;
  /**
   * Sense data when status is CHECK CONDITION: fixed format (0x70, 18 bytes)
   * or, when the initiator set D_SENSE in the control mode page,
   * descriptor format (0x72).
   */
  readonly sense: Buffer | null;
  /**
   * Data-in for the initiator, already cut to the CDB's allocation length but
   * NOT to the transport's expected length (the transport computes residuals
   * and truncates).
   */
  readonly dataIn: Buffer | null;
  /**
   * Set when dataIn is lent from a buffer pool (READ): the transport calls it
   * once it no longer needs dataIn (the socket has taken the data, or the
   * response was dropped), and must not touch dataIn afterwards. Not calling
   * it is safe, only slower.
   */
  readonly release?: () => void;
  /**
   * For data-out commands: the number of data-out bytes the CDB called for,
   * so the transport can report an overflow or underflow residual. Set on
   * GOOD and on CHECK CONDITION once the CDB was parsed (a data-out shorter
   * than this fails with INVALID FIELD IN COMMAND INFORMATION UNIT and
   * nothing written; a longer one is trimmed). Absent when the command
   * failed before its transfer length was known (unit attention, invalid
   * CDB, no such LUN): the transport then reports no residual.
   */
  readonly dataOutExpected?: number;
}

/** Task management functions a transport can request. */
export const TaskManagementFunction = {
  ABORT_TASK: 'abort-task',
  ABORT_TASK_SET: 'abort-task-set',
  CLEAR_ACA: 'clear-aca',
  CLEAR_TASK_SET: 'clear-task-set',
  LOGICAL_UNIT_RESET: 'logical-unit-reset',
  TARGET_WARM_RESET: 'target-warm-reset',
  TARGET_COLD_RESET: 'target-cold-reset',
} as const;
export type TaskManagementFunction = (typeof TaskManagementFunction)[keyof typeof TaskManagementFunction];
