/**
 * APTPL persistent reservations on both nodes. The owner keeps them in
 * `<backing>.twinsan-pr.json` as `twinsan target` does, and sends every
 * saved snapshot to the peer through the mirror (SCSI state kind
 * "aptpl-reservations"); the peer writes what it receives to its own file
 * beside its copy of the volume. A node that takes the volume over (step 4)
 * therefore loads the reservations the initiators made through the owner.
 *
 * Only APTPL state is saved (and so replicated) here: that is what
 * LuReservations hands its store. The live state of a resource group's LUs
 * (every reservation and the pending unit attentions) goes to the peer on
 * every change as well (LIVE_SCSI_STATE_KIND, node-groups.ts); a takeover
 * restores that, which is newer than this file.
 */
import type { Logger } from 'pino';
import { FileReservationStore, parseSnapshot, ReservationSnapshot, ReservationStore } from '../../target/scsi';
import type { MirroredVolumePort } from './mirror-port';

export const APTPL_STATE_KIND = 'aptpl-reservations';

/** Where a node keeps the APTPL persistent reservations of a volume: next to its backing file. */
export function reservationFilePath(backing: string): string {
  return `${backing}.twinsan-pr.json`;
}

/** The owner's store: saved locally first (that is what makes APTPL hold), then sent to the peer. */
export class ReplicatedReservationStore implements ReservationStore {
  private readonly local: FileReservationStore;

  constructor(
    backing: string,
    private readonly volume: Pick<MirroredVolumePort, 'replicateScsiState'>,
  ) {
    this.local = new FileReservationStore(reservationFilePath(backing));
  }

  load(): Promise<ReservationSnapshot | null> {
    return this.local.load();
  }

  async save(snapshot: ReservationSnapshot): Promise<void> {
    await this.local.save(snapshot);
    await this.volume.replicateScsiState(APTPL_STATE_KIND, Buffer.from(JSON.stringify(snapshot)));
  }
}

/**
 * On the secondary: write each snapshot the owner sends to the local file,
 * in arrival order. Returns the unsubscribe function.
 */
export function keepPeerReservations(backing: string, volume: Pick<MirroredVolumePort, 'onScsiState'>, log: Logger): () => void {
  const file = new FileReservationStore(reservationFilePath(backing));
  let tail: Promise<void> = Promise.resolve();
  return volume.onScsiState((kind, json) => {
    if (kind !== APTPL_STATE_KIND) return;
    let snapshot: ReservationSnapshot;
    try {
      snapshot = parseSnapshot(JSON.parse(json.toString('utf8')));
    } catch (err) {
      log.error({ err }, 'the peer sent APTPL reservations that do not parse; keeping the previous ones');
      return;
    }
    tail = tail
      .then(() => file.save(snapshot))
      .then(
        () => log.debug({ registrations: snapshot.registrations.length }, 'APTPL reservations from the owner saved'),
        (err: unknown) => log.error({ err, file: file.path }, 'cannot save the APTPL reservations the owner sent'),
      );
  });
}
