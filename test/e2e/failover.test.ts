/**
 * Failover of a resource group between two `twinsan node` processes, each
 * in its own network namespace of a bridged lab LAN (198.18.0.0/24 only),
 * with a redis-server witness in the initiator's namespace. Needs root,
 * qemu-io, iscsi-inq, redis-server and a fresh build (npm run build:ts).
 *
 *   a 198.18.0.1  node-a, preferred owner of rg1 (alias 198.18.0.50/24 on eth1)
 *   b 198.18.0.2  node-b
 *   h 198.18.0.3  initiator (qemu-io, iscsi-inq) and the witness (redis :6379)
 *
 * qemu-io writes numbered 64 KiB blocks, each with its own pattern, through
 * iscsi://198.18.0.50/...; node a is killed with SIGKILL in the middle; the
 * writer retries the write it was on until node b serves the alias. Every
 * acknowledged block is read back and verified after the failover, and the
 * VPD 0x83 designators are the same before and after. The pause (kill to
 * the first acknowledged write through b) is printed, not asserted.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabProcess, Lan, Namespace, createLan, newRunId, removeStaleNamespaces, requireRoot } from './lab';

const BIN = path.resolve(__dirname, '../../dist/cli/bin.js');
const IQN = 'iqn.2026-11.io.twinsan.lab:v1';
const ALIAS = '198.18.0.50';
const URL_ = `iscsi://${ALIAS}:3260/${IQN}/0`;
const BLOCK = 64 * 1024;
const SECRET = 'lab secret of twenty-four bytes';

let lan: Lan | null = null;
let dir = '';
const procs: LabProcess[] = [];

function nodeConfig(self: 'a' | 'b'): unknown {
  const me = self === 'a' ? 1 : 2;
  const other = self === 'a' ? 2 : 1;
  return {
    nodeId: `node-${self}`,
    clusterId: 'failover-lab',
    dataDir: path.join(dir, self),
    iscsi: { listen: [`198.18.0.${me}:3260`] },
    peer: {
      nodeId: self === 'a' ? 'node-b' : 'node-a',
      secret: SECRET,
      links: [
        { local: `198.18.0.${me}:7001`, peer: `198.18.0.${other}:7001` },
        { local: `198.18.0.${me}:7002`, peer: `198.18.0.${other}:7002` },
      ],
    },
    heartbeat: { local: `198.18.0.${me}:7400`, peer: `198.18.0.${other}:7400`, intervalMs: 200, deadMs: 900 },
    witness: { redis: '198.18.0.3:6379' },
    volumes: [{ id: '3c0ffee0-1111-4222-8333-444455556666', name: 'v1', iqn: IQN, sizeBytes: 64 * 1024 * 1024, thin: true }],
    resourceGroups: [{ name: 'rg1', preferredNode: 'node-a', aliasIps: [{ address: ALIAS, prefix: 24, interface: 'eth1' }], volumes: ['v1'], failback: 'manual' }],
    log: { level: 'info' },
    status: { listen: '127.0.0.1:18001' },
  };
}

async function status(ns: Namespace): Promise<any> {
  const r = await ns.exec(
    process.execPath,
    ['-e', "fetch('http://127.0.0.1:18001/status').then(r=>r.text()).then(t=>process.stdout.write(t)).catch(()=>process.exit(3))"],
    { allowFailure: true, timeoutMs: 5000 },
  );
  return r.code === 0 ? JSON.parse(r.stdout) : null;
}

async function post(ns: Namespace, pathAndQuery: string): Promise<{ code: number; body: string }> {
  const r = await ns.exec(
    process.execPath,
    ['-e', `fetch('http://127.0.0.1:18001${pathAndQuery}',{method:'POST'}).then(async r=>{process.stdout.write(r.status+' '+await r.text())}).catch(e=>{process.stdout.write('0 '+e.message)})`],
    { allowFailure: true, timeoutMs: 60_000 },
  );
  const [code, ...rest] = r.stdout.split(' ');
  return { code: Number(code), body: rest.join(' ') };
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startNode(ns: Namespace, self: 'a' | 'b'): LabProcess {
  const p = ns.spawn(process.execPath, [BIN, 'node', '--config', path.join(dir, `node-${self}.json`)], `node-${self}`);
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-20000);
  };
  p.child.stdout!.on('data', keep);
  p.child.stderr!.on('data', keep);
  (p as { tail?: () => string } & LabProcess as any).tail = () => tail;
  procs.push(p);
  return p;
}

/** One qemu-io write of block i (pattern 1 + i % 250); true when acknowledged. */
async function writeBlock(h: Namespace, i: number): Promise<boolean> {
  const r = await h.exec('qemu-io', ['-f', 'raw', URL_, '-c', `write -P ${1 + (i % 250)} ${i * BLOCK} ${BLOCK}`], { allowFailure: true, timeoutMs: 15_000 }).catch(() => null);
  return r !== null && r.code === 0 && /wrote \d+\/\d+ bytes/.test(r.stdout);
}

