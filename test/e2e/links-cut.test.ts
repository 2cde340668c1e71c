/**
 * Both replication links cut while both nodes live and the witness is
 * reachable. Two `twinsan node` processes in lab namespaces, a redis-server
 * witness and the initiator in a third (198.18.0.0/15 only); needs root,
 * qemu-io, iscsi-inq, iscsi-ls, redis-server and a fresh build.
 *
 *   front end (bridge, eth1)            replication (veth pairs a ↔ b)
 *   a 198.18.0.1   node-a, rg-a 198.18.0.50     r1 198.18.1.1 ↔ 198.18.1.2
 *   b 198.18.0.2   node-b, rg-b 198.18.0.51     r2 198.18.2.1 ↔ 198.18.2.2
 *   h 198.18.0.3   initiator, witness :6379
 *
 * Two writers keep writing stamped 64 KiB blocks through each RG's alias IP
 * while a sampler probes both node namespaces: is the alias there, and does
 * the node's target answer INQUIRY through it (from inside that namespace,
 * so only a local listener can answer). Every sample must find at most one
 * node holding each alias and at most one serving each RG; how long no node
 * served is printed. The links are then healed; once both copies are in
 * sync, every acknowledged block reads back and the two backing files of
 * each volume are identical.
 *
 * Run twice: with the front-end heartbeat alive (each node sees the other
 * on the front end only), and with the front end also cut between the two
 * nodes (each sees the other nowhere; both still reach the witness). In both
 * the owner keeps serving on its lease and writes alone (the mirror
 * degrades); the other node does not take over while the owner holds the
 * lease (src/resource-groups/witness/README.md "Replication links cut").
 *
 * Then, with everything between the nodes cut, node a (writing alone) is
 * killed: node b must not serve its copy, which lacks those writes (node a
 * recorded it outdated on the witness); node a returns, resyncs node b and
 * serves again, and every acknowledged block reads back.
 *
 * A last test kills node a and checks where rg-a's target can be reached on
 * node b: only at the alias IP, never at node b's own address.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabProcess, Lan, Namespace, createLan, newRunId, removeStaleNamespaces, requireRoot } from './lab';

const BIN = path.resolve(__dirname, '../../dist/cli/bin.js');
const BLOCK = 64 * 1024;
const SECRET = 'lab secret of twenty-four bytes';
const STATUS = 'http://127.0.0.1:18001';

type NodeName = 'a' | 'b';
const NODES: readonly NodeName[] = ['a', 'b'];

interface Rg {
  readonly name: string;
  readonly preferred: NodeName;
  readonly alias: string;
  readonly volume: string;
  readonly iqn: string;
  readonly url: string;
}

const RGS: readonly Rg[] = [
  { name: 'rg-a', preferred: 'a', alias: '198.18.0.50', volume: 'va', iqn: 'iqn.2026-11.io.twinsan.links:va' },
  { name: 'rg-b', preferred: 'b', alias: '198.18.0.51', volume: 'vb', iqn: 'iqn.2026-11.io.twinsan.links:vb' },
].map((r) => ({ ...r, url: `iscsi://${r.alias}:3260/${r.iqn}/0` }));

const OWN_ADDRESS: Record<NodeName, string> = { a: '198.18.0.1', b: '198.18.0.2' };
const VOLUME_IDS: Record<string, string> = { va: '5a1e0000-1111-4222-8333-444455556601', vb: '5a1e0000-1111-4222-8333-444455556602' };

let lan: Lan | null = null;
let dir = '';
const procs: LabProcess[] = [];
const nodes = new Map<NodeName, { proc: LabProcess; tail: () => string }>();
/** Every log line of each node that mentions an outdated copy. */
const outdatedLog = new Map<NodeName, string[]>([
  ['a', []],
  ['b', []],
]);
/** Every acknowledged block per RG: index → pattern byte of its last acknowledged write. */
const acked = new Map<string, Map<number, number>>(RGS.map((r) => [r.name, new Map()]));
let writeRound = 0;

