/**
 * The SCSI device layer (SPC-4 / SBC-3 direct access block device). Knows
 * nothing of iSCSI: a transport hands it ScsiCommand and gets ScsiResponse.
 */
export * from './types';

export { ScsiTargetDevice, MAX_LUN, checkControlByte } from './target-device';
export type { ScsiTargetDeviceOptions, AbortTasksHandler, QuiesceOutcome } from './target-device';
export { LogicalUnit, DEFAULT_MAX_TRANSFER_BYTES } from './logical-unit';
export { LiveStatePusher } from './live-state';
export type { LiveScsiState, LiveStateReplica } from './live-state';
export { InFlight } from './in-flight';
export type { LogicalUnitOptions } from './logical-unit';
export { IDENTITY_DEFAULTS, TWINSAN_COMPANY_ID, canonicalVolumeId, unitSerialNumber, naaDesignator, resolveIdentity } from './identity';
export type { LuIdentity, LuIdentityOptions } from './identity';
export { TmfResponse, TMF_HANDLERS } from './task-management';
export type { TmfScope } from './task-management';
export { UnitAttention, UnitAttentionQueues } from './ua';
export type { UnitAttentionCondition, UnitAttentionSnapshot, EstablishOptions } from './ua';
export { SenseKey, FAILURE_SENSE, ScsiFailure, invalidCdbField, invalidParameterField } from './failures';
export type { FailureReason, FailureDetail, FieldPointer, SenseCode } from './failures';
export { buildSense, senseForFailure, SenseFormat } from './sense';
export type { SenseFields } from './sense';
export { ioFailure, IoDirection } from './io-errors';
export { CommandTable, DataDirection, ReservationClass, luCommand, anyLunCommand, serviceActionOf } from './command-table';
export type {
  CommandRow,
  CommandContext,
  LuCommandContext,
  CommandResult,
  PreparedCommand,
  CommandCapabilities,
  CommandTimeouts,
  Lookup,
} from './command-table';
export { SBC_COMMAND_ROWS, sbcCommandTable } from './commands';
export { Opcode, ServiceActionIn16, MaintenanceIn, SERVICE_ACTION_OPCODES } from './opcodes';
export { IntervalLock, LockMode } from './interval-lock';
export type { Release } from './interval-lock';
export { TaskOrder } from './task-order';
export type { Leave } from './task-order';
export { ModePage, PageControl, MODE_PAGES, ModeParameters, modePageDefinition } from './mode-pages';
export type { ModePageDefinition } from './mode-pages';
export { VPD_PAGES, VpdPage } from './vpd';
export { provisioning } from './provisioning';
export type { Provisioning } from './provisioning';
export { VersionDescriptor, STANDARD_INQUIRY_LENGTH } from './inquiry';
export { AluaGroups, AluaState, ALUA_STATE_CODE, AluaStatusCode, LuAvailability, checkAccess, effectiveState } from './alua';
export type { AluaOptions, AluaGroupOptions, AluaGroupView, AccessDecision } from './alua';
export { RTPG_ROW, RtpgFormat, rtpgData } from './report-target-port-groups';
export { CopyTargetRegistry } from './copy-registry';
export type { CopyTarget, CopyTargetRegistration } from './copy-registry';
export { CopyResults, CopyManagerStatus } from './copy-results';
export type { CopyStatus } from './copy-results';
export { COPY_LIMITS, CopyOpcode, CopyDescriptor, ListIdUsage, ExtendedCopyAction, ReceiveCopyResultsAction } from './third-party-copy';
export { EXTENDED_COPY_ROW, parseCopyParameterList } from './extended-copy';
export { RECEIVE_COPY_RESULTS_ROWS } from './receive-copy-results';
export { LuReservations, FileReservationStore, PrType, PR_TYPES, PR_ACCESS, ProutAction, parseSnapshot, nexusIdentity, encodeTransportId, parseTransportId } from './reservations';
export type { ReservationStore, ReservationSnapshot, PrState, RegistrationRecord, NexusIdentity } from './reservations';
export { PERSISTENT_RESERVE_IN_ROWS, PrinAction } from './persistent-reserve-in';
export { PERSISTENT_RESERVE_OUT_ROWS } from './persistent-reserve-out';
export { RESERVE_RELEASE_ROWS } from './reserve-release';
export { unmapGranularity } from './provisioning';
export { UNMAP_ROW, UNMAP_LIMITS } from './unmap';
export { GET_LBA_STATUS_ROW, ProvisioningStatus } from './get-lba-status';
export { COMPARE_AND_WRITE_ROW, COMPARE_AND_WRITE_MAX_BLOCKS } from './compare-and-write';
export { WRITE_SAME_ROWS, WRITE_SAME_MAX_BLOCKS } from './write-same';
