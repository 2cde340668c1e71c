/**
 * Resource-group changes on a running lab pair (`twinsan lab up`, its own
 * prefix per run), through the REST API from the client namespace, with
 * no node restarted:
 *
 *   1. a group rg-live with alias IP 198.18.0.111 (preferred node a), then
 *      a volume lv1 in it: a real initiator in the client namespace logs in
 *      through the alias and writes and reads back (qemu-io);
 *   2. the alias IP changed to 198.18.0.112 (PATCH): node a holds the new
 *      address only, the initiator reads its data back and writes through
 *      the new address, and the old one no longer answers;
 *   3. a second volume joins the served group in place (node a never
 *      stops the group) and answers through the new address; deleted again;
 *   4. the preferred node changed to b (failback auto): b takes the group
 *      over with its address, lv1's data reads back through it;
 *   5. deleting the group while it has lv1 is refused (412, field volumes);
 *      lv1 deleted, then the group: no address left on either node.
 *
 * Needs root, a fresh build (npx tsc -p .), redis-server and qemu-io.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiledModule, newRunId, removeStaleNamespaces, requireRoot } from './lab';
import { GroupView, LabRestApi, VolumeView } from './lab/rest-api';
import { LabHandle, until } from './lab/twinsan-lab';

const GROUP = 'rg-live';
const OLD = '198.18.0.111';
const NEW = '198.18.0.112';
const VOLUME = 'lv1';
const SIZE = 16 * 1024 * 1024;

let work = '';
let handle: LabHandle | null = null;
let api: LabRestApi | null = null;

beforeAll(async () => {
  requireRoot('test/e2e/rg-live.test.ts', ['ip', 'redis-server', 'qemu-io']);
  compiledModule('cli/lab');
  compiledModule('api');
  await removeStaleNamespaces();
  work = await mkdtemp(path.join(tmpdir(), 'tsan-rglive-'));
  handle = await LabHandle.up(path.join(work, 'lab'), `tsan-${newRunId()}`);
  api = LabRestApi.open(handle.lab);
}, 240_000);

afterAll(async () => {
  await api?.close().catch(() => undefined);
  await handle?.down();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);



/** qemu-io in the client namespace against lv1 through `portal`. */
function qemuIo(portal: string, iqn: string, commands: readonly string[], timeoutMs = 30_000) {
  const opts = `driver=iscsi,transport=tcp,portal=${portal}:3260,target=${iqn},lun=0,initiator-name=iqn.2026-11.io.twinsan.lab:rg-live-client`;
  return handle!.client().exec('qemu-io', ['--image-opts', ...commands.flatMap((c) => ['-c', c]), opts], { timeoutMs, allowFailure: true });
}

/** A TCP connect to `address`:3260 from the client namespace, bounded by 5 s (exit 0: connected). */
function tcpProbe(address: string) {
  return handle!.client().exec('timeout', ['5', 'bash', '-c', `exec 3<>/dev/tcp/${address}/3260`], { timeoutMs: 10_000, allowFailure: true });
}

