/**
 * Bearer-token authentication: every route not marked public needs
 * "Authorization: Bearer <token>". Failures answer 401 with
 * WWW-Authenticate, and never repeat what was presented.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors';
import type { TokenStore } from './token-store';

const CHALLENGE = { 'www-authenticate': 'Bearer realm="twinsan"' };
const BEARER_PREFIX = /^Bearer +/i;

export function authenticate(tokens: TokenStore, request: FastifyRequest): void {
  if (request.routeOptions.config.public === true) return;
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    throw new ApiError(401, 'missing bearer token (send Authorization: Bearer <token>)', undefined, CHALLENGE);
  }
  if (!BEARER_PREFIX.test(header)) {
    throw new ApiError(401, 'the Authorization header must use the Bearer scheme', undefined, { 'www-authenticate': 'Bearer realm="twinsan", error="invalid_request"' });
  }
  if (!tokens.verify(header.replace(BEARER_PREFIX, '').trim())) {
    throw new ApiError(401, 'invalid bearer token', undefined, { 'www-authenticate': 'Bearer realm="twinsan", error="invalid_token"' });
  }
}
