/**
 * docs/walkthrough.md, driven through the REST API of a lab pair (`twinsan
 * lab up`, its own prefix per run; the API called from the client
 * namespace with lab.json's tokens):
 *
 *   1. form the pair: POST /pair on node a, pointing it at node b's API;
 *   2. a resource group rg-w with alias IP 198.18.0.103, preferred node a;
 *   3. a volume ds1 in it (POST /volumes), then its access: the client's
 *      initiator name only, CHAP;
 *   4. confirm through node b's API (a change made on a applies pair-wide):
 *      the pair, the group (owner, alias IPs, volumes, serving) and the
 *      volume (owner, mirror in sync, the iscsi:// URL on the alias);
 *   5. a real initiator in the client namespace discovers the target
 *      through the alias (iscsi-ls, SendTargets), logs in with CHAP
 *      (iscsi-inq, qemu-img info) and writes and reads back (qemu-io); a
 *      wrong CHAP secret and another initiator name are refused; the API
 *      lists the session.
 *
 * Also: no token (or a wrong one) is 401; malformed JSON is 400; an
 * invalid field is 400 naming it; the CHAP secret and the API tokens
 * appear in no API answer and in neither node's log file.
 *
 * Needs root, a fresh build (npm run build:ts), redis-server, iscsi-ls,
 * iscsi-inq (libiscsi-bin), qemu-io and qemu-img.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiledModule, newRunId, removeStaleNamespaces, requireRoot } from './lab';
import { GroupView, LabRestApi, VolumeView } from './lab/rest-api';
import { LabHandle, until } from './lab/twinsan-lab';

const GROUP = 'rg-w';
const ALIAS = '198.18.0.103';
const VOLUME = 'ds1';
const SIZE = 64 * 1024 * 1024;
const INITIATOR = 'iqn.2026-11.io.twinsan.lab:walkthrough-client';
const CHAP_USER = 'walk';
/** 15 characters: within the 12..16 ESXi and Windows take. */
const CHAP_SECRET = 'Wq7-zT4pLx9sK2m';

let work = '';
let handle: LabHandle | null = null;
let api: LabRestApi | null = null;

beforeAll(async () => {
  requireRoot('test/e2e/walkthrough.test.ts', ['ip', 'redis-server', 'iscsi-ls', 'iscsi-inq', 'qemu-io', 'qemu-img']);
  compiledModule('cli/lab');
  compiledModule('api');
  await removeStaleNamespaces();
  work = await mkdtemp(path.join(tmpdir(), 'tsan-walk-'));
  handle = await LabHandle.up(path.join(work, 'lab'), `tsan-${newRunId()}`);
  api = LabRestApi.open(handle.lab);
}, 240_000);

