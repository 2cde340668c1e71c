/**
 * Every error the API answers is one JSON shape, {statusCode, error,
 * message, field?}. This file is the one place that decides status codes
 * and wording: ControlError codes map through a table, schema violations
 * name the field at fault, and anything unexpected becomes a generic 500
 * (the details go to the log only).
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ControlError } from '../resource-groups';
import type { ControlErrorCode } from '../resource-groups';

export interface ErrorBody {
  readonly statusCode: number;
  readonly error: string;
  readonly message: string;
  readonly field?: string;
}

/** One HTTP status per refusal reason of the control port. */
export const CONTROL_ERROR_STATUS: Readonly<Record<ControlErrorCode, number>> = {
  invalid: 400,
  'not-found': 404,
  conflict: 409,
  'precondition-failed': 412,
  'peer-unavailable': 503,
};

/** An error the API itself raises (authentication, bad query values...). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
    /** Extra response headers (WWW-Authenticate on 401). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export function errorBody(statusCode: number, message: string, field?: string): ErrorBody {
  const body = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
  return field === undefined ? body : { ...body, field };
}

/**
 * Fastify's own request errors we pass on with a fixed wording of ours:
 * their messages can quote the request (JSON.parse's message carries a
 * slice of the body, which may hold a secret), so none is echoed.
 */
const FRAMEWORK_ERRORS: Readonly<Record<string, { readonly status: number; readonly message: string }>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, message: 'request body is not valid JSON' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, message: 'unsupported content type: send application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, message: 'content-length does not match the body' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: 'request body is too large' },
  FST_ERR_CTP_INVALID_TYPE: { status: 400, message: 'invalid content type' },
  FST_ERR_BAD_URL: { status: 400, message: 'malformed URL' },
  FST_ERR_ASYNC_CONSTRAINT: { status: 400, message: 'request rejected' },
};

/** What an ajv error carries that we use (fastify passes them as `error.validation`). */
interface SchemaIssue {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly message?: string;
  /** Present because ajv runs with verbose: true; only its description is read (never `data`, which may be a secret). */
  readonly parentSchema?: { readonly description?: unknown };
}

/** "/aliasIps/0/address" → "aliasIps[0].address" */
export function fieldFromPointer(pointer: string): string {
  let field = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    field += /^\d+$/.test(part) ? `[${part}]` : field === '' ? part : `.${part}`;
  }
  return field;
}

function joinField(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

const CONTEXT_WORDS: Readonly<Record<string, string>> = { body: 'body', params: 'path parameter', querystring: 'query parameter', headers: 'header' };

/** The first schema violation as one sentence naming the field, and the field. */
export function describeSchemaIssue(issue: SchemaIssue, context: string | undefined): { message: string; field: string } {
  const at = fieldFromPointer(issue.instancePath);
  const where = CONTEXT_WORDS[context ?? 'body'] ?? 'body';
  const described = typeof issue.parentSchema?.description === 'string' ? issue.parentSchema.description : null;
  switch (issue.keyword) {
    case 'required': {
      const field = joinField(at, String(issue.params['missingProperty']));
      return { field, message: `${where} field ${field} is required` };
    }
    case 'additionalProperties': {
      const field = joinField(at, String(issue.params['additionalProperty']));
      return { field, message: `${where} field ${field} is not allowed here` };
    }
    case 'type':
      if (at === '') return { field: '', message: `request ${where} must be a JSON ${String(issue.params['type'])}` };
      break;
    case 'enum': {
      const allowed = issue.params['allowedValues'];
      if (Array.isArray(allowed)) return { field: at, message: `${where} field ${at} must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}` };
      break;
    }
    case 'pattern':
    case 'format':
      if (described !== null) return { field: at, message: `${where} field ${at} must be ${described}` };
      break;
    default:
      break;
  }
  return { field: at, message: `${where} field ${at === '' ? '(root)' : at} ${issue.message ?? 'is invalid'}` };
}

function isSchemaIssueList(value: unknown): value is readonly SchemaIssue[] {
  return Array.isArray(value) && value.length > 0 && typeof (value[0] as { instancePath?: unknown }).instancePath === 'string';
}

/** The fastify error handler: everything becomes an ErrorBody. */
export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): ErrorBody {
  if (error instanceof ControlError) {
    const status = CONTROL_ERROR_STATUS[error.code];
    reply.code(status);
    return errorBody(status, error.message, error.details.field);
  }
  if (error instanceof ApiError) {
    reply.code(error.statusCode).headers(error.headers);
    return errorBody(error.statusCode, error.message, error.field);
  }
  const fastifyError = (typeof error === 'object' && error !== null ? error : {}) as Partial<FastifyError> & { validation?: unknown; validationContext?: string };
  if (isSchemaIssueList(fastifyError.validation)) {
    const issue = fastifyError.validation[0]!;
    const { message, field } = describeSchemaIssue(issue, fastifyError.validationContext);
    reply.code(400);
    return errorBody(400, message, field === '' ? undefined : field);
  }
  const framework = fastifyError.code === undefined ? undefined : FRAMEWORK_ERRORS[fastifyError.code];
  if (framework !== undefined) {
    reply.code(framework.status);
    return errorBody(framework.status, framework.message);
  }
  // Other 4xx errors of fastify itself: their status stands, their wording is not passed on (see above).
  if (typeof fastifyError.code === 'string' && fastifyError.code.startsWith('FST_') && typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    request.log.info({ code: fastifyError.code }, 'request refused by the HTTP layer');
    reply.code(fastifyError.statusCode);
    return errorBody(fastifyError.statusCode, `request refused (${fastifyError.code})`);
  }
  request.log.error({ err: error }, 'unexpected error answering a request');
  reply.code(500);
  return errorBody(500, `internal error (request ${request.id}); see the node's log`);
}
