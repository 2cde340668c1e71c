/**
 * Reservations of a logical unit: persistent reservations (SPC-4 5.13) and
 * SCSI-2 RESERVE/RELEASE, their conflict rules, and their persistence.
 */
export { LuReservations } from './lu-reservations';
export type { ReservationStore, ProutResult } from './lu-reservations';
export { FileReservationStore } from './file-store';
export {
  PrType,
  PR_TYPES,
  PR_SCOPE_LU,
  PrAccess,
  PrHolders,
  ZERO_KEY,
  EMPTY_PR_STATE,
  parseSnapshot,
  covers,
  registrationOf,
  isHolder,
  holderKey,
} from './state';
export type {
  PrTypeInfo,
  ReservationKey,
  RegistrantRef,
  RegistrationRecord,
  PersistentReservationRecord,
  PrState,
  Scsi2Reservation,
  ReservationSnapshot,
} from './state';
export {
  PR_ACCESS,
  PR_ACCESS_COLUMNS,
  CDB_CLASS_RULES,
  SCSI2_ALLOWED_FROM_OTHERS,
  SCSI2_CONFLICT_FOR_ALL,
  ReservationOpcode,
  reservationClassOf,
  reservationConflict,
} from './conflicts';
export type { CdbRule, PrAccessColumn } from './conflicts';
export { ProutAction, ProutField, persistentReserveOut } from './persistent-out';
export type { ProutRequest, ProutOutcome, ProutEffects, RegistrantNotice, ListedInitiator } from './persistent-out';
export { scsi2Reserve, scsi2Release } from './scsi2';
export { ProtocolId, IscsiTransportIdFormat, parseTransportId, encodeTransportId, nexusIdentity, parseInitiatorPortName, sameProtocol } from './transport-id';
export type { NexusIdentity, ParsedTransportId } from './transport-id';