async function naa(h: Namespace): Promise<string> {
  const r = await h.exec('iscsi-inq', ['-e', '1', '-c', '131', URL_], { timeoutMs: 15_000 });
  // The logical unit's designators (NAA and T10); the port designators (relative port, port group) differ per node by design.
  const lu = r.stdout.split('DEVICE DESIGNATOR #').filter((b) => /Association:\(0\) LOGICAL_UNIT/.test(b));
  if (!lu.some((b) => /Designator Type:\(3\) NAA/.test(b))) throw new Error(`no NAA designator in:\n${r.stdout}`);
  return lu.map((b) => b.replace(/^\d+\n/, '')).join('');
}

beforeAll(async () => {
  requireRoot('test/e2e/failover.test.ts', ['ip', 'qemu-io', 'iscsi-inq', 'redis-server']);
  if (!existsSync(path.resolve(__dirname, '../../dist/resource-groups/node-groups.js'))) throw new Error('build first: npm run build:ts');
  await removeStaleNamespaces();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tsan-failover-'));
  for (const s of ['a', 'b'] as const) await writeFile(path.join(dir, `node-${s}.json`), JSON.stringify(nodeConfig(s), null, 2));
  lan = await createLan(newRunId(), [
    { name: 'a', ipv4: '198.18.0.1/24' },
    { name: 'b', ipv4: '198.18.0.2/24' },
    { name: 'h', ipv4: '198.18.0.3/24' },
  ]);
}, 60_000);

