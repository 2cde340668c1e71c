/**
 * The pair-wide cluster configuration with two `twinsan node` processes on
 * loopback (ports from 25000-25999), each serving the REST API:
 *
 *   - the pair is formed through node a's API (POST /pair): both report it
 *     paired, with both nodes' API addresses;
 *   - a volume created through node b's API (served by node a, no resource
 *     group) appears on both nodes, is mirrored, and node a serves it
 *     (qemu-io writes and reads through it);
 *   - growing it through the API grows both copies; an initiator sees the
 *     new capacity and writes past the old end;
 *   - deleting it is refused while an initiator is logged in;
 *   - a volume created on b while a is stopped reaches a when it restarts;
 *   - a pair whose nodes offer different protocol versions (a capped at 1)
 *     still mirrors writes, and reports configuration sync unavailable.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sleep, spawnDaemon } from '../../scripts/lib/proc.mjs';
import type { Daemon } from '../../scripts/lib/proc.mjs';
import { TWINSAN_BIN } from '../../scripts/lib/targets.mjs';
import { INITIATOR_TOOLS, MiB, qemuImgInfo, qemuIo, requireTools } from './helpers';
import { track } from './helpers/cleanup';

const HOST = '127.0.0.1';
/** This file's ports: 25000-25999, a block of 40 per pair. */
let nextPortBlock = 25000 + (process.pid % 20) * 40;

type NodeId = 'a' | 'b';

interface ClusterNode {
  readonly id: NodeId;
  readonly dir: string;
  readonly configPath: string;
  readonly api: string;
  readonly status: string;
  readonly iscsiPort: number;
  daemon: Daemon | null;
}

interface ClusterPair {
  readonly label: string;
  readonly root: string;
  readonly a: ClusterNode;
  readonly b: ClusterNode;
  start(id: NodeId, env?: NodeJS.ProcessEnv): Promise<void>;
  stop(id: NodeId): Promise<number>;
  token(id: NodeId): Promise<string>;
  call<T>(id: NodeId, method: string, route: string, body?: unknown): Promise<{ status: number; body: T }>;
  status(id: NodeId): Promise<NodeStatusView>;
  logs(): string;
  dispose(): Promise<void>;
  disposeSync(): void;
}

interface NodeStatusView {
  readonly state: string;
  readonly inSync: boolean;
  readonly volumes: readonly { readonly name: string; readonly role: string; readonly inSync: boolean; readonly backing: string }[];
  readonly cluster: { readonly version: number; readonly sync: { readonly state: string; readonly peerVersion: number | null } | null } | null;
}

interface VolumeView {
  readonly name: string;
  readonly owner: string | null;
  readonly sizeBytes: number;
  readonly resourceGroup: string | null;
  readonly urls: readonly string[];
  readonly mirror: { readonly state: string };
}

