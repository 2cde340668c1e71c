/**
 * Persistent reservations made with APTPL=1 survive a restart of
 * `twinsan target` (kept in "<backing>.twinsan-pr.json"); without APTPL they
 * do not. libiscsi 1.19 ships neither prin/prout tools nor APTPL tests, so
 * PERSISTENT RESERVE OUT / IN go over the wire from the hand-built test
 * initiator (test/unit/iscsi/harness), CDBs and parameter lists written out
 * here byte by byte.
 *
 * Needs the built CLI (dist/cli/bin.js; `npm test` runs tsc first).
 */
import { readFile, stat } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { TestInitiator } from '../unit/iscsi/harness/initiator';
import { MiB, startTarget } from './helpers';
import type { IscsiTargetHandle } from './helpers';

const KEY = [0, 0, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d];
const ZERO = [0, 0, 0, 0, 0, 0, 0, 0];
const APTPL = 0x01;
const EXCLUSIVE_ACCESS = 0x03;
const RESERVATION_CONFLICT = 0x18;

/** PERSISTENT RESERVE OUT: service action, TYPE, PARAMETER LIST LENGTH 24. */
const prout = (sa: number, type = 0): number[] => [0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0];
const params = (key: number[], sark: number[], flags = 0): Buffer => Buffer.from([...key, ...sark, 0, 0, 0, 0, flags, 0, 0, 0]);
const READ_RESERVATION = [0x5e, 0x01, 0, 0, 0, 0, 0, 0, 64, 0];
const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];

const sessions: TestInitiator[] = [];

async function session(target: IscsiTargetHandle, initiatorName: string): Promise<TestInitiator> {
  const ini = await TestInitiator.connect(target.port);
  sessions.push(ini);
  const login = await ini.login({ initiatorName, targetName: target.iqn });
  expect(login.status).toEqual([0, 0]);
  // Consume the power-on unit attention.
  for (let i = 0; i < 5; i++) if ((await ini.run({ cdb: [0, 0, 0, 0, 0, 0], edtl: 0 })).status === 0) break;
  return ini;
}

async function readReservation(ini: TestInitiator): Promise<Buffer> {
  const r = await ini.run({ cdb: READ_RESERVATION, read: true, edtl: 64 });
  expect(r.status).toBe(0);
  return r.dataIn;
}

afterEach(() => {
  for (const s of sessions.splice(0)) s.destroy();
});

describe('twinsan target: persistent reservations across restarts', () => {
  it('keeps an APTPL registration and reservation in <backing>.twinsan-pr.json', async () => {
    const first = await startTarget({ size: 64 * MiB });
    const a = await session(first, 'iqn.2026-11.test.twinsan:host-a');
    expect((await a.write(prout(0x06), params(ZERO, KEY, APTPL))).status).toBe(0); // REGISTER AND IGNORE EXISTING KEY, APTPL
    expect((await a.write(prout(0x01, EXCLUSIVE_ACCESS), params(KEY, ZERO))).status).toBe(0); // RESERVE
    const file = `${first.backingPath}.twinsan-pr.json`;
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({
      aptpl: true,
      registrations: [{ initiator: 'iqn.2026-11.test.twinsan:host-a,i,0x801234560001', key: '000000000a0b0c0d' }],
      reservation: { type: EXCLUSIVE_ACCESS },
    });
    a.destroy();
    await first.stop();

    const second = await startTarget({ size: 64 * MiB, backingPath: first.backingPath });
    const again = await session(second, 'iqn.2026-11.test.twinsan:host-a');
    const data = await readReservation(again);
    expect([...data.subarray(0, 8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 16]); // PRGENERATION 0 after power on, one reservation
    expect([...data.subarray(8, 16)]).toEqual(KEY);
    expect(data[21]).toBe(EXCLUSIVE_ACCESS);
    expect((await again.run({ cdb: READ10, read: true, edtl: 512 })).status).toBe(0);
    const other = await session(second, 'iqn.2026-11.test.twinsan:host-b');
    expect((await other.run({ cdb: READ10, read: true, edtl: 512 })).status).toBe(RESERVATION_CONFLICT);
    // CLEAR: nothing is kept any more.
    expect((await again.write(prout(0x03), params(KEY, ZERO))).status).toBe(0);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ aptpl: false, registrations: [], reservation: null });
    await second.stop();
  });

  it('forgets reservations made without APTPL', async () => {
    const first = await startTarget({ size: 64 * MiB });
    const a = await session(first, 'iqn.2026-11.test.twinsan:host-a');
    expect((await a.write(prout(0x06), params(ZERO, KEY))).status).toBe(0);
    expect((await a.write(prout(0x01, EXCLUSIVE_ACCESS), params(KEY, ZERO))).status).toBe(0);
    await expect(stat(`${first.backingPath}.twinsan-pr.json`)).rejects.toThrow(/ENOENT/);
    a.destroy();
    await first.stop();

    const second = await startTarget({ size: 64 * MiB, backingPath: first.backingPath });
    const b = await session(second, 'iqn.2026-11.test.twinsan:host-b');
    expect([...(await readReservation(b))]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect((await b.run({ cdb: READ10, read: true, edtl: 512 })).status).toBe(0);
    await second.stop();
  });
});
