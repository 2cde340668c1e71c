/**
 * A minimal local status endpoint: GET /status answers the node's status as
 * JSON; nothing else is served. It listens on a loopback address only (the
 * config refuses others) and has no authentication. Step 5's REST API
 * replaces it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export class StatusServer {
  private server: http.Server | null = null;

  constructor(private readonly snapshot: () => unknown) {}

  /** Resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 1_000;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        this.server = server;
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://status');
    if (req.method !== 'GET' || url.pathname !== '/status') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /status only\n');
      return;
    }
    let body: string;
    try {
      body = `${JSON.stringify(this.snapshot())}\n`;
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
