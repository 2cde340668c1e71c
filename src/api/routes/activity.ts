/** Sessions, jobs and events: what is happening on the pair. */
import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from './deps';
import { BEARER, errorResponses } from '../route-config';
import { eventsQuery, idParams, listOf, ref, streamQuery } from '../schemas';
import { streamEvents } from '../event-stream';

const DEFAULT_EVENT_LIMIT = 100;

export function activityRoutes(app: FastifyInstance, { control }: RouteDeps): void {
  app.get('/api/v1/sessions', {
    schema: { tags: ['sessions'], summary: 'Initiators logged in, on either node', security: BEARER, response: { 200: listOf('Session'), ...errorResponses(503) } },
  }, async () => control.sessions());

  app.get('/api/v1/jobs', {
    schema: { tags: ['jobs'], summary: 'Long-running actions (verify, evacuate, failback, move, resync)', security: BEARER, response: { 200: listOf('Job'), ...errorResponses() } },
  }, async () => control.jobs());

  app.get<{ Params: { readonly id: string } }>('/api/v1/jobs/:id', {
    config: { subject: { label: 'job', from: 'params', key: 'id' } },
    schema: { tags: ['jobs'], summary: 'One job and its progress', security: BEARER, params: idParams('job'), response: { 200: ref('Job'), ...errorResponses(404) } },
  }, async (request) => control.job(request.params.id));

  app.get<{ Querystring: { readonly after?: string; readonly limit?: string } }>('/api/v1/events', {
    schema: {
      tags: ['events'],
      summary: 'Events with seq > after, oldest first',
      security: BEARER,
      querystring: eventsQuery,
      response: { 200: listOf('Event'), ...errorResponses() },
    },
  }, async (request) => {
    const after = request.query.after === undefined ? 0 : Number(request.query.after);
    const limit = request.query.limit === undefined ? DEFAULT_EVENT_LIMIT : Number(request.query.limit);
    return control.events(after, limit);
  });

  app.get<{ Querystring: { readonly after?: string } }>('/api/v1/events/stream', {
    schema: {
      tags: ['events'],
      summary: 'Server-sent events: each new event as `data: <Event JSON>` with `id: <seq>`; after= (or Last-Event-ID) replays missed ones first',
      security: BEARER,
      querystring: streamQuery,
      produces: ['text/event-stream'],
      response: { 200: { description: 'an event stream', type: 'string' }, ...errorResponses() },
    },
  }, async (request, reply) => streamEvents(control, request, reply));
}
