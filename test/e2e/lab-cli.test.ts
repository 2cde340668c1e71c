/**
 * `twinsan lab` as a command: refused without root (before touching
 * anything), and `lab down` removes everything after an up that was killed
 * half-way (nodes already running, detached), after an up interrupted with
 * SIGINT (which cleans up by itself), and is harmless when run again.
 *
 * Needs root, redis-server and a fresh build. Each case uses its own
 * --prefix and a directory `lab up` creates.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiledModule, deleteNamespace, labEnv, listNamespaces, namespacePids, newRunId, processAlive, removeStaleNamespaces, requireRoot } from './lab';
import { TWINSAN_BIN, twinsan, until } from './lab/twinsan-lab';

let work = '';
const prefixes: string[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  requireRoot('test/e2e/lab-cli.test.ts', ['ip', 'redis-server']);
  compiledModule('cli/lab');
  await removeStaleNamespaces();
  work = await mkdtemp(path.join(tmpdir(), 'tsan-lab-cli-'));
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const name of await listNamespaces()) if (prefixes.some((p) => name.startsWith(`${p}-`))) await deleteNamespace(name);
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

function newPrefix(tag: string): string {
  const p = `tsan-${newRunId()}${tag}`;
  prefixes.push(p);
  return p;
}

/** Every pid has exited (and been reaped: a detached process orphaned by a killed up is reaped by init, shortly after). */
async function expectGone(pids: readonly number[]): Promise<void> {
  await until(`pids ${pids.join(', ')} to be gone`, 10_000, async () => pids.every((pid) => !processAlive(pid))).catch(() => undefined);
  for (const pid of pids) expect(processAlive(pid), `pid ${pid}`).toBe(false);
}

const labNamespaces = async (prefix: string): Promise<string[]> => (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));

/** `lab up` in the background; resolves once it has started both nodes (their logs exist). */
async function upUntilNodesStarted(dir: string, prefix: string): Promise<{ child: ChildProcess; exited: Promise<number | null>; output: () => string }> {
  const child = spawn(process.execPath, [TWINSAN_BIN, 'lab', 'up', '--dir', dir, '--prefix', prefix], { env: labEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await until('lab up to start node b', 60_000, async () => existsSync(path.join(dir, 'node-b.log')));
  return { child, exited, output: () => text };
}

describe('twinsan lab', () => {
  it('refuses to run without root, and makes nothing', async () => {
    const dir = path.join(work, 'not-root');
    // The process believes it is uid 1000: a real switch to an unprivileged user could not read a
    // repository cloned where only root may (under /root, as CI does).
    const notRoot = path.join(work, 'not-root.cjs');
    await writeFile(notRoot, 'process.getuid = () => 1000;\n');
    for (const args of [['up', '--dir', dir], ['start-node', '--dir', dir, 'a'], ['down', '--dir', dir]]) {
      const r = spawnSync(process.execPath, ['--require', notRoot, TWINSAN_BIN, 'lab', ...args], { encoding: 'utf8', env: labEnv() });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`lab ${args[0]} needs root`));
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('down removes everything after an up killed half-way, and a second down finds nothing', { timeout: 120_000 }, async () => {
    const prefix = newPrefix('k');
    const dir = path.join(work, 'killed');
    const up = await upUntilNodesStarted(dir, prefix);
    up.child.kill('SIGKILL');
    await up.exited;
    expect(await labNamespaces(prefix)).toHaveLength(5);
    const pids = (await Promise.all((await labNamespaces(prefix)).map((n) => namespacePids(n)))).flat();
    expect(pids.length, 'the witness and the nodes outlive the killed up').toBeGreaterThanOrEqual(3);

    const down = await twinsan(['lab', 'down', '--dir', dir], 60_000);
    expect(down.stdout).toMatch(/removed/);
    expect(await labNamespaces(prefix)).toEqual([]);
    await expectGone(pids);
    expect(existsSync(dir), 'the directory up created').toBe(false);

    const again = await twinsan(['lab', 'down', '--dir', dir], 60_000);
    expect(again.stdout).toMatch(/nothing to remove/);
  });

  it('an up interrupted with SIGINT removes what it made itself', { timeout: 120_000 }, async () => {
    const prefix = newPrefix('i');
    const dir = path.join(work, 'interrupted');
    const up = await upUntilNodesStarted(dir, prefix);
    const pids = (await Promise.all((await labNamespaces(prefix)).map((n) => namespacePids(n)))).flat();
    up.child.kill('SIGINT');
    expect(await up.exited).toBe(1);
    expect(up.output()).toMatch(/interrupted/);
    expect(await labNamespaces(prefix)).toEqual([]);
    await expectGone(pids);
    expect(existsSync(dir)).toBe(false);
  });

  it('up refuses a prefix whose namespaces exist and a directory that holds a lab', { timeout: 180_000 }, async () => {
    const prefix = newPrefix('t');
    const dir = path.join(work, 'taken');
    await twinsan(['lab', 'up', '--dir', dir, '--prefix', prefix, '--size', '16M'], 150_000);
    try {
      await expect(twinsan(['lab', 'up', '--dir', path.join(work, 'other'), '--prefix', prefix], 30_000)).rejects.toThrow(/already exists: another lab uses prefix/);
      expect(existsSync(path.join(work, 'other'))).toBe(false);
      await expect(twinsan(['lab', 'up', '--dir', dir, '--prefix', newPrefix('u')], 30_000)).rejects.toThrow(/already holds a lab/);
      await expect(twinsan(['lab', 'start-node', '--dir', dir, 'c'], 30_000)).rejects.toThrow(/not a lab node/);
    } finally {
      await twinsan(['lab', 'down', '--dir', dir], 60_000);
    }
    expect(await labNamespaces(prefix)).toEqual([]);
  });
});
