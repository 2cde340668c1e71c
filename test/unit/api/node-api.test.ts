/** startNodeApi from a node config's api section: token file, TLS files, listening, and what it logs. */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startNodeApi, type NodeApi } from '../../../src/api';
import { FakeControl } from './fake-control';
import { TEST_PORTS } from './harness';

let dir: string;
let api: NodeApi | null = null;
let logs: string[];
const logger = () => pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-node-api-'));
  logs = [];
});
afterEach(async () => {
  await api?.close();
  api = null;
  await rm(dir, { recursive: true, force: true });
});

function getJson(url: string, ca: Buffer, token: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    }).on('error', reject);
  });
}

describe('startNodeApi', () => {
  it('first start: creates the token file, serves HTTPS from the TLS files, and logs where the token is but not the token', async () => {
    const cert = path.join(dir, 'api.crt');
    const key = path.join(dir, 'api.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const tokenFile = path.join(dir, 'state', 'api.token');
    api = await startNodeApi({ config: { listen: `127.0.0.1:${TEST_PORTS.nodeApiTls}`, tokenFile, tls: { cert, key } }, control: new FakeControl(), logger: logger(), nodeId: 'node-a' });
    const token = (await readFile(tokenFile, 'utf8')).trim();
    expect(token).toBe(api.tokens.current());
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const res = await getJson(`${api.url}/api/v1/pair`, await readFile(cert), token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: 'paired' });
    expect(logs.join('')).toContain('API token generated');
    expect(logs.join('')).not.toContain(token);
  });

  it('restart with a token file others could read: repaired to 0600 and reported, same token', async () => {
    const tokenFile = path.join(dir, 'api.token');
    const config = { listen: `127.0.0.1:${TEST_PORTS.nodeApiPlain}`, tokenFile, tls: null };
    api = await startNodeApi({ config, control: new FakeControl(), logger: logger(), nodeId: 'node-a' });
    const token = api.tokens.current();
    await api.close();
    await chmod(tokenFile, 0o644);
    logs = [];
    api = await startNodeApi({ config, control: new FakeControl(), logger: logger(), nodeId: 'node-a' });
    expect(api.tokens.current()).toBe(token);
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const warning = logs.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.level === 40);
    expect(warning?.msg).toMatch(/was mode 0644.*repaired to 0600/);
  });

  it('a missing TLS file is an error naming it', async () => {
    const config = { listen: `127.0.0.1:${TEST_PORTS.nodeApiPlain}`, tokenFile: path.join(dir, 't'), tls: { cert: path.join(dir, 'nope.crt'), key: path.join(dir, 'nope.key') } };
    await expect(startNodeApi({ config, control: new FakeControl(), logger: logger(), nodeId: 'node-a' })).rejects.toThrow(/API TLS certificate .*nope\.crt cannot be read/);
  });
});
