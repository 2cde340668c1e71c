/**
 * Per-route settings the app's hooks read: whether the route needs the
 * bearer token, and which request value names the thing it acts on (for
 * the request log line).
 */
import { ref } from './schemas';

/** Where the request log finds the subject's name: a path parameter or a body field. */
export interface LogSubject {
  /** The log key: volume, resourceGroup, node, job. */
  readonly label: 'volume' | 'resourceGroup' | 'node' | 'job';
  readonly from: 'params' | 'body';
  readonly key: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No bearer token needed (health, the OpenAPI document, Swagger UI, dashboard files). */
    public?: boolean;
    subject?: LogSubject;
  }
}

export const BEARER = [{ bearer: [] as string[] }];

/** Error responses documented on every authenticated route, plus the ones a route adds. */
export function errorResponses(...codes: number[]): Record<number, ReturnType<typeof ref>> {
  const all = new Set([400, 401, 500, ...codes]);
  return Object.fromEntries([...all].sort().map((code) => [code, ref('Error')]));
}

/** The statuses the control port's refusals map to (see errors.ts). */
export const CONTROL_ERRORS = [404, 409, 412, 503] as const;
