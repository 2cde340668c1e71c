/**
 * A ReservationStore in a JSON file: the snapshot (state.ts) of one logical
 * unit, written atomically and durably before save() resolves:
 *
 *   1. write the JSON to "<path>.tmp-<pid>-<n>" and fsync it;
 *   2. rename it over <path>;
 *   3. fsync the directory, so the rename itself survives power loss.
 *
 * A reader sees the old file or the new one, never a mix. A missing file
 * loads as null (nothing saved yet); a file that does not parse is an
 * error, so a damaged APTPL record is never silently replaced by an empty
 * one.
 *
 *   {
 *     "version": 1,
 *     "generation": 3,
 *     "aptpl": true,
 *     "registrations": [
 *       { "initiator": "iqn.1993-08.org.debian:01:abc,i,0x23d000000001", "relativeTargetPortId": 1, "key": "00000000000000ab" }
 *     ],
 *     "reservation": { "type": 1, "scope": 0, "holder": { "initiator": "iqn.1993-08.org.debian:01:abc,i,0x23d000000001", "relativeTargetPortId": 1 } },
 *     "scsi2": null
 *   }
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ReservationStore } from './lu-reservations';
import { parseSnapshot, ReservationSnapshot } from './state';

let tempCounter = 0;

export class FileReservationStore implements ReservationStore {
  constructor(readonly path: string) {}

  async load(): Promise<ReservationSnapshot | null> {
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${this.path}: not JSON (${(err as Error).message})`);
    }
    try {
      return parseSnapshot(json);
    } catch (err) {
      throw new Error(`${this.path}: ${(err as Error).message}`);
    }
  }

  async save(snapshot: ReservationSnapshot): Promise<void> {
    const temp = `${this.path}.tmp-${process.pid}-${++tempCounter}`;
    const file = await fs.open(temp, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(snapshot, null, 2)}\n`, 'utf8');
      await file.sync();
    } catch (err) {
      await file.close().catch(() => undefined);
      await fs.unlink(temp).catch(() => undefined);
      throw err;
    }
    await file.close();
    try {
      await fs.rename(temp, this.path);
    } catch (err) {
      await fs.unlink(temp).catch(() => undefined);
      throw err;
    }
    const dir = await fs.open(path.dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
