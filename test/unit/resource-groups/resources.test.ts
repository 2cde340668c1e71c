/**
 * The concrete resources of a resource group, driven through a
 * ResourceGroup with fake volumes, alias IPs, devices and server: the
 * order of effects on start and stop, idempotence, and the retryable
 * availability while stopping for a move.
 */
import { describe, expect, it } from 'vitest';
import type { AliasIpConfig } from '../../../src/resource-groups/config';
import { ResourceGroup } from '../../../src/resource-groups/group';
import { PromotableVolume, ServedDevice, TargetServerPort, resourceGroupResources } from '../../../src/resource-groups/resources';

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
  const device: ServedDevice & { availability: string } = {
    iqn: 'iqn.2026-11.io.twinsan:v1',
    availability: 'online',
    setAvailability(_lun, a) {
      journal.push(`availability ${a}`);
      this.availability = a;
    },
  };
  const targets = new Set<string>();
  const server: TargetServerPort<typeof device> = {
    addTarget: (d, portals) => (journal.push(`add target ${d.iqn} at ${portals.join(',')}`), targets.add(d.iqn), undefined),
    removeTarget: async (iqn) => (journal.push(`remove target ${iqn}`), targets.delete(iqn), undefined),
    hasTarget: (iqn) => targets.has(iqn),
    listen: async (h, p) => (journal.push(`listen ${h}:${p}`), p),
    unlisten: async (h, p) => (journal.push(`unlisten ${h}:${p}`), true),
  };
  const aliases = {
    add: async (s: AliasIpConfig) => journal.push(`add ${s.address}/${s.prefix} dev ${s.interface}`),
    remove: async (s: AliasIpConfig) => journal.push(`remove ${s.address}`),
    announce: async (s: AliasIpConfig) => journal.push(`announce ${s.address}`),
  };
  const rg = new ResourceGroup(
    'rg1',
    resourceGroupResources({
      volumes: [volume],
      buildDevices: async () => (journal.push('restore scsi state'), [device]),
      aliases,
      aliasIps: [ALIAS],
      server,
      iscsiPort: 3260,
    }),
  );
  return { rg, journal, volume, device };
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
    expect(journal).toEqual(['availability transitioning', 'unlisten 198.18.0.50:3260', 'remove target iqn.2026-11.io.twinsan:v1', 'remove 198.18.0.50', 'demote v1']);
    expect(volume.role).toBe('secondary');
  });

  it('a move out answers BUSY (moving) first', async () => {
    const { rg, journal } = fixture();
    await rg.moveIn();
    journal.length = 0;
    await rg.moveOut();
    expect(journal[0]).toBe('availability moving');
  });
});
