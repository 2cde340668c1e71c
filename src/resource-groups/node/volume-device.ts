/**
 * The SCSI side of a mirrored volume: its logical unit (identity from the
 * volume id alone, so both nodes present byte-identical identity; APTPL
 * reservations saved beside the backing file and sent to the peer's copy) and
 * the one-LUN target device that serves it. Used wherever a node starts
 * serving a volume: as its owner at start-up, or on a resource-group takeover.
 */
import type { Logger } from 'pino';
import type { IscsiServer } from '../../target/iscsi';
import { AluaOptions, LogicalUnit, ScsiTargetDevice } from '../../target/scsi';
import type { VolumeConfig } from './config';
import type { MirroredVolumePort } from './mirror-port';
import { ReplicatedReservationStore } from './replicated-reservations';

export interface ServableVolume {
  readonly config: VolumeConfig;
  readonly mirrored: MirroredVolumePort;
  readonly log: Logger;
}

export async function volumeDevice(
  v: ServableVolume,
  alua: AluaOptions,
  server: Pick<IscsiServer, 'abortTasks'>,
): Promise<{ lu: LogicalUnit; device: ScsiTargetDevice }> {
  const lu = new LogicalUnit({
    store: v.mirrored.store,
    blockSize: v.config.blockSize,
    // As `twinsan target`: libiscsi 1.19 mis-expects GET LBA STATUS descriptors when LBPPB > 1.
    physicalBlockSize: v.config.physicalBlockSize,
    thin: v.config.thin,
    identity: { volumeId: v.config.id },
    reservationStore: new ReplicatedReservationStore(v.config.backing, v.mirrored),
  });
  await lu.reservations.whenReady();
  const device = new ScsiTargetDevice({
    name: v.config.iqn,
    luns: new Map([[0, lu]]),
    alua,
    onInternalError: (err) => v.log.error({ err }, 'internal error in a SCSI command'),
    onAbortTasks: (lun, keys) => server.abortTasks(v.config.iqn, lun, keys),
  });
  return { lu, device };
}
