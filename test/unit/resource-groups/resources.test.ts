/**
 * The concrete resources of a resource group, driven through a
 * ResourceGroup with fake volumes, alias IPs, devices and server: the
 * order of effects on start and stop, idempotence, and the retryable
 * availability while stopping for a move.
 */
import { describe, expect, it } from 'vitest';
import type { AliasIpConfig } from '../../../src/resource-groups/config';
import { ResourceGroup } from '../../../src/resource-groups/group';
import { PromotableVolume, ServedDevice, TargetServerPort, liveGroupResources } from '../../../src/resource-groups/resources';

const ALIAS: AliasIpConfig = { address: '198.18.0.50', prefix: 24, interface: 'eth1' };

function fixture() {
  const journal: string[] = [];
  const volume: PromotableVolume & { role: 'primary' | 'secondary' } = {
    volumeId: 'v1',
    role: 'secondary',
    async promote() {
      journal.push('promote v1');
      this.role = 'primary';
    },
    async demote() {
      journal.push('demote v1');
      this.role = 'secondary';
    },
  };
  const device: ServedDevice & { availability: string; stuck: number } = {
    iqn: 'iqn.2026-11.io.twinsan:v1',
    availability: 'online',
    /** Commands that never finish (a drain past its bound). */
    stuck: 0,
    setAvailability(_lun, a) {
      journal.push(`availability ${a}`);
      this.availability = a;
    },
    async quiesce(timeoutMs) {
      journal.push(`quiesce ${timeoutMs}`);
      this.availability = 'moving';
      return { drained: this.stuck === 0, inFlight: this.stuck };
    },
    resume() {
      journal.push('resume');
      this.availability = 'online';
    },
    async handOver() {
      journal.push('hand over scsi state');
    },
    detachState() {
      journal.push('detach scsi state');
    },
  };
  const targets = new Set<string>();
  const server: TargetServerPort<typeof device> = {
    addTarget: (d, portals) => (journal.push(`add target ${d.iqn} at ${portals.join(',')}`), targets.add(d.iqn), undefined),
    removeTarget: async (iqn) => (journal.push(`remove target ${iqn}`), targets.delete(iqn), undefined),
    setPortals: async (iqn, portals) => (journal.push(`portals ${iqn} at ${portals.join(',')}`), undefined),
    hasTarget: (iqn) => targets.has(iqn),
    listen: async (h, p) => (journal.push(`listen ${h}:${p}`), p),
    unlisten: async (h, p) => (journal.push(`unlisten ${h}:${p}`), true),
  };
  const aliases = {
    add: async (s: AliasIpConfig) => journal.push(`add ${s.address}/${s.prefix} dev ${s.interface}`),
    remove: async (s: AliasIpConfig) => journal.push(`remove ${s.address}`),
    announce: async (s: AliasIpConfig) => journal.push(`announce ${s.address}`),
  };
  const live = liveGroupResources({
    volumes: [volume],
    buildDevices: async () => (journal.push('restore scsi state'), [device]),
    aliases,
    aliasIps: [ALIAS],
    server,
    iscsiPort: 3260,
    drainMs: 250,
  });
  const rg = new ResourceGroup('rg1', live.resources);
  return { rg, live, journal, volume, device, targets };
}

