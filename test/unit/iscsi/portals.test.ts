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
