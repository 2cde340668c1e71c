/** The CLI's REST API client: connection options, requests, the event stream, and the errors with their exit codes. */
export { ApiClient, MAX_RESPONSE_BYTES } from './http';
export type { ApiResponse, RequestOptions } from './http';
export { addConnectionOptions, resolveConnection, DEFAULT_API, DEFAULT_TIMEOUT_S } from './connection';
export type { ClientConfig, ConnectionOptions } from './connection';
export { ApiError, CliError, ConnectError, EXIT, UsageError } from './errors';
export type { ApiErrorBody, ExitCode } from './errors';
export { SseDecoder } from './sse';
export type { SseMessage } from './sse';
