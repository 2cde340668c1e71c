/**
 * Maintenance through the REST API in the one-machine lab (`twinsan lab
 * up`, its own prefix per run). A stamped-write workload
 * (lab/stamped-load.mjs: 4 writers of 4 KiB WRITE (10)s through one
 * session, retrying the same bytes on BUSY, UNIT ATTENTION, NOT READY and
 * reconnects) runs in the client namespace through rg-a's alias IP while
 * POST /api/v1/nodes/<rg-a's owner>/maintenance evacuates that node: rg-a
 * moves to the peer. DELETE of the maintenance then fails rg-a back to its
 * preferred node once resynced. No write may fail and every acknowledged
 * write must read back; the longest I/O pause of each move is printed,
 * never asserted.
 *
 * Needs root, a fresh build (npm run build:ts) and redis-server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiledModule, newRunId, removeStaleNamespaces, requireRoot } from './lab';
import { GroupView, JobView, LabRestApi, LoadResult, NodeView, StampedLoad, describeLoad } from './lab/rest-api';
import { LabHandle, until } from './lab/twinsan-lab';

let work = '';
let handle: LabHandle | null = null;
let api: LabRestApi | null = null;
let load: StampedLoad | null = null;

beforeAll(async () => {
  requireRoot('test/e2e/maintenance.test.ts', ['ip', 'redis-server']);
  compiledModule('cli/lab');
  compiledModule('api');
  await removeStaleNamespaces();
  work = await mkdtemp(path.join(tmpdir(), 'tsan-maint-'));
  handle = await LabHandle.up(path.join(work, 'lab'), `tsan-${newRunId()}`);
  api = LabRestApi.open(handle.lab);
}, 240_000);

afterAll(async () => {
  await load?.kill().catch(() => undefined);
  await api?.close().catch(() => undefined);
  await handle?.down();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);


/** rg-a as node `via` reports it. */
const group = (via: string, name: string): Promise<GroupView> => api!.get<GroupView>(via, `/resource-groups/${name}`);

describe('maintenance under load', () => {
  it('evacuates rg-a from its owner to the peer under stamped writes and fails it back on DELETE: no I/O error, no lost write', { timeout: 300_000 }, async () => {
    const lab = handle!;
    const rgA = lab.lab.resourceGroups.find((g) => g.name === 'rg-a')!;
    const before = await group('a', 'rg-a');
    expect(before.state).toBe('serving');
    const owner = before.owner!;
    const peer = lab.other(owner).id;
    expect(owner).toBe(rgA.preferredNode);

    load = new StampedLoad(lab.client(), 'rg-a', rgA.aliasIps[0]!, rgA.targets[0]!.iqn);
    await load.more(300);

    // Enter maintenance, asked of the peer's API: the change applies pair-wide.
    const t0 = performance.now();
    const job = await api!.post<JobView>(peer, `/nodes/${owner}/maintenance`);
    expect(job.kind).toBe('evacuate');
    const evacuated = await api!.waitJob(peer, job.id, 120_000).catch(async (err: Error) => {
      throw new Error(`${err.message}${await handle!.logTails()}`);
    });
    const evacuateMs = performance.now() - t0;
    expect(evacuated.result?.['moved']).toEqual(['rg-a']);
    const moved = await group(owner, 'rg-a');
    expect(moved.owner).toBe(peer);
    expect(moved.state).toBe('serving');
    const nodes = await api!.get<NodeView[]>(owner, '/nodes');
    expect(nodes.find((n) => n.id === owner)).toMatchObject({ maintenance: true, owns: [] });
    expect(await lab.aliasesOn(owner)).not.toContain(rgA.aliasIps[0]);
    expect(await lab.aliasesOn(peer)).toContain(rgA.aliasIps[0]);
    await load.more(300);

    // End maintenance: rg-a goes back to its preferred node once that is in sync.
    const t1 = performance.now();
    const exit = await api!.del<JobView>(owner, `/nodes/${owner}/maintenance`);
    await api!.waitJob(owner, exit.id, 180_000).catch(async (err: Error) => {
      throw new Error(`${err.message}${await handle!.logTails()}`);
    });
    const back = await until('rg-a served by its preferred node again', 120_000, async () => {
      const g = await group(peer, 'rg-a');
      return g.owner === owner && g.state === 'serving' ? g : null;
    });
    const failbackMs = performance.now() - t1;
    expect(back.preferredNode).toBe(owner);
    expect((await api!.get<NodeView[]>(peer, '/nodes')).find((n) => n.id === owner)?.maintenance).toBe(false);
    expect(await lab.aliasesOn(owner)).toContain(rgA.aliasIps[0]);
    expect(await lab.aliasesOn(peer)).not.toContain(rgA.aliasIps[0]);
    await load.more(300);

    const r: LoadResult = await load.finish();
    load = null;
    console.log(
      `maintenance under load (lab ${lab.prefix}):\n  enter maintenance on ${owner} (evacuate job, rg-a ${owner} → ${peer}): ${evacuateMs.toFixed(0)} ms\n` +
        `  end maintenance (rg-a back on ${owner}): ${failbackMs.toFixed(0)} ms\n  ${describeLoad('stamped writes through rg-a', r)}`,
    );
    expect(r.ioErrorCount, JSON.stringify(r.ioErrors)).toBe(0);
    expect('error' in r.verify ? r.verify.error : null).toBeNull();
    const v = r.verify as { checked: number; mismatchCount: number; mismatched: unknown[] };
    expect(v.mismatchCount, JSON.stringify(v.mismatched)).toBe(0);
    expect(v.checked).toBeGreaterThan(0);
    expect(r.acked).toBeGreaterThanOrEqual(v.checked);
  });
});
