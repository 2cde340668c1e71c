/**
 * NodeGroups at run time (the cluster configuration adds and removes
 * resource groups): a group added on its preferred node starts serving its
 * volume's target at its alias IP (on an interface the alias manager was
 * not told of at start), and a removed group stops: target and alias gone.
 * Fake mirror volumes and fake alias backends; a real IscsiServer.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackingStore } from '../../../src/block';
import { AliasIpManager } from '../../../src/alias-ip';
import { NodeGroups, type OpenGroupVolume } from '../../../src/resource-groups';
import { ownerAluaGroups, pairLayout, parseNodeConfig, type VolumeConfig } from '../../../src/resource-groups/node';
import { IscsiServer } from '../../../src/target/iscsi';
import { FakeAddresses, FakeLink } from '../alias-ip/fakes';

const silent = pino({ level: process.env['TWINSAN_TEST_LOG'] ?? 'silent' });
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-node-groups-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function fakeVolume(config: VolumeConfig): OpenGroupVolume {
  let role: 'primary' | 'secondary' = 'secondary';
  const store = new MemoryBackingStore(config.sizeBytes, { thin: true });
  const mirrored = {
    volumeId: config.id,
    get role() {
      return role;
    },
    store,
    status: () => ({ replication: 'in-sync', consistent: true }),
    replicateScsiState: async () => undefined,
    onScsiState: () => () => undefined,
    verify: async () => ({ regionsChecked: 0, differing: [], resynced: false }),
    grow: (size: number) => store.resize(size),
    close: async () => undefined,
    promote: async () => {
      role = 'primary';
    },
    demote: async () => {
      role = 'secondary';
    },
  };
  return { config, mirrored, log: silent };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('NodeGroups at run time', () => {
  it('adds a group on its preferred node (it serves its alias IP and target) and removes it again', async () => {
    const config = await parseNodeConfig({
      nodeId: 'a',
      clusterId: 'unit',
      dataDir: dir,
      // A wildcard portal: the group's targets need no listener of their own at the (fake) alias address.
      iscsi: { listen: ['0.0.0.0:25980'] },
      peer: { nodeId: 'b', secret: 'sixteen bytes at least', links: [{ local: '127.0.0.1:25981', peer: '127.0.0.1:25982' }, { local: '127.0.0.1:25983', peer: '127.0.0.1:25984' }] },
      volumes: [],
    });
    const addresses = new FakeAddresses(['eth1', 'eth9']);
    const aliases = new AliasIpManager({ interfaces: ['eth1'], addressBackend: addresses, link: new FakeLink(), logger: { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } });
    const server = new IscsiServer({ log: silent });
    const layout = pairLayout('a', 'b');
    const groups = new NodeGroups({
      config,
      log: silent,
      server,
      volumes: [],
      alua: ownerAluaGroups(layout, { local: 1, peer: 2 }),
      mirrorPeerState: () => 'down',
      witness: { mode: 'no-witness', witness: null },
      inSync: () => true,
      dataStanding: () => 'current',
      aliases,
    });
    await groups.start();
    try {
      const volume = fakeVolume({
        id: '5d1c0f0e-1111-4a2b-9c3d-000000000001',
        name: 'rv1',
        iqn: 'iqn.2026-11.io.twinsan.unit:rv1',
        sizeBytes: 1 << 20,
        thin: true,
        blockSize: 512,
        physicalBlockSize: 512,
        owner: 'a',
        resourceGroup: 'rg9',
        backing: path.join(dir, 'rv1.img'),
      });
      await groups.addGroup({ name: 'rg9', preferredNode: 'a', aliasIps: [{ address: '198.18.9.9', prefix: 24, interface: 'eth9' }], volumes: ['rv1'], failback: 'auto' }, [volume]);
      await waitFor(() => groups.controller.status().find((g) => g.name === 'rg9')?.state === 'serving', 'rg9 serving');
      expect(addresses.addresses('eth9')).toContain('198.18.9.9/24');
      expect(server.listTargets().find((t) => t.name === 'iqn.2026-11.io.twinsan.unit:rv1')?.portals).toEqual(['198.18.9.9']);
      expect(volume.mirrored.role).toBe('primary');

      await groups.removeGroup('rg9');
      expect(groups.controller.status().map((g) => g.name)).toEqual([]);
      expect(addresses.addresses('eth9')).toEqual([]);
      expect(server.listTargets()).toEqual([]);
      expect(volume.mirrored.role).toBe('secondary');
    } finally {
      await groups.close();
      await server.close();
    }
  });

  it('changes a served group in place: new alias IP added, the target listed there, the old one removed, the target not rebuilt; preferred node and failback follow', async () => {
    const config = await parseNodeConfig({
      nodeId: 'a',
      clusterId: 'unit',
      dataDir: dir,
      iscsi: { listen: ['0.0.0.0:24980'] },
      peer: { nodeId: 'b', secret: 'sixteen bytes at least', links: [{ local: '127.0.0.1:24981', peer: '127.0.0.1:24982' }, { local: '127.0.0.1:24983', peer: '127.0.0.1:24984' }] },
      volumes: [],
    });
    const addresses = new FakeAddresses(['eth9']);
    const aliases = new AliasIpManager({ interfaces: ['eth9'], addressBackend: addresses, link: new FakeLink(), logger: { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } });
    const server = new IscsiServer({ log: silent });
    const groups = new NodeGroups({
      config,
      log: silent,
      server,
      volumes: [],
      alua: ownerAluaGroups(pairLayout('a', 'b'), { local: 1, peer: 2 }),
      mirrorPeerState: () => 'down',
      witness: { mode: 'no-witness', witness: null },
      inSync: () => true,
      dataStanding: () => 'current',
      aliases,
    });
    await groups.start();
    try {
      const volume = fakeVolume({
        id: '5d1c0f0e-1111-4a2b-9c3d-000000000002',
        name: 'rv2',
        iqn: 'iqn.2026-11.io.twinsan.unit:rv2',
        sizeBytes: 1 << 20,
        thin: true,
        blockSize: 512,
        physicalBlockSize: 512,
        owner: 'a',
        resourceGroup: 'rg8',
        backing: path.join(dir, 'rv2.img'),
      });
      const rg8 = { name: 'rg8', preferredNode: 'a', aliasIps: [{ address: '198.18.8.8', prefix: 24, interface: 'eth9' }], volumes: ['rv2'], failback: 'auto' as const };
      await groups.addGroup(rg8, [volume]);
      await waitFor(() => groups.controller.status().find((g) => g.name === 'rg8')?.state === 'serving', 'rg8 serving');
      const before = server.listTargets().find((t) => t.name === 'iqn.2026-11.io.twinsan.unit:rv2');
      expect(before?.portals).toEqual(['198.18.8.8']);

      await groups.updateGroup({ ...rg8, preferredNode: 'b', failback: 'manual', aliasIps: [{ address: '198.18.8.9', prefix: 24, interface: 'eth9' }] });
      expect(addresses.addresses('eth9')).toEqual(['198.18.8.9/24']);
      const after = server.listTargets().find((t) => t.name === 'iqn.2026-11.io.twinsan.unit:rv2');
      expect(after?.portals).toEqual(['198.18.8.9']);
      // The same device: the target was re-listed, not rebuilt (its LU kept serving).
      expect(after?.device).toBe(before?.device);
      expect(groups.controller.status()).toEqual([{ name: 'rg8', state: 'serving', preferredNode: 'b', failback: 'manual' }]);
      expect(volume.mirrored.role).toBe('primary');

      // A change of the volumes is not an in-place update.
      await expect(groups.updateGroup({ ...rg8, volumes: [] })).rejects.toThrow(/rebuilds it/);
      await expect(groups.updateGroup({ ...rg8, name: 'nope' })).rejects.toThrow(/no resource group nope/);

      await groups.removeGroup('rg8');
      expect(addresses.addresses('eth9')).toEqual([]);
      expect(server.listTargets()).toEqual([]);
    } finally {
      await groups.close();
      await server.close();
    }
  });

  it('a volume joins and leaves a served group in place: its target is added at the alias and removed, the group and its other targets stay', async () => {
    const config = await parseNodeConfig({
      nodeId: 'a',
      clusterId: 'unit',
      dataDir: dir,
      iscsi: { listen: ['0.0.0.0:24990'] },
      peer: { nodeId: 'b', secret: 'sixteen bytes at least', links: [{ local: '127.0.0.1:24991', peer: '127.0.0.1:24992' }, { local: '127.0.0.1:24993', peer: '127.0.0.1:24994' }] },
      volumes: [],
    });
    const addresses = new FakeAddresses(['eth9']);
    const aliases = new AliasIpManager({ interfaces: ['eth9'], addressBackend: addresses, link: new FakeLink(), logger: { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } });
    const server = new IscsiServer({ log: silent });
    const groups = new NodeGroups({
      config,
      log: silent,
      server,
      volumes: [],
      alua: ownerAluaGroups(pairLayout('a', 'b'), { local: 1, peer: 2 }),
      mirrorPeerState: () => 'down',
      witness: { mode: 'no-witness', witness: null },
      inSync: () => true,
      dataStanding: () => 'current',
      aliases,
    });
    await groups.start();
    const vol = (n: number) =>
      fakeVolume({
        id: `5d1c0f0e-1111-4a2b-9c3d-00000000001${n}`,
        name: `jv${n}`,
        iqn: `iqn.2026-11.io.twinsan.unit:jv${n}`,
        sizeBytes: 1 << 20,
        thin: true,
        blockSize: 512,
        physicalBlockSize: 512,
        owner: 'a',
        resourceGroup: 'rg7',
        backing: path.join(dir, `jv${n}.img`),
      });
    try {
      const first = vol(1);
      await groups.addGroup({ name: 'rg7', preferredNode: 'a', aliasIps: [{ address: '198.18.7.7', prefix: 24, interface: 'eth9' }], volumes: ['jv1'], failback: 'auto' }, [first]);
      await waitFor(() => groups.controller.status().find((g) => g.name === 'rg7')?.state === 'serving', 'rg7 serving');
      const firstTarget = server.listTargets().find((t) => t.name === 'iqn.2026-11.io.twinsan.unit:jv1');

      // A copy that is secondary here cannot join the group served here in place.
      const secondary = vol(3);
      expect(await groups.addVolume('rg7', secondary)).toBe(false);
      expect(server.listTargets().map((t) => t.name)).toEqual(['iqn.2026-11.io.twinsan.unit:jv1']);

      const second = vol(2);
      await second.mirrored.promote({}); // opened primary here, as on the group's owner
      expect(await groups.addVolume('rg7', second)).toBe(true);
      expect(server.listTargets().map((t) => [t.name, t.portals])).toEqual([
        ['iqn.2026-11.io.twinsan.unit:jv1', ['198.18.7.7']],
        ['iqn.2026-11.io.twinsan.unit:jv2', ['198.18.7.7']],
      ]);
      // The first volume's target was not rebuilt.
      expect(server.listTargets()[0]).toBe(firstTarget);
      expect(groups.controller.status()[0]?.state).toBe('serving');

      await groups.removeVolume('rg7', second.config.id);
      expect(server.listTargets()).toEqual([firstTarget]);
      expect(addresses.addresses('eth9')).toEqual(['198.18.7.7/24']);
      expect(groups.controller.status()[0]?.state).toBe('serving');

      // A stop after the change takes down what the group serves now.
      await groups.removeGroup('rg7');
      expect(server.listTargets()).toEqual([]);
      expect(first.mirrored.role).toBe('secondary');
    } finally {
      await groups.close();
      await server.close();
    }
  });
});
