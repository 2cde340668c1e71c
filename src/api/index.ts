/**
 * The REST API of a node: fastify routes over PairControl, the OpenAPI
 * document and Swagger UI, bearer-token auth, Prometheus metrics and the
 * web dashboard. buildApp builds without listening; startApiServer binds.
 */
export { buildApp, API_PREFIX, DOCS_PREFIX, REDACTED_PATHS } from './app';
export type { ApiOptions } from './app';
export { startApiServer, parseListen } from './server';
export type { ApiServer, ApiTls, StartApiServerOptions } from './server';
export { TokenStore, TokenFileError, generateToken } from './token-store';
export type { TokenStoreOpened } from './token-store';
export { ApiError, CONTROL_ERROR_STATUS } from './errors';
export type { ErrorBody } from './errors';
export { METRIC_NAMES } from './metrics';
export { MAX_EVENT_STREAMS } from './event-stream';
export { DASHBOARD_DIR, DASHBOARD_FILES } from './dashboard-files';
export { startNodeApi } from './node-api';
export type { NodeApi, NodeApiOptions } from './node-api';
