/**
 * TwinsanNode with a fake mirror: which volumes it opens in which role,
 * which targets it serves, its status, and the order it stops in.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { MemoryBackingStore } from '../../../../src/block';
import { lunUrl, ownerAluaGroups, pairLayout, parseNodeConfig, TwinsanNode } from '../../../../src/resource-groups/node';
import type { MirrorFactory, MirrorNodeOptions, NodeConfig, OpenVolumeOptions } from '../../../../src/resource-groups/node';
import { freePort } from '../../../../scripts/lib/ports.mjs';

const silent = pino({ level: 'silent' });

interface FakeMirror {
  readonly events: string[];
  readonly opened: OpenVolumeOptions[];
  options?: MirrorNodeOptions;
  failOpen?: string;
}

function fakeMirror(): { factory: MirrorFactory; fake: FakeMirror } {
  const fake: FakeMirror = { events: [], opened: [] };
  const factory: MirrorFactory = (options) => {
    fake.options = options;
    return {
      peerState: 'connected',
      protocolVersions: { min: 1, max: 2 },
      negotiatedVersion: null,
      controlAvailable: false,
      sendControl: () => Promise.reject(new Error('no peer')),
      onControl: () => () => undefined,
      onPeer: () => () => undefined,
      start: () => {
        fake.events.push('mirror start');
      },
      close: async () => {
        fake.events.push('mirror close');
      },
      openVolume: async (o) => {
        if (fake.failOpen === o.volumeId) throw new Error(`cannot open ${o.volumeId}`);
        fake.opened.push(o);
        const store = new MemoryBackingStore(o.sizeBytes, { thin: o.thin });
        return {
          volumeId: o.volumeId,
          role: o.role,
          store,
          status: () => ({ volumeId: o.volumeId, synced: true }),
          replicateScsiState: async () => undefined,
          onScsiState: () => () => undefined,
          verify: async () => ({ regionsChecked: 0, differing: [], resynced: false }),
          grow: (size: number) => store.resize(size),
          close: async () => {
            fake.events.push(`volume close ${o.volumeId}`);
          },
        };
      },
    };
  };
  return { factory, fake };
}

const V1 = '6f1d3c1e-7a52-4b8e-9c1a-0d2b5e8f4a11';
const V2 = '0b7e9f42-5c3d-4e6a-8f21-9a4c7d1e2b22';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-node-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function config(withStatus = false): Promise<NodeConfig> {
  const [iscsi, status] = [await freePort(), await freePort()];
  return parseNodeConfig({
    nodeId: 'b',
    clusterId: 'unit',
    dataDir: path.join(dir, `data-${iscsi}`),
    iscsi: { listen: [`127.0.0.1:${iscsi}`] },
    peer: {
      nodeId: 'a',
      secret: 'sixteen bytes at least',
      links: [
        { local: '127.0.0.1:1', peer: '127.0.0.1:2' },
        { local: '127.0.0.1:3', peer: '127.0.0.1:4' },
      ],
    },
    volumes: [
      { id: V1, name: 'v1', iqn: 'iqn.2026-11.io.twinsan.unit:v1', sizeBytes: 1 << 20, thin: true, owner: 'a' },
      { id: V2, name: 'v2', iqn: 'iqn.2026-11.io.twinsan.unit:v2', sizeBytes: 1 << 20, thin: false, owner: 'b' },
    ],
    ...(withStatus ? { status: { listen: `127.0.0.1:${status}` } } : {}),
  });
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const running: TwinsanNode[] = [];
afterEach(async () => {
  for (const n of running.splice(0)) await n.close().catch(() => undefined);
});

describe('TwinsanNode', () => {
  it('opens owned volumes as primary and the peer\'s as secondary, and serves only the primaries', async () => {
    const c = await config();
    const { factory, fake } = fakeMirror();
    const node = new TwinsanNode(c, { log: silent, createMirror: factory, inSync: () => true, dataStanding: () => 'current' });
    running.push(node);
    await node.start();

    expect(fake.options).toMatchObject({ nodeId: 'b', peerNodeId: 'a', clusterId: 'unit', secret: 'sixteen bytes at least', links: c.peer.links });
    expect(fake.opened.map((o) => [o.volumeId, o.role, o.create, o.backingPath])).toEqual([
      [V1, 'secondary', true, path.join(c.dataDir, 'v1.img')],
      [V2, 'primary', true, path.join(c.dataDir, 'v2.img')],
    ]);
    expect(node.targets()).toEqual([{ volumeId: V2, name: 'v2', iqn: 'iqn.2026-11.io.twinsan.unit:v2', urls: [lunUrl(c.iscsi.listen[0]!, 'iqn.2026-11.io.twinsan.unit:v2')] }]);
    expect(node.targets()[0]!.urls[0]).toBe(`iscsi://${c.iscsi.listen[0]}/iqn.2026-11.io.twinsan.unit:v2/0`);
    expect(await connects(Number(c.iscsi.listen[0]!.split(':')[1]))).toBe(true);
  });

  it('reports status per volume and in sync only when every volume is', async () => {
    const c = await config();
    const { factory } = fakeMirror();
    const node = new TwinsanNode(c, { log: silent, createMirror: factory, inSync: (s) => (s as { volumeId: string }).volumeId === V2, dataStanding: () => 'current' });
    running.push(node);
    await node.start();
    const s = node.status();
    expect(s).toMatchObject({ nodeId: 'b', clusterId: 'unit', state: 'running', inSync: false, peer: { nodeId: 'a', state: 'connected' } });
    expect(s.volumes.map((v) => [v.name, v.role, v.served, v.inSync])).toEqual([
      ['v1', 'secondary', false, false],
      ['v2', 'primary', true, true],
    ]);
  });

  it('serves GET /status on the status endpoint and nothing else', async () => {
    const c = await config(true);
    const { factory } = fakeMirror();
    const node = new TwinsanNode(c, { log: silent, createMirror: factory, inSync: () => true, dataStanding: () => 'current' });
    running.push(node);
    await node.start();
    const res = await fetch(`http://${c.status!.listen}/status`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { nodeId: string; inSync: boolean; volumes: unknown[] };
    expect([body.nodeId, body.inSync, body.volumes.length]).toEqual(['b', true, 2]);
    expect((await fetch(`http://${c.status!.listen}/other`)).status).toBe(404);
  });

  it('stops the iSCSI server, then the volumes (newest first), then the mirror; twice is once', async () => {
    const c = await config(true);
    const { factory, fake } = fakeMirror();
    const node = new TwinsanNode(c, { log: silent, createMirror: factory, inSync: () => true, dataStanding: () => 'current' });
    await node.start();
    const port = Number(c.iscsi.listen[0]!.split(':')[1]);
    await Promise.all([node.close(), node.close()]);
    expect(fake.events).toEqual(['mirror start', `volume close ${V2}`, `volume close ${V1}`, 'mirror close']);
    expect(await connects(port)).toBe(false);
    expect(node.status().state).toBe('stopped');
  });

  it('closes what it opened when start fails, and rethrows', async () => {
    const c = await config();
    const { factory, fake } = fakeMirror();
    fake.failOpen = V2;
    const node = new TwinsanNode(c, { log: silent, createMirror: factory, inSync: () => true, dataStanding: () => 'current' });
    await expect(node.start()).rejects.toThrow(`cannot open ${V2}`);
    expect(fake.events).toEqual(['mirror start', `volume close ${V1}`, 'mirror close']);
    expect(await connects(Number(c.iscsi.listen[0]!.split(':')[1]))).toBe(false);
  });
});

describe('TwinsanNode reconciles the cluster configuration', () => {
  it('opens, serves with access rules, grows and deletes a volume as the document changes', async () => {
    const c = await config();
    const { factory, fake } = fakeMirror();
    const node = new TwinsanNode(c, { log: silent, createMirror: factory, inSync: () => true, dataStanding: () => 'current' });
    running.push(node);
    await node.start();
    const V3 = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
    const iqn = 'iqn.2026-11.io.twinsan.unit:v3';
    const base = { id: V3, name: 'v3', iqn, thin: true, blockSize: 512 as const, physicalBlockSize: 512, resourceGroup: null, access: { allowedInitiators: null, chap: null, mutualChap: null } };
    // Owned by the peer: opened secondary here, not served.
    await node.cluster().apply({ kind: 'volume-create', volume: { ...base, sizeBytes: 1 << 20, owner: 'a' } });
    await node.reconciled();
    expect(fake.opened.at(-1)).toMatchObject({ volumeId: V3, role: 'secondary', create: true, backingPath: path.join(c.dataDir, 'v3.img') });
    expect(node.targets().some((t) => t.volumeId === V3)).toBe(false);
    await node.cluster().apply({ kind: 'volume-delete', name: 'v3' });
    await node.reconciled();
    expect(fake.events.at(-1)).toBe(`volume close ${V3}`);

    // Owned here: opened primary and served, with its access rules applied live.
    await node.cluster().apply({ kind: 'volume-create', volume: { ...base, name: 'v4', iqn: `${iqn}4`, sizeBytes: 1 << 20, owner: 'b' } });
    await node.reconciled();
    expect(fake.opened.at(-1)).toMatchObject({ volumeId: V3, role: 'primary' });
    expect(node.targets().map((t) => t.name)).toContain('v4');
    const target = () => node.iscsiServer().listTargets().find((t) => t.name === `${iqn}4`)!;
    expect(target()).toMatchObject({ allowedInitiators: null });
    expect(target().chap).toBeUndefined();
    await node.cluster().apply({ kind: 'access-update', name: 'v4', allowedInitiators: ['iqn.2026-11.io.example:host1'], chap: { user: 'u1', secret: 'twelve bytes!' } });
    await node.reconciled();
    expect(target()).toMatchObject({ allowedInitiators: ['iqn.2026-11.io.example:host1'], chap: { user: 'u1', secret: 'twelve bytes!' } });

    await node.cluster().apply({ kind: 'volume-grow', name: 'v4', sizeBytes: 4 << 20 });
    await node.reconciled();
    expect(node.openVolumes().find((v) => v.config.id === V3)!.mirrored.store.sizeBytes).toBe(4 << 20);
    expect(node.events.after(0, 100).map((e) => e.kind)).toEqual(expect.arrayContaining(['volume-created', 'volume-deleted', 'access-changed', 'volume-grown']));

    await node.cluster().apply({ kind: 'volume-delete', name: 'v4' });
    await node.reconciled();
    expect(node.iscsiServer().listTargets().some((t) => t.name === `${iqn}4`)).toBe(false);
    expect(node.openVolumes().some((v) => v.config.id === V3)).toBe(false);
  });

  it('serves the document\'s volumes after a restart, not the config file\'s alone', async () => {
    const c = await config();
    const { factory } = fakeMirror();
    const first = new TwinsanNode(c, { log: silent, createMirror: factory, inSync: () => true, dataStanding: () => 'current' });
    await first.start();
    await first.cluster().apply({ kind: 'volume-delete', name: 'v1' });
    await first.close();
    const second = new TwinsanNode(c, { log: silent, createMirror: fakeMirror().factory, inSync: () => true, dataStanding: () => 'current' });
    running.push(second);
    await second.start();
    expect(second.status().volumes.map((v) => v.name)).toEqual(['v2']);
    expect(second.cluster().document.version).toBe(2);
  });
});

describe('pair layout', () => {
  it('puts the node whose id sorts first at position 1, the same on both nodes', () => {
    expect(pairLayout('node-a', 'node-b')).toEqual({ local: { nodeId: 'node-a', position: 1 }, peer: { nodeId: 'node-b', position: 2 } });
    expect(pairLayout('node-b', 'node-a')).toEqual({ local: { nodeId: 'node-b', position: 2 }, peer: { nodeId: 'node-a', position: 1 } });
    expect(() => pairLayout('x', 'x')).toThrow(RangeError);
  });

  it('lists both groups in id order, the owner\'s active/optimized and preferred, the peer\'s standby', () => {
    expect(ownerAluaGroups(pairLayout('b', 'a'), { local: 2, peer: 1 })).toEqual({
      groups: [
        { id: 1, ports: [1], state: 'standby' },
        { id: 2, ports: [2], state: 'active/optimized', preferred: true },
      ],
      localGroup: 2,
    });
  });
});
