/**
 * IscsiServer.updateTargetAccess over real loopback logins: sessions the new
 * rules would refuse are dropped, the others stay logged in.
 */
import { describe, expect, it } from 'vitest';
import { IscsiServer } from '../../../src/target/iscsi/server';
import { FakeDevice, testLogger } from './harness/fake-device';
import { TestInitiator } from './harness/initiator';

const TARGET = 'iqn.2026-11.io.twinsan:acl';
const OTHER = 'iqn.2026-11.io.twinsan:other';
const ALICE = 'iqn.2026-11.io.test:alice';
const BOB = 'iqn.2026-11.io.test:bob';
const HOST = '127.0.0.1';
const PORT = 23011;
const CHAP = { user: 'alice', secret: 'alice-secret-1234' };
const MUTUAL = { user: 'target', secret: 'target-secret-123' };

async function withServer(run: (server: IscsiServer) => Promise<void>): Promise<void> {
  const server = new IscsiServer({ log: testLogger(), timers: { loginTimeoutMs: 5000, nopInIntervalMs: 0, nopInTimeoutMs: 5000 } });
  server.addTarget({ name: TARGET, device: new FakeDevice(), allowedInitiators: null });
  server.addTarget({ name: OTHER, device: new FakeDevice(), allowedInitiators: null });
  await server.listen(HOST, PORT);
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

type Chap = { user: string; secret: string; mutual?: { user: string; secret: string } };

async function loggedIn(initiatorName: string, targetName: string, chap?: Chap): Promise<TestInitiator> {
  const c = await TestInitiator.connect(PORT, HOST);
  const out = await c.login({ initiatorName, targetName, ...(chap ? { chap } : {}) });
  expect(out.status).toEqual([0, 0]);
  return c;
}

/** Whether the target left the initiator's connection open over a short wait. */
async function stillOpen(c: TestInitiator): Promise<boolean> {
  return !(await c.waitClosed(200));
}

describe('IscsiServer.updateTargetAccess ends the sessions the new rules refuse', () => {
  it('an initiator removed from the allowed list loses its session; one still listed and other targets keep theirs', async () => {
    await withServer(async (server) => {
      const alice = await loggedIn(ALICE, TARGET);
      const bob = await loggedIn(BOB, TARGET);
      const bobOther = await loggedIn(BOB, OTHER);
      try {
        server.updateTargetAccess(TARGET, { allowedInitiators: [ALICE], chap: null });
        expect(await bob.waitClosed()).toBe(true);
        expect(await stillOpen(alice)).toBe(true);
        expect(await stillOpen(bobOther)).toBe(true);
        expect(server.listSessions().map((s) => `${s.initiatorName} ${s.target}`).sort()).toEqual([`${ALICE} ${TARGET}`, `${BOB} ${OTHER}`]);
        // The new rules hold for new logins too.
        const again = await TestInitiator.connect(PORT, HOST);
        expect((await again.login({ initiatorName: BOB, targetName: TARGET })).status).toEqual([0x02, 0x02]);
        again.destroy();
      } finally {
        for (const c of [alice, bob, bobOther]) c.destroy();
      }
    });
  });

  it('CHAP turned on drops the sessions that logged in without it; they log in again with CHAP', async () => {
    await withServer(async (server) => {
      const alice = await loggedIn(ALICE, TARGET);
      const other = await loggedIn(ALICE, OTHER);
      try {
        server.updateTargetAccess(TARGET, { allowedInitiators: null, chap: CHAP });
        expect(await alice.waitClosed()).toBe(true);
        expect(await stillOpen(other)).toBe(true);
        const again = await loggedIn(ALICE, TARGET, CHAP);
        expect(await stillOpen(again)).toBe(true);
        again.destroy();
      } finally {
        alice.destroy();
        other.destroy();
      }
    });
  });

  it('a changed CHAP secret or mutual CHAP drops the sessions made with the old one; unchanged CHAP keeps them', async () => {
    await withServer(async (server) => {
      server.updateTargetAccess(TARGET, { allowedInitiators: null, chap: CHAP });
      const first = await loggedIn(ALICE, TARGET, CHAP);
      try {
        // The same credentials re-applied (e.g. only the ACL changed): the session stays.
        server.updateTargetAccess(TARGET, { allowedInitiators: [ALICE, BOB], chap: { ...CHAP } });
        expect(await stillOpen(first)).toBe(true);
        // Mutual CHAP added: the session did not authenticate the target, so it goes.
        const withMutual = { ...CHAP, mutualUser: MUTUAL.user, mutualSecret: MUTUAL.secret };
        server.updateTargetAccess(TARGET, { allowedInitiators: null, chap: withMutual });
        expect(await first.waitClosed()).toBe(true);
        const second = await loggedIn(ALICE, TARGET, { ...CHAP, mutual: MUTUAL });
        try {
          // Secret changed: the session made with the old secret goes.
          server.updateTargetAccess(TARGET, { allowedInitiators: null, chap: { ...withMutual, secret: 'alice-secret-5678' } });
          expect(await second.waitClosed()).toBe(true);
        } finally {
          second.destroy();
        }
      } finally {
        first.destroy();
      }
    });
  });

  it('CHAP turned off leaves the sessions logged in (they remain allowed)', async () => {
    await withServer(async (server) => {
      server.updateTargetAccess(TARGET, { allowedInitiators: null, chap: CHAP });
      const alice = await loggedIn(ALICE, TARGET, CHAP);
      try {
        server.updateTargetAccess(TARGET, { allowedInitiators: null, chap: null });
        expect(await stillOpen(alice)).toBe(true);
        expect(server.listSessions()).toHaveLength(1);
      } finally {
        alice.destroy();
      }
    });
  });
});