function nodeConfig(self: NodeName): unknown {
  const me = self === 'a' ? 1 : 2;
  const other = self === 'a' ? 2 : 1;
  return {
    nodeId: `node-${self}`,
    clusterId: 'links-cut-lab',
    dataDir: path.join(dir, self),
    iscsi: { listen: [`198.18.0.${me}:3260`] },
    peer: {
      nodeId: `node-${self === 'a' ? 'b' : 'a'}`,
      secret: SECRET,
      links: [
        { local: `198.18.1.${me}:7001`, peer: `198.18.1.${other}:7001` },
        { local: `198.18.2.${me}:7001`, peer: `198.18.2.${other}:7001` },
      ],
    },
    heartbeat: { local: `198.18.0.${me}:7400`, peer: `198.18.0.${other}:7400`, intervalMs: 200, deadMs: 900 },
    witness: { redis: '198.18.0.3:6379' },
    volumes: RGS.map((r) => ({ id: VOLUME_IDS[r.volume], name: r.volume, iqn: r.iqn, sizeBytes: 64 * 1024 * 1024, thin: true })),
    resourceGroups: RGS.map((r) => ({
      name: r.name,
      preferredNode: `node-${r.preferred}`,
      aliasIps: [{ address: r.alias, prefix: 24, interface: 'eth1' }],
      volumes: [r.volume],
      failback: 'manual',
    })),
    log: { level: 'info' },
    status: { listen: '127.0.0.1:18001' },
  };
}

const ns = (n: NodeName | 'h'): Namespace => lan!.station(n).ns;

/** iscsi-ls's line for the RG's target at its alias (the portal group tag is the serving node's). */
const portalLine = (rg: Rg): RegExp => new RegExp(`Target:${rg.iqn.replace(/\./g, '\\.')} Portal:${rg.alias.replace(/\./g, '\\.')}:3260,\\d+`);

interface NodeStatusView {
  inSync: boolean;
  volumes: { name: string; mirror: { replication?: string } }[];
  resourceGroups: { peer: string; groups: { name: string; state: string }[] } | null;
}

/** The node's status, or null when it does not answer in time (a loaded machine: the caller polls again). */
async function status(n: NodeName): Promise<NodeStatusView | null> {
  const r = await ns(n)
    .exec(process.execPath, ['-e', `fetch('${STATUS}/status').then(r=>r.text()).then(t=>process.stdout.write(t)).catch(()=>process.exit(3))`], {
      allowFailure: true,
      timeoutMs: 10_000,
    })
    .catch(() => null);
  return r !== null && r.code === 0 ? (JSON.parse(r.stdout) as NodeStatusView) : null;
}

const groupState = (s: NodeStatusView | null, rg: string): string | undefined => s?.resourceGroups?.groups.find((g) => g.name === rg)?.state;

