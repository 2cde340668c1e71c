// Loopback ports: find a free one, wait until one accepts connections.
// Ports come from the kernel's ephemeral range (32768..60999), so never
// 3260, which a tgt service installed by apt would own. Types in ports.d.mts.

import net from 'node:net';
import { sleep } from './proc.mjs';

export const LOOPBACK = '127.0.0.1';

/** A TCP port on the loopback address that is free right now. */
export function freePort(host = LOOPBACK) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts a TCP connection on host:port. */
export function canConnect(port, host = LOOPBACK, timeoutMs = 1_000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Poll until host:port accepts connections. `check()` is called between
 * attempts and may throw to abort (e.g. because the server already exited).
 */
export async function waitForPort(port, { host = LOOPBACK, timeoutMs = 15_000, intervalMs = 50, check } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    check?.();
    if (await canConnect(port, host)) return;
    if (Date.now() >= deadline) throw new Error(`nothing accepted connections on ${host}:${port} within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}
