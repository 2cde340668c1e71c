import type { FastifyInstance } from 'fastify';
import type { CreatePairRequest } from '../../resource-groups';
import type { RouteDeps } from './deps';
import { BEARER, CONTROL_ERRORS, errorResponses } from '../route-config';
import { createPairBody, ref } from '../schemas';

export function pairRoutes(app: FastifyInstance, { control }: RouteDeps): void {
  app.get('/api/v1/pair', {
    schema: { tags: ['pair'], summary: 'The HA pair: state, both nodes, configuration versions, replication links', security: BEARER, response: { 200: ref('Pair'), ...errorResponses() } },
  }, async () => control.pair());

  app.post<{ Body: CreatePairRequest }>('/api/v1/pair', {
    schema: {
      tags: ['pair'],
      summary: "Form the pair: point this node at its peer's API",
      security: BEARER,
      body: createPairBody,
      response: { 201: ref('Pair'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request, reply) => reply.code(201).send(await control.createPair(request.body)));
}
