/**
 * No secret in any response or log line: requests that carry the bearer
 * token and CHAP secrets (valid ones, invalid ones, malformed JSON, a
 * failing control, token rotation) while the log is captured at trace.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlError } from '../../../src/resource-groups';
import { harness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const CHAP_SECRET = 'chap-secret-XYZZY-0001';
const MUTUAL_SECRET = 'mutual-secret-PLUGH-02';

describe('secrets stay out of responses and logs', () => {
  it('bearer tokens, CHAP secrets and rotated tokens never appear', async () => {
    const token = h.tokens.current();
    const responses: string[] = [];
    const send = async (method: 'GET' | 'PUT' | 'POST', url: string, payload?: string, headers: Record<string, string> = h.auth) => {
      const res = await h.app.inject({ method, url, headers: { 'content-type': 'application/json', ...headers }, ...(payload === undefined ? {} : { payload }) });
      responses.push(JSON.stringify(res.headers), res.body);
      return res;
    };
    const access = JSON.stringify({ chap: { user: 'esx', secret: CHAP_SECRET }, mutualChap: { user: 'tgt', secret: MUTUAL_SECRET } });

    expect((await send('PUT', '/api/v1/volumes/vol1/access', access)).statusCode).toBe(200);
    expect((await send('GET', '/api/v1/volumes/vol1/access')).statusCode).toBe(200);
    // Schema violation next to a secret, unknown field holding a secret, malformed JSON cut inside a secret.
    expect((await send('PUT', '/api/v1/volumes/vol1/access', JSON.stringify({ chap: { user: 'bad user', secret: CHAP_SECRET } }))).statusCode).toBe(400);
    expect((await send('PUT', '/api/v1/volumes/vol1/access', JSON.stringify({ chap: { user: 'esx', secret: CHAP_SECRET, extra: MUTUAL_SECRET } }))).statusCode).toBe(400);
    expect((await send('PUT', '/api/v1/volumes/vol1/access', `{"chap":{"user":"esx","secret":"${CHAP_SECRET}"`)).statusCode).toBe(400);
    // The control refusing the request, and failing unexpectedly.
    h.control.failNext = new ControlError('invalid', 'CHAP user esx is taken', { field: 'chap.user' });
    expect((await send('PUT', '/api/v1/volumes/vol1/access', access)).statusCode).toBe(400);
    h.control.failNext = new TypeError('cannot read properties of undefined');
    expect((await send('PUT', '/api/v1/volumes/vol1/access', access)).statusCode).toBe(500);
    // Wrong tokens.
    expect((await send('GET', '/api/v1/volumes', undefined, { authorization: `Bearer ${token}x` })).statusCode).toBe(401);
    expect((await send('GET', '/api/v1/volumes', undefined, { authorization: `Basic ${token}` })).statusCode).toBe(401);
    // Rotation answers the new token once (that is its purpose) and logs neither.
    const rotated = await h.app.inject({ method: 'POST', url: '/api/v1/token/rotate', headers: h.auth });
    const fresh = (rotated.json() as { token: string }).token;
    expect((await send('GET', '/api/v1/volumes', undefined, { authorization: `Bearer ${fresh}` })).statusCode).toBe(200);

    // The secrets did reach the control.
    expect(JSON.stringify(h.control.callsTo('updateAccess')[0]?.args)).toContain(CHAP_SECRET);

    const logs = h.logs.join('');
    expect(h.logs.length).toBeGreaterThan(10);
    expect(logs).toContain('"route":"/api/v1/volumes/:name/access"');
    for (const secret of [token, fresh, CHAP_SECRET, MUTUAL_SECRET]) {
      expect(logs).not.toContain(secret);
      for (const body of responses) expect(body).not.toContain(secret);
    }
  });

  it('request log lines carry request id, method, route, status and the subject', async () => {
    await h.app.inject({ method: 'POST', url: '/api/v1/resource-groups/rg-a/move', headers: h.auth });
    await h.app.inject({ method: 'GET', url: '/api/v1/volumes/vol2', headers: h.auth });
    await h.app.inject({ method: 'POST', url: '/api/v1/volumes', headers: h.auth, payload: { name: 'vol7', sizeBytes: 4096, thin: true, resourceGroup: 'rg-a' } });
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'request');
    expect(lines).toEqual([
      expect.objectContaining({ reqId: expect.any(String), method: 'POST', route: '/api/v1/resource-groups/:name/move', statusCode: 200, resourceGroup: 'rg-a', node: 'node-a', component: 'api' }),
      expect.objectContaining({ reqId: expect.any(String), method: 'GET', route: '/api/v1/volumes/:name', statusCode: 200, volume: 'vol2' }),
      expect.objectContaining({ reqId: expect.any(String), method: 'POST', route: '/api/v1/volumes', statusCode: 201, volume: 'vol7' }),
    ]);
    expect(new Set(lines.map((l) => l['reqId'])).size).toBe(3);
  });

  it('the logger redacts an Authorization header or a secret if a line ever carries one', async () => {
    h.app.log.info({ req: { headers: { authorization: `Bearer ${h.tokens.current()}` } }, body: { chap: { user: 'u', secret: CHAP_SECRET } }, token: 'tkn-ABC' }, 'probe');
    const probe = h.logs.find((l) => l.includes('"probe"'))!;
    expect(probe).toContain('[redacted]');
    expect(probe).not.toContain(h.tokens.current());
    expect(probe).not.toContain(CHAP_SECRET);
    expect(probe).not.toContain('tkn-ABC');
  });
});
