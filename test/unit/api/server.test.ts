/** startApiServer over loopback: HTTPS with a self-signed certificate, and the SSE event stream. */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_EVENT_STREAMS, parseListen, startApiServer, type ApiServer } from '../../../src/api';
import { harness, TEST_PORTS, type Harness } from './harness';

let h: Harness | null = null;
let server: ApiServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
  await h?.close();
  h = null;
});

function get(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    client
      .get(url, options, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('parseListen', () => {
  it('reads host:port and [v6]:port, refusing anything else', () => {
    expect(parseListen('127.0.0.1:8443')).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('api.example:80')).toEqual({ host: 'api.example', port: 80 });
    for (const bad of ['127.0.0.1', ':80', '127.0.0.1:99999', '::1:80', 'host:port', '']) expect(() => parseListen(bad), bad).toThrow(/not host:port/);
  });
});

describe('startApiServer', () => {
  it('serves HTTPS with a certificate and key; health answers, the rest still needs the token', async () => {
    h = await harness();
    const cert = path.join(h.dir, 'cert.pem');
    const key = path.join(h.dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.tls}`, tls: { cert: readFileSync(cert), key: readFileSync(key) } });
    expect(server.url).toBe(`https://127.0.0.1:${TEST_PORTS.tls}`);
    const ca = readFileSync(cert);
    const health = await get(`${server.url}/api/v1/health`, { ca });
    expect(health).toEqual({ status: 200, body: JSON.stringify({ status: 'ok', node: 'node-a' }) });
    expect((await get(`${server.url}/api/v1/volumes`, { ca })).status).toBe(401);
    const volumes = await get(`${server.url}/api/v1/volumes`, { ca, headers: h.auth });
    expect(volumes.status).toBe(200);
    // Plain HTTP to the TLS port gets nothing useful.
    await expect(get(`http://127.0.0.1:${TEST_PORTS.tls}/api/v1/health`)).rejects.toThrow();
  });

  it('serves plain HTTP without TLS options; a busy port is an error', async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.plain}` });
    expect(server.url).toBe(`http://127.0.0.1:${TEST_PORTS.plain}`);
    expect((await get(`${server.url}/api/v1/health`)).status).toBe(200);
    const other = await harness();
    try {
      await expect(startApiServer({ app: other.app, listen: `127.0.0.1:${TEST_PORTS.plain}` })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await other.close();
    }
  });
});

/** Reads an SSE response into frames until `want` data frames arrived. */
function openStream(url: string, headers: Record<string, string>) {
  const frames: { id: string; event: string; data: unknown }[] = [];
  let waiter: (() => void) | null = null;
  let status = 0;
  let contentType = '';
  const opened = new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get(url, { headers: { ...headers, accept: 'text/event-stream' } }, (res) => {
      status = res.statusCode ?? 0;
      contentType = String(res.headers['content-type']);
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const fields = Object.fromEntries(frame.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
          if (fields['data'] !== undefined) frames.push({ id: fields['id'] ?? '', event: fields['event'] ?? '', data: JSON.parse(fields['data']) });
          waiter?.();
        }
      });
      resolve(res);
    });
    req.on('error', reject);
  });
  return {
    frames,
    get status() {
      return status;
    },
    get contentType() {
      return contentType;
    },
    opened,
    async until(count: number): Promise<void> {
      while (frames.length < count) await new Promise<void>((resolve) => (waiter = resolve));
    },
  };
}

