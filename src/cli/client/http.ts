/**
 * The REST API client of `twinsan`: one JSON request at a time over node's
 * http/https (https takes a private CA or --insecure, which fetch cannot
 * without an extra dispatcher package), plus the event stream.
 *
 * Every failure becomes an ApiError (the API refused: its message and field)
 * or a ConnectError (no answer: what was tried and why), never a stack trace.
 */
import http from 'node:http';
import https from 'node:https';
import { SseDecoder, SseMessage } from './sse';
import type { ClientConfig } from './connection';
import { ApiError, ApiErrorBody, CliError, ConnectError, EXIT } from './errors';

/** A JSON answer: the body as sent (printed as is by --json) and parsed. */
export interface ApiResponse {
  readonly status: number;
  readonly text: string;
  readonly json: unknown;
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** API field → the option or argument it came from, named in the error ("sizeBytes" → "--size"). */
  readonly fields?: Readonly<Record<string, string>>;
}

/** Bodies larger than this are refused: no twinsan answer comes near, and memory stays bounded. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Socket and TLS error codes → what they mean to someone running the CLI. */
const CONNECT_ERRORS: Readonly<Record<string, { readonly reason: string; readonly hint: string | null }>> = {
  ECONNREFUSED: { reason: 'connection refused', hint: "is the node's API running and listening there? Set --api URL or TWINSAN_API" },
  ENOTFOUND: { reason: 'host name not found', hint: 'check the host in --api or TWINSAN_API' },
  EAI_AGAIN: { reason: 'host name lookup failed (temporary DNS failure)', hint: null },
  EHOSTUNREACH: { reason: 'host unreachable', hint: null },
  ENETUNREACH: { reason: 'network unreachable', hint: null },
  ECONNRESET: { reason: 'connection reset by the server', hint: 'does the API expect https:// rather than http://?' },
  EPIPE: { reason: 'connection closed by the server', hint: null },
  ETIMEDOUT: { reason: 'connection timed out', hint: null },
  EPROTO: { reason: 'TLS handshake failed', hint: 'does the API speak http:// rather than https://?' },
  ERR_SSL_WRONG_VERSION_NUMBER: { reason: 'TLS handshake failed (the server did not answer TLS)', hint: 'does the API speak http:// rather than https://?' },
  DEPTH_ZERO_SELF_SIGNED_CERT: { reason: 'the server certificate is self-signed', hint: "trust it with --ca FILE (the node's certificate), or --insecure on a test setup" },
  SELF_SIGNED_CERT_IN_CHAIN: { reason: 'the server certificate chain ends in an untrusted root', hint: 'trust the CA with --ca FILE' },
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: { reason: 'the server certificate is signed by an unknown CA', hint: 'trust the CA with --ca FILE' },
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: { reason: 'the server certificate is signed by an unknown CA', hint: 'trust the CA with --ca FILE' },
  CERT_HAS_EXPIRED: { reason: 'the server certificate has expired', hint: null },
  ERR_TLS_CERT_ALTNAME_INVALID: { reason: 'the server certificate is not valid for this host name', hint: 'use the host name or IP address the certificate names in --api' },
  HPE_INVALID_CONSTANT: { reason: 'the server did not answer HTTP', hint: 'does the API speak https:// rather than http://?' },
};

/** Our own timeout, reported like the socket's. */
const REQUEST_TIMEOUT = 'TWINSAN_REQUEST_TIMEOUT';

export class ApiClient {
  constructor(readonly config: ClientConfig) {}

