/**
 * APTPL reservations reach the peer's copy: the owner saves locally and
 * sends the snapshot; the secondary writes what it receives beside its copy.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { APTPL_STATE_KIND, keepPeerReservations, ReplicatedReservationStore, reservationFilePath } from '../../../../src/resource-groups/node';
import type { ReservationSnapshot } from '../../../../src/target/scsi';

const snapshot: ReservationSnapshot = { version: 1, generation: 3, aptpl: true, registrations: [], reservation: null, scsi2: null };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-pr-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('replicated APTPL reservations', () => {
  it('are saved beside the owner\'s backing file, then sent to the peer', async () => {
    const backing = path.join(dir, 'owner.img');
    const sent: [string, string][] = [];
    const store = new ReplicatedReservationStore(backing, {
      replicateScsiState: async (kind, json) => {
        // The local file is written first: APTPL holds even if the peer never answers.
        expect(JSON.parse(await readFile(reservationFilePath(backing), 'utf8'))).toEqual(snapshot);
        sent.push([kind, json.toString('utf8')]);
      },
    });
    await store.save(snapshot);
    expect(sent).toEqual([[APTPL_STATE_KIND, JSON.stringify(snapshot)]]);
    expect(await store.load()).toEqual(snapshot);
  });

  it('are written beside the secondary\'s copy when the owner sends them; other kinds and garbage are ignored', async () => {
    const backing = path.join(dir, 'secondary.img');
    let listener: ((kind: string, json: Buffer) => void) | undefined;
    const unsubscribe = vi.fn();
    const log = pino({ level: 'silent' });
    const error = vi.spyOn(log, 'error');
    const stop = keepPeerReservations(
      backing,
      {
        onScsiState: (cb) => {
          listener = cb;
          return unsubscribe;
        },
      },
      log,
    );
    listener!('unit-attentions', Buffer.from('{}'));
    listener!(APTPL_STATE_KIND, Buffer.from('not json'));
    expect(error).toHaveBeenCalledTimes(1);
    listener!(APTPL_STATE_KIND, Buffer.from(JSON.stringify({ ...snapshot, generation: 1 })));
    listener!(APTPL_STATE_KIND, Buffer.from(JSON.stringify(snapshot)));
    await vi.waitFor(async () => expect(JSON.parse(await readFile(reservationFilePath(backing), 'utf8'))).toEqual(snapshot));
    stop();
    expect(unsubscribe).toHaveBeenCalled();
  });
});
