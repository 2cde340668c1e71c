// Loopback ports: find a free one, wait until one accepts connections.
// Ports come from the kernel's ephemeral range (32768..60999), so never
// 3260, which a tgt service installed by apt would own, or from
// TWINSAN_PORT_RANGE when it is set. Types in ports.d.mts.

import net from 'node:net';
import { sleep } from './proc.mjs';

export const LOOPBACK = '127.0.0.1';

/**
 * TWINSAN_PORT_RANGE="26000-26999" confines freePort to that range (so
 * several people sharing a machine never take each other's ports); unset,
 * the kernel picks from its ephemeral range.
 */
function portRange() {
  const spec = process.env.TWINSAN_PORT_RANGE;
  if (!spec) return null;
  const m = /^(\d+)-(\d+)$/.exec(spec);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2]) : NaN;
  if (!(lo >= 1 && hi <= 65535 && lo <= hi)) throw new Error(`TWINSAN_PORT_RANGE must be LOW-HIGH within 1-65535, got ${JSON.stringify(spec)}`);
  return { lo, hi };
}

/** Next candidate in the range: ports handed out recently are not offered again at once. */
let rangeCursor = -1;

function tryListen(host, port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const { port: bound } = server.address();
      server.close(() => resolve(bound));
    });
  });
}

/** A TCP port on the loopback address that is free right now. */
export async function freePort(host = LOOPBACK) {
  const range = portRange();
  if (!range) return tryListen(host, 0);
  const span = range.hi - range.lo + 1;
  if (rangeCursor < 0) rangeCursor = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = range.lo + ((rangeCursor + i) % span);
    try {
      const bound = await tryListen(host, port);
      rangeCursor = (rangeCursor + i + 1) % span;
      return bound;
    } catch (err) {
      if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
    }
  }
  throw new Error(`no free port in TWINSAN_PORT_RANGE ${range.lo}-${range.hi}`);
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
