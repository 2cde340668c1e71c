/**
 * Task management functions as seen by the device server. Tracking and
 * aborting the tasks themselves is the transport's job (it owns them); the
 * device performs the side effects SAM-5 requires:
 *
 * - ABORT TASK, ABORT TASK SET, CLEAR TASK SET: nothing beyond the
 *   transport's aborts (TST=001b: the task set is the requester's own, so
 *   no COMMANDS CLEARED BY ANOTHER INITIATOR); 'complete'.
 * - CLEAR ACA: NACA is not supported, so there is never an ACA: 'not-supported'.
 * - LOGICAL UNIT RESET: the LU's mode parameters return to their defaults,
 *   its SCSI-2 reservation is released (persistent reservations survive
 *   every reset) and EVERY I_T nexus that has used the LU, the requester included, gets
 *   BUS DEVICE RESET FUNCTION OCCURRED (29h/03h) (SAM-5 6.3.3; libiscsi's
 *   multipath reset test checks the requesting path too).
 * - TARGET WARM RESET: a reset of every LU with SCSI BUS RESET OCCURRED
 *   (29h/02h, the hard reset code).
 * - TARGET COLD RESET: the same with POWER ON OCCURRED (29h/01h); the
 *   transport also drops every session.
 */
import type { LogicalUnit } from './logical-unit';
import { TaskManagementFunction } from './types';
import { UnitAttention } from './ua';

export const TmfResponse = {
  COMPLETE: 'complete',
  LUN_DOES_NOT_EXIST: 'lun-does-not-exist',
  NOT_SUPPORTED: 'not-supported',
  REJECTED: 'rejected',
} as const;
export type TmfResponse = (typeof TmfResponse)[keyof typeof TmfResponse];

export interface TmfScope {
  /** The addressed logical unit, undefined when the LUN has none. */
  readonly lu: LogicalUnit | undefined;
  /** Every logical unit of the target. */
  readonly all: readonly LogicalUnit[];
}

type TmfHandler = (scope: TmfScope) => TmfResponse;

const onLogicalUnit =
  (action: (lu: LogicalUnit) => void): TmfHandler =>
  ({ lu }) => {
    if (!lu) return TmfResponse.LUN_DOES_NOT_EXIST;
    action(lu);
    return TmfResponse.COMPLETE;
  };

export const TMF_HANDLERS: Readonly<Record<TaskManagementFunction, TmfHandler>> = {
  [TaskManagementFunction.ABORT_TASK]: onLogicalUnit(() => {}),
  [TaskManagementFunction.ABORT_TASK_SET]: onLogicalUnit(() => {}),
  [TaskManagementFunction.CLEAR_TASK_SET]: onLogicalUnit(() => {}),
  [TaskManagementFunction.CLEAR_ACA]: ({ lu }) => (lu ? TmfResponse.NOT_SUPPORTED : TmfResponse.LUN_DOES_NOT_EXIST),
  [TaskManagementFunction.LOGICAL_UNIT_RESET]: onLogicalUnit((lu) => lu.reset(UnitAttention.BUS_DEVICE_RESET_FUNCTION_OCCURRED)),
  [TaskManagementFunction.TARGET_WARM_RESET]: ({ all }) => {
    for (const lu of all) lu.reset(UnitAttention.SCSI_BUS_RESET_OCCURRED);
    return TmfResponse.COMPLETE;
  },
  [TaskManagementFunction.TARGET_COLD_RESET]: ({ all }) => {
    for (const lu of all) lu.reset(UnitAttention.POWER_ON_OCCURRED);
    return TmfResponse.COMPLETE;
  },
};