afterAll(async () => {
  for (const p of procs) await p.stop(2000).catch(() => undefined);
  await lan?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('resource group failover', () => {
  it('node b takes rg1 over after node a is killed: same alias, target and identity, no acknowledged write lost', { timeout: 180_000 }, async () => {
    const a = lan!.station('a').ns;
    const b = lan!.station('b').ns;
    const h = lan!.station('h').ns;
    const redis = h.spawn('redis-server', ['--bind', '198.18.0.3', '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', dir], 'redis');
    procs.push(redis);
    let redisOut = '';
    redis.child.stdout!.on('data', (d: Buffer) => (redisOut += d.toString()));
    redis.child.stderr!.on('data', (d: Buffer) => (redisOut += d.toString()));
    await until('redis', 10_000, async () => (await h.exec('redis-cli', ['-h', '198.18.0.3', 'ping'], { allowFailure: true })).stdout.includes('PONG')).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${redisOut}`);
      },
    );

    const nodeA = startNode(a, 'a');
    const nodeB = startNode(b, 'b');
    try {
      await until('rg1 serving on a', 30_000, async () => (await status(a))?.resourceGroups?.groups?.[0]?.state === 'serving');
      await until('v1 in sync on b', 60_000, async () => (await status(b))?.inSync === true);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nnode-a:\n${(nodeA as any).tail()}`);
    }
    const identityBefore = await naa(h);
    expect(identityBefore).not.toBe('');

    const acked: number[] = [];
    for (let i = 0; i < 10; i++) if (await writeBlock(h, i)) acked.push(i);
    expect(acked).toHaveLength(10);

    // Wait until b has the volume in sync again after the writes, then kill a.
    await until('in sync before the kill', 30_000, async () => (await status(b))?.inSync === true);
    const killedAt = performance.now();
    nodeA.child.kill('SIGKILL');
    await nodeA.exited;
    // When b serves rg1 (alias up, target listening), as its status endpoint says.
    const servingOnB = until('rg1 serving on b', 30_000, async () => (await status(b))?.resourceGroups?.groups?.[0]?.state === 'serving').then(() => performance.now());

    // Keep writing: retry block 10 until b answers, then a few more.
    let firstAfter = 0;
    await until('a write through node b', 30_000, async () => {
      if (!(await writeBlock(h, 10))) return false;
      firstAfter = performance.now();
      return true;
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nnode-b:\n${(nodeB as any).tail()}`);
    });
    acked.push(10);
    const pauseMs = firstAfter - killedAt;
    const servedMs = (await servingOnB) - killedAt;
    const bStatus = await status(b);
    if (process.env['TSAN_FAILOVER_LOG']) console.log((nodeB as any).tail());
    console.log(
      `failover: SIGKILL of node a → rg1 serving on node b ${servedMs.toFixed(0)} ms; → first acknowledged write through node b ${pauseMs.toFixed(0)} ms (qemu-io reconnecting)`,
    );
    expect(pauseMs).toBeLessThan(30_000);
    expect(bStatus.resourceGroups.groups[0].state).toBe('serving');
    const addrs = await b.ip('-4', 'addr', 'show', 'dev', 'eth1');
    expect(addrs).toContain(ALIAS);

    for (let i = 11; i < 20; i++) if (await writeBlock(h, i)) acked.push(i);
    expect(acked).toHaveLength(20);

    for (const i of acked) {
      const r = await h.exec('qemu-io', ['-f', 'raw', URL_, '-c', `read -P ${1 + (i % 250)} ${i * BLOCK} ${BLOCK}`], { allowFailure: true, timeoutMs: 15_000 });
      expect(r.stdout, `block ${i}`).not.toMatch(/Pattern verification failed/);
      expect(r.code, `block ${i}: ${r.stderr}`).toBe(0);
    }
    expect(await naa(h)).toBe(identityBefore);

    // Node a returns as standby (b holds the lease), resyncs; a manual failback moves rg1 back.
    const nodeA2 = startNode(a, 'a');
    try {
      await until('a back and v1 in sync', 60_000, async () => {
        const [sa, sb] = [await status(a), await status(b)];
        return sa?.resourceGroups?.groups?.[0]?.state === 'stopped' && sa?.inSync === true && sb?.inSync === true;
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nnode-a:\n${(nodeA2 as any).tail()}`);
    }
    const t0 = performance.now();
    const res = await post(b, '/failback?rg=rg1');
    const switchMs = performance.now() - t0;
    expect(res.code, `${res.body}\nnode-a:\n${(nodeA2 as any).tail()}\nnode-b:\n${(nodeB as any).tail()}`).toBe(200);
    console.log(`failback (planned move b → a over the heartbeat channel): ${switchMs.toFixed(0)} ms`);
    expect((await status(a)).resourceGroups.groups[0].state).toBe('serving');
    expect((await status(b)).resourceGroups.groups[0].state).toBe('stopped');
    await until('a write through node a again', 30_000, () => writeBlock(h, 20));
    acked.push(20);
    for (const i of acked) {
      const r = await h.exec('qemu-io', ['-f', 'raw', URL_, '-c', `read -P ${1 + (i % 250)} ${i * BLOCK} ${BLOCK}`], { allowFailure: true, timeoutMs: 15_000 });
      expect(r.stdout, `block ${i} after failback`).not.toMatch(/Pattern verification failed/);
      expect(r.code).toBe(0);
    }
    expect(await naa(h)).toBe(identityBefore);
  });

  it('an owner cut off from both the peer and the witness stops serving; the peer takes over', { timeout: 120_000 }, async () => {
    // Continues from the first test: node a serves rg1 again, node b is standby.
    const a = lan!.station('a').ns;
    const b = lan!.station('b').ns;
    expect((await status(a))?.resourceGroups?.groups?.[0]?.state).toBe('serving');
    const cutAt = performance.now();
    await a.ip('link', 'set', 'eth1', 'down');
    const stoppedOnA = until('rg1 stopped on a', 30_000, async () => (await status(a))?.resourceGroups?.groups?.[0]?.state === 'stopped').then(() => performance.now());
    const servingOnB = until('rg1 serving on b', 30_000, async () => (await status(b))?.resourceGroups?.groups?.[0]?.state === 'serving').then(() => performance.now());
    const [stopped, served] = await Promise.all([stoppedOnA, servingOnB]);
    console.log(`isolation of node a: a stopped serving after ${(stopped - cutAt).toFixed(0)} ms, b serving after ${(served - cutAt).toFixed(0)} ms`);
    expect(await a.ip('-4', 'addr', 'show', 'dev', 'eth1')).not.toContain(ALIAS);
    expect(await b.ip('-4', 'addr', 'show', 'dev', 'eth1')).toContain(ALIAS);
    await a.ip('link', 'set', 'eth1', 'up');
  });
});
