/**
 * docs/walkthrough.md works as written, against the real REST API over a
 * fake pair: each `api [-X METHOD] $A/path [-d 'json']` curl line is sent
 * in the order of the document (fastify inject, with the bearer token), and
 * each `twinsan ...` line is run in order through the CLI against the API
 * listening on loopback; all must succeed. A renamed field, route, command
 * or option breaks this test, not a reader's first five minutes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_PREFIX, buildApp, TokenStore } from '../../../src/api';
import type { FastifyInstance } from 'fastify';
import { FakeControl } from '../api/fake-control';
import { cliHarness, CliHarness } from '../cli/harness';
import { codeBlocks, splitWords } from './parsers';
import { read, REPO } from './repo';

interface DocRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly body: unknown;
  /** The command as written, for messages. */
  readonly text: string;
}

/** The `api ...` commands of the document's code blocks, continuation lines and multi-line bodies joined. */
function docRequests(markdown: string): DocRequest[] {
  const out: DocRequest[] = [];
  for (const block of codeBlocks(markdown)) {
    for (let i = 0; i < block.length; i++) {
      if (!/^api\s/.test(block[i]!)) continue;
      let text = block[i]!;
      // A body in single quotes may span lines: read until the quotes balance.
      while ((text.match(/'/g) ?? []).length % 2 === 1 && i + 1 < block.length) text += `\n${block[++i]!}`;
      const m = /^api(?:\s+-X\s+(GET|POST|PUT|PATCH|DELETE))?\s+\$A(\/\S*)(?:\s+-d\s+'([\s\S]*)')?\s*(?:#.*)?$/.exec(text);
      if (!m) throw new Error(`cannot read this api command: ${text}`);
      out.push({ method: (m[1] ?? 'GET') as DocRequest['method'], url: `${API_PREFIX}${m[2]!}`, body: m[3] === undefined ? undefined : (JSON.parse(m[3]) as unknown), text });
    }
  }
  return out;
}

describe('docs/walkthrough.md', () => {
  const markdown = read(path.join(REPO, 'docs/walkthrough.md'));
  let dir = '';
  let app: FastifyInstance;
  let token = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'twinsan-walkthrough-'));
    const { store } = await TokenStore.open(path.join(dir, 'api.token'));
    token = store.current();
    // The walkthrough starts from two nodes that are not paired yet.
    const control = new FakeControl();
    control.paired = false;
    app = buildApp({ control, tokens: store, logger: pino({ level: 'silent' }), nodeId: 'node-a', dashboard: false });
  });

  afterAll(async () => {
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows the curl equivalent of every step: pair, resource group, volume, access, confirm, sessions', () => {
    const requests = docRequests(markdown).map((r) => `${r.method} ${r.url}`);
    for (const expected of [
      'POST /api/v1/pair',
      'POST /api/v1/resource-groups',
      'POST /api/v1/volumes',
      'PUT /api/v1/volumes/esx-ds1/access',
      'GET /api/v1/pair',
      'GET /api/v1/resource-groups/rg-esx',
      'GET /api/v1/volumes/esx-ds1',
      'GET /api/v1/sessions',
    ]) {
      expect(requests).toContain(expected);
    }
  });

  it('has curl commands the API accepts, in order, each answered 2xx', async () => {
    const requests = docRequests(markdown);
    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) {
      const res = await app.inject({
        method: r.method,
        url: r.url,
        headers: { authorization: `Bearer ${token}`, ...(r.body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(r.body === undefined ? {} : { payload: JSON.stringify(r.body) }),
      });
      expect(res.statusCode, `${r.text}\n→ ${res.body}`).toBeGreaterThanOrEqual(200);
      expect(res.statusCode, `${r.text}\n→ ${res.body}`).toBeLessThan(300);
    }
  });

  it('states the resource group the volume is created in, as created the step before', () => {
    const requests = docRequests(markdown);
    const rg = requests.find((r) => r.method === 'POST' && r.url === '/api/v1/resource-groups')!.body as { name: string };
    const volume = requests.find((r) => r.method === 'POST' && r.url === '/api/v1/volumes')!.body as { resourceGroup: string };
    expect(volume.resourceGroup).toBe(rg.name);
  });
});

/** The `twinsan ...` command lines of the document's code blocks (continuations joined, comments dropped), as argv without `twinsan`. */
function docCommands(markdown: string): { argv: string[]; text: string }[] {
  const out: { argv: string[]; text: string }[] = [];
  for (const block of codeBlocks(markdown)) {
    for (let i = 0; i < block.length; i++) {
      if (!/^twinsan\s/.test(block[i]!)) continue;
      let text = block[i]!;
      while (/\\\s*$/.test(text) && i + 1 < block.length) text = `${text.replace(/\\\s*$/, '')} ${block[++i]!.trim()}`;
      const command = text.replace(/\s+#.*$/, '');
      out.push({ argv: splitWords(command).slice(1), text });
    }
  }
  return out;
}

describe('docs/walkthrough.md, the CLI commands', () => {
  const markdown = read(path.join(REPO, 'docs/walkthrough.md'));
  let h: CliHarness;
  let secretFile = '';

  beforeAll(async () => {
    h = await cliHarness();
    h.control.paired = false;
    secretFile = path.join(h.dir, 'chap.secret');
    await writeFile(secretFile, 'walkthrough-12\n', { mode: 0o600 });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('has a CLI command for every step: pair, resource group, volume, access, confirm, sessions, move, maintenance', () => {
    const commands = docCommands(markdown).map((c) => c.argv.slice(0, 2).join(' '));
    for (const expected of ['pair create', 'rg create', 'volume create', 'acl set', 'pair status', 'rg show', 'volume show', 'sessions', 'move rg-esx', 'maintenance enter', 'maintenance exit']) {
      expect(commands).toContain(expected);
    }
  });

  it('runs every command in order, each exiting 0', async () => {
    const commands = docCommands(markdown);
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) {
      // A file the reader has (the CHAP secret) is one the test makes.
      const argv = c.argv.map((a, i) => (c.argv[i - 1] === '--chap-secret-file' ? secretFile : a));
      const run = await h.run(argv);
      expect(run.code, `${c.text}\n${run.stderr}`).toBe(0);
    }
  });
});