async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('event stream', () => {
  it('delivers each new event, and unsubscribes when the client disconnects', async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.sse}` });
    const stream = openStream(`${server.url}/api/v1/events/stream`, h.auth);
    const res = await stream.opened;
    expect(stream.status).toBe(200);
    expect(stream.contentType).toMatch(/^text\/event-stream/);
    await waitFor(() => h!.control.subscribers === 1);
    h.control.emit('move', 'rg-a moved to node-b', 'rg-a');
    h.control.emit('failover', 'node-b took rg-b over', 'rg-b');
    await stream.until(2);
    expect(stream.frames).toEqual([
      { id: '1', event: 'move', data: expect.objectContaining({ seq: 1, kind: 'move', message: 'rg-a moved to node-b', subject: 'rg-a' }) },
      { id: '2', event: 'failover', data: expect.objectContaining({ seq: 2, kind: 'failover', subject: 'rg-b' }) },
    ]);
    res.destroy();
    await waitFor(() => h!.control.subscribers === 0);
    expect(h.app.eventStreams.size).toBe(0);
  });

  it('after= replays missed events first, then live ones, each once', async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.sse}` });
    for (let i = 1; i <= 3; i++) h.control.emit('test', `old ${i}`);
    const stream = openStream(`${server.url}/api/v1/events/stream?after=1`, h.auth);
    await stream.opened;
    await stream.until(2);
    await waitFor(() => h!.control.subscribers === 1);
    h.control.emit('test', 'new 4');
    await stream.until(3);
    expect(stream.frames.map((f) => f.id)).toEqual(['2', '3', '4']);
  });

  it('a reconnecting client\'s Last-Event-ID replays what it missed; a malformed one is a 400 naming the header', async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.sse}` });
    for (let i = 1; i <= 4; i++) h.control.emit('test', `old ${i}`);
    const stream = openStream(`${server.url}/api/v1/events/stream`, { ...h.auth, 'last-event-id': '2' });
    await stream.opened;
    await stream.until(2);
    expect(stream.frames.map((f) => f.id)).toEqual(['3', '4']);
    const bad = await get(`${server.url}/api/v1/events/stream`, { headers: { ...h.auth, 'last-event-id': 'yesterday' } });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ field: 'Last-Event-ID' });
  });

  it('replays a backlog longer than one page, in order', async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.sse}` });
    for (let i = 1; i <= 2500; i++) h.control.emit('test', `old ${i}`);
    const stream = openStream(`${server.url}/api/v1/events/stream?after=10`, h.auth);
    await stream.opened;
    await stream.until(2490);
    expect(stream.frames.map((f) => Number(f.id))).toEqual(Array.from({ length: 2490 }, (_, i) => i + 11));
    expect(h.control.callsTo('events').map((c) => c.args)).toEqual([[10, 1000], [1010, 1000], [2010, 1000]]);
  });

  it(`refuses more than ${MAX_EVENT_STREAMS} open streams with 503`, async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.sse}` });
    const open = Array.from({ length: MAX_EVENT_STREAMS }, () => openStream(`${server!.url}/api/v1/events/stream`, h!.auth));
    await Promise.all(open.map((s) => s.opened));
    await waitFor(() => h!.control.subscribers === MAX_EVENT_STREAMS);
    const refused = await get(`${server.url}/api/v1/events/stream`, { headers: h.auth });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ message: expect.stringMatching(/too many open event streams/) });
    for (const s of open) (await s.opened).destroy();
    await waitFor(() => h!.control.subscribers === 0);
  });

  it('a client that stops reading is cut off once 1 MiB is queued for it (memory stays bounded)', async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.sse}` });
    const stream = openStream(`${server.url}/api/v1/events/stream`, h.auth);
    const res = await stream.opened;
    res.pause();
    await waitFor(() => h!.control.subscribers === 1);
    const big = 'x'.repeat(64 * 1024);
    let emitted = 0;
    // The kernel's socket buffers take some first; keep emitting until the server gives up on the client.
    while (h.control.subscribers === 1) {
      h.control.emit('bulk', big);
      emitted += 1;
      await new Promise((resolve) => setImmediate(resolve));
    }
    console.log(`slow SSE client cut off after ${emitted} events of 64 KiB`);
    expect(h.app.eventStreams.size).toBe(0);
    expect(h.logs.some((l) => l.includes('event stream client is not reading'))).toBe(true);
    res.destroy();
  });

  it('needs the token, and ends open streams when the server closes', async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.sse}` });
    expect((await get(`${server.url}/api/v1/events/stream`)).status).toBe(401);
    const stream = openStream(`${server.url}/api/v1/events/stream`, h.auth);
    const res = await stream.opened;
    await waitFor(() => h!.control.subscribers === 1);
    const ended = new Promise<void>((resolve) => res.on('end', () => resolve()));
    await server.close();
    server = null;
    await ended;
    expect(h.control.subscribers).toBe(0);
  });
});
