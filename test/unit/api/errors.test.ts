/** 401s, 400s naming the field, ControlError mapping and the generic 500. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlError } from '../../../src/resource-groups';
import { CONTROL_ERROR_STATUS } from '../../../src/api';
import { CONTROL_ERROR_CODES } from '../../../src/resource-groups';
import { harness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

describe('authentication', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['no Authorization header', {}, /missing bearer token/],
    ['another scheme', { authorization: 'Basic dXNlcjpwYXNz' }, /Bearer scheme/],
    ['a wrong token', { authorization: 'Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, /invalid bearer token/],
    ['an empty bearer token', { authorization: 'Bearer ' }, /invalid bearer token/],
  ];
  for (const [what, headers, message] of cases) {
    it(`${what}: 401 with WWW-Authenticate`, async () => {
      const res = await h.app.inject({ method: 'GET', url: '/api/v1/volumes', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="twinsan"/);
      expect(res.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized', message: expect.stringMatching(message) });
      expect(h.control.calls).toEqual([]);
    });
  }

  it('every authenticated route refuses a request without a token before calling the control', async () => {
    const routes: [string, string][] = [
      ['GET', '/api/v1/nodes'], ['GET', '/api/v1/nodes/node-a'], ['POST', '/api/v1/nodes/node-a/maintenance'], ['DELETE', '/api/v1/nodes/node-a/maintenance'],
      ['GET', '/api/v1/pair'], ['POST', '/api/v1/pair'], ['GET', '/api/v1/volumes'], ['POST', '/api/v1/volumes'],
      ['GET', '/api/v1/volumes/vol1'], ['PATCH', '/api/v1/volumes/vol1'], ['DELETE', '/api/v1/volumes/vol1'],
      ['GET', '/api/v1/volumes/vol1/access'], ['PUT', '/api/v1/volumes/vol1/access'], ['POST', '/api/v1/volumes/vol1/verify'],
      ['GET', '/api/v1/resource-groups'], ['POST', '/api/v1/resource-groups'], ['GET', '/api/v1/resource-groups/rg-a'],
      ['PATCH', '/api/v1/resource-groups/rg-a'], ['DELETE', '/api/v1/resource-groups/rg-a'], ['POST', '/api/v1/resource-groups/rg-a/move'],
      ['POST', '/api/v1/resource-groups/rg-a/failback'], ['GET', '/api/v1/sessions'], ['GET', '/api/v1/jobs'], ['GET', '/api/v1/jobs/job-1'],
      ['GET', '/api/v1/events'], ['GET', '/api/v1/events/stream'], ['POST', '/api/v1/token/rotate'], ['GET', '/metrics'], ['GET', '/api/v1/nope'],
    ];
    for (const [method, url] of routes) {
      const res = await h.app.inject({ method: method as 'GET', url });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
    }
    expect(h.control.calls).toEqual([]);
  });

  it('the OpenAPI document, Swagger UI and dashboard files need no token', async () => {
    for (const url of ['/api/v1/health', '/api/v1/openapi.json', '/api/v1/docs/', '/api/v1/docs/static/swagger-ui.css', '/dashboard/', '/dashboard/app.js']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
    }
  });
});

describe('bad requests name the field', () => {
  const post = async (url: string, payload: unknown, method: 'POST' | 'PUT' | 'PATCH' = 'POST') => {
    const res = await h.app.inject({ method, url, headers: h.auth, payload: payload as object });
    return { status: res.statusCode, body: res.json() as { statusCode: number; error: string; message: string; field?: string } };
  };
  const volume = { name: 'vol9', sizeBytes: 1048576, thin: true, resourceGroup: 'rg-a' };

  const cases: [string, string, unknown, string, RegExp, ('POST' | 'PUT' | 'PATCH')?][] = [
    ['a string size', '/api/v1/volumes', { ...volume, sizeBytes: '1048576' }, 'sizeBytes', /sizeBytes must be integer/],
    ['a zero size', '/api/v1/volumes', { ...volume, sizeBytes: 0 }, 'sizeBytes', /sizeBytes must be >= 1/],
    ['a missing name', '/api/v1/volumes', { sizeBytes: 1, thin: true, resourceGroup: 'rg-a' }, 'name', /name is required/],
    ['an unknown field', '/api/v1/volumes', { ...volume, colour: 'red' }, 'colour', /colour is not allowed/],
    ['a bad name', '/api/v1/volumes', { ...volume, name: '../etc' }, 'name', /name must be a volume name/],
    ['a bad block size', '/api/v1/volumes', { ...volume, blockSize: 1024 }, 'blockSize', /^body field blockSize must be one of 512, 4096$/],
    ['a bad IQN', '/api/v1/volumes', { ...volume, iqn: 'not an iqn' }, 'iqn', /iqn must be an iSCSI name/],
    ['a bad alias address', '/api/v1/resource-groups', { name: 'rg-x', preferredNode: 'node-a', aliasIps: [{ address: '198.18.0.300', prefix: 24, interface: 'eth1' }] }, 'aliasIps[0].address', /aliasIps\[0\]\.address must be an IPv4 or IPv6 address/],
    ['a missing alias prefix', '/api/v1/resource-groups', { name: 'rg-x', preferredNode: 'node-a', aliasIps: [{ address: '198.18.0.9', interface: 'eth1' }] }, 'aliasIps[0].prefix', /aliasIps\[0\]\.prefix is required/],
    ['no alias IPs', '/api/v1/resource-groups', { name: 'rg-x', preferredNode: 'node-a', aliasIps: [] }, 'aliasIps', /aliasIps must NOT have fewer than 1 items/],
    ['a short CHAP secret', '/api/v1/volumes/vol1/access', { chap: { user: 'u', secret: 'short' } }, 'chap.secret', /chap\.secret must NOT have fewer than 12 characters/, 'PUT'],
    ['a peer API that is no URL', '/api/v1/pair', { peerApi: 'ftp://x' }, 'peerApi', /peerApi must be the peer's API base URL/],
    ['an unknown verify algorithm', '/api/v1/volumes/vol1/verify', { algorithm: 'md5' }, 'algorithm', /^body field algorithm must be one of "sha256", "crc32c"$/],
    ['an empty resize', '/api/v1/volumes/vol1', {}, 'sizeBytes', /sizeBytes is required/, 'PATCH'],
    ['a parameter to move, which takes none', '/api/v1/resource-groups/rg-a/move', { target: 'node-b' }, 'target', /target is not allowed/],
    ['a parameter to maintenance, which takes none', '/api/v1/nodes/node-a/maintenance', { force: true }, 'force', /force is not allowed/],
  ];
  for (const [what, url, payload, field, message, method] of cases) {
    it(`${what}: 400 naming ${field}`, async () => {
      const res = await post(url, payload, method);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringMatching(message), field });
      expect(h.control.calls).toEqual([]);
    });
  }

  it('malformed JSON: 400 that does not quote the body', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/volumes', headers: { ...h.auth, 'content-type': 'application/json' }, payload: '{"name": "vol9", "secret-ish": "abcdef' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ statusCode: 400, error: 'Bad Request', message: 'request body is not valid JSON' });
    expect(res.body).not.toContain('abcdef');
  });

  it('an empty body labelled JSON counts as no body', async () => {
    const headers = { ...h.auth, 'content-type': 'application/json' };
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/resource-groups/rg-b/move', headers })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'DELETE', url: '/api/v1/volumes/vol2', headers })).statusCode).toBe(204);
    const create = await h.app.inject({ method: 'POST', url: '/api/v1/volumes', headers });
    expect(create.statusCode).toBe(400);
    expect(create.json()).toMatchObject({ field: 'name', message: 'body field name is required' });
  });

  it('a body that is not an object: 400', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/volumes', headers: { ...h.auth, 'content-type': 'application/json' }, payload: '[1,2]' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: 'request body must be a JSON object' });
  });

  it('another content type: 415', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/volumes', headers: { ...h.auth, 'content-type': 'application/xml' }, payload: '<v/>' });
    expect(res.statusCode).toBe(415);
  });

  it('query and path parameters are checked too', async () => {
    const limit = await h.app.inject({ method: 'GET', url: '/api/v1/events?limit=5000', headers: h.auth });
    expect(limit.statusCode).toBe(400);
    expect(limit.json()).toMatchObject({ field: 'limit', message: 'query parameter field limit must be a count from 1 to 1000' });
    const force = await h.app.inject({ method: 'DELETE', url: '/api/v1/volumes/vol1?force=yes', headers: h.auth });
    expect(force.json()).toMatchObject({ statusCode: 400, field: 'force' });
    const unknown = await h.app.inject({ method: 'GET', url: '/api/v1/events?colour=red', headers: h.auth });
    expect(unknown.json()).toMatchObject({ statusCode: 400, field: 'colour' });
    const name = await h.app.inject({ method: 'GET', url: '/api/v1/volumes/-bad', headers: h.auth });
    expect(name.json()).toMatchObject({ statusCode: 400, field: 'name', message: expect.stringMatching(/^path parameter field name must be a volume name/) });
  });
});

describe('control errors', () => {
  for (const code of CONTROL_ERROR_CODES) {
    it(`${code} → ${CONTROL_ERROR_STATUS[code]} with its message and field`, async () => {
      h.control.failNext = new ControlError(code, `refused: ${code}`, { field: 'resourceGroup' });
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/volumes', headers: h.auth, payload: { name: 'v', sizeBytes: 1, thin: false, resourceGroup: 'rg-a' } });
      expect(res.statusCode).toBe(CONTROL_ERROR_STATUS[code]);
      expect(res.json()).toEqual({ statusCode: CONTROL_ERROR_STATUS[code], error: expect.any(String), message: `refused: ${code}`, field: 'resourceGroup' });
    });
  }

  it('the status table covers exactly the control error codes', () => {
    expect(Object.keys(CONTROL_ERROR_STATUS).sort()).toEqual([...CONTROL_ERROR_CODES].sort());
    expect(Object.values(CONTROL_ERROR_STATUS)).toEqual([400, 404, 409, 412, 503]);
  });

  it('anything else is a generic 500; the details go to the log only', async () => {
    h.control.failNext = new Error('disk on fire at /dev/sdq');
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/volumes', headers: h.auth });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ statusCode: 500, error: 'Internal Server Error', message: expect.stringMatching(/^internal error \(request req-\w+\)/) });
    expect(res.body).not.toContain('disk on fire');
    expect(h.logs.some((line) => line.includes('disk on fire'))).toBe(true);
  });

  it('an unknown route is a 404 in the same shape', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/nope', headers: h.auth });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'no such route: GET /api/v1/nope' });
  });
});

describe('HTTP-layer refusals', () => {
  it('a body with a __proto__ key is refused as invalid JSON', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/pair', headers: { ...h.auth, 'content-type': 'application/json' }, payload: '{"peerApi":"http://x:1","__proto__":{"admin":true}}' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(h.control.calls).toEqual([]);
  });

  it('a body over 64 KiB is 413', async () => {
    const res = await h.app.inject({ method: 'PUT', url: '/api/v1/volumes/vol1/access', headers: h.auth, payload: { allowedInitiators: Array.from({ length: 3000 }, (_, i) => `iqn.2026-11.io.example:host-${i}`) } });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ statusCode: 413, error: 'Payload Too Large', message: 'request body is too large' });
  });

  it('API answers are not cacheable', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/volumes', headers: h.auth });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});
