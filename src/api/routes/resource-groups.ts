import type { FastifyInstance } from 'fastify';
import type { CreateResourceGroupRequest, UpdateResourceGroupRequest } from '../../resource-groups';
import type { RouteDeps } from './deps';
import { BEARER, CONTROL_ERRORS, errorResponses } from '../route-config';
import { createResourceGroupBody, emptyBody, listOf, nameParams, ref, updateResourceGroupBody } from '../schemas';

interface GroupParams {
  readonly name: string;
}

const tags = ['resource groups'];
const params = nameParams('resource group');
const subject = { label: 'resourceGroup', from: 'params', key: 'name' } as const;

export function resourceGroupRoutes(app: FastifyInstance, { control }: RouteDeps): void {
  app.get('/api/v1/resource-groups', {
    schema: { tags, summary: 'Every resource group with its owner, alias IPs and volumes', security: BEARER, response: { 200: listOf('ResourceGroup'), ...errorResponses() } },
  }, async () => control.resourceGroups());

  app.post<{ Body: CreateResourceGroupRequest }>('/api/v1/resource-groups', {
    config: { subject: { label: 'resourceGroup', from: 'body', key: 'name' } },
    schema: {
      tags,
      summary: 'Create a resource group',
      security: BEARER,
      body: createResourceGroupBody,
      response: { 201: ref('ResourceGroup'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request, reply) => reply.code(201).send(await control.createResourceGroup(request.body)));

  app.get<{ Params: GroupParams }>('/api/v1/resource-groups/:name', {
    config: { subject },
    schema: { tags, summary: 'One resource group', security: BEARER, params, response: { 200: ref('ResourceGroup'), ...errorResponses(404) } },
  }, async (request) => control.resourceGroup(request.params.name));

  app.patch<{ Params: GroupParams; Body: UpdateResourceGroupRequest }>('/api/v1/resource-groups/:name', {
    config: { subject },
    schema: {
      tags,
      summary: "Change a resource group's preferred node, alias IPs or failback mode",
      security: BEARER,
      params,
      body: updateResourceGroupBody,
      response: { 200: ref('ResourceGroup'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request) => control.updateResourceGroup(request.params.name, request.body));

  app.delete<{ Params: GroupParams }>('/api/v1/resource-groups/:name', {
    config: { subject },
    schema: {
      tags,
      summary: 'Delete a resource group (it must hold no volumes)',
      security: BEARER,
      params,
      response: { 204: { type: 'null', description: 'deleted' }, ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request, reply) => {
    await control.deleteResourceGroup(request.params.name);
    return reply.code(204).send();
  });

  app.post<{ Params: GroupParams }>('/api/v1/resource-groups/:name/move', {
    config: { subject },
    schema: {
      tags,
      summary: 'Planned switchover to the other node; answers once the peer serves it',
      security: BEARER,
      params,
      body: emptyBody,
      response: { 200: ref('ResourceGroup'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request) => control.moveResourceGroup(request.params.name));

  app.post<{ Params: GroupParams }>('/api/v1/resource-groups/:name/failback', {
    config: { subject },
    schema: {
      tags,
      summary: 'Move the resource group back to its preferred node (once in sync)',
      security: BEARER,
      params,
      body: emptyBody,
      response: { 200: ref('ResourceGroup'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request) => control.failbackResourceGroup(request.params.name));
}