describe('resource-group changes take effect at once on a running pair', () => {
  it('a new group serves a new volume at its alias IP, a changed alias IP moves the initiator to the new address, and the group is deleted once empty', { timeout: 300_000 }, async () => {
    const created = await api!.post<GroupView>('a', '/resource-groups', {
      name: GROUP,
      preferredNode: 'a',
      aliasIps: [{ address: OLD, prefix: 24, interface: 'eth1' }],
      failback: 'auto',
    });
    expect(created).toMatchObject({ name: GROUP, preferredNode: 'a' });
    const volume = await api!.post<VolumeView>('a', '/volumes', { name: VOLUME, sizeBytes: SIZE, thin: true, resourceGroup: GROUP });
    const t0 = performance.now();
    await until(`${GROUP} served by node a with ${VOLUME}`, 60_000, async () => {
      const g = await api!.get<GroupView>('b', `/resource-groups/${GROUP}`);
      return g.state === 'serving' && g.owner === 'a' && g.volumes.includes(VOLUME) ? g : null;
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nnode a's events: ${JSON.stringify(await api!.get<unknown[]>('a', '/events'))}${await handle!.logTails()}`);
    });
    expect(await handle!.frontAddresses('a')).toContain(OLD);
    expect(await handle!.frontAddresses('b')).not.toContain(OLD);

    // The initiator through the alias: the first login may come while the group restarts with its new volume.
    const first = await until(`qemu-io through ${OLD}`, 60_000, async () => {
      const io = await qemuIo(OLD, volume.iqn, ['write -P 0x3c 0 1M', 'read -P 0x3c 0 1M']);
      return io.code === 0 ? io : null;
    });
    console.log(`rg-live: group and volume created, first I/O through ${OLD} after ${(performance.now() - t0).toFixed(0)} ms`);
    expect(first.stdout).not.toMatch(/Pattern verification failed/);
    expect(first.stdout.match(/^read \d+\/\d+ bytes/gm)).toHaveLength(1);

    // The alias IP changes on the serving node without a restart.
    const t1 = performance.now();
    const patched = await api!.call('b', 'PATCH', `/resource-groups/${GROUP}`, { body: { aliasIps: [{ address: NEW, prefix: 24, interface: 'eth1' }] } });
    expect(patched.status, patched.text).toBe(200);
    const moved = await until(`node a holds ${NEW} and not ${OLD}`, 30_000, async () => {
      const on = await handle!.frontAddresses('a');
      return on.includes(NEW) && !on.includes(OLD) ? on : null;
    });
    expect(moved).toContain(NEW);
    expect(await handle!.frontAddresses('b')).not.toContain(NEW);
    const second = await qemuIo(NEW, volume.iqn, ['read -P 0x3c 0 1M', 'write -P 0xc3 1M 64k', 'read -P 0xc3 1M 64k']);
    console.log(`rg-live: alias IP changed, I/O through ${NEW} done ${(performance.now() - t1).toFixed(0)} ms after the PATCH`);
    expect(second.code, `${second.stdout}${second.stderr}`).toBe(0);
    expect(second.stdout).not.toMatch(/Pattern verification failed/);
    expect(second.stdout.match(/^read \d+\/\d+ bytes/gm)).toHaveLength(2);
    // The old address no longer answers: a TCP connection to its iSCSI port fails (nothing answers ARP
    // for it), where the same probe of the new address connects.
    expect((await tcpProbe(NEW)).code).toBe(0);
    expect((await tcpProbe(OLD)).code).not.toBe(0);
    const events = await api!.get<{ kind: string; message: string }[]>('a', '/events?limit=200');
    expect(JSON.stringify(events)).toContain(`alias IPs ${OLD}/24@eth1 → ${NEW}/24@eth1`);

    // A second volume joins the served group in place: its target is added beside lv1's, the group is
    // not stopped (node a's log has no stop of rg-live), and it answers through the new address.
    const lv2 = await api!.post<VolumeView>('a', '/volumes', { name: 'lv2', sizeBytes: SIZE, thin: true, resourceGroup: GROUP });
    const io2 = await until('qemu-io on lv2 through the new address', 30_000, async () => {
      const io = await qemuIo(NEW, lv2.iqn, ['write -P 0x11 0 64k', 'read -P 0x11 0 64k']);
      return io.code === 0 ? io : null;
    });
    expect(io2.stdout).not.toMatch(/Pattern verification failed/);
    const logA = await readFile(handle!.node('a').log, 'utf8');
    expect(logA).toContain(`resource group ${GROUP}: starting → serving`);
    expect(logA).not.toContain(`resource group ${GROUP}: serving → stopping`);
    expect((await api!.call('a', 'DELETE', `/volumes/lv2`)).status).toBe(204);
    expect((await qemuIo(NEW, volume.iqn, ['read -P 0x3c 0 1M'])).code).toBe(0);

    // A new preferred node (failback auto): the group moves there once in sync, with its address.
    const t2 = performance.now();
    const repointed = await api!.call('a', 'PATCH', `/resource-groups/${GROUP}`, { body: { preferredNode: 'b' } });
    expect(repointed.status, repointed.text).toBe(200);
    await until(`${GROUP} served by node b`, 60_000, async () => {
      const g = await api!.get<GroupView>('a', `/resource-groups/${GROUP}`);
      return g.owner === 'b' && g.state === 'serving' ? g : null;
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}${await handle!.logTails()}`);
    });
    console.log(`rg-live: preferred node a → b, served by b ${(performance.now() - t2).toFixed(0)} ms after the PATCH`);
    expect(await handle!.frontAddresses('b')).toContain(NEW);
    expect(await handle!.frontAddresses('a')).not.toContain(NEW);
    const third = await until('qemu-io on lv1 through node b', 30_000, async () => {
      const io = await qemuIo(NEW, volume.iqn, ['read -P 0x3c 0 1M', 'read -P 0xc3 1M 64k']);
      return io.code === 0 ? io : null;
    });
    expect(third.stdout).not.toMatch(/Pattern verification failed/);

    // Delete: refused while the group holds a volume, then the volume, then the group.
    const refused = await api!.call('a', 'DELETE', `/resource-groups/${GROUP}`);
    expect(refused.status, refused.text).toBe(412);
    expect(refused.json).toMatchObject({ field: 'volumes' });
    const volDel = await api!.call('a', 'DELETE', `/volumes/${VOLUME}`);
    expect(volDel.status, volDel.text).toBe(204);
    const rgDel = await api!.call('b', 'DELETE', `/resource-groups/${GROUP}`);
    expect(rgDel.status, rgDel.text).toBe(204);
    await until(`${NEW} gone from both nodes`, 30_000, async () => {
      const all = [...(await handle!.frontAddresses('a')), ...(await handle!.frontAddresses('b'))];
      return !all.includes(NEW) && !all.includes(OLD);
    });
    expect((await api!.call('a', 'GET', `/resource-groups/${GROUP}`)).status).toBe(404);
    expect((await api!.call('b', 'GET', `/resource-groups/${GROUP}`)).status).toBe(404);
  });
});
