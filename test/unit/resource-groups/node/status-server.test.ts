import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { StatusServer } from '../../../../src/resource-groups/node/status-server';

/** Sends `requestLine` as is (no client-side URL parsing) and resolves with the response's status line. */
function rawRequest(port: number, requestLine: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(`${requestLine}\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve(text.split('\r\n')[0]!));
    socket.on('error', reject);
  });
}

describe('StatusServer', () => {
  let server: StatusServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it.each(['GET // HTTP/1.1', 'GET //[ HTTP/1.1', 'POST //a:b@c:99999/move?rg=x HTTP/1.1'])(
    'answers a request target that is not a URL (%s) with 400 and keeps serving',
    async (line) => {
      const moves: string[] = [];
      server = new StatusServer(() => ({ state: 'up' }), { move: async (rg) => void moves.push(rg) });
      const port = await server.listen('127.0.0.1', 0);
      expect(await rawRequest(port, line)).toBe('HTTP/1.1 400 Bad Request');
      expect(await rawRequest(port, 'GET /status HTTP/1.1')).toBe('HTTP/1.1 200 OK');
      expect(moves).toEqual([]);
    },
  );

  it('runs an action with its rg and refuses one without', async () => {
    const moves: string[] = [];
    server = new StatusServer(() => ({}), { move: async (rg) => void moves.push(rg) });
    const port = await server.listen('127.0.0.1', 0);
    expect(await rawRequest(port, 'POST /move?rg=rg1 HTTP/1.1')).toBe('HTTP/1.1 200 OK');
    expect(await rawRequest(port, 'POST /move HTTP/1.1')).toBe('HTTP/1.1 400 Bad Request');
    expect(moves).toEqual(['rg1']);
  });
});
