/**
 * The node guard process against a real redis-server: a node whose pipe
 * closes without release has exactly the lease terms it held released (a
 * term it no longer holds stays with its holder), long before the TTL could
 * explain it, and the peer gets the signed death notice; after a clean
 * release the guard touches nothing.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_GUARD_ENTRY, encodeNodeGuardMessage } from '../../src/resource-groups/guard';
import { decodeHeartbeat, encodeHeartbeat } from '../../src/resource-groups/heartbeat';
import { RedisWitness } from '../../src/resource-groups/witness';
import { startRedis, type RedisServer } from './helpers/redis';

const SECRET = 'the secret of the guard test pair';
const TTL_MS = 60_000;
let redis: RedisServer;
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

async function runGuard(lines: string[], end: 'died' | 'release'): Promise<{ code: number | null; notices: Buffer[]; stderr: string }> {
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', () => resolve()));
  const notices: Buffer[] = [];
  peer.on('message', (m) => notices.push(m));
  try {
    const datagram = encodeHeartbeat({ kind: 'died', nodeId: 'node-a', seq: 0 }, SECRET, 'guard-test');
    const child = spawn(process.execPath, [NODE_GUARD_ENTRY], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const all = [...lines, encodeNodeGuardMessage({ op: 'notice', host: '127.0.0.1', port: peer.address().port, from: '127.0.0.1', datagram })];
    if (end === 'release') all.push('{"op":"release"}\n');
    child.stdin.end(all.join(''));
    const code = await exited;
    await new Promise((r) => setTimeout(r, 50)); // the last datagram's delivery on loopback
    return { code, notices, stderr };
  } finally {
    peer.close();
  }
}

describe.skipIf(!existsSync(NODE_GUARD_ENTRY))('the node guard process with a redis witness (dist built)', () => {
  it('a node that died: its own terms released at once, a term it gave up left to the node that holds it now, and the notice sent', { timeout: 30_000 }, async () => {
    const keyPrefix = `twinsan:guard-test:${process.pid}:${++prefixes}:`;
    const w = new RedisWitness({ connection: { host: '127.0.0.1', port: redis.port }, keyPrefix });
    try {
      await w.ready();
      const held = (await w.acquire('rg-a', 'node-a', TTL_MS))!;
      const given = (await w.acquire('rg-b', 'node-a', TTL_MS))!;
      await w.release('rg-b', 'node-a', given.epoch);
      const taken = (await w.acquire('rg-b', 'node-b', TTL_MS))!;
      const r = await runGuard(
        [
          encodeNodeGuardMessage({ op: 'witness', node: 'node-a', host: '127.0.0.1', port: redis.port, keyPrefix }),
          encodeNodeGuardMessage({ op: 'lease', rg: 'rg-a', epoch: held.epoch }),
          // The guard missed the unlease: its stale term of rg-b must not free node-b's.
          encodeNodeGuardMessage({ op: 'lease', rg: 'rg-b', epoch: given.epoch }),
        ],
        'died',
      );
      expect(r.code).toBe(0);
      expect(await w.holder('rg-a')).toBeNull();
      expect(await w.holder('rg-b')).toMatchObject({ node: 'node-b', epoch: taken.epoch });
      expect(r.notices.length).toBe(3);
      expect(decodeHeartbeat(r.notices[0]!, SECRET, 'guard-test')).toMatchObject({ kind: 'died', nodeId: 'node-a' });
      expect(r.stderr).toMatch(/released them/);
    } finally {
      await w.close();
    }
  });

  it('after a clean release nothing is released and no notice is sent', { timeout: 30_000 }, async () => {
    const keyPrefix = `twinsan:guard-test:${process.pid}:${++prefixes}:`;
    const w = new RedisWitness({ connection: { host: '127.0.0.1', port: redis.port }, keyPrefix });
    try {
      await w.ready();
      const held = (await w.acquire('rg-a', 'node-a', TTL_MS))!;
      const r = await runGuard(
        [
          encodeNodeGuardMessage({ op: 'witness', node: 'node-a', host: '127.0.0.1', port: redis.port, keyPrefix }),
          encodeNodeGuardMessage({ op: 'lease', rg: 'rg-a', epoch: held.epoch }),
        ],
        'release',
      );
      expect(r.code).toBe(0);
      expect(await w.holder('rg-a')).toMatchObject({ node: 'node-a', epoch: held.epoch });
      expect(r.notices).toEqual([]);
    } finally {
      await w.close();
    }
  });
});
