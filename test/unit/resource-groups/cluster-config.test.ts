/**
 * The cluster configuration: the store (seed, versions, persistence,
 * validation), the merge rule (newer wins, equal-version conflicts decided
 * the same way on both nodes, the loser kept), sync between two stores over
 * a fake control channel, and the reconcile plan.
 */
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterConfigStore,
  ClusterSync,
  type ClusterDocument,
  type ClusterVolume,
  type ControlPort,
  contentHash,
  mergeDecision,
  planReconcile,
} from '../../../src/resource-groups/cluster';
import { ControlError } from '../../../src/resource-groups/control';
import { parseNodeConfig, type NodeConfig } from '../../../src/resource-groups/node';

const silent = pino({ level: 'silent' });
const V1 = '6f1d3c1e-7a52-4b8e-9c1a-0d2b5e8f4a11';
let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'twinsan-cluster-config-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function nodeConfig(nodeId: 'a' | 'b', dataDir?: string): Promise<NodeConfig> {
  const dir = dataDir ?? path.join(root, `d${n++}`);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  return parseNodeConfig({
    nodeId,
    clusterId: 'unit',
    dataDir: dir,
    iscsi: { listen: ['127.0.0.1:25990'] },
    peer: {
      nodeId: nodeId === 'a' ? 'b' : 'a',
      secret: 'sixteen bytes at least',
      links: [
        { local: '127.0.0.1:25991', peer: '127.0.0.1:25992' },
        { local: '127.0.0.1:25993', peer: '127.0.0.1:25994' },
      ],
    },
    volumes: [{ id: V1, name: 'v1', iqn: 'iqn.2026-11.io.twinsan.unit:v1', sizeBytes: 1 << 20, thin: true, owner: 'a' }],
  });
}

function volume(name: string, over: Partial<ClusterVolume> = {}): ClusterVolume {
  return {
    id: `00000000-0000-4000-8000-${String(name.length).padStart(4, '0')}${Buffer.from(name).toString('hex').padEnd(8, '0').slice(0, 8)}`,
    name,
    iqn: `iqn.2026-11.io.twinsan.unit:${name}`,
    sizeBytes: 1 << 20,
    thin: true,
    blockSize: 512,
    physicalBlockSize: 512,
    resourceGroup: null,
    owner: 'b',
    access: { allowedInitiators: null, chap: null, mutualChap: null },
    ...over,
  };
}