afterAll(async () => {
  await api?.close().catch(() => undefined);
  await handle?.down();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);



/** qemu's iSCSI driver options for ds1 through the alias, as this initiator with this CHAP secret. */
const imageOpts = (iqn: string, secret = CHAP_SECRET, initiator = INITIATOR): string =>
  `driver=iscsi,transport=tcp,portal=${ALIAS}:3260,target=${iqn},lun=0,initiator-name=${initiator},user=${CHAP_USER},password=${secret}`;

describe('the StorTrends walkthrough through the REST API', () => {
  it('refuses requests without a valid token (401)', async () => {
    for (const node of ['a', 'b']) {
      const none = await api!.call(node, 'GET', '/pair', { token: null });
      expect(none.status).toBe(401);
      const wrong = await api!.call(node, 'GET', '/volumes', { token: 'x'.repeat(43) });
      expect(wrong.status).toBe(401);
      expect((await api!.call(node, 'POST', '/volumes', { token: null, body: { name: 'nope', sizeBytes: SIZE, thin: true } })).status).toBe(401);
    }
    expect((await api!.call('a', 'GET', '/volumes')).status).toBe(200);
  });

  it('answers malformed JSON and invalid fields with 400 naming the field', async () => {
    const malformed = await api!.call('a', 'POST', '/volumes', { raw: '{"name": "x", "sizeBytes": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.json).toMatchObject({ statusCode: 400 });
    const cases: [string, string, unknown, string][] = [
      ['POST', '/volumes', { name: 'bad1', sizeBytes: 'big', thin: true }, 'sizeBytes'],
      ['POST', '/volumes', { name: 'bad2', sizeBytes: SIZE }, 'thin'],
      ['POST', '/resource-groups', { name: 'rg-bad', preferredNode: 'a', aliasIps: [{ address: 'not-an-ip', prefix: 24, interface: 'eth1' }] }, 'address'],
      ['PUT', '/volumes/va/access', { chap: { user: CHAP_USER, secret: 'short' } }, 'secret'],
    ];
    for (const [method, route, body, field] of cases) {
      const a = await api!.call('a', method, route, { body });
      expect(a.status, `${method} ${route} ${JSON.stringify(body)}: ${a.text}`).toBe(400);
      const answer = a.json as { field?: string; message?: string };
      expect(answer.field, a.text).toContain(field);
      expect(answer.message, a.text).toContain(field);
    }
  });

  it('forms the pair, creates a group and a volume in it, sets its access, and an initiator logs in through the alias IP and does I/O', { timeout: 300_000 }, async () => {
    const lab = handle!;
    const b = lab.node('b');

    // Step 1: the pair, asked of node a, seen by both.
    const pair = await api!.post<{ state: string; local: { id: string }; peer: { id: string; api: string | null } | null; links: { up: boolean }[] }>('a', '/pair', { peerApi: b.api });
    expect(pair.state).toBe('paired');
    expect(pair.peer).toMatchObject({ id: 'b', api: b.api });
    expect(pair.links.length).toBeGreaterThan(0);
    expect(pair.links.every((l) => l.up)).toBe(true);
    const seenByB = await api!.get<{ state: string; local: { id: string }; peer: { id: string } | null }>('b', '/pair');
    expect(seenByB).toMatchObject({ state: 'paired', local: { id: 'b' }, peer: { id: 'a' } });

    // Step 2: the resource group with its alias IP.
    const created = await api!.post<GroupView>('a', '/resource-groups', {
      name: GROUP,
      preferredNode: 'a',
      aliasIps: [{ address: ALIAS, prefix: 24, interface: 'eth1' }],
      failback: 'auto',
    });
    expect(created).toMatchObject({ name: GROUP, preferredNode: 'a', aliasIps: [{ address: ALIAS, prefix: 24, interface: 'eth1' }] });

    // Step 3: the volume in it, then its access.
    const volume = await api!.post<VolumeView>('a', '/volumes', { name: VOLUME, sizeBytes: SIZE, thin: true, resourceGroup: GROUP });
    expect(volume).toMatchObject({ name: VOLUME, sizeBytes: SIZE, resourceGroup: GROUP });
    const access = await api!.put<{ allowedInitiators: string[] | null; chap: { user: string; secretSet: boolean } | null }>('a', `/volumes/${VOLUME}/access`, {
      allowedInitiators: [INITIATOR],
      chap: { user: CHAP_USER, secret: CHAP_SECRET },
    });
    expect(access).toMatchObject({ allowedInitiators: [INITIATOR], chap: { user: CHAP_USER, secretSet: true } });

    // Step 4: confirm, through node b's API.
    const group = await until(`${GROUP} served by node a (as node b reports it)`, 60_000, async () => {
      const g = await api!.get<GroupView>('b', `/resource-groups/${GROUP}`);
      return g.state === 'serving' && g.owner === 'a' ? g : null;
    }).catch(async (err: Error) => {
      const events = await api!.get<unknown[]>('a', '/events');
      throw new Error(`${err.message}\nnode a's events: ${JSON.stringify(events)}${await handle!.logTails()}`);
    });
    expect(group).toMatchObject({ name: GROUP, owner: 'a', preferredNode: 'a', aliasIps: [{ address: ALIAS, prefix: 24, interface: 'eth1' }], volumes: [VOLUME] });
    const shown = await until(`${VOLUME} in sync`, 120_000, async () => {
      const v = await api!.get<VolumeView>('b', `/volumes/${VOLUME}`);
      return v.mirror.state === 'in-sync' ? v : null;
    });
    expect(shown).toMatchObject({ name: VOLUME, owner: 'a', resourceGroup: GROUP, sizeBytes: SIZE });
    const url = `iscsi://${ALIAS}:3260/${shown.iqn}/0`;
    expect(shown.urls).toEqual([url]);
    expect(await handle!.frontAddresses('a')).toContain(ALIAS);
    expect(await handle!.frontAddresses('b')).not.toContain(ALIAS);
    const accessOnB = await api!.get<unknown>('b', `/volumes/${VOLUME}/access`);
    expect(accessOnB).toMatchObject({ allowedInitiators: [INITIATOR], chap: { user: CHAP_USER, secretSet: true } });

    // Step 5: the initiator in the client namespace.
    const client = lab.client();
    const discovery = await client.exec('iscsi-ls', ['-i', INITIATOR, `iscsi://${ALIAS}:3260`], { timeoutMs: 30_000 });
    expect(discovery.stdout).toContain(`Target:${shown.iqn} Portal:${ALIAS}:3260`);
    const inquiry = await client.exec('iscsi-inq', ['-i', INITIATOR, `iscsi://${CHAP_USER}%${CHAP_SECRET}@${ALIAS}:3260/${shown.iqn}/0`], { timeoutMs: 30_000 });
    expect(inquiry.stdout).toContain('Peripheral Device Type:DIRECT_ACCESS');
    const info = await client.exec('qemu-img', ['info', '--image-opts', imageOpts(shown.iqn)], { timeoutMs: 30_000 });
    expect(info.stdout).toContain(`(${SIZE} bytes)`);
    const io = await client.exec(
      'qemu-io',
      ['--image-opts', '-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0xa5 32M 64k', '-c', 'read -P 0x5a 0 1M', '-c', 'read -P 0xa5 32M 64k', imageOpts(shown.iqn)],
      { timeoutMs: 60_000, allowFailure: true },
    );
    expect(io.code, `${io.stdout}${io.stderr}`).toBe(0);
    expect(io.stdout).not.toMatch(/Pattern verification failed|failed/);
    expect(io.stdout.match(/^read \d+\/\d+ bytes/gm)).toHaveLength(2);
    // A wrong secret, and an initiator not on the list, are refused.
    const wrongSecret = await client.exec('qemu-io', ['--image-opts', '-c', 'read 0 4k', imageOpts(shown.iqn, 'Wrong-secret-00')], { timeoutMs: 30_000, allowFailure: true });
    expect(wrongSecret.code, wrongSecret.stdout).not.toBe(0);
    expect(`${wrongSecret.stdout}${wrongSecret.stderr}`).toMatch(/Authentication failure/i);
    const otherInitiator = await client.exec('qemu-io', ['--image-opts', '-c', 'read 0 4k', imageOpts(shown.iqn, CHAP_SECRET, 'iqn.2026-11.io.twinsan.lab:stranger')], {
      timeoutMs: 30_000,
      allowFailure: true,
    });
    expect(otherInitiator.code, otherInitiator.stdout).not.toBe(0);
    expect(`${otherInitiator.stdout}${otherInitiator.stderr}`).toMatch(/Authorization failure/i);

    // While an initiator is logged in, the API lists its session.
    const session = client.spawn('qemu-io', ['--image-opts', imageOpts(shown.iqn)], 'qemu-io session');
    try {
      const sessions = await until('the session in GET /sessions', 30_000, async () => {
        const s = await api!.get<{ node: string; initiator: string; volume: string; portal: string }[]>('b', '/sessions');
        return s.some((x) => x.initiator === INITIATOR) ? s : null;
      });
      expect(sessions.find((x) => x.initiator === INITIATOR)).toMatchObject({ node: 'a', volume: VOLUME, portal: `${ALIAS}:3260` });
    } finally {
      session.child.stdin!.end('quit\n');
      await session.stop(3000);
    }
  });

  it('shows the CHAP secret and the API tokens in no API answer and in neither node log', async () => {
    // Everything the pair knows, once more, so the check covers every reading route.
    for (const node of ['a', 'b']) {
      for (const route of ['/pair', '/nodes', '/volumes', `/volumes/${VOLUME}`, `/volumes/${VOLUME}/access`, '/resource-groups', '/sessions', '/events', '/jobs', '/openapi.json']) {
        await api!.call(node, 'GET', route);
      }
    }
    const secrets = [CHAP_SECRET, ...handle!.lab.nodes.map((n) => n.token!)];
    const answers = api!.answers.join('\n');
    expect(api!.answers.length).toBeGreaterThan(20);
    for (const s of secrets) expect(answers.includes(s), 'a secret in an API answer').toBe(false);
    for (const n of handle!.lab.nodes) {
      const log = await readFile(n.log, 'utf8');
      expect(log.length).toBeGreaterThan(0);
      for (const s of secrets) expect(log.includes(s), `a secret in node ${n.id}'s log`).toBe(false);
    }
  });
});
