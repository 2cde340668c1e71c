import type { FastifyInstance } from 'fastify';
import { ControlError } from '../../resource-groups';
import type { RouteDeps } from './deps';
import { BEARER, CONTROL_ERRORS, errorResponses } from '../route-config';
import { emptyBody, idParams, listOf, ref } from '../schemas';

interface NodeParams {
  readonly id: string;
}

export function nodeRoutes(app: FastifyInstance, { control }: RouteDeps): void {
  app.get('/api/v1/nodes', {
    schema: { tags: ['nodes'], summary: 'Both nodes of the pair', security: BEARER, response: { 200: listOf('Node'), ...errorResponses() } },
  }, async () => control.nodes());

  const subject = { label: 'node', from: 'params', key: 'id' } as const;

  app.get<{ Params: NodeParams }>('/api/v1/nodes/:id', {
    config: { subject },
    schema: { tags: ['nodes'], summary: 'One node', security: BEARER, params: idParams('node'), response: { 200: ref('Node'), ...errorResponses(404) } },
  }, async (request) => {
    const node = (await control.nodes()).find((n) => n.id === request.params.id);
    if (node === undefined) throw new ControlError('not-found', `no node ${request.params.id} in this pair`, { field: 'id' });
    return node;
  });

  app.post<{ Params: NodeParams }>('/api/v1/nodes/:id/maintenance', {
    config: { subject },
    schema: {
      tags: ['nodes'],
      summary: 'Enter maintenance: evacuate every resource group from the node (planned moves)',
      security: BEARER,
      params: idParams('node'),
      body: emptyBody,
      response: { 202: ref('Job'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request, reply) => reply.code(202).send(await control.enterMaintenance(request.params.id)));

  app.delete<{ Params: NodeParams }>('/api/v1/nodes/:id/maintenance', {
    config: { subject },
    schema: {
      tags: ['nodes'],
      summary: "End maintenance: the node's resource groups fail back once resynced",
      security: BEARER,
      params: idParams('node'),
      response: { 202: ref('Job'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request, reply) => reply.code(202).send(await control.exitMaintenance(request.params.id)));
}
