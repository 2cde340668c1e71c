/**
 * A rolling upgrade through the REST API in the one-machine lab (`twinsan
 * lab up`, its own prefix per run), under stamped writes through both
 * resource groups' alias IPs (lab/stamped-load.mjs, one workload per group).
 *
 * The lab starts as "release N": both nodes capped at replication protocol
 * version 1 (TWINSAN_MAX_PROTOCOL_VERSION=1, the node config's
 * peer.maxProtocolVersion). Then, node a then node b: maintenance enter
 * (its groups evacuate to the peer by planned moves), stop (SIGTERM),
 * start again as "release N+1" (no cap: this build's newest version),
 * resync, maintenance exit (its preferred group fails back). Between the
 * two upgrades the pair runs mixed (a speaks up to 2, b up to 1) and the
 * mirror negotiates down to 1; after both, 2. The negotiated version at
 * each stage is read from GET /api/v1/nodes and printed.
 *
 * No write may fail, every acknowledged write must read back; pauses are
 * printed, never asserted. Needs root, a fresh build (npm run build:ts)
 * and redis-server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Namespace as LabNamespace } from '../../src/cli/lab/netns';
import { compiledModule, newRunId, removeStaleNamespaces, requireRoot } from './lab';
import { JobView, LabRestApi, LoadResult, NodeView, StampedLoad, describeLoad } from './lab/rest-api';
import { LabHandle, until } from './lab/twinsan-lab';

const PROTOCOL_ENV = 'TWINSAN_MAX_PROTOCOL_VERSION';
/** The version "release N" speaks at most; "release N+1" is this build, uncapped. */
const OLD_RELEASE_MAX = '1';

let work = '';
let handle: LabHandle | null = null;
let api: LabRestApi | null = null;
const loads: StampedLoad[] = [];

/** Runs `fn` with the protocol cap in the environment the lab CLI (and so the nodes it starts) inherits; null: none. */
async function withProtocolCap<T>(cap: string | null, fn: () => Promise<T>): Promise<T> {
  const saved = process.env[PROTOCOL_ENV];
  if (cap === null) delete process.env[PROTOCOL_ENV];
  else process.env[PROTOCOL_ENV] = cap;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env[PROTOCOL_ENV];
    else process.env[PROTOCOL_ENV] = saved;
  }
}

beforeAll(async () => {
  requireRoot('test/e2e/rolling-upgrade.test.ts', ['ip', 'redis-server']);
  compiledModule('cli/lab');
  compiledModule('api');
  await removeStaleNamespaces();
  work = await mkdtemp(path.join(tmpdir(), 'tsan-upgrade-'));
  handle = await withProtocolCap(OLD_RELEASE_MAX, () => LabHandle.up(path.join(work, 'lab'), `tsan-${newRunId()}`));
  api = LabRestApi.open(handle.lab);
}, 240_000);

