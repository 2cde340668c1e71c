/** Health, the OpenAPI document, token rotation and metrics. */
import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from './deps';
import { BEARER, errorResponses } from '../route-config';
import { emptyBody, ref } from '../schemas';
import type { ApiMetrics } from '../metrics';

export function systemRoutes(app: FastifyInstance, { tokens, nodeId }: RouteDeps, metrics: ApiMetrics): void {
  app.get('/api/v1/health', {
    config: { public: true },
    schema: { tags: ['system'], summary: 'Liveness of the API (no authentication)', security: [], response: { 200: ref('Health') } },
  }, async () => ({ status: 'ok' as const, node: nodeId }));

  app.get('/api/v1/openapi.json', {
    config: { public: true },
    schema: { tags: ['system'], summary: 'This OpenAPI document (no authentication)', security: [], response: { 200: { type: 'object', additionalProperties: true } } },
  }, async () => app.swagger());

  app.post('/api/v1/token/rotate', {
    schema: {
      tags: ['system'],
      summary: 'Replace the bearer token; the answer carries the new one, once. The old token stops working.',
      security: BEARER,
      body: emptyBody,
      response: { 200: ref('Token'), ...errorResponses() },
    },
  }, async (request) => {
    const token = await tokens.rotate();
    request.log.warn({ tokenFile: tokens.file }, 'API token rotated');
    return { token };
  });

  app.get('/metrics', {
    schema: {
      tags: ['system'],
      summary: 'Prometheus metrics: per-volume IOPS, bytes and latency, sessions, mirror lag, resync progress, failovers, moves, process',
      security: BEARER,
      produces: ['text/plain'],
      response: { 200: { type: 'string', description: 'Prometheus text exposition format' }, ...errorResponses() },
    },
  }, async (_request, reply) => {
    const text = await metrics.scrape();
    return reply.type(metrics.contentType).send(text);
  });
}