describe('ClusterConfigStore', () => {
  it('seeds version 1 from the node config, writes it with mode 0600 and loads it back', async () => {
    const c = await nodeConfig('a');
    const store = await ClusterConfigStore.open(c);
    expect(store.document).toMatchObject({ version: 1, clusterId: 'unit', paired: false, nodes: [{ id: 'a' }, { id: 'b' }], resourceGroups: [] });
    expect(store.document.volumes.map((v) => [v.name, v.owner, v.sizeBytes])).toEqual([['v1', 'a', 1 << 20]]);
    expect((await stat(store.file)).mode & 0o777).toBe(0o600);
    await store.apply({ kind: 'volume-create', volume: volume('v2') });
    const again = await ClusterConfigStore.open(c);
    expect(again.document.version).toBe(2);
    expect(again.document.volumes.map((v) => v.name)).toEqual(['v1', 'v2']);
  });

  it('two nodes seeded from matching configs hold equal content', async () => {
    const [a, b] = await Promise.all([ClusterConfigStore.open(await nodeConfig('a')), ClusterConfigStore.open(await nodeConfig('b'))]);
    expect(contentHash(a.document)).toBe(contentHash(b.document));
    expect(mergeDecision(a.document, b.document, 0)).toBe('same');
  });

  it('bumps the version by one per change and stamps who changed it', async () => {
    const store = await ClusterConfigStore.open(await nodeConfig('b'), { now: () => new Date('2026-11-22T06:00:00Z') });
    await Promise.all([store.apply({ kind: 'volume-create', volume: volume('x1') }), store.apply({ kind: 'volume-create', volume: volume('x22') })]);
    await store.apply({ kind: 'volume-grow', name: 'x1', sizeBytes: 2 << 20 });
    expect(store.document).toMatchObject({ version: 4, updatedBy: 'b', updatedAt: '2026-11-22T06:00:00.000Z' });
    expect(store.document.volumes.find((v) => v.name === 'x1')!.sizeBytes).toBe(2 << 20);
  });

  it('refuses bad changes with a ControlError naming the field, and the version stays', async () => {
    const store = await ClusterConfigStore.open(await nodeConfig('a'));
    const cases: [Parameters<ClusterConfigStore['apply']>[0], string, string | undefined][] = [
      [{ kind: 'volume-create', volume: volume('v1') }, 'conflict', 'name'],
      [{ kind: 'volume-create', volume: volume('other', { id: V1 }) }, 'conflict', 'id'],
      [{ kind: 'volume-create', volume: volume('bad name!') }, 'invalid', 'name'],
      [{ kind: 'volume-create', volume: volume('odd', { sizeBytes: 1000 }) }, 'invalid', 'sizeBytes'],
      [{ kind: 'volume-create', volume: volume('nob', { owner: 'c' }) }, 'invalid', 'owner'],
      [{ kind: 'volume-create', volume: volume('norg', { resourceGroup: 'rg9' }) }, 'invalid', 'resourceGroup'],
      [{ kind: 'volume-grow', name: 'v1', sizeBytes: 512 }, 'invalid', 'sizeBytes'],
      [{ kind: 'volume-grow', name: 'nope', sizeBytes: 1 << 21 }, 'not-found', undefined],
      [{ kind: 'access-update', name: 'v1', chap: { user: 'u', secret: 'short' } }, 'invalid', 'chap.secret'],
      [{ kind: 'access-update', name: 'v1', mutualChap: { user: 't', secret: 'twelve bytes ok' } }, 'invalid', 'mutualChap'],
      [{ kind: 'access-update', name: 'v1', allowedInitiators: ['not an iqn'] }, 'invalid', 'allowedInitiators[0]'],
      [{ kind: 'rg-create', group: { name: 'rg1', preferredNode: 'a', aliasIps: [], failback: 'auto' } }, 'invalid', 'aliasIps'],
      [{ kind: 'rg-create', group: { name: 'rg1', preferredNode: 'a', aliasIps: [{ address: '198.18.0.300', prefix: 24, interface: 'eth0' }], failback: 'auto' } }, 'invalid', 'aliasIps[0].address'],
      [{ kind: 'rg-delete', name: 'rg1' }, 'not-found', undefined],
    ];
    for (const [change, code, field] of cases) {
      const err = await store.apply(change).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(change)).toBeInstanceOf(ControlError);
      expect((err as ControlError).code, JSON.stringify(change)).toBe(code);
      expect((err as ControlError).details.field, JSON.stringify(change)).toBe(field);
    }
    expect(store.document.version).toBe(1);
  });

  it('keeps CHAP secrets, removes mutual CHAP with CHAP, and refuses an RG with volumes being deleted', async () => {
    const store = await ClusterConfigStore.open(await nodeConfig('a'));
    await store.apply({ kind: 'access-update', name: 'v1', chap: { user: 'init', secret: 'initiator-secret' }, mutualChap: { user: 'tgt', secret: 'target-secret!' } });
    expect(store.document.volumes[0]!.access.mutualChap).toEqual({ user: 'tgt', secret: 'target-secret!' });
    await store.apply({ kind: 'access-update', name: 'v1', chap: null });
    expect(store.document.volumes[0]!.access).toEqual({ allowedInitiators: null, chap: null, mutualChap: null });
    await store.apply({ kind: 'rg-create', group: { name: 'rg1', preferredNode: 'b', aliasIps: [{ address: '198.18.0.50', prefix: 24, interface: 'eth1' }], failback: 'auto' } });
    await store.apply({ kind: 'volume-create', volume: volume('in-rg', { resourceGroup: 'rg1', owner: 'b' }) });
    await expect(store.apply({ kind: 'rg-delete', name: 'rg1' })).rejects.toMatchObject({ code: 'precondition-failed', details: { field: 'volumes' } });
    await store.apply({ kind: 'rg-update', name: 'rg1', preferredNode: 'a' });
    expect(store.document.volumes.find((v) => v.name === 'in-rg')!.owner).toBe('a');
  });

  it('refuses a corrupt file instead of seeding over it', async () => {
    const c = await nodeConfig('a');
    const store = await ClusterConfigStore.open(c);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(store.file, '{"document": {"format": 1}}');
    await expect(ClusterConfigStore.open(c)).rejects.toThrow(/document: clusterId: missing/);
  });
});

