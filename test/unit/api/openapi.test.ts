/** The OpenAPI document lists every route the app serves, with schemas and the bearer scheme. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, type Harness } from './harness';

interface Operation {
  security?: Record<string, string[]>[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  parameters?: { name: string; in: string }[];
  responses: Record<string, unknown>;
}

let h: Harness;
let doc: { openapi: string; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> } };

/** Every route of the API, as the brief lists them. */
const ROUTES: [string, string][] = [
  ['get', '/api/v1/health'], ['get', '/api/v1/openapi.json'], ['post', '/api/v1/token/rotate'], ['get', '/metrics'],
  ['get', '/api/v1/nodes'], ['get', '/api/v1/nodes/{id}'], ['post', '/api/v1/nodes/{id}/maintenance'], ['delete', '/api/v1/nodes/{id}/maintenance'],
  ['get', '/api/v1/pair'], ['post', '/api/v1/pair'],
  ['get', '/api/v1/volumes'], ['post', '/api/v1/volumes'], ['get', '/api/v1/volumes/{name}'], ['patch', '/api/v1/volumes/{name}'], ['delete', '/api/v1/volumes/{name}'],
  ['get', '/api/v1/volumes/{name}/access'], ['put', '/api/v1/volumes/{name}/access'], ['post', '/api/v1/volumes/{name}/verify'],
  ['get', '/api/v1/resource-groups'], ['post', '/api/v1/resource-groups'], ['get', '/api/v1/resource-groups/{name}'], ['patch', '/api/v1/resource-groups/{name}'],
  ['delete', '/api/v1/resource-groups/{name}'], ['post', '/api/v1/resource-groups/{name}/move'], ['post', '/api/v1/resource-groups/{name}/failback'],
  ['get', '/api/v1/sessions'], ['get', '/api/v1/jobs'], ['get', '/api/v1/jobs/{id}'], ['get', '/api/v1/events'], ['get', '/api/v1/events/stream'],
];
const PUBLIC = new Set(['/api/v1/health', '/api/v1/openapi.json']);

beforeAll(async () => {
  h = await harness();
  const res = await h.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
  expect(res.statusCode).toBe(200);
  doc = res.json();
});
afterAll(async () => {
  await h.close();
});

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1 with the bearer security scheme', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes['bearer']).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('lists exactly the routes the app serves (the dashboard files are not API)', () => {
    const listed = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)).sort();
    expect(listed).toEqual(ROUTES.map(([m, p]) => `${m} ${p}`).sort());
    for (const [m, p] of ROUTES) {
      expect(h.app.hasRoute({ method: m.toUpperCase() as 'GET', url: p.replace(/\{(\w+)\}/g, ':$1') }), `${m} ${p}`).toBe(true);
    }
  });

  it('every route but health and the document itself requires the bearer token', () => {
    for (const [method, p] of ROUTES) {
      const op = doc.paths[p]![method]!;
      expect(op.security, `${method} ${p}`).toEqual(PUBLIC.has(p) ? [] : [{ bearer: [] }]);
      if (!PUBLIC.has(p)) expect(Object.keys(op.responses), `${method} ${p}`).toContain('401');
    }
  });

  it('routes with bodies document their schema; path parameters are documented', () => {
    for (const [method, p] of ROUTES) {
      const op = doc.paths[p]![method]!;
      if (['post /api/v1/volumes', 'post /api/v1/pair', 'post /api/v1/resource-groups', 'patch /api/v1/volumes/{name}', 'put /api/v1/volumes/{name}/access'].includes(`${method} ${p}`)) {
        expect(op.requestBody?.content['application/json']?.schema, `${method} ${p}`).toBeDefined();
      }
      for (const param of p.match(/\{(\w+)\}/g) ?? []) {
        expect(op.parameters?.some((x) => x.in === 'path' && `{${x.name}}` === param), `${method} ${p} ${param}`).toBe(true);
      }
    }
    expect(doc.paths['/api/v1/volumes']!['post']!.requestBody!.content['application/json']!.schema).toMatchObject({
      required: ['name', 'sizeBytes', 'thin'],
      additionalProperties: false,
    });
  });

  it('the shared shapes are components, and CHAP secrets are write-only', () => {
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Volume', 'ResourceGroup', 'Pair', 'Node', 'Job', 'Event', 'Access', 'Error']));
    const access = doc.paths['/api/v1/volumes/{name}/access']!['put']!.requestBody!.content['application/json']!.schema as { properties: { chap: { properties: { secret: { writeOnly: boolean } } } } };
    expect(access.properties.chap.properties.secret.writeOnly).toBe(true);
    expect(JSON.stringify(doc.components.schemas['Access'])).not.toContain('"secret"');
  });

  it('Swagger UI is served at /api/v1/docs', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('swagger');
  });
});
