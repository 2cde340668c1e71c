/** Each route's happy path over the fake PairControl: status, body, and the call the control received. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { harness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

async function call(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown) {
  const res = await h.app.inject({ method, url, headers: h.auth, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: res.statusCode, body: res.body === '' ? null : (res.json() as unknown), headers: res.headers };
}

describe('health and nodes', () => {
  it('health answers without a token', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', node: 'node-a' });
  });

  it('lists nodes and shows one', async () => {
    const list = await call('GET', '/api/v1/nodes');
    expect(list.status).toBe(200);
    expect((list.body as { id: string }[]).map((n) => n.id)).toEqual(['node-a', 'node-b']);
    const one = await call('GET', '/api/v1/nodes/node-b');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: 'node-b', local: false, owns: ['rg-b'] });
  });

  it('an unknown node id is 404', async () => {
    const res = await call('GET', '/api/v1/nodes/node-z');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ statusCode: 404, error: 'Not Found', field: 'id' });
  });

  it('maintenance enter and exit answer 202 with the job', async () => {
    const enter = await call('POST', '/api/v1/nodes/node-a/maintenance');
    expect(enter.status).toBe(202);
    expect(enter.body).toMatchObject({ kind: 'evacuate', subject: 'node-a', state: 'running' });
    expect(h.control.callsTo('enterMaintenance')[0]?.args).toEqual(['node-a']);
    const exit = await call('DELETE', '/api/v1/nodes/node-a/maintenance');
    expect(exit.status).toBe(202);
    expect(exit.body).toMatchObject({ kind: 'failback', subject: 'node-a' });
    expect(h.control.callsTo('exitMaintenance')[0]?.args).toEqual(['node-a']);
  });
});

describe('pair', () => {
  it('shows the pair', async () => {
    const res = await call('GET', '/api/v1/pair');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: 'paired', local: { id: 'node-a' }, peer: { id: 'node-b' }, configVersion: 7 });
  });

  it('forms the pair with 201', async () => {
    h.control.paired = false;
    const res = await call('POST', '/api/v1/pair', { peerApi: 'https://198.18.0.2:8443' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ state: 'paired' });
    expect(h.control.callsTo('createPair')[0]?.args).toEqual([{ peerApi: 'https://198.18.0.2:8443' }]);
  });
});

describe('volumes', () => {
  it('lists, creates (201), shows, resizes and deletes (204)', async () => {
    const list = await call('GET', '/api/v1/volumes');
    expect((list.body as { name: string }[]).map((v) => v.name)).toEqual(['vol1', 'vol2']);

    const created = await call('POST', '/api/v1/volumes', { name: 'vol3', sizeBytes: 1 << 20, thin: true, resourceGroup: 'rg-a', blockSize: 4096, iqn: 'iqn.2026-11.io.twinsan:v3' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'vol3', sizeBytes: 1 << 20, blockSize: 4096, iqn: 'iqn.2026-11.io.twinsan:v3', owner: 'node-a', mirror: { state: 'in-sync' } });
    expect(h.control.callsTo('createVolume')[0]?.args[0]).toEqual({ name: 'vol3', sizeBytes: 1 << 20, thin: true, resourceGroup: 'rg-a', blockSize: 4096, iqn: 'iqn.2026-11.io.twinsan:v3' });

    const standalone = await call('POST', '/api/v1/volumes', { name: 'solo', sizeBytes: 4096, thin: false, owner: 'node-b' });
    expect(standalone.status).toBe(201);
    expect(standalone.body).toMatchObject({ name: 'solo', resourceGroup: null, owner: 'node-b' });
    const ownerless = await call('POST', '/api/v1/volumes', { name: 'lost', sizeBytes: 4096, thin: false });
    expect(ownerless.status).toBe(400);
    expect(ownerless.body).toMatchObject({ field: 'owner' });

    const shown = await call('GET', '/api/v1/volumes/vol2');
    expect(shown.body).toMatchObject({ name: 'vol2', mirror: { state: 'resyncing', resyncProgress: 0.25, syncSource: 'node-b' } });

    const resized = await call('PATCH', '/api/v1/volumes/vol3', { sizeBytes: 2 << 20 });
    expect(resized.status).toBe(200);
    expect(resized.body).toMatchObject({ sizeBytes: 2 << 20 });
    expect(h.control.callsTo('updateVolume')[0]?.args).toEqual(['vol3', { sizeBytes: 2 << 20 }]);

    const deleted = await call('DELETE', '/api/v1/volumes/vol3');
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBeNull();
    expect(h.control.callsTo('deleteVolume')[0]?.args).toEqual(['vol3', { force: false }]);
  });

  it('delete of a volume in use is 412 unless force=true', async () => {
    const refused = await call('DELETE', '/api/v1/volumes/vol1');
    expect(refused.status).toBe(412);
    expect(refused.body).toMatchObject({ error: 'Precondition Failed', message: expect.stringContaining('logged in') });
    const forced = await call('DELETE', '/api/v1/volumes/vol1?force=true');
    expect(forced.status).toBe(204);
    expect(h.control.callsTo('deleteVolume')[1]?.args).toEqual(['vol1', { force: true }]);
  });

  it('access: shows and sets ACL and CHAP, never answering the secret', async () => {
    const before = await call('GET', '/api/v1/volumes/vol1/access');
    expect(before.body).toEqual({ volume: 'vol1', allowedInitiators: null, chap: null, mutualChap: null });
    const set = await call('PUT', '/api/v1/volumes/vol1/access', {
      allowedInitiators: ['iqn.1998-01.com.vmware:esx-01'],
      chap: { user: 'esx', secret: 'target-secret-0001' },
      mutualChap: { user: 'tgt', secret: 'mutual-secret-0002' },
    });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({
      volume: 'vol1',
      allowedInitiators: ['iqn.1998-01.com.vmware:esx-01'],
      chap: { user: 'esx', secretSet: true },
      mutualChap: { user: 'tgt', secretSet: true },
    });
    expect(h.control.callsTo('updateAccess')[0]?.args[1]).toMatchObject({ chap: { user: 'esx', secret: 'target-secret-0001' } });
  });

  it('verify answers 202 with the job, with or without a body', async () => {
    const bare = await call('POST', '/api/v1/volumes/vol1/verify');
    expect(bare.status).toBe(202);
    expect(bare.body).toMatchObject({ kind: 'verify', subject: 'vol1' });
    const withBody = await call('POST', '/api/v1/volumes/vol1/verify', { repair: true, algorithm: 'crc32c' });
    expect(withBody.status).toBe(202);
    expect(h.control.callsTo('verify').map((c) => c.args)).toEqual([['vol1', {}], ['vol1', { repair: true, algorithm: 'crc32c' }]]);
  });
});

describe('resource groups', () => {
  it('lists, creates (201), shows, updates and deletes (204)', async () => {
    const list = await call('GET', '/api/v1/resource-groups');
    expect(list.body).toEqual([
      { name: 'rg-a', owner: 'node-a', preferredNode: 'node-a', aliasIps: [{ address: '198.18.0.50', prefix: 24, interface: 'eth1' }], volumes: ['vol1'], state: 'serving', failback: 'auto' },
      { name: 'rg-b', owner: 'node-b', preferredNode: 'node-b', aliasIps: [{ address: '198.18.0.51', prefix: 24, interface: 'eth1' }], volumes: ['vol2'], state: 'serving', failback: 'manual' },
    ]);
    const created = await call('POST', '/api/v1/resource-groups', { name: 'rg-c', preferredNode: 'node-b', aliasIps: [{ address: 'fd00::5', prefix: 64, interface: 'eth2' }], failback: 'manual' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'rg-c', owner: 'node-b', aliasIps: [{ address: 'fd00::5', prefix: 64, interface: 'eth2' }] });
    const shown = await call('GET', '/api/v1/resource-groups/rg-c');
    expect(shown.body).toMatchObject({ name: 'rg-c', failback: 'manual' });
    const updated = await call('PATCH', '/api/v1/resource-groups/rg-c', { failback: 'auto' });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ failback: 'auto' });
    expect(h.control.callsTo('updateResourceGroup')[0]?.args).toEqual(['rg-c', { failback: 'auto' }]);
    const deleted = await call('DELETE', '/api/v1/resource-groups/rg-c');
    expect(deleted.status).toBe(204);
  });

  it('move and failback answer the group with its new owner', async () => {
    const moved = await call('POST', '/api/v1/resource-groups/rg-a/move');
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ name: 'rg-a', owner: 'node-b' });
    const back = await call('POST', '/api/v1/resource-groups/rg-a/failback', {});
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ name: 'rg-a', owner: 'node-a' });
    expect(h.control.calls.filter((c) => c.method === 'moveResourceGroup' || c.method === 'failbackResourceGroup')).toEqual([
      { method: 'moveResourceGroup', args: ['rg-a'] },
      { method: 'failbackResourceGroup', args: ['rg-a'] },
    ]);
  });
});

describe('sessions, jobs, events', () => {
  it('lists sessions', async () => {
    const res = await call('GET', '/api/v1/sessions');
    expect(res.body).toEqual(h.control.sessionList);
  });

  it('lists jobs and shows one; an unknown job is 404', async () => {
    await call('POST', '/api/v1/volumes/vol1/verify');
    const jobs = await call('GET', '/api/v1/jobs');
    expect((jobs.body as { id: string }[]).map((j) => j.id)).toEqual(['job-1']);
    const job = await call('GET', '/api/v1/jobs/job-1');
    expect(job.body).toMatchObject({ id: 'job-1', kind: 'verify' });
    const missing = await call('GET', '/api/v1/jobs/job-99');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ message: 'no job job-99' });
  });

  it('pages events with after and limit (defaults 0 and 100)', async () => {
    for (let i = 0; i < 5; i++) h.control.emit('test', `event ${i}`);
    const page = await call('GET', '/api/v1/events?after=2&limit=2');
    expect((page.body as { seq: number }[]).map((e) => e.seq)).toEqual([3, 4]);
    await call('GET', '/api/v1/events');
    expect(h.control.callsTo('events').map((c) => c.args)).toEqual([[2, 2], [0, 100]]);
  });
});

describe('token rotation', () => {
  it('answers the new token once; the old one stops working and the new one works', async () => {
    const old = h.auth;
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/token/rotate', headers: old });
    expect(res.statusCode).toBe(200);
    const { token } = res.json() as { token: string };
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(`Bearer ${token}`).not.toBe(old.authorization);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/nodes', headers: old })).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/nodes', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
  });
});
