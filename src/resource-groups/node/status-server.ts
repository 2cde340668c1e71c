/**
 * A minimal local status endpoint: GET /status answers the node's status as
 * JSON; POST /<action>?rg=NAME runs one of the node's resource-group
 * actions (move, failback, force) and answers its result; nothing else is served. It listens on a loopback address only (the
 * config refuses others) and has no authentication. Step 5's REST API
 * replaces it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export class StatusServer {
  private server: http.Server | null = null;

  constructor(
    private readonly snapshot: () => unknown,
    private readonly actions: Readonly<Record<string, (rg: string) => Promise<unknown>>> = {},
  ) {}

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
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://status');
    } catch {
      // A request target such as "//" is no URL: thrown from this listener it would end the process.
      res.writeHead(400, { 'content-type': 'text/plain' }).end('the request target is not a URL path\n');
      return;
    }
    const action = req.method === 'POST' ? this.actions[url.pathname.slice(1)] : undefined;
    if (action) {
      const rg = url.searchParams.get('rg');
      if (!rg) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('rg=NAME is required\n');
        return;
      }
      action(rg).then(
        (result) => res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ ok: true, result: result ?? null })}\n`),
        (err: unknown) => res.writeHead(409, { 'content-type': 'application/json' }).end(`${JSON.stringify({ ok: false, error: (err as Error).message })}\n`),
      );
      return;
    }
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
