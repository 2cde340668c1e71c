/**
 * buildApp: the REST API as a fastify instance that does not listen
 * (tests inject requests; startApiServer in server.ts binds it).
 *
 * Request handling, in order: the bearer-token check (onRequest), JSON
 * body parsing, schema validation (strict: no coercion, no unknown
 * fields), the handler calling PairControl, and one error handler that
 * turns every failure into {statusCode, error, message, field?}. Each
 * request is logged once when answered, with its route, status and the
 * volume / resource group / node it concerns; headers and bodies are not
 * logged, and the paths that could carry a secret are redacted besides.
 */
import net from 'node:net';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import type { PairControl } from '../resource-groups';
import { authenticate } from './auth';
import { dashboardRoutes } from './dashboard-files';
import { errorBody, handleError } from './errors';
import { EventStreams } from './event-stream';
import { ApiMetrics } from './metrics';
import type { LogSubject } from './route-config';
import { activityRoutes } from './routes/activity';
import type { RouteDeps } from './routes/deps';
import { nodeRoutes } from './routes/nodes';
import { pairRoutes } from './routes/pair';
import { resourceGroupRoutes } from './routes/resource-groups';
import { systemRoutes } from './routes/system';
import { volumeRoutes } from './routes/volumes';
import { SHARED_SCHEMAS } from './schemas';
import type { TokenStore } from './token-store';

declare module 'fastify' {
  interface FastifyInstance {
    eventStreams: EventStreams;
  }
}

export interface ApiOptions {
  readonly control: PairControl;
  readonly tokens: TokenStore;
  readonly logger: Logger;
  /** This node's id (in health answers, metrics labels and log lines). */
  readonly nodeId: string;
  /** Serve the web dashboard at /dashboard/ (default true). */
  readonly dashboard?: boolean;
  /** Largest request body accepted, bytes (default 64 KiB: no request of this API needs more). */
  readonly bodyLimit?: number;
}

export const API_PREFIX = '/api/v1';
export const DOCS_PREFIX = `${API_PREFIX}/docs`;

/**
 * Log paths censored wherever they appear. We log neither headers nor
 * bodies, so these guard against a future log line that does.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'body.chap',
  'body.mutualChap',
  '*.chap.secret',
  '*.mutualChap.secret',
];

function logSubject(request: FastifyRequest): Record<string, unknown> {
  const subject: LogSubject | undefined = request.routeOptions.config.subject;
  if (subject === undefined) return {};
  const source: unknown = subject.from === 'params' ? request.params : request.body;
  if (typeof source !== 'object' || source === null) return {};
  const value = (source as Record<string, unknown>)[subject.key];
  // A body's name is logged even when the request was refused, so bound it.
  return typeof value === 'string' ? { [subject.label]: value.length > 128 ? `${value.slice(0, 128)}...` : value } : {};
}

export function buildApp(options: ApiOptions): FastifyInstance {
  const logger: FastifyBaseLogger = options.logger.child({ component: 'api', node: options.nodeId }, { redact: { paths: REDACTED_PATHS, censor: '[redacted]' } });
  const app = Fastify({
    loggerInstance: logger,
    // One line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    ajv: {
      customOptions: {
        coerceTypes: false,
        removeAdditional: false,
        useDefaults: false,
        allErrors: false,
        // parentSchema in errors: a pattern's description becomes the message.
        verbose: true,
        formats: { 'ip-address': (value: string) => net.isIP(value) !== 0 },
      },
    },
  });
  const deps: RouteDeps = { control: options.control, tokens: options.tokens, nodeId: options.nodeId };
  const metrics = new ApiMetrics(options.control, options.nodeId);

  app.decorate('eventStreams', new EventStreams());
  app.addHook('preClose', async () => app.eventStreams.closeAll());

  // An empty body sent as JSON (curl -X POST -H 'content-type: application/json') means "no body",
  // as for the actions that take none; anything else goes to fastify's own (prototype-poisoning-safe) parser.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, text, done);
  });

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  app.setErrorHandler((error, request, reply) => reply.send(handleError(error, request, reply)));
  // The onRequest token check below runs for unknown routes too: without a token they answer 401, not 404.
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    reply.code(404).send(errorBody(404, `no such route: ${request.method} ${path.length > 200 ? `${path.slice(0, 200)}...` : path}`));
  });

  app.addHook('onRequest', async (request) => authenticate(options.tokens, request));
  // A POST/PUT/PATCH without a body validates as {} (required fields are then named; optional-only bodies pass).
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.method !== 'GET' && request.method !== 'DELETE' && request.routeOptions.schema?.body !== undefined) request.body = {};
  });
  // API answers describe the pair's configuration: no caching anywhere, no content sniffing.
  app.addHook('onSend', async (request, reply) => {
    if (request.url.startsWith(`${API_PREFIX}/`) || request.url === '/metrics') {
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      reply.header('x-content-type-options', 'nosniff');
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      { method: request.method, route: request.routeOptions.url ?? null, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ...logSubject(request) },
      'request',
    );
  });

  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'twinsan',
        description: 'REST API of a twinsan HA pair: nodes, the pair, mirrored volumes, resource groups, target access, sessions, jobs, events. Either node applies a change pair-wide.',
        version: '1',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the token from the node\'s API token file' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`) },
  });
  app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, public: true };
    });
    await docs.register(swaggerUi, { routePrefix: DOCS_PREFIX });
  });
  app.register(async (api) => {
    systemRoutes(api, deps, metrics);
    nodeRoutes(api, deps);
    pairRoutes(api, deps);
    volumeRoutes(api, deps);
    resourceGroupRoutes(api, deps);
    activityRoutes(api, deps);
    if (options.dashboard ?? true) dashboardRoutes(api);
  });
  return app;
}
