import type { FastifyInstance } from 'fastify';
import type { CreateVolumeRequest, UpdateAccessRequest, UpdateVolumeRequest, VerifyRequest } from '../../resource-groups';
import type { RouteDeps } from './deps';
import { BEARER, CONTROL_ERRORS, errorResponses } from '../route-config';
import { createVolumeBody, deleteVolumeQuery, listOf, nameParams, ref, updateAccessBody, updateVolumeBody, verifyBody } from '../schemas';

interface VolumeParams {
  readonly name: string;
}

const tags = ['volumes'];
const params = nameParams('volume');
const subject = { label: 'volume', from: 'params', key: 'name' } as const;

export function volumeRoutes(app: FastifyInstance, { control }: RouteDeps): void {
  app.get('/api/v1/volumes', {
    schema: { tags, summary: 'Every mirrored volume', security: BEARER, response: { 200: listOf('Volume'), ...errorResponses() } },
  }, async () => control.volumes());

  app.post<{ Body: CreateVolumeRequest }>('/api/v1/volumes', {
    config: { subject: { label: 'volume', from: 'body', key: 'name' } },
    schema: {
      tags,
      summary: "Create a mirrored volume on both nodes, exported through its resource group's alias IPs",
      security: BEARER,
      body: createVolumeBody,
      response: { 201: ref('Volume'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request, reply) => reply.code(201).send(await control.createVolume(request.body)));

  app.get<{ Params: VolumeParams }>('/api/v1/volumes/:name', {
    config: { subject },
    schema: { tags, summary: 'One volume: size, IQN, owner, mirror state', security: BEARER, params, response: { 200: ref('Volume'), ...errorResponses(404) } },
  }, async (request) => control.volume(request.params.name));

  app.patch<{ Params: VolumeParams; Body: UpdateVolumeRequest }>('/api/v1/volumes/:name', {
    config: { subject },
    schema: {
      tags,
      summary: 'Resize a volume online (grow only)',
      security: BEARER,
      params,
      body: updateVolumeBody,
      response: { 200: ref('Volume'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request) => control.updateVolume(request.params.name, request.body));

  app.delete<{ Params: VolumeParams; Querystring: { readonly force?: 'true' | 'false' } }>('/api/v1/volumes/:name', {
    config: { subject },
    schema: {
      tags,
      summary: 'Delete a volume on both nodes; refused while initiators are logged in unless force=true',
      security: BEARER,
      params,
      querystring: deleteVolumeQuery,
      response: { 204: { type: 'null', description: 'deleted' }, ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request, reply) => {
    await control.deleteVolume(request.params.name, { force: request.query.force === 'true' });
    return reply.code(204).send();
  });

  app.get<{ Params: VolumeParams }>('/api/v1/volumes/:name/access', {
    config: { subject },
    schema: { tags, summary: 'Initiator ACL and CHAP settings (secrets are never shown)', security: BEARER, params, response: { 200: ref('Access'), ...errorResponses(404) } },
  }, async (request) => control.access(request.params.name));

  app.put<{ Params: VolumeParams; Body: UpdateAccessRequest }>('/api/v1/volumes/:name/access', {
    config: { subject },
    schema: {
      tags,
      summary: 'Set the initiator ACL, CHAP and mutual CHAP (secrets are write-only)',
      security: BEARER,
      params,
      body: updateAccessBody,
      response: { 200: ref('Access'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request) => control.updateAccess(request.params.name, request.body));

  app.post<{ Params: VolumeParams; Body: VerifyRequest }>('/api/v1/volumes/:name/verify', {
    config: { subject },
    schema: {
      tags,
      summary: "Compare the volume's two copies (and optionally repair); answers the job",
      security: BEARER,
      params,
      body: verifyBody,
      response: { 202: ref('Job'), ...errorResponses(...CONTROL_ERRORS) },
    },
  }, async (request, reply) => reply.code(202).send(await control.verify(request.params.name, request.body)));
}