afterAll(async () => {
  for (const l of loads) await l.kill().catch(() => undefined);
  await api?.close().catch(() => undefined);
  await handle?.down();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);


/** Node `id` as it reports itself (its own entry of GET /nodes: what it owns, its protocol range and the negotiated version). */
async function self(id: string): Promise<NodeView> {
  const me = (await api!.get<NodeView[]>(id, '/nodes')).find((n) => n.id === id);
  if (!me) throw new Error(`node ${id} does not list itself in GET /nodes`);
  return me;
}

const protocolOf = (n: NodeView): string => (n.protocol ? `${n.id} speaks ${n.protocol.min}..${n.protocol.max}, negotiated ${n.protocol.negotiated}` : `${n.id}: protocol unknown`);

describe('rolling upgrade under load', () => {
  it('upgrades node a then node b (maintenance, stop, start as the newer release, resync, fail back) with both groups under writes: no I/O error, 0 acknowledged writes lost', { timeout: 600_000 }, async () => {
    const lab = handle!;
    const stages: string[] = [];
    const negotiated: (number | null)[] = [];
    const recordStage = async (what: string): Promise<void> => {
      const [a, b] = [await self('a'), await self('b')];
      negotiated.push(a.protocol?.negotiated ?? null);
      expect(a.protocol?.negotiated).toBe(b.protocol?.negotiated);
      stages.push(`${what}: ${protocolOf(a)}; ${protocolOf(b)}`);
    };

    await recordStage('start (both release N)');
    for (const g of lab.lab.resourceGroups) {
      const load = new StampedLoad(lab.client(), g.name, g.aliasIps[0]!, g.targets[0]!.iqn);
      loads.push(load);
    }
    for (const l of loads) await l.more(200);
    // What happened when, on the clock of the first load (its pauses' atMs), to tell which step a pause belongs to.
    const marks: string[] = [];
    const mark = (what: string): void => void marks.push(`${(performance.now() - loads[0]!.spawnedAt).toFixed(0)} ms ${what}`);

    const upgrade = async (id: string): Promise<void> => {
      const peer = lab.other(id).id;
      const preferred = lab.lab.resourceGroups.filter((g) => g.preferredNode === id).map((g) => g.name);
      const t0 = performance.now();
      mark(`POST /nodes/${id}/maintenance`);
      const job = await api!.post<JobView>(id, `/nodes/${id}/maintenance`);
      await api!.waitJob(id, job.id, 120_000).catch(async (err: Error) => {
        throw new Error(`${err.message}${await handle!.logTails()}`);
      });
      expect((await self(id)).owns).toEqual([]);
      expect([...(await self(peer)).owns].sort()).toEqual(lab.lab.resourceGroups.map((g) => g.name).sort());
      const evacuateMs = performance.now() - t0;
      for (const l of loads) await l.more(100);

      // Stop: SIGTERM, the node closes its target and volumes and exits.
      const pid = lab.node(id).pid;
      mark(`SIGTERM to node ${id}`);
      process.kill(pid, 'SIGTERM');
      await until(`node ${id} (pid ${pid}) to stop`, 30_000, async () => !(await LabNamespace.existing(lab.node(id).netns).pids()).includes(pid));
      mark(`node ${id} exited`);
      for (const l of loads) await l.more(100);

      // Start as the newer release and wait for the resync.
      const t1 = performance.now();
      mark(`lab start-node ${id}`);
      await withProtocolCap(null, () => lab.startNode(id));
      mark(`node ${id} running`);
      await until(`node ${id} back in sync`, 180_000, async () => (await lab.view(id))?.inSync === true && (await lab.view(peer))?.inSync === true);
      const resyncMs = performance.now() - t1;
      mark(`both in sync`);
      await recordStage(`node ${id} upgraded and resynced`);

      // Leave maintenance: its preferred group fails back.
      const t2 = performance.now();
      mark(`DELETE /nodes/${id}/maintenance`);
      const exit = await api!.del<JobView>(id, `/nodes/${id}/maintenance`);
      const exitJob = await until(`maintenance exit job ${exit.id}`, 180_000, async () => {
        const j = await api!.get<JobView>(id, `/jobs/${exit.id}`);
        return j.state === 'running' ? null : j;
      });
      // Over a version 1 link (mixed releases) the job asks the peer over the front-end heartbeat, else over pair-rpc.
      const link = (await self(id)).protocol?.negotiated;
      expect(exitJob.state, `${exitJob.error}${await handle!.logTails()}`).toBe('done');
      const owns = (n: NodeView): string => [...n.owns].sort().join(',');
      await until(`node ${id} serving ${preferred.join(', ')} again`, 120_000, async () => owns(await self(id)) === [...preferred].sort().join(','));
      expect(owns(await self(peer))).toBe(lab.lab.resourceGroups.filter((g) => g.preferredNode === peer).map((g) => g.name).sort().join(','));
      expect((await self(id)).maintenance).toBe(false);
      const failbackMs = performance.now() - t2;
      mark(`node ${id} serves ${preferred.join(', ')} again`);
      stages.push(`node ${id}: evacuated in ${evacuateMs.toFixed(0)} ms, back and in sync ${resyncMs.toFixed(0)} ms after start, failed back in ${failbackMs.toFixed(0)} ms by the maintenance exit job (link at protocol ${link})`);
      for (const l of loads) await l.more(200);
    };

    await upgrade('a');
    await upgrade('b');

    const results: [StampedLoad, LoadResult][] = [];
    for (const l of loads) results.push([l, await l.finish()]);
    loads.length = 0;
    console.log(`rolling upgrade under load (lab ${lab.prefix}):\n  ${stages.join('\n  ')}\n  steps: ${marks.join('; ')}\n  ${results.map(([l, r]) => describeLoad(`stamped writes through ${l.label}`, r)).join('\n  ')}`);

    // Release N speaks 1; mixed, the pair runs the older version; both upgraded, the newest.
    expect(negotiated).toEqual([1, 1, 2]);
    for (const [l, r] of results) {
      expect(r.ioErrorCount, `${l.label}: ${JSON.stringify(r.ioErrors)}`).toBe(0);
      expect('error' in r.verify ? r.verify.error : null, l.label).toBeNull();
      const v = r.verify as { checked: number; mismatchCount: number; mismatched: unknown[] };
      expect(v.mismatchCount, `${l.label}: ${JSON.stringify(v.mismatched)}`).toBe(0);
      expect(v.checked).toBeGreaterThan(0);
      expect(r.acked).toBeGreaterThanOrEqual(v.checked);
    }
  });
});
