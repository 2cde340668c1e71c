/**
 * A node started with a bad config stops at once and says which file and
 * which key: the documented start command (README.md "Deploy") run with
 * examples/node.json broken in one key at a time. Needs the built CLI
 * (dist/cli/bin.js; `npm test` runs tsc first).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configArg, documentedStartCommand, EXAMPLE_CONFIG, REPO } from '../unit/packaging/repo';

const BIN = path.join(REPO, 'dist/cli/bin.js');

interface Run {
  readonly code: number | null;
  readonly stderr: string;
}

/** The documented start command, with `twinsan` the built CLI and --config the given file. */
function start(configFile: string): Promise<Run> {
  const argv = documentedStartCommand();
  const at = argv.indexOf(configArg(argv));
  const args = [...argv.slice(1, at), configFile, ...argv.slice(at + 1)];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr });
    });
  });
}

type Json = Record<string, unknown>;

describe('start-up with a bad config (examples/node.json, one key broken)', () => {
  let dir = '';
  let example: Json;

  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error('build first: npm run build:ts');
    dir = await mkdtemp(path.join(tmpdir(), 'twinsan-start-errors-'));
    example = JSON.parse(await readFile(EXAMPLE_CONFIG, 'utf8')) as Json;
    // The example's secret file is on the target machine; here one beside the copy.
    await writeFile(path.join(dir, 'pair.secret'), 'start-errors-test-secret-0123456789\n', { mode: 0o600 });
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function writeBroken(name: string, edit: (c: Json) => void): Promise<string> {
    const config = structuredClone(example);
    (config['peer'] as Json)['secretFile'] = path.join(dir, 'pair.secret');
    edit(config);
    const file = path.join(dir, name);
    await writeFile(file, JSON.stringify(config, null, 2));
    return file;
  }

  const cases: { name: string; key: string; edit: (c: Json) => void; says: RegExp }[] = [
    {
      name: 'bad-port.json',
      key: 'peer.links[1].local',
      edit: (c) => (((c['peer'] as Json)['links'] as Json[])[1]!['local'] = '203.0.113.11:99999'),
      says: /is not host:port/,
    },
    { name: 'misspelt.json', key: 'hearbeat', edit: (c) => ((c['hearbeat'] = c['heartbeat']), delete c['heartbeat']), says: /unknown key/ },
    {
      name: 'bad-owner.json',
      key: 'resourceGroups[0].preferredNode',
      edit: (c) => ((c['resourceGroups'] as Json[])[0]!['preferredNode'] = 'node-c'),
      says: /is neither this node/,
    },
  ];

  for (const c of cases) {
    it(`names the file and ${c.key}, and exits 1 without starting`, async () => {
      const file = await writeBroken(c.name, c.edit);
      const run = await start(file);
      expect(run.code).toBe(1);
      const line = run.stderr.split('\n').find((l) => l.includes(`${c.key}:`));
      expect(line, run.stderr).toBeDefined();
      expect(line).toContain(c.name);
      expect(line).toMatch(c.says);
      // Nothing else: no stack trace, no log of a start.
      expect(run.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it('names a config file that does not exist', async () => {
    const run = await start(path.join(dir, 'missing.json'));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/missing\.json: cannot be read/);
  });
});