describe('resource group resources', () => {
  it('start: promote, restore, alias IP, announce, target at the alias, online; stop in reverse', async () => {
    const { rg, journal, device, volume } = fixture();
    await rg.start();
    expect(journal).toEqual([
      'promote v1',
      'restore scsi state',
      'add 198.18.0.50/24 dev eth1',
      'announce 198.18.0.50',
      'availability transitioning',
      'add target iqn.2026-11.io.twinsan:v1 at 198.18.0.50',
      'listen 198.18.0.50:3260',
      'availability online',
    ]);
    expect(device.availability).toBe('online');
    journal.length = 0;
    await rg.stop();
    expect(journal).toEqual(['availability transitioning', 'detach scsi state', 'unlisten 198.18.0.50:3260', 'remove target iqn.2026-11.io.twinsan:v1', 'remove 198.18.0.50', 'demote v1']);
    expect(volume.role).toBe('secondary');
  });

  it('a move out drains first (BUSY), hands the SCSI state over, then takes targets, IPs and the primary role down', async () => {
    const { rg, journal } = fixture();
    await rg.moveIn();
    journal.length = 0;
    await rg.moveOut();
    // The alias IP stays until the peer serves it: reconnecting initiators are refused at once meanwhile.
    expect(journal).toEqual(['quiesce 250', 'hand over scsi state', 'detach scsi state', 'unlisten 198.18.0.50:3260', 'remove target iqn.2026-11.io.twinsan:v1', 'demote v1']);
    expect(rg.state).toBe('stopped');
    journal.length = 0;
    await rg.handedOver();
    expect(journal).toEqual(['remove 198.18.0.50']);
  });

  it('an alias IP kept for a move is not dropped if the group was taken back meanwhile', async () => {
    const { rg, journal } = fixture();
    await rg.moveIn();
    await rg.moveOut();
    await rg.start(); // the peer refused: serving here again (the add is idempotent)
    journal.length = 0;
    await rg.handedOver();
    expect(journal).toEqual([]);
    expect(rg.state).toBe('serving');
  });

  it('a drain past its bound abandons the move: the LU is back online and nothing else was touched', async () => {
    const { rg, journal, device, volume } = fixture();
    await rg.moveIn();
    journal.length = 0;
    device.stuck = 2;
    await expect(rg.moveOut()).rejects.toMatchObject({ code: 'RG_MOVE_ABANDONED', message: expect.stringMatching(/2 command\(s\) still running after 250 ms/) });
    expect(rg.state).toBe('serving');
    expect(device.availability).toBe('online');
    expect(volume.role).toBe('primary');
    expect(journal).toEqual(['quiesce 250', 'resume', 'availability online']);
    // A later move, once the commands finished, goes through.
    device.stuck = 0;
    await rg.moveOut();
    expect(rg.state).toBe('stopped');
  });

  describe('alias IPs changed at run time', () => {
    const NEW: AliasIpConfig = { address: '198.18.0.60', prefix: 24, interface: 'eth1' };

    it('served: the new address is added, announced and listened on, the target listed there only, then the old one goes; the target and LU stay', async () => {
      const { rg, live, journal, device, targets } = fixture();
      await rg.start();
      journal.length = 0;
      await rg.whileIdle((serving) => live.changeAliases([NEW], serving));
      expect(journal).toEqual([
        'add 198.18.0.60/24 dev eth1',
        'announce 198.18.0.60',
        'listen 198.18.0.60:3260',
        'portals iqn.2026-11.io.twinsan:v1 at 198.18.0.60',
        'unlisten 198.18.0.50:3260',
        'remove 198.18.0.50',
      ]);
      expect(rg.state).toBe('serving');
      expect(device.availability).toBe('online');
      expect([...targets]).toEqual(['iqn.2026-11.io.twinsan:v1']);
      // A stop now takes down the new address, not the old one again.
      journal.length = 0;
      await rg.stop();
      expect(journal.filter((l) => /^(remove [0-9]|unlisten )/.test(l))).toEqual(['unlisten 198.18.0.60:3260', 'remove 198.18.0.60']);
    });

    it('served, an address kept and one added: the kept one is neither added again nor removed', async () => {
      const { rg, live, journal } = fixture();
      await rg.start();
      journal.length = 0;
      await rg.whileIdle((serving) => live.changeAliases([ALIAS, NEW], serving));
      expect(journal).toEqual(['add 198.18.0.60/24 dev eth1', 'announce 198.18.0.60', 'listen 198.18.0.60:3260', 'portals iqn.2026-11.io.twinsan:v1 at 198.18.0.50,198.18.0.60']);
    });

    it('not served: nothing is touched, and the next start uses the new addresses', async () => {
      const { rg, live, journal } = fixture();
      await rg.whileIdle((serving) => live.changeAliases([NEW], serving));
      expect(journal).toEqual([]);
      await rg.start();
      expect(journal).toContain('add 198.18.0.60/24 dev eth1');
      expect(journal).toContain('add target iqn.2026-11.io.twinsan:v1 at 198.18.0.60');
      expect(journal.some((l) => l.includes('198.18.0.50'))).toBe(false);
    });

    it('after a move out the kept (old) address is what handedOver removes, even when the group changed meanwhile', async () => {
      const { rg, live, journal } = fixture();
      await rg.moveIn();
      await rg.moveOut();
      await rg.whileIdle((serving) => live.changeAliases([NEW], serving));
      journal.length = 0;
      await rg.handedOver();
      expect(journal).toEqual(['remove 198.18.0.50']);
    });
  });
});
