/**
 * SCSI-2 RESERVE / RELEASE (SPC-2 7.21, 7.11) as pure functions, with the
 * SPC-4 5.13.3 exceptions for logical units that also have persistent
 * reservations (CRH=1): once any I_T nexus is registered, RESERVE and
 * RELEASE conflict, except that from the persistent reservation holder they
 * complete with GOOD and change nothing.
 *
 * A SCSI-2 reservation belongs to one I_T nexus. It is released by RELEASE
 * from that nexus, by a logical unit reset, a target reset and the loss of
 * that I_T nexus (lu-reservations.ts); it does not survive power loss. A
 * failover of the logical unit to the peer node is none of these: the
 * reservation moves with the initiator port's path (targetPortMoved).
 */
import { isHolder, PrState, registrationOf, Scsi2Reservation } from './state';
import type { NexusIdentity } from './transport-id';

export interface Scsi2Outcome {
  readonly conflict: boolean;
  readonly scsi2: Scsi2Reservation | null;
}

export function sameNexus(a: NexusIdentity, b: NexusIdentity): boolean {
  return a.initiator === b.initiator && a.relativeTargetPortId === b.relativeTargetPortId;
}

/** Registrations exist: RESERVE/RELEASE are GOOD no-ops from the holder and conflict from everyone else. */
function persistentException(pr: PrState, current: Scsi2Reservation | null, id: NexusIdentity): Scsi2Outcome | null {
  if (pr.registrations.length === 0) return null;
  const mine = registrationOf(pr, id);
  return { conflict: !(mine && isHolder(pr, mine)), scsi2: current };
}

export function scsi2Reserve(pr: PrState, current: Scsi2Reservation | null, id: NexusIdentity): Scsi2Outcome {
  const exception = persistentException(pr, current, id);
  if (exception) return exception;
  if (current && !sameNexus(current, id)) return { conflict: true, scsi2: current };
  return { conflict: false, scsi2: { initiator: id.initiator, relativeTargetPortId: id.relativeTargetPortId } };
}

export function scsi2Release(pr: PrState, current: Scsi2Reservation | null, id: NexusIdentity): Scsi2Outcome {
  const exception = persistentException(pr, current, id);
  if (exception) return exception;
  // Releasing someone else's reservation, or none, is GOOD and changes nothing.
  if (!current || !sameNexus(current, id)) return { conflict: false, scsi2: current };
  return { conflict: false, scsi2: null };
}
