/**
 * SCSI operation codes and service actions used by the block device server.
 * Wire constants only: which of them are implemented is decided by the
 * command table (command-table.ts / commands.ts), never by this file.
 */

export const Opcode = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  READ_6: 0x08,
  WRITE_6: 0x0a,
  INQUIRY: 0x12,
  MODE_SELECT_6: 0x15,
  RESERVE_6: 0x16,
  RELEASE_6: 0x17,
  MODE_SENSE_6: 0x1a,
  START_STOP_UNIT: 0x1b,
  PREVENT_ALLOW_MEDIUM_REMOVAL: 0x1e,
  READ_CAPACITY_10: 0x25,
  READ_10: 0x28,
  WRITE_10: 0x2a,
  WRITE_AND_VERIFY_10: 0x2e,
  VERIFY_10: 0x2f,
  PRE_FETCH_10: 0x34,
  SYNCHRONIZE_CACHE_10: 0x35,
  WRITE_SAME_10: 0x41,
  UNMAP: 0x42,
  MODE_SELECT_10: 0x55,
  MODE_SENSE_10: 0x5a,
  PERSISTENT_RESERVE_IN: 0x5e,
  PERSISTENT_RESERVE_OUT: 0x5f,
  READ_16: 0x88,
  COMPARE_AND_WRITE: 0x89,
  WRITE_16: 0x8a,
  WRITE_AND_VERIFY_16: 0x8e,
  VERIFY_16: 0x8f,
  PRE_FETCH_16: 0x90,
  SYNCHRONIZE_CACHE_16: 0x91,
  WRITE_SAME_16: 0x93,
  SERVICE_ACTION_IN_16: 0x9e,
  REPORT_LUNS: 0xa0,
  MAINTENANCE_IN: 0xa3,
  MAINTENANCE_OUT: 0xa4,
  READ_12: 0xa8,
  WRITE_12: 0xaa,
  WRITE_AND_VERIFY_12: 0xae,
  VERIFY_12: 0xaf,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Service actions of SERVICE ACTION IN (16), opcode 0x9E. */
export const ServiceActionIn16 = {
  READ_CAPACITY_16: 0x10,
  GET_LBA_STATUS: 0x12,
} as const;

/** Service actions of MAINTENANCE IN, opcode 0xA3. */
export const MaintenanceIn = {
  REPORT_TARGET_PORT_GROUPS: 0x0a,
  REPORT_SUPPORTED_OPERATION_CODES: 0x0c,
  REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS: 0x0d,
} as const;

/**
 * Opcodes whose service action lives in CDB byte 1 bits 4..0 and selects a
 * different command (so each service action is its own table row).
 */
export const SERVICE_ACTION_OPCODES: ReadonlySet<number> = new Set([
  Opcode.SERVICE_ACTION_IN_16,
  Opcode.MAINTENANCE_IN,
  Opcode.MAINTENANCE_OUT,
]);

/** Peripheral device type of a direct access block device (SBC). */
export const PERIPHERAL_DEVICE_TYPE_SBC = 0x00;
/** Byte 0 of INQUIRY data for a LUN with no logical unit: qualifier 3, type 0x1F. */
export const PERIPHERAL_NOT_CONNECTED = 0x7f;
