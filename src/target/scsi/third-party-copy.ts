/**
 * Third-party copy (SPC-4 5.17, 6.4, 6.18): wire constants and the copy
 * manager's limits, shared by EXTENDED COPY and RECEIVE COPY RESULTS so the
 * limits enforced and the limits reported are the same numbers.
 */

export const CopyOpcode = {
  EXTENDED_COPY: 0x83,
  RECEIVE_COPY_RESULTS: 0x84,
} as const;

/** Service actions of EXTENDED COPY (0x83). Only LID1 is implemented. */
export const ExtendedCopyAction = { LID1: 0x00 } as const;

/** Service actions of RECEIVE COPY RESULTS (0x84) that are implemented. */
export const ReceiveCopyResultsAction = {
  COPY_STATUS: 0x00,
  OPERATING_PARAMETERS: 0x03,
} as const;

/** Descriptor type codes the copy manager implements. */
export const CopyDescriptor = {
  /** Segment descriptor: block device to block device. */
  BLOCK_TO_BLOCK: 0x02,
  /** CSCD descriptor: identification descriptor (names an LU by a VPD 0x83 designator). */
  IDENTIFICATION: 0xe4,
} as const;

/** LIST ID USAGE (parameter list byte 1 bits 4..3). */
export const ListIdUsage = {
  /** Hold the copy status for RECEIVE COPY RESULTS; the list id is unique. */
  HOLD: 0,
  RESERVED: 1,
  /** Do not hold; the list id is unique. */
  NO_HOLD: 2,
  /** No list id: not unique, nothing held. */
  NONE: 3,
} as const;

export const PARAMETER_LIST_HEADER_LENGTH = 16;
export const CSCD_DESCRIPTOR_LENGTH = 32;
export const BLOCK_TO_BLOCK_DESCRIPTOR_LENGTH = 28;

export const COPY_LIMITS = {
  /** MAXIMUM CSCD DESCRIPTOR COUNT. */
  maxCscdDescriptors: 8,
  /** MAXIMUM SEGMENT DESCRIPTOR COUNT. */
  maxSegmentDescriptors: 64,
  /** MAXIMUM DESCRIPTOR LIST LENGTH: both lists together, in bytes. */
  maxDescriptorListLength: 8 * CSCD_DESCRIPTOR_LENGTH + 64 * BLOCK_TO_BLOCK_DESCRIPTOR_LENGTH,
  /** MAXIMUM SEGMENT LENGTH in bytes (a block to block segment moves at most 65535 blocks anyway). */
  maxSegmentBytes: 256 * 1024 * 1024,
  /** MAXIMUM CONCURRENT COPIES per copy manager (logical unit); more get BUSY. */
  maxConcurrentCopies: 16,
  /** The copy moves data in chunks of this many bytes, each under the LUs' range locks. */
  chunkBytes: 1024 * 1024,
} as const;
