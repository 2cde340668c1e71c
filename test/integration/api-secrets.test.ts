/**
 * No secret in any response or log line, on a real pair: two `twinsan node`
 * processes on loopback (ports 23600-23619) logging at trace level. The
 * API's token and CHAP secrets travel through every path that could leak
 * them: setting access (replicated to the peer through the cluster
 * configuration), reading it back on both nodes, refused and malformed
 * requests cut inside a secret, an iSCSI login with CHAP through qemu-io,
 * and a token rotation. Then both nodes' whole output and every answer are
 * searched for each secret.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sleep, spawnDaemon } from '../../scripts/lib/proc.mjs';
import type { Daemon } from '../../scripts/lib/proc.mjs';
import { TWINSAN_BIN } from '../../scripts/lib/targets.mjs';
import { qemuIo, requireTools } from './helpers';
import { track } from './helpers/cleanup';

const HOST = '127.0.0.1';
const BASE_PORT = 23600;
type NodeId = 'a' | 'b';
const port = (id: NodeId, i: number): number => BASE_PORT + (id === 'a' ? 0 : 10) + i;
const apiUrl = (id: NodeId): string => `http://${HOST}:${port(id, 4)}`;

const CHAP_SECRET = `chap-${randomBytes(8).toString('hex')}`;
const MUTUAL_SECRET = `mutual-${randomBytes(8).toString('hex')}`;

interface Pair {
  readonly label: string;
  readonly root: string;
  readonly daemons: Map<NodeId, Daemon>;
  dispose(): Promise<void>;
  disposeSync(): void;
}

async function startPair(): Promise<Pair> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'twinsan-api-secrets-'));
  const secret = randomBytes(24).toString('base64');
  const daemons = new Map<NodeId, Daemon>();
  const pair: Pair = {
    label: `twinsan pair in ${root}`,
    root,
    daemons,
    async dispose() {
      await Promise.all([...daemons.values()].map((d) => d.stop({ signal: 'SIGTERM', timeoutMs: 15_000 })));
      await rm(root, { recursive: true, force: true });
    },
    disposeSync() {
      for (const d of daemons.values()) d.killSync();
      rmSync(root, { recursive: true, force: true });
    },
  };
  track(pair);
  for (const id of ['a', 'b'] as const) {
    const peer: NodeId = id === 'a' ? 'b' : 'a';
    const config = {
      nodeId: id,
      clusterId: 'api-secrets',
      dataDir: path.join(root, id),
      log: { level: 'trace' },
      iscsi: { listen: [`${HOST}:${port(id, 0)}`] },
      peer: { nodeId: peer, secret, links: [1, 2].map((i) => ({ local: `${HOST}:${port(id, i)}`, peer: `${HOST}:${port(peer, i)}` })) },
      volumes: [],
      status: { listen: `${HOST}:${port(id, 3)}` },
      api: { listen: `${HOST}:${port(id, 4)}` },
    };
    const file = path.join(root, `node-${id}.json`);
    await writeFile(file, JSON.stringify(config));
    daemons.set(id, spawnDaemon(process.execPath, [TWINSAN_BIN, 'node', 'start', '--config', file], { label: `twinsan node ${id}` }));
  }
  for (const id of ['a', 'b'] as const) {
    for (let up = false; !up; ) {
      daemons.get(id)!.assertRunning('while starting');
      up = (await fetch(`${apiUrl(id)}/api/v1/health`).catch(() => null))?.ok === true;
      if (!up) await sleep(100);
    }
  }
  return pair;
}

describe('secrets through a real pair', () => {
  it('the API token and CHAP secrets appear in no answer and no log line of either node', async () => {
    requireTools(['qemu-io']);
    const pair = await startPair();
    const tokenOf = async (id: NodeId) => (await readFile(path.join(pair.root, id, 'api.token'), 'utf8')).trim();
    const tokens = [await tokenOf('a'), await tokenOf('b')];
    const answers: string[] = [];
    const call = async (id: NodeId, method: string, route: string, body?: string, token?: string) => {
      const res = await fetch(`${apiUrl(id)}${route}`, {
        method,
        headers: { authorization: `Bearer ${token ?? (await tokenOf(id))}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      answers.push(JSON.stringify([...res.headers]), text);
      return { status: res.status, json: () => JSON.parse(text) as Record<string, unknown> };
    };

    expect((await call('a', 'POST', '/api/v1/pair', JSON.stringify({ peerApi: apiUrl('b') }))).status).toBe(201);
    const created = await call('a', 'POST', '/api/v1/volumes', JSON.stringify({ name: 'sv1', sizeBytes: 4 * 1048576, thin: true, owner: 'a' }));
    expect(created.status).toBe(201);
    const iqn = created.json()['iqn'] as string;

    const access = JSON.stringify({ chap: { user: 'esx', secret: CHAP_SECRET }, mutualChap: { user: 'tgt', secret: MUTUAL_SECRET } });
    expect((await call('a', 'PUT', '/api/v1/volumes/sv1/access', access)).status).toBe(200);
    // The change reaches b through the replicated configuration; b answers the same, without secrets.
    for (let seen = false; !seen; ) {
      const b = await call('b', 'GET', '/api/v1/volumes/sv1/access');
      seen = b.status === 200 && (b.json()['chap'] as { user?: string } | null)?.user === 'esx';
      if (!seen) await sleep(200);
    }
    // Refused and malformed requests carrying secrets.
    expect((await call('a', 'PUT', '/api/v1/volumes/sv1/access', JSON.stringify({ chap: { user: 'bad user', secret: CHAP_SECRET } }))).status).toBe(400);
    expect((await call('b', 'PUT', '/api/v1/volumes/sv1/access', `{"chap":{"user":"esx","secret":"${CHAP_SECRET}"`)).status).toBe(400);
    expect((await call('a', 'PUT', '/api/v1/volumes/nope/access', access)).status).toBe(404);
    expect((await call('a', 'GET', '/api/v1/volumes', undefined, `${tokens[0]}x`)).status).toBe(401);

    // An iSCSI login with CHAP: the right secret writes, a wrong one is refused; neither is logged.
    const url = (secret: string) => `iscsi://esx%${secret}@${HOST}:${port('a', 0)}/${iqn}/0`;
    const good = await qemuIo(url(CHAP_SECRET), ['write -P 0x5a 0 64k']);
    expect(good.ok, `${good.run.stdout}${good.run.stderr}`).toBe(true);
    const wrong = await qemuIo(url(`${CHAP_SECRET}-wrong`), ['read 0 4k']);
    expect(wrong.ok).toBe(false);

    const rotated = await call('b', 'POST', '/api/v1/token/rotate');
    expect(rotated.status).toBe(200);
    const fresh = rotated.json()['token'] as string;
    answers.pop(); // the one answer that carries a token on purpose
    expect((await call('b', 'GET', '/api/v1/nodes', undefined, fresh)).status).toBe(200);

    const logs = [...pair.daemons.values()].map((d) => d.stdout() + d.stderr()).join('\n');
    expect(logs).toContain('"route":"/api/v1/volumes/:name/access"');
    for (const secret of [...tokens, fresh, CHAP_SECRET, MUTUAL_SECRET]) {
      expect(logs.includes(secret), 'a secret in the nodes\' logs').toBe(false);
      expect(answers.some((a) => a.includes(secret)), 'a secret in an answer').toBe(false);
    }
  });
});