  /** The full URL of an API path ("/api/v1/volumes"), under the base's own path if it has one. */
  url(path: string, query?: RequestOptions['query']): URL {
    const base = this.config.base.pathname.replace(/\/+$/, '');
    const url = new URL(base + path, this.config.base);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  get(path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    return this.request('GET', path, options);
  }

  post(path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    return this.request('POST', path, options);
  }

  /** One request; resolves with a 2xx answer, rejects with ApiError or ConnectError. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const url = this.url(path, options.query);
    const payload = options.body === undefined ? null : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const res = await this.open(method, url, headers, payload, this.config.timeoutMs);
    const text = await readBody(res, url, this.config.timeoutMs);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw this.refusal(status, res.statusMessage ?? '', text, options.fields);
    let json: unknown = null;
    if (text !== '') {
      try {
        json = JSON.parse(text) as unknown;
      } catch {
        throw new CliError(`${method} ${url.href}: the answer is not JSON (${status}, ${text.length} bytes)`, EXIT.refused);
      }
    }
    return { status, text, json };
  }

  /**
   * Follow a text/event-stream until the server ends it (resolves) or the
   * connection fails (rejects). onMessage runs for each complete message.
   */
  async stream(path: string, query: RequestOptions['query'], onMessage: (message: SseMessage) => void): Promise<void> {
    const url = this.url(path, query);
    const res = await this.open('GET', url, { accept: 'text/event-stream' }, null, this.config.timeoutMs);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      const text = await readBody(res, url, this.config.timeoutMs);
      throw this.refusal(status, res.statusMessage ?? '', text, undefined);
    }
    // Connected: the stream may stay quiet for hours, so the request timeout no longer applies.
    res.socket.setTimeout(0);
    const decoder = new SseDecoder();
    res.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        try {
          for (const m of decoder.push(chunk)) onMessage(m);
        } catch (err) {
          res.destroy();
          reject(err instanceof CliError ? err : new CliError(`${url.href}: ${err instanceof Error ? err.message : String(err)}`, EXIT.refused));
        }
      });
      res.on('end', resolve);
      res.on('error', (err) => reject(this.connectError(url, err)));
      // Closed without an end (the node died): rejecting after resolve is a no-op, so this only reports a cut.
      res.on('close', () => reject(new ConnectError(url.href, 'the event stream was cut', null)));
    });
  }

  private open(method: string, url: URL, headers: Record<string, string>, payload: Buffer | null, timeoutMs: number): Promise<http.IncomingMessage> {
    if (this.config.token !== null) headers['authorization'] = `Bearer ${this.config.token}`;
    const tls = url.protocol === 'https:';
    const options: https.RequestOptions = { method, headers, agent: false };
    if (tls) {
      if (this.config.ca) options.ca = this.config.ca;
      if (this.config.insecure) options.rejectUnauthorized = false;
    }
    return new Promise((resolve, reject) => {
      const req = (tls ? https : http).request(url, options, resolve);
      req.setTimeout(timeoutMs, () => {
        const err: NodeJS.ErrnoException = new Error('timeout');
        err.code = REQUEST_TIMEOUT;
        req.destroy(err);
      });
      req.on('error', (err) => reject(this.connectError(url, err)));
      req.end(payload ?? undefined);
    });
  }

  private connectError(url: URL, err: Error): ConnectError {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === REQUEST_TIMEOUT) return new ConnectError(url.href, `no answer within ${this.config.timeoutMs / 1000} s`, 'a slow operation? raise --timeout');
    const known = Object.hasOwn(CONNECT_ERRORS, code) ? CONNECT_ERRORS[code] : undefined;
    if (known) return new ConnectError(url.href, code.startsWith('E') ? `${known.reason} (${code})` : known.reason, known.hint);
    return new ConnectError(url.href, err.message || code || 'connection failed', null);
  }

  private refusal(status: number, statusMessage: string, text: string, fields: RequestOptions['fields']): ApiError {
    const body = errorBody(status, statusMessage, text);
    const option = body.field !== undefined && fields ? optionFor(body.field, fields) : null;
    return new ApiError(status, body, option, status === 401 ? this.unauthorizedHint() : null);
  }

  private unauthorizedHint(): string {
    if (this.config.token === null) {
      return 'no API token was given: use --token-file FILE or TWINSAN_TOKEN_FILE (the node writes its token to a mode 0600 file at first start; see docs/cli.md)';
    }
    return `the token from ${this.config.tokenSource ?? 'the command line'} was refused: it may have been rotated (twinsan token rotate) or belong to another pair`;
  }
}

/** The option behind an API field: an exact entry, else the field's top-level key ("aliasIps[1].interface" → aliasIps). */
function optionFor(field: string, fields: Readonly<Record<string, string>>): string | null {
  if (Object.hasOwn(fields, field)) return fields[field] ?? null;
  const top = field.split(/[.[]/, 1)[0] ?? '';
  return Object.hasOwn(fields, top) ? (fields[top] ?? null) : null;
}

/** The API's { statusCode, error, message, field? }, or the best stand-in when the body is something else (a proxy's HTML page). */
function errorBody(status: number, statusMessage: string, text: string): ApiErrorBody {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    // not JSON: described below
  }
  if (typeof parsed === 'object' && parsed !== null) {
    const o = parsed as Record<string, unknown>;
    if (typeof o['message'] === 'string') {
      return {
        statusCode: typeof o['statusCode'] === 'number' ? o['statusCode'] : status,
        error: typeof o['error'] === 'string' ? o['error'] : statusMessage,
        message: o['message'],
        ...(typeof o['field'] === 'string' ? { field: o['field'] } : {}),
      };
    }
  }
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return { statusCode: status, error: statusMessage, message: snippet === '' ? `HTTP ${status} ${statusMessage}`.trim() : snippet };
}

function readBody(res: http.IncomingMessage, url: URL, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      res.destroy();
      reject(new ConnectError(url.href, `the answer did not complete within ${timeoutMs / 1000} s`, 'raise --timeout'));
    }, timeoutMs);
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        clearTimeout(timer);
        res.destroy();
        reject(new CliError(`${url.href}: answer larger than ${MAX_RESPONSE_BYTES} bytes`, EXIT.refused));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.on('error', (err) => {
      clearTimeout(timer);
      reject(new ConnectError(url.href, `the answer broke off: ${err.message}`, null));
    });
  });
}
