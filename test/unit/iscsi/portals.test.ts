/**
 * Targets bound to portals (resource-group alias IPs): SendTargets at an
 * address lists only the targets of that address, targets without portals
 * everywhere; a single portal can be closed.
 */
import net from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { IscsiServer } from '../../../src/target/iscsi/server';
import type { IscsiTarget } from '../../../src/target/iscsi/target-port';
import { FakeDevice, testLogger } from './harness/fake-device';
import { TestInitiator, parsePairs } from './harness/initiator';

const device = {} as IscsiTarget['device'];

describe('IscsiServer portals', () => {
  it('targetsAt lists a target only at its portals; without portals at every address', () => {
    const server = new IscsiServer({ log: pino({ level: 'silent' }) });
    server.addTarget({ name: 'iqn.2026-11.io.twinsan:v1', device, allowedInitiators: null, portals: ['198.18.0.50'] });
    server.addTarget({ name: 'iqn.2026-11.io.twinsan:v2', device, allowedInitiators: null, portals: ['198.18.0.51', 'FD00::51'] });
    server.addTarget({ name: 'iqn.2026-11.io.twinsan:any', device, allowedInitiators: null });
    const at = (a: string): string[] => [...server.targetsAt(a, 3260)].map((t) => t.name.split(':')[1]!);
    expect(at('198.18.0.50')).toEqual(['v1', 'any']);
    expect(at('::ffff:198.18.0.51')).toEqual(['v2', 'any']);
    expect(at('fd00::51')).toEqual(['v2', 'any']);
    expect(at('127.0.0.1')).toEqual(['any']);
  });

  it('unlisten returns while a connection accepted at the portal is still open (removeTarget ends those)', async () => {
    const server = new IscsiServer({ log: pino({ level: 'silent' }) });
    const port = await server.listen('127.0.0.1', 0);
    const client = net.connect(port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    await new Promise((r) => setTimeout(r, 20));
    expect(server.connectionCount).toBe(1);
    const result = await Promise.race([server.unlisten('127.0.0.1', port), new Promise((r) => setTimeout(() => r('still waiting'), 1000))]);
    expect(result).toBe(true);
    expect(server.connectionCount).toBe(1);
    client.destroy();
    await server.close();
  });

  it('unlisten closes one portal and leaves the others', async () => {
    const server = new IscsiServer({ log: pino({ level: 'silent' }) });
    const p1 = await server.listen('127.0.0.1', 0);
    const p2 = await server.listen('127.0.0.1', 0);
    expect(await server.unlisten('127.0.0.1', p1)).toBe(true);
    expect(await server.unlisten('127.0.0.1', p1)).toBe(false);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(p1, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(false)));
      s.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    const accepted = await new Promise<boolean>((resolve) => {
      const s = net.connect(p2, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    expect(accepted).toBe(true);
    await server.close();
  });
});

/**
 * Real logins over loopback: the server listens on 127.0.0.1 (standing for
 * a node's own address) and 127.0.0.2 (an RG alias IP), ports from this
 * worktree's range.
 */
describe('IscsiServer: a target with portals is reachable only there', () => {
  const RG = 'iqn.2026-11.io.twinsan:rg-v1';
  const PLAIN = 'iqn.2026-11.io.twinsan:plain';
  const OWN = '127.0.0.1';
  const ALIAS = '127.0.0.2';
  const PORT = 22011;

  async function withServer(run: (server: IscsiServer) => Promise<void>): Promise<void> {
    const server = new IscsiServer({ log: testLogger(), timers: { loginTimeoutMs: 5000, nopInIntervalMs: 0, nopInTimeoutMs: 5000 } });
    server.addTarget({ name: RG, device: new FakeDevice(), allowedInitiators: null, portals: [ALIAS] });
    server.addTarget({ name: PLAIN, device: new FakeDevice(), allowedInitiators: null });
    await server.listen(OWN, PORT);
    await server.listen(ALIAS, PORT);
    try {
      await run(server);
    } finally {
      await server.close();
    }
  }

  async function login(host: string, targetName: string): Promise<[number, number]> {
    const c = await TestInitiator.connect(PORT, host);
    try {
      return (await c.login({ targetName })).status;
    } finally {
      c.destroy();
    }
  }

  async function discover(host: string): Promise<Array<[string, string]>> {
    const c = await TestInitiator.connect(PORT, host);
    try {
      const out = await c.login({ discovery: true });
      expect(out.status).toEqual([0, 0]);
      return parsePairs((await c.sendTargets('All')).text);
    } finally {
      c.destroy();
    }
  }

  it('refuses a login to the RG target at the node address with 0x0203 and accepts it at the alias', async () => {
    await withServer(async (server) => {
      expect(await login(OWN, RG)).toEqual([0x02, 0x03]);
      expect(await login(ALIAS, RG)).toEqual([0, 0]);
      expect(await login(OWN, PLAIN)).toEqual([0, 0]);
      const sessions = server.listSessions().map((s) => `${s.target} ${s.localAddress}`);
      expect(sessions).not.toContain(`${RG} ${OWN}:${PORT}`);
    });
  });

  it('lists at each address only the targets served there, with that address as the portal', async () => {
    await withServer(async () => {
      expect(await discover(OWN)).toEqual([
        ['TargetName', PLAIN],
        ['TargetAddress', `${OWN}:${PORT},1`],
      ]);
      expect(await discover(ALIAS)).toEqual([
        ['TargetName', RG],
        ['TargetAddress', `${ALIAS}:${PORT},1`],
        ['TargetName', PLAIN],
        ['TargetAddress', `${ALIAS}:${PORT},1`],
      ]);
    });
  });

  it('after the target moves to other portals (a takeover re-adds it), the old address refuses it', async () => {
    await withServer(async (server) => {
      expect(await login(ALIAS, RG)).toEqual([0, 0]);
      await server.removeTarget(RG);
      expect(await login(ALIAS, RG)).toEqual([0x02, 0x03]);
      server.addTarget({ name: RG, device: new FakeDevice(), allowedInitiators: null, portals: [OWN] });
      expect(await login(ALIAS, RG)).toEqual([0x02, 0x03]);
      expect(await login(OWN, RG)).toEqual([0, 0]);
      expect((await discover(ALIAS)).filter(([k]) => k === 'TargetName').map(([, v]) => v)).toEqual([PLAIN]);
    });
  });
});