async function until<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${logs()}`);
    await sleep(100);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function logs(): string {
  return [...nodes].map(([n, { tail }]) => `---- node-${n} ----\n${tail().slice(-6000)}`).join('\n');
}

function startNode(n: NodeName): void {
  const proc = ns(n).spawn(process.execPath, [BIN, 'node', '--config', path.join(dir, `node-${n}.json`)], `node-${n}`);
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-40000);
    for (const line of d.toString().split('\n')) if (/outdated/.test(line)) outdatedLog.get(n)!.push(line);
  };
  proc.child.stdout!.on('data', keep);
  proc.child.stderr!.on('data', keep);
  procs.push(proc);
  nodes.set(n, { proc, tail: () => tail });
}

/** Which node serves each group, once every group is served by exactly one node and both copies are in sync. */
async function bothReady(what = 'each group served by one node and both copies in sync'): Promise<Record<string, NodeName>> {
  return until(what, 120_000, async () => {
    const st = { a: await status('a'), b: await status('b') };
    if (st.a?.inSync !== true || st.b?.inSync !== true) return null;
    const owners: Record<string, NodeName> = {};
    for (const rg of RGS) {
      const serving = NODES.filter((n) => groupState(st[n], rg.name) === 'serving');
      if (serving.length !== 1) return null;
      owners[rg.name] = serving[0]!;
    }
    return owners;
  });
}

/** One qemu-io write through the RG's alias; true when acknowledged. */
async function writeBlock(rg: Rg, index: number, pattern: number): Promise<boolean> {
  const r = await ns('h')
    .exec('qemu-io', ['-f', 'raw', rg.url, '-c', `write -P ${pattern} ${index * BLOCK} ${BLOCK}`], { allowFailure: true, timeoutMs: 20_000 })
    .catch(() => null);
  return r !== null && r.code === 0 && /wrote \d+\/\d+ bytes/.test(r.stdout);
}

/**
 * Writes blocks 0, 1, 2, ... (wrapping at 256) with a pattern of this round
 * until stopped. A write that is not acknowledged is retried as it was until
 * it is: it may have landed all the same, so only a later acknowledged write
 * of the block says what it holds. One still unacknowledged at the stop
 * leaves its block out of the check.
 */
function startWriter(rg: Rg): { stop(): Promise<{ ok: number; failed: number; longestPauseMs: number }> } {
  let stopped = false;
  const round = ++writeRound;
  const blocks = acked.get(rg.name)!;
  const run = (async () => {
    let ok = 0;
    let failed = 0;
    let last = performance.now();
    let longestPauseMs = 0;
    for (let i = 0; !stopped; i++) {
      const index = i % 256;
      const pattern = 1 + ((round * 37 + i) % 250);
      for (;;) {
        if (await writeBlock(rg, index, pattern)) {
          blocks.set(index, pattern);
          ok++;
          const now = performance.now();
          longestPauseMs = Math.max(longestPauseMs, now - last);
          last = now;
          break;
        }
        failed++;
        if (stopped) {
          blocks.delete(index);
          break;
        }
        await sleep(100);
      }
    }
    return { ok, failed, longestPauseMs };
  })();
  return {
    stop: async () => {
      stopped = true;
      return run;
    },
  };
}

interface Sample {
  readonly at: number;
  /** Per RG: which nodes hold the alias, and which answer INQUIRY through it. */
  readonly alias: Record<string, NodeName[]>;
  readonly serving: Record<string, NodeName[]>;
}

/**
 * Does node n answer for rg through the alias, from inside its own namespace
 * (local delivery only when the alias is there)? Null when `ip` itself
 * failed: that sample says nothing.
 */
async function probe(n: NodeName, rg: Rg): Promise<{ alias: boolean; serving: boolean } | null> {
  const addrs = await ns(n)
    .ip('-4', '-o', 'addr', 'show', 'dev', 'eth1')
    .catch(() => null);
  if (addrs === null) return null;
  const alias = new RegExp(`inet ${rg.alias.replace(/\./g, '\\.')}/`).test(addrs);
  if (!alias) return { alias, serving: false };
  const r = await ns(n).exec('iscsi-inq', [rg.url], { allowFailure: true, timeoutMs: 10_000 }).catch(() => null);
  return { alias, serving: r !== null && r.code === 0 && /Vendor|Product|Peripheral/i.test(r.stdout) };
}

function startSampler(): { stop(): Promise<Sample[]> } {
  let stopped = false;
  const samples: Sample[] = [];
  const run = (async () => {
    while (!stopped) {
      const at = performance.now();
      const alias: Record<string, NodeName[]> = {};
      const serving: Record<string, NodeName[]> = {};
      let complete = true;
      await Promise.all(
        RGS.map(async (rg) => {
          const results = await Promise.all(NODES.map(async (n) => [n, await probe(n, rg)] as const));
          if (results.some(([, p]) => p === null)) complete = false;
          alias[rg.name] = results.filter(([, p]) => p?.alias).map(([n]) => n);
          serving[rg.name] = results.filter(([, p]) => p?.serving).map(([n]) => n);
        }),
      );
      if (complete) samples.push({ at, alias, serving });
    }
    return samples;
  })();
  return {
    stop: async () => {
      stopped = true;
      return run;
    },
  };
}

/** The longest and the total time no node served the RG, between consecutive samples. */
function noneServing(samples: readonly Sample[], rg: string): { longestMs: number; totalMs: number; samples: number } {
  let longest = 0;
  let total = 0;
  let count = 0;
  let since: number | null = null;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    if (s.serving[rg]!.length === 0) {
      count++;
      since ??= s.at;
    } else if (since !== null) {
      longest = Math.max(longest, s.at - since);
      total += s.at - since;
      since = null;
    }
  }
  if (since !== null) {
    const end = samples[samples.length - 1]!.at;
    longest = Math.max(longest, end - since);
    total += end - since;
  }
  return { longestMs: longest, totalMs: total, samples: count };
}

async function cutReplication(): Promise<void> {
  // Node a's end of each veth down takes the carrier of node b's end with it.
  await ns('a').ip('link', 'set', 'r1', 'down');
  await ns('a').ip('link', 'set', 'r2', 'down');
}

async function healReplication(): Promise<void> {
  await ns('a').ip('link', 'set', 'r1', 'up');
  await ns('a').ip('link', 'set', 'r2', 'up');
}

/** Each node drops what it would send to the other's own address; both still reach the witness and the initiator. */
async function cutFrontEnd(): Promise<void> {
  await ns('a').ip('route', 'add', 'blackhole', `${OWN_ADDRESS.b}/32`);
  await ns('b').ip('route', 'add', 'blackhole', `${OWN_ADDRESS.a}/32`);
}

async function healFrontEnd(): Promise<void> {
  await ns('a').ip('route', 'del', 'blackhole', `${OWN_ADDRESS.b}/32`);
  await ns('b').ip('route', 'del', 'blackhole', `${OWN_ADDRESS.a}/32`);
}

async function verifyAcked(when: string): Promise<void> {
  for (const rg of RGS) {
    const blocks = acked.get(rg.name)!;
    expect(blocks.size, `${rg.name}: acknowledged blocks`).toBeGreaterThan(0);
    for (const [index, pattern] of blocks) {
      const r = await ns('h').exec('qemu-io', ['-f', 'raw', rg.url, '-c', `read -P ${pattern} ${index * BLOCK} ${BLOCK}`], { allowFailure: true, timeoutMs: 20_000 });
      expect(r.stdout, `${rg.name} block ${index} ${when}`).not.toMatch(/Pattern verification failed/);
      expect(r.code, `${rg.name} block ${index} ${when}: ${r.stderr}`).toBe(0);
    }
  }
}

/** Both copies of every volume byte for byte (writers stopped, both in sync). */
async function compareBackingFiles(): Promise<void> {
  for (const rg of RGS) {
    const [ca, cb] = await Promise.all(NODES.map((n) => readFile(path.join(dir, n, `${rg.volume}.img`))));
    expect(ca!.length, `${rg.volume} sizes`).toBe(cb!.length);
    expect(ca!.equals(cb!), `${rg.volume}: the two copies differ`).toBe(true);
  }
}

/**
 * The scenario both variants share; `cut`/`heal` decide which paths go.
 * Each group is expected to stay with the node serving it at the cut (it
 * holds the lease); on a loaded machine a missed lease renewal together with
 * a late heartbeat may still make an owner fence itself (W-own-alone) and
 * serve again later, so what is asserted is the safety property: never two
 * nodes at once, and no acknowledged write lost or diverged.
 */
async function linksCut(label: string, cut: () => Promise<void>, heal: () => Promise<void>): Promise<void> {
  const owners = await bothReady();
  const writers = RGS.map((rg) => startWriter(rg));
  const sampler = startSampler();
  let cutAt = 0;
  let healAt = 0;
  let cutStatus: Record<NodeName, NodeStatusView | null> = { a: null, b: null };
  let written: Awaited<ReturnType<ReturnType<typeof startWriter>['stop']>>[] = [];
  let samples: Sample[] = [];
  let cutDone = false;
  let healed = false;
  try {
    await sleep(2000);
    cutAt = performance.now();
    cutDone = true;
    await cut();
    // Long enough for the mirror to degrade, the peer to be declared dead where it is, several lease renewals.
    await sleep(3000);
    cutStatus = { a: await status('a'), b: await status('b') };
    await sleep(5000);
    healAt = performance.now();
    healed = true;
    await heal();
    await sleep(2000);
  } finally {
    if (cutDone && !healed) await heal().catch(() => undefined);
    // Stopped whatever happened: a writer left running would change blocks under the next check.
    written = await Promise.all(writers.map((w) => w.stop()));
    samples = await sampler.stop();
  }
  const after = await bothReady(`${label}: each group served by one node and both copies in sync after the heal`);

  const during = samples.filter((s) => s.at >= cutAt && s.at <= healAt);
  const replication = (n: NodeName): string => cutStatus[n]?.volumes.map((v) => `${v.name}=${v.mirror.replication}`).join(',') ?? '?';
  console.log(
    `${label}: ${samples.length} samples (${during.length} while cut); 3 s after the cut node a saw the peer ${cutStatus.a?.resourceGroups?.peer}, node b ${cutStatus.b?.resourceGroups?.peer}; ` +
      `mirror a:${replication('a')} b:${replication('b')}; ` +
      RGS.map((rg, i) => {
        const none = noneServing(samples, rg.name);
        const servers = [...new Set(samples.flatMap((s) => s.serving[rg.name]!))].join('+');
        return (
          `${rg.name} (owner ${owners[rg.name]} before, ${after[rg.name]} after; served by ${servers || 'nobody'}): ${written[i]!.ok} writes acknowledged ` +
          `(longest gap between two ${written[i]!.longestPauseMs.toFixed(0)} ms), ${written[i]!.failed} failed, ` +
          `no node serving in ${none.samples} samples (longest ${none.longestMs.toFixed(0)} ms, total ${none.totalMs.toFixed(0)} ms)`
        );
      }).join('; '),
  );
  expect(during.length).toBeGreaterThan(0);
  for (const s of samples) {
    for (const rg of RGS) {
      expect(s.alias[rg.name]!.length, `${label}: ${rg.name} alias on ${s.alias[rg.name]!.join('+')} at ${(s.at - cutAt).toFixed(0)} ms`).toBeLessThanOrEqual(1);
      expect(s.serving[rg.name]!.length, `${label}: ${rg.name} served by ${s.serving[rg.name]!.join('+')} at ${(s.at - cutAt).toFixed(0)} ms`).toBeLessThanOrEqual(1);
    }
  }
  // An owner still serving 3 s into the cut wrote alone: its copy is degraded, not replicated.
  for (const rg of RGS) {
    const o = owners[rg.name]!;
    if (groupState(cutStatus[o], rg.name) === 'serving') expect(cutStatus[o]?.volumes.find((v) => v.name === rg.volume)?.mirror.replication).toBe('degraded');
  }
  for (const w of written) expect(w.ok).toBeGreaterThan(0);
  await compareBackingFiles();
  await verifyAcked(`after ${label}`);
}

beforeAll(async () => {
  requireRoot('test/e2e/links-cut.test.ts', ['ip', 'qemu-io', 'iscsi-inq', 'iscsi-ls', 'redis-server', 'redis-cli']);
  if (!existsSync(path.resolve(__dirname, '../../dist/resource-groups/node-groups.js'))) throw new Error('build first: npm run build:ts');
  await removeStaleNamespaces();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tsan-links-'));
  for (const n of NODES) await writeFile(path.join(dir, `node-${n}.json`), JSON.stringify(nodeConfig(n), null, 2));
  const run = newRunId();
  lan = await createLan(run, [
    { name: 'a', ipv4: '198.18.0.1/24' },
    { name: 'b', ipv4: '198.18.0.2/24' },
    { name: 'h', ipv4: '198.18.0.3/24' },
  ]);
  // Two back-to-back replication links, both ends made inside the node namespaces.
  for (const [i, link] of ['r1', 'r2'].entries()) {
    await ns('a').ip('link', 'add', link, 'type', 'veth', 'peer', 'name', link, 'netns', ns('b').name);
    await ns('a').ip('addr', 'add', `198.18.${i + 1}.1/24`, 'dev', link);
    await ns('b').ip('addr', 'add', `198.18.${i + 1}.2/24`, 'dev', link);
    await ns('a').ip('link', 'set', link, 'up');
    await ns('b').ip('link', 'set', link, 'up');
  }
  const redis = ns('h').spawn('redis-server', ['--bind', '198.18.0.3', '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', dir], 'redis');
  procs.push(redis);
  await until('redis', 10_000, async () => (await ns('h').exec('redis-cli', ['-h', '198.18.0.3', 'ping'], { allowFailure: true })).stdout.includes('PONG'));
  for (const n of NODES) startNode(n);
  await until('both groups serving on their preferred nodes', 120_000, async () => {
    const [sa, sb] = [await status('a'), await status('b')];
    return groupState(sa, 'rg-a') === 'serving' && groupState(sb, 'rg-b') === 'serving';
  });
}, 180_000);

afterAll(async () => {
  for (const p of procs) await p.stop(2000).catch(() => undefined);
  await lan?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('replication links cut, witness reachable', () => {
  it('RG targets are reachable only through their alias IPs', { timeout: 150_000 }, async () => {
    const owners = await bothReady();
    for (const rg of RGS) {
      const owner = owners[rg.name]!;
      const other = NODES.find((n) => n !== owner)!;
      const listed = await ns('h').exec('iscsi-ls', [`iscsi://${rg.alias}:3260`], { timeoutMs: 15_000 });
      expect(listed.stdout).toMatch(portalLine(rg));
      for (const o of RGS.filter((x) => x !== rg)) expect(listed.stdout).not.toContain(o.iqn);
      for (const n of [owner, other]) {
        const atNode = await ns('h').exec('iscsi-ls', [`iscsi://${OWN_ADDRESS[n]}:3260`], { allowFailure: true, timeoutMs: 15_000 });
        expect(atNode.stdout, `SendTargets at node-${n}'s own address`).not.toContain(rg.iqn);
      }
      const login = await ns('h').exec('iscsi-inq', [`iscsi://${OWN_ADDRESS[owner]}:3260/${rg.iqn}/0`], { allowFailure: true, timeoutMs: 15_000 });
      expect(login.code, `login to ${rg.iqn} at node-${owner}'s own address`).not.toBe(0);
      expect(`${login.stdout}${login.stderr}`).toMatch(/not found|0x0203|TARGET_NOT_FOUND|failed to log ?in/i);
    }
  });

  it('front-end heartbeat alive: each owner keeps its group and writes alone; never two servers; copies identical after the heal', { timeout: 300_000 }, async () => {
    await linksCut('links cut, front end up', cutReplication, healReplication);
  });

  it('front end cut between the nodes too, witness reachable from both: the lease holders keep serving; never two servers', { timeout: 300_000 }, async () => {
    await linksCut(
      'links and front end cut',
      async () => {
        await cutFrontEnd();
        await cutReplication();
      },
      async () => {
        await healReplication();
        await healFrontEnd();
      },
    );
  });

  it('everything between the nodes cut, then the owner dies: the standby does not serve its outdated copy; the owner returns and nothing is lost', { timeout: 300_000 }, async () => {
    const owners = await bothReady();
    const rg = RGS.find((r) => owners[r.name] === 'a') ?? RGS[0]!;
    if (owners[rg.name] !== 'a') throw new Error(`no group served by node a to kill it under (${JSON.stringify(owners)})`);
    const writers = RGS.map((r) => startWriter(r));
    const sampler = startSampler();
    let killedAt = 0;
    let samples: Sample[] = [];
    let bState: string | undefined;
    try {
      await sleep(2000);
      await cutFrontEnd();
      await cutReplication();
      await sleep(3000); // node a writes alone and has recorded node b's copy as outdated on the witness
      const a = nodes.get('a')!;
      killedAt = performance.now();
      a.proc.child.kill('SIGKILL');
      await a.proc.exited;
      // Well past node a's lease (1 s) and node b's dead time (0.9 s): b would have taken over by now.
      await sleep(6000);
      bState = groupState(await status('b'), rg.name);
    } finally {
      await healReplication().catch(() => undefined);
      await healFrontEnd().catch(() => undefined);
    }
    try {
      startNode('a');
      await until(`${rg.name} serving on node a again`, 120_000, async () => groupState(await status('a'), rg.name) === 'serving');
      await sleep(1000);
    } finally {
      await Promise.all(writers.map((w) => w.stop()));
      samples = await sampler.stop();
    }
    const afterKill = samples.filter((x) => x.at > killedAt);
    const none = noneServing(afterKill, rg.name);
    console.log(
      `owner killed while cut off: ${rg.name} served by ${[...new Set(afterKill.flatMap((x) => x.serving[rg.name]!))].join('+') || 'nobody'} after the kill, ` +
        `node b's state 6 s after the kill: ${bState}; no node serving for ${none.totalMs.toFixed(0)} ms (until node a was back and had resynced node b)\n` +
        `node a: ${outdatedLog.get('a')!.slice(0, 1).join('')}\nnode b: ${outdatedLog.get('b')!.slice(0, 1).join('')}`,
    );
    expect(bState).toBe('stopped');
    // Node b tried (it had the lease) and refused because of the record, not for another reason.
    expect(outdatedLog.get('b')!.some((l) => l.includes("records this node's copy as outdated"))).toBe(true);
    for (const x of afterKill) expect(x.serving[rg.name]!.filter((n) => n === 'b'), `${rg.name} served by node b at ${(x.at - killedAt).toFixed(0)} ms after the kill`).toEqual([]);
    for (const x of samples) for (const r of RGS) expect(x.serving[r.name]!.length).toBeLessThanOrEqual(1);
    await bothReady('both copies in sync after node a returned');
    await compareBackingFiles();
    await verifyAcked('after the owner returned');
  });

  it('after node a is killed, rg-a on node b is reachable at its alias and refused at node b\'s own address', { timeout: 120_000 }, async () => {
    const rg = RGS[0]!;
    const a = nodes.get('a')!;
    a.proc.child.kill('SIGKILL');
    await a.proc.exited;
    await until('rg-a serving on b', 30_000, async () => groupState(await status('b'), 'rg-a') === 'serving');
    await until('a write to rg-a through b', 30_000, () => writeBlock(rg, 300, 77));
    acked.get(rg.name)!.set(300, 77);
    const listed = await ns('h').exec('iscsi-ls', [`iscsi://${rg.alias}:3260`], { timeoutMs: 15_000 });
    expect(listed.stdout).toMatch(portalLine(rg));
    expect(listed.stdout).not.toContain(RGS[1]!.iqn);
    const atB = await ns('h').exec('iscsi-ls', [`iscsi://${OWN_ADDRESS.b}:3260`], { allowFailure: true, timeoutMs: 15_000 });
    expect(atB.stdout).not.toContain(rg.iqn);
    const login = await ns('h').exec('iscsi-inq', [`iscsi://${OWN_ADDRESS.b}:3260/${rg.iqn}/0`], { allowFailure: true, timeoutMs: 15_000 });
    expect(login.code).not.toBe(0);
    await verifyAcked('after the takeover');
  });
});