describe('merge', () => {
  async function twoStores(): Promise<[ClusterConfigStore, ClusterConfigStore]> {
    return [await ClusterConfigStore.open(await nodeConfig('a')), await ClusterConfigStore.open(await nodeConfig('b'))];
  }

  it('adopts a newer document and keeps an older one', async () => {
    const [a, b] = await twoStores();
    await b.apply({ kind: 'volume-create', volume: volume('fromb') });
    const changes: string[] = [];
    a.on('change', (e) => changes.push(`${e.origin} ${e.document.version}`));
    expect(await a.offer(b.document)).toBe('adopt');
    expect(a.document.volumes.map((v) => v.name)).toEqual(['v1', 'fromb']);
    expect(changes).toEqual(['peer 2']);
    expect(await b.offer((await ClusterConfigStore.open(await nodeConfig('a'))).document)).toBe('keep');
  });

  it('resolves an equal-version conflict the same way on both nodes and keeps the loser beside the file', async () => {
    const [a, b] = await twoStores();
    await a.apply({ kind: 'volume-create', volume: volume('froma') });
    await b.apply({ kind: 'volume-create', volume: volume('fromb') });
    const [da, db] = [a.document, b.document];
    const conflicts: string[] = [];
    a.on('conflict', (e) => conflicts.push(`a ${e.outcome}`));
    b.on('conflict', (e) => conflicts.push(`b ${e.outcome}`));
    const [oa, ob] = [await a.offer(db), await b.offer(da)];
    expect([oa, ob].sort()).toEqual(['conflict-adopt', 'conflict-keep']);
    expect(contentHash(a.document)).toBe(contentHash(b.document));
    expect(conflicts.sort()).toEqual([`a ${oa}`, `b ${ob}`].sort());
    for (const s of [a, b]) {
      const kept = (await readdir(path.dirname(s.file))).filter((f) => f.startsWith('cluster-config.conflict-v2-'));
      expect(kept).toHaveLength(1);
      const loser = JSON.parse(await readFile(path.join(path.dirname(s.file), kept[0]!), 'utf8')) as ClusterDocument;
      expect(contentHash(loser)).not.toBe(contentHash(s.document));
      expect((await stat(path.join(path.dirname(s.file), kept[0]!))).mode & 0o777).toBe(0o600);
    }
  });

  it('reports and keeps local changes the peer never saw when its newer document replaces them', async () => {
    const [a, b] = await twoStores();
    await a.apply({ kind: 'volume-create', volume: volume('lonely') });
    await b.apply({ kind: 'volume-create', volume: volume('b1') });
    await b.apply({ kind: 'volume-create', volume: volume('b22') });
    expect(mergeDecision(a.document, b.document, a.syncedVersion)).toBe('adopt-over-local');
    const kept: string[] = [];
    a.on('conflict', (e) => kept.push(e.keptAt));
    expect(await a.offer(b.document)).toBe('adopt-over-local');
    expect(kept).toHaveLength(1);
    expect(a.document.volumes.map((v) => v.name)).toEqual(['v1', 'b1', 'b22']);
  });

  it('refuses another cluster\'s document and a malformed one', async () => {
    const [a] = await twoStores();
    expect(await a.offer({ ...a.document, clusterId: 'other', version: 9 })).toBe('refuse');
    await expect(a.offer({ ...a.document, volumes: 'none' })).rejects.toThrow(/volumes: "none" is not a list/);
    expect(a.document.version).toBe(1);
  });

  it('refuses a newer document that breaks the content rules, keeps its own and says why', async () => {
    const [a] = await twoStores();
    const group = { name: 'rg1', preferredNode: 'a', aliasIps: [{ address: '198.18.0.10', prefix: 24, interface: 'eth0' }], failback: 'manual' as const };
    const good = { ...a.document, version: 5, resourceGroups: [group], volumes: [...a.document.volumes, volume('w', { resourceGroup: 'rg1', owner: 'a' })] };
    const bad: Array<[string, ClusterDocument, RegExp]> = [
      ['duplicate name', { ...good, volumes: [...good.volumes, volume('w', { id: '00000000-0000-4000-8000-0000000000ff', iqn: 'iqn.2026-11.io.twinsan.unit:other' })] }, /volumes\[2\].*name "w" exists/],
      ['duplicate IQN', { ...good, volumes: [...good.volumes, volume('x', { iqn: good.volumes[0]!.iqn })] }, /volumes\[2\].*iqn .* exists/],
      ['owner not a node of the pair', { ...good, volumes: [...good.volumes, volume('x', { owner: 'c' })] }, /volumes\[2\]\.owner.*"c" is not a node of the pair/],
      ['resource group missing', { ...good, volumes: [...good.volumes, volume('x', { resourceGroup: 'nope' })] }, /volumes\[2\]\.resourceGroup.*no resource group named "nope"/],
      ['preferred node not of the pair', { ...good, resourceGroups: [{ ...group, preferredNode: 'z' }] }, /resourceGroups\[0\]\.preferredNode/],
      ['a CHAP secret too short', { ...good, volumes: [volume('x', { access: { allowedInitiators: null, chap: { user: 'u', secret: 'short' }, mutualChap: null } })] }, /volumes\[0\]\.chap\.secret/],
      ['the pair\'s nodes replaced', { ...good, nodes: [{ id: 'a', api: null, maintenance: false }, { id: 'c', api: null, maintenance: false }] }, /nodes.*a, c.*not the pair's nodes \(a, b\)/],
    ];
    const rejected: string[] = [];
    a.on('rejected', (e) => rejected.push(e.reason));
    for (const [what, doc, message] of bad) {
      expect(await a.offer(doc), what).toBe('invalid');
      expect(rejected.at(-1), what).toMatch(message);
      expect(a.document.version, what).toBe(1);
    }
    expect(rejected).toHaveLength(bad.length);
    expect(await a.offer(good)).toBe('adopt');
    expect(a.document.volumes.map((v) => v.name)).toEqual(['v1', 'w']);
  });
});

/** Two ControlPorts wired to each other in memory; `up` toggles the channel. */
function controlPair(): { a: ControlPort; b: ControlPort; setUp(up: boolean): void } {
  const handlers = { a: new Map<string, (d: Buffer) => unknown>(), b: new Map<string, (d: Buffer) => unknown>() };
  let up = true;
  const port = (self: 'a' | 'b'): ControlPort => ({
    get controlAvailable() {
      return up;
    },
    get peerState() {
      return up ? 'up' : 'down';
    },
    async sendControl(topic, data) {
      if (!up) throw new Error('peer unavailable');
      const h = handlers[self === 'a' ? 'b' : 'a'].get(topic);
      if (!h) throw new Error('no handler');
      return (await h(data)) as Buffer;
    },
    onControl(topic, handler) {
      handlers[self].set(topic, handler);
      return () => handlers[self].delete(topic);
    },
  });
  return { a: port('a'), b: port('b'), setUp: (u) => void (up = u) };
}

describe('ClusterSync', () => {
  it('a change on either node reaches the other; one made while the peer was away reaches it on push', async () => {
    const sa = await ClusterConfigStore.open(await nodeConfig('a'));
    const sb = await ClusterConfigStore.open(await nodeConfig('b'));
    const wire = controlPair();
    const idle = (): Promise<void> => Promise.resolve();
    const ya = new ClusterSync(sa, wire.a, silent, idle);
    const yb = new ClusterSync(sb, wire.b, silent, idle);
    ya.start();
    yb.start();
    await sb.apply({ kind: 'volume-create', volume: volume('one') });
    await yb.push();
    expect(sa.document.version).toBe(2);
    expect(ya.status().state).toBe('in-sync');
    expect(yb.status()).toMatchObject({ state: 'in-sync', peerVersion: 2 });

    wire.setUp(false);
    await sb.apply({ kind: 'volume-grow', name: 'one', sizeBytes: 4 << 20 });
    await yb.push();
    expect(yb.status().state).toBe('peer-down');
    expect(sa.document.version).toBe(2);
    wire.setUp(true);
    // The node that was away pushes its older document on channel up and receives the newer one back.
    await ya.push();
    expect(sa.document.version).toBe(3);
    expect(sa.document.volumes.find((v) => v.name === 'one')!.sizeBytes).toBe(4 << 20);
    expect(contentHash(sa.document)).toBe(contentHash(sb.document));
  });
  it('refuses a peer message that is JSON but not an object, and survives a reply that is not one', async () => {
    const store = await ClusterConfigStore.open(await nodeConfig('a'));
    let handler: ((data: Buffer) => Buffer | void | Promise<Buffer | void>) | null = null;
    let answer = 'null';
    const sync = new ClusterSync(
      store,
      {
        controlAvailable: true,
        peerState: 'up',
        sendControl: async () => Buffer.from(answer),
        onControl: (_topic, h) => ((handler = h), () => undefined),
      },
      silent,
      () => Promise.resolve(),
    );
    sync.start();
    for (const body of ['null', '[]', '7']) {
      await expect(Promise.resolve(handler!(Buffer.from(body)))).rejects.toMatchObject({ code: 'EPROTO', message: 'cluster configuration is not a JSON object' });
    }
    for (answer of ['null', '"x"']) {
      await sync.push();
      expect(sync.status().lastError).toBe('the peer answered with something that is not an object');
    }
    expect(store.document.version).toBe(1);
  });
});

describe('planReconcile', () => {
  it('lists removals, groups, additions, growth and access changes in order', async () => {
    const store = await ClusterConfigStore.open(await nodeConfig('a'));
    const before = store.document;
    await store.apply({ kind: 'volume-create', volume: volume('new') });
    await store.apply({ kind: 'volume-grow', name: 'v1', sizeBytes: 4 << 20 });
    await store.apply({ kind: 'access-update', name: 'v1', allowedInitiators: ['iqn.2026-11.io.example:host1'] });
    await store.apply({ kind: 'rg-create', group: { name: 'rg1', preferredNode: 'a', aliasIps: [{ address: '198.18.0.9', prefix: 24, interface: 'eth1' }], failback: 'manual' } });
    await store.apply({ kind: 'node-update', id: 'a', maintenance: true });
    const mid = store.document;
    expect(planReconcile(before, mid).map((s) => s.kind)).toEqual(['rg-add', 'volume-add', 'volume-grow', 'access-apply', 'maintenance']);
    await store.apply({ kind: 'volume-delete', name: 'new' });
    await store.apply({ kind: 'rg-update', name: 'rg1', failback: 'auto' });
    expect(planReconcile(mid, store.document).map((s) => s.kind)).toEqual(['volume-remove', 'rg-update']);
    expect(planReconcile(store.document, store.document)).toEqual([]);
  });
});
