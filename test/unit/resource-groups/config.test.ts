/**
 * The resource-group keys of the node config: groups, alias IPs, the
 * front-end heartbeat, and how they relate to the volumes.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseNodeConfig } from '../../../src/resource-groups/node/config';

function sample(): Record<string, any> {
  return {
    nodeId: 'node-a',
    clusterId: 'lab',
    dataDir: '/var/lib/twinsan',
    iscsi: { listen: ['0.0.0.0:3260'] },
    peer: {
      nodeId: 'node-b',
      secret: 'correct horse battery staple',
      links: [
        { local: '198.18.1.1:7001', peer: '198.18.1.2:7001' },
        { local: '198.18.2.1:7001', peer: '198.18.2.2:7001' },
      ],
    },
    heartbeat: { local: '198.18.0.1:7400', peer: '198.18.0.2:7400' },
    volumes: [
      { id: '6f1d3c1e-7a52-4b8e-9c1a-0d2b5e8f4a11', name: 'v1', iqn: 'iqn.2026-11.io.twinsan:v1', sizeBytes: 67108864, thin: true },
      { id: '0b7e9f42-5c3d-4e6a-8f21-9a4c7d1e2b22', name: 'v2', iqn: 'iqn.2026-11.io.twinsan:v2', sizeBytes: 67108864, thin: true, owner: 'node-b' },
      { id: '1b7e9f42-5c3d-4e6a-8f21-9a4c7d1e2b22', name: 'v3', iqn: 'iqn.2026-11.io.twinsan:v3', sizeBytes: 67108864, thin: true, owner: 'node-a' },
    ],
    resourceGroups: [
      { name: 'rg1', preferredNode: 'node-a', aliasIps: [{ address: '198.18.0.50', prefix: 24, interface: 'eth1' }], volumes: ['v1'] },
      { name: 'rg2', preferredNode: 'node-b', aliasIps: [{ address: '198.18.0.51', prefix: 24, interface: 'eth1' }], volumes: ['v2'], failback: 'manual' },
    ],
  };
}

async function problems(raw: unknown): Promise<string[]> {
  try {
    await parseNodeConfig(raw, { file: '/etc/twinsan/node-a.json' });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  return [];
}

describe('resource groups in the node config', () => {
  it('resolves groups, owners from the preferred node, and heartbeat defaults', async () => {
    const c = await parseNodeConfig(sample());
    expect(c.resourceGroups).toEqual([
      { name: 'rg1', preferredNode: 'node-a', aliasIps: [{ address: '198.18.0.50', prefix: 24, interface: 'eth1' }], volumes: ['v1'], failback: 'auto' },
      { name: 'rg2', preferredNode: 'node-b', aliasIps: [{ address: '198.18.0.51', prefix: 24, interface: 'eth1' }], volumes: ['v2'], failback: 'manual' },
    ]);
    expect(c.volumes.map((v) => [v.name, v.owner, v.resourceGroup])).toEqual([
      ['v1', 'node-a', 'rg1'],
      ['v2', 'node-b', 'rg2'],
      ['v3', 'node-a', null],
    ]);
    expect(c.heartbeat).toEqual({ local: '198.18.0.1:7400', peer: '198.18.0.2:7400', intervalMs: 200, deadMs: 900 });
  });

  it('names every problem: duplicate names and addresses, unknown and shared volumes, foreign nodes, owners', async () => {
    const raw = sample();
    raw.resourceGroups[1].name = 'rg1';
    raw.resourceGroups[1].preferredNode = 'node-c';
    raw.resourceGroups[1].aliasIps[0].address = '198.18.0.50';
    raw.resourceGroups[1].volumes = ['v1', 'nope'];
    raw.volumes[0].owner = 'node-b';
    delete raw.volumes[2].owner;
    expect(await problems(raw)).toEqual([
      'node-a.json: resourceGroups[1].name: "rg1" is also the name of resourceGroups[0]',
      'node-a.json: resourceGroups[1].preferredNode: "node-c" is neither this node ("node-a") nor its peer ("node-b")',
      'node-a.json: resourceGroups[1].aliasIps[0].address: "198.18.0.50" is also resourceGroups[0].aliasIps[0].address',
      'node-a.json: resourceGroups[1].volumes[0]: "v1" is already in resource group "rg1" (a volume belongs to one group)',
      'node-a.json: resourceGroups[1].volumes[1]: "nope" is not the name of a volume',
      'node-a.json: volumes[0].owner: "node-b" is not the preferred node "node-a" of its resource group "rg1"',
      'node-a.json: volumes[2].owner: missing (needed when the volume is in no resource group)',
    ]);
  });

  it('checks alias IP shapes and the heartbeat timings', async () => {
    const raw = sample();
    raw.resourceGroups[0].aliasIps = [
      { address: '198.18.0.300', prefix: 24, interface: 'eth1' },
      { address: '198.18.0.60', prefix: 33, interface: 'a/b' },
    ];
    raw.heartbeat = { local: '198.18.0.1:7400', intervalMs: 200, deadMs: 500 };
    expect(await problems(raw)).toEqual([
      'node-a.json: resourceGroups[0].aliasIps[0].address: "198.18.0.300" is not an IPv4 or IPv6 address',
      'node-a.json: resourceGroups[0].aliasIps[1].interface: "a/b" is not an interface name (1-15 characters, no / : or space)',
    ]);
    raw.resourceGroups[0].aliasIps = [{ address: '198.18.0.60', prefix: 33, interface: 'eth1' }];
    expect(await problems(raw)).toEqual([
      'node-a.json: resourceGroups[0].aliasIps[0].prefix: 33 is longer than 32 bits',
      'node-a.json: heartbeat: needs both local and peer, or neither',
      'node-a.json: heartbeat.deadMs: 500 is less than three heartbeat intervals (600)',
    ]);
  });
});
