/**
 * What the iSCSI layer needs to know about a target it serves: its name, who
 * may log in, CHAP secrets and the SCSI device behind it.
 */
import { ItNexus, ScsiCommand, ScsiResponse, TaskManagementFunction } from '../scsi';

/** Outcome of a task management function at the SCSI device. */
export const DeviceTmfOutcome = {
  COMPLETE: 'complete',
  LUN_DOES_NOT_EXIST: 'lun-does-not-exist',
  NOT_SUPPORTED: 'not-supported',
} as const;
export type DeviceTmfOutcome = (typeof DeviceTmfOutcome)[keyof typeof DeviceTmfOutcome];

/** The SCSI device as the iSCSI layer uses it. */
export interface ScsiDevicePort {
  execute(cmd: ScsiCommand): Promise<ScsiResponse>;
  taskManagement(fn: TaskManagementFunction, nexus: ItNexus, lun: number): DeviceTmfOutcome | string;
  nexusLost(nexus: ItNexus): void;
  luns(): number[];
  /**
   * Data-out bytes the command's CDB can use (0 if it will fail first), so
   * the transport never solicits more than that.
   */
  dataOutLength?(cmd: { nexus: ItNexus; lun: number; cdb: Buffer }): number;
  /** True for a LUN that exists but is moving between nodes (no LU attached here right now). */
  isMoving?(lun: number): boolean;
}

export interface ChapSecrets {
  /** Credentials the initiator must present. */
  readonly user: string;
  readonly secret: string;
  /** Mutual CHAP: credentials the target presents to the initiator. */
  readonly mutualUser?: string;
  readonly mutualSecret?: string;
}

export interface IscsiTarget {
  readonly name: string;
  readonly alias?: string;
  readonly device: ScsiDevicePort;
  /** Initiator names allowed to log in; null allows every initiator. */
  readonly allowedInitiators: readonly string[] | null;
  readonly chap?: ChapSecrets;
  /**
   * The only local addresses at which this target can be reached (a
   * resource group's alias IPs): SendTargets lists it only there, and a
   * login reaching any other address is refused as not found at this
   * address (0x0203). Undefined: every address.
   */
  readonly portals?: readonly string[];
}

export function initiatorAllowed(target: IscsiTarget, initiatorName: string): boolean {
  return target.allowedInitiators === null || target.allowedInitiators.includes(initiatorName);
}

/** SPC-4 iSCSI TransportID, initiator port format (FORMAT CODE 01b): "name,i,0xISID". */
export function iscsiTransportId(initiatorName: string, isid: Buffer): Buffer {
  const text = `${initiatorName},i,0x${isid.toString('hex')}`;
  const nameLen = Buffer.byteLength(text) + 1; // NUL terminated
  const padded = (nameLen + 3) & ~3;
  const out = Buffer.alloc(4 + padded);
  out[0] = 0x40 | 0x05; // format code 01b, protocol identifier 5 (iSCSI)
  out.writeUInt16BE(padded, 2);
  out.write(text, 4, 'utf8');
  return out;
}

/** SCSI target port name of an iSCSI target port: "name,t,0xTPGT". */
function targetPortName(targetName: string, portalGroupTag: number): string {
  return `${targetName},t,0x${portalGroupTag.toString(16).padStart(4, '0')}`;
}

export function makeNexus(initiatorName: string, isid: Buffer, targetName: string, portalGroupTag: number, relativeTargetPortId: number): ItNexus {
  const initiatorPort = `${initiatorName},i,0x${isid.toString('hex')}`;
  const targetPort = targetPortName(targetName, portalGroupTag);
  return {
    key: `${initiatorPort}|${targetPort}`,
    initiatorPort,
    targetPort,
    relativeTargetPortId,
    initiatorTransportId: iscsiTransportId(initiatorName, isid),
  };
}

/**
 * The key (ItNexus.key) of the same initiator port's I_T nexus through
 * another target port of the target: where a session lands after a
 * resource group moved to the other node with its alias IPs. Null for a
 * string that is not a nexus key.
 */
export function nexusKeyThrough(key: string, targetName: string, portalGroupTag: number): string | null {
  const bar = key.indexOf('|');
  if (bar <= 0 || !key.slice(0, bar).includes(',i,0x')) return null;
  return `${key.slice(0, bar)}|${targetPortName(targetName, portalGroupTag)}`;
}
