/**
 * startApiServer: binds a built app on host:port, over TLS when a
 * certificate and key are given. The server is ours (http or https) and
 * hands requests to the app's router, so the same app serves either.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

export interface ApiTls {
  /** PEM certificate (chain) and private key. */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface StartApiServerOptions {
  readonly app: FastifyInstance;
  /** "host:port", "[v6]:port"; port 0 picks a free one. */
  readonly listen: string;
  readonly tls?: ApiTls;
}

export interface ApiServer {
  /** The bound base URL, e.g. "https://127.0.0.1:8443". */
  readonly url: string;
  readonly address: AddressInfo;
  /** Ends event streams, stops listening, closes the app. */
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):([0-9]{1,5})$/.exec(listen);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port > 65535) throw new Error(`API listen address ${JSON.stringify(listen)} is not host:port (IPv6 as [addr]:port)`);
  return { host: match[1] ?? match[2] ?? '', port };
}

export async function startApiServer(options: StartApiServerOptions): Promise<ApiServer> {
  const { host, port } = parseListen(options.listen);
  const { app } = options;
  await app.ready();
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => app.routing(req, res);
  const server = options.tls === undefined ? http.createServer(handler) : https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler);
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const scheme = options.tls === undefined ? 'http' : 'https';
  const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  app.log.info({ url: `${scheme}://${hostPart}:${address.port}` }, 'API listening');
  let closing: Promise<void> | null = null;
  return {
    url: `${scheme}://${hostPart}:${address.port}`,
    address,
    close() {
      closing ??= (async () => {
        app.eventStreams.closeAll();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await app.close();
      })();
      return closing;
    },
  };
}