async function startPair(opts: { volumes?: readonly Record<string, unknown>[]; env?: Partial<Record<NodeId, NodeJS.ProcessEnv>> } = {}): Promise<ClusterPair> {
  const base = nextPortBlock;
  nextPortBlock += 10;
  if (nextPortBlock > 25990) nextPortBlock = 25000;
  const root = await mkdtemp(path.join(os.tmpdir(), 'twinsan-cluster-'));
  const secret = randomBytes(24).toString('base64');
  const port = (id: NodeId, i: number): number => base + (id === 'a' ? 0 : 5) + i;
  const nodes = {} as Record<NodeId, ClusterNode>;
  for (const id of ['a', 'b'] as const) {
    const peer: NodeId = id === 'a' ? 'b' : 'a';
    const dir = path.join(root, id);
    const config = {
      nodeId: id,
      clusterId: `cc-${base}`,
      dataDir: dir,
      iscsi: { listen: [`${HOST}:${port(id, 0)}`] },
      peer: {
        nodeId: peer,
        secret,
        links: [0, 1].map((i) => ({ local: `${HOST}:${port(id, 1 + i)}`, peer: `${HOST}:${port(peer, 1 + i)}` })),
      },
      volumes: opts.volumes ?? [],
      status: { listen: `${HOST}:${port(id, 3)}` },
      api: { listen: `${HOST}:${port(id, 4)}` },
    };
    const configPath = path.join(root, `node-${id}.json`);
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
    nodes[id] = { id, dir, configPath, api: `http://${HOST}:${port(id, 4)}`, status: `http://${HOST}:${port(id, 3)}/status`, iscsiPort: port(id, 0), daemon: null };
  }
  const output: string[] = [];
  const pair: ClusterPair = {
    label: `twinsan cluster pair in ${root}`,
    root,
    a: nodes.a,
    b: nodes.b,
    async start(id, env) {
      const n = nodes[id];
      n.daemon = spawnDaemon(process.execPath, [TWINSAN_BIN, 'node', '--config', n.configPath], { label: `twinsan node ${id}`, env: { ...process.env, ...env } });
      const deadline = Date.now() + 30_000;
      for (;;) {
        n.daemon.assertRunning('before it was running');
        try {
          if ((await pair.status(id)).state === 'running' && (await fetch(`${n.api}/api/v1/health`).catch(() => null)) !== null) return;
        } catch {
          // not up yet
        }
        if (Date.now() > deadline) throw new Error(`node ${id} did not come up\n${pair.logs()}`);
        await sleep(100);
      }
    },
    async stop(id) {
      const d = nodes[id].daemon;
      if (!d) return 0;
      const code = await d.stop({ signal: 'SIGTERM', timeoutMs: 15_000 });
      output.push(`--- node ${id} (stopped) ---\n${d.stderr().slice(-3000)}\n${d.stdout().slice(-3000)}`);
      nodes[id].daemon = null;
      return code;
    },
    token: async (id) => (await readFile(path.join(nodes[id].dir, 'api.token'), 'utf8')).trim(),
    async call(id, method, route, body) {
      const res = await fetch(`${nodes[id].api}${route}`, {
        method,
        headers: { authorization: `Bearer ${await pair.token(id)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(20_000),
      }).catch((err: unknown) => {
        throw new Error(`${method} ${route} on ${id}: ${(err as Error).message}\n${pair.logs()}`);
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : null) as never };
    },
    async status(id) {
      const res = await fetch(nodes[id].status, { signal: AbortSignal.timeout(5_000) });
      return (await res.json()) as NodeStatusView;
    },
    logs() {
      const live = (['a', 'b'] as const).flatMap((id) => {
        const d = nodes[id].daemon;
        return d ? [`--- node ${id} ---\n${d.stderr().slice(-4000)}\n${d.stdout().slice(-6000)}`] : [];
      });
      return [...output, ...live].join('\n');
    },
    async dispose() {
      await Promise.all([pair.stop('a'), pair.stop('b')]);
      await rm(root, { recursive: true, force: true });
    },
    disposeSync() {
      for (const id of ['a', 'b'] as const) nodes[id].daemon?.killSync();
      rmSync(root, { recursive: true, force: true });
    },
  };
  track(pair);
  await Promise.all([pair.start('a', opts.env?.a), pair.start('b', opts.env?.b)]);
  // Connected: the replication channel is up (config sync answers either way, in-sync or unavailable).
  await waitFor('the pair connected', pair, async () => {
    const states = await Promise.all([pair.status('a'), pair.status('b')]);
    return states.every((s) => s.cluster?.sync?.state === 'in-sync' || s.cluster?.sync?.state === 'unavailable') ? true : null;
  });
  return pair;
}

async function waitFor<T>(what: string, pair: ClusterPair, probe: () => Promise<T | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (${String(last)})\n${pair.logs()}`);
    await sleep(200);
  }
}

/** Both nodes have the volume open and report it in sync. */
function bothInSync(pair: ClusterPair, name: string): Promise<true> {
  return waitFor(`${name} in sync on both nodes`, pair, async () => {
    const [a, b] = await Promise.all([pair.status('a'), pair.status('b')]);
    const va = a.volumes.find((v) => v.name === name);
    const vb = b.volumes.find((v) => v.name === name);
    return va?.inSync === true && vb?.inSync === true ? true : null;
  });
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

beforeAll(() => {
  requireTools(INITIATOR_TOOLS);
});

describe('cluster configuration across the pair', () => {
  it('a volume created on node b appears on both nodes, node a serves it, it grows online, and a change made while a was down reaches it', async () => {
    const pair = await startPair();
    // Form the pair through node a's API: both nodes then report it paired, with both API addresses.
    expect((await pair.call<{ state: string }>('a', 'GET', '/api/v1/pair')).body.state).toBe('unpaired');
    const formed = await pair.call<{ state: string; peer: { id: string; api: string | null } | null }>('a', 'POST', '/api/v1/pair', { peerApi: pair.b.api });
    expect(formed.status, JSON.stringify(formed.body)).toBeLessThan(300);
    expect(formed.body).toMatchObject({ state: 'paired', peer: { id: 'b', api: pair.b.api } });
    const onB = await pair.call<{ state: string; peer: { id: string; api: string | null } }>('b', 'GET', '/api/v1/pair');
    expect(onB.body).toMatchObject({ state: 'paired', peer: { id: 'a', api: pair.a.api } });
    const started = performance.now();
    const created = await pair.call<VolumeView>('b', 'POST', '/api/v1/volumes', { name: 'cv1', sizeBytes: 32 * MiB, thin: true, owner: 'a' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    console.log(`cluster-config: volume created through b and open on both in ${Math.round(performance.now() - started)} ms`);
    expect(created.body).toMatchObject({ name: 'cv1', sizeBytes: 32 * MiB, resourceGroup: null, owner: 'a' });
    expect(created.body.urls).toEqual([expect.stringMatching(new RegExp(`^iscsi://127\\.0\\.0\\.1:${pair.a.iscsiPort}/`))]);
    const url = created.body.urls[0]!;
    const [sa, sb] = await Promise.all([pair.status('a'), pair.status('b')]);
    expect(sa.volumes.find((v) => v.name === 'cv1')?.role).toBe('primary');
    expect(sb.volumes.find((v) => v.name === 'cv1')?.role).toBe('secondary');
    expect(sa.cluster?.version).toBe(sb.cluster?.version);
    // Node a's API shows the same volume.
    const onA = await pair.call<VolumeView>('a', 'GET', '/api/v1/volumes/cv1');
    expect(onA.body).toMatchObject({ name: 'cv1', owner: 'a' });
    const events = await pair.call<readonly { kind: string; message: string }[]>('a', 'GET', '/api/v1/events?after=0&limit=100');
    expect(events.body.map((e) => e.kind)).toEqual(expect.arrayContaining(['config-replicated', 'volume-created']));

    await bothInSync(pair, 'cv1');
    const io = await qemuIo(url, ['write -P 0x5a 1048576 1048576', 'read -P 0x5a 1048576 1048576']);
    expect(io.ok, io.run.stdout + io.run.stderr).toBe(true);

    // The owner counts the volume's I/O for /metrics.
    const metrics = await fetch(`${pair.a.api}/metrics`, { headers: { authorization: `Bearer ${await pair.token('a')}` } }).then((r) => r.text());
    const writtenBytes = Number(/^twinsan_volume_bytes_total\{(?=[^}]*volume="cv1")(?=[^}]*op="write")[^}]*\} (\d+)$/m.exec(metrics)?.[1]);
    expect(writtenBytes, metrics).toBeGreaterThanOrEqual(1048576);

    // Online verify of the two copies, as a job.
    await bothInSync(pair, 'cv1');
    const verify = await pair.call<{ id: string }>('b', 'POST', '/api/v1/volumes/cv1/verify', {});
    expect(verify.status, JSON.stringify(verify.body)).toBe(202);
    const verified = await waitFor('the verify job done', pair, async () => {
      const j = await pair.call<{ state: string; result: { differences: number; regionsChecked: number } | null; error: string | null }>('b', 'GET', `/api/v1/jobs/${verify.body.id}`);
      return j.body.state === 'running' ? null : j.body;
    });
    expect(verified).toMatchObject({ state: 'done', result: { differences: 0 } });
    expect(verified.result!.regionsChecked).toBeGreaterThan(0);

    // Grow online: both copies, and an initiator sees the new capacity.
    const grown = await pair.call<VolumeView>('b', 'PATCH', '/api/v1/volumes/cv1', { sizeBytes: 48 * MiB });
    expect(grown.status, JSON.stringify(grown.body)).toBe(200);
    expect(grown.body.sizeBytes).toBe(48 * MiB);
    const info = await qemuImgInfo(url);
    expect(info.virtualSize).toBe(48 * MiB);
    const past = await qemuIo(url, ['write -P 0x6b 41943040 65536', 'read -P 0x6b 41943040 65536']);
    expect(past.ok, past.run.stdout + past.run.stderr).toBe(true);
    await bothInSync(pair, 'cv1');

    // Refused while an initiator is logged in: qemu-io holds a session while it waits for more commands.
    const holder = spawn('qemu-io', ['-f', 'raw', url], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      await waitFor('the initiator logged in', pair, async () => {
        const s = await pair.call<readonly { volume: string }[]>('b', 'GET', '/api/v1/sessions');
        return s.body.some((x) => x.volume === 'cv1') ? true : null;
      });
      const refused = await pair.call<{ message: string }>('b', 'DELETE', '/api/v1/volumes/cv1');
      expect(refused.status).toBe(412);
      expect(refused.body.message).toMatch(/logged in/);
    } finally {
      holder.stdin.end('quit\n');
      await new Promise((r) => holder.once('exit', r));
    }

    // Node a stops; a volume created on b meanwhile reaches a when it returns.
    expect(await pair.stop('a')).toBe(0);
    const whileDown = await pair.call<VolumeView>('b', 'POST', '/api/v1/volumes', { name: 'cv2', sizeBytes: 16 * MiB, thin: true, owner: 'b' });
    expect(whileDown.status, JSON.stringify(whileDown.body)).toBe(201);
    const versionOnB = (await pair.status('b')).cluster!.version;
    await pair.start('a');
    await waitFor('node a adopts the configuration made while it was down', pair, async () => {
      const s = await pair.status('a');
      return s.cluster?.version === versionOnB && s.volumes.some((v) => v.name === 'cv2') ? true : null;
    });
    await bothInSync(pair, 'cv2');
    const cv2 = await pair.call<VolumeView>('a', 'GET', '/api/v1/volumes/cv2');
    expect(cv2.body.owner).toBe('b');
    const io2 = await qemuIo(cv2.body.urls[0]!, ['write -P 0x7c 0 65536', 'read -P 0x7c 0 65536']);
    expect(io2.ok, io2.run.stdout + io2.run.stderr).toBe(true);
    await bothInSync(pair, 'cv2');

    // Deleted on a (no session now): gone from both nodes, files removed.
    const backingOnB = (await pair.status('b')).volumes.find((v) => v.name === 'cv2')!.backing;
    const del = await pair.call('a', 'DELETE', '/api/v1/volumes/cv2');
    expect(del.status).toBe(204);
    await waitFor('cv2 gone from node b', pair, async () => ((await pair.status('b')).volumes.some((v) => v.name === 'cv2') ? null : true));
    await expect(readFile(backingOnB)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 240_000);

  it('a node capped at protocol version 1 still mirrors writes; configuration sync is reported unavailable', async () => {
    const volume = { id: '3b0c1a52-9d7e-4f3a-8c21-5e6f7a8b9c01', name: 'old', iqn: 'iqn.2026-11.io.twinsan.test:mixed-old', sizeBytes: 16 * MiB, thin: true, owner: 'a' };
    const pair = await startPair({ volumes: [volume], env: { a: { TWINSAN_MAX_PROTOCOL_VERSION: '1' } } });
    await bothInSync(pair, 'old');
    const url = `iscsi://${HOST}:${pair.a.iscsiPort}/${volume.iqn}/0`;
    const io = await qemuIo(url, ['write -P 0x3c 0 4194304', 'write -P 0x4d 8388608 1048576', 'read -P 0x3c 0 4194304']);
    expect(io.ok, io.run.stdout + io.run.stderr).toBe(true);
    await bothInSync(pair, 'old');
    const [sa, sb] = await Promise.all([pair.status('a'), pair.status('b')]);
    expect(sa.cluster?.sync?.state).toBe('unavailable');
    expect(sb.cluster?.sync?.state).toBe('unavailable');
    const nodes = await pair.call<readonly { id: string; protocol: { max: number; negotiated: number | null } | null }[]>('b', 'GET', '/api/v1/nodes');
    expect(nodes.body.find((n) => n.id === 'b')?.protocol).toMatchObject({ max: 2, negotiated: 1 });
    const backingA = sa.volumes.find((v) => v.name === 'old')!.backing;
    const backingB = sb.volumes.find((v) => v.name === 'old')!.backing;
    await Promise.all([pair.stop('a'), pair.stop('b')]);
    expect(await sha256(backingB)).toBe(await sha256(backingA));
  }, 120_000);
});
