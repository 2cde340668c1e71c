/**
 * `npm start` (scripts/start.mjs → twinsan quickstart) as a newcomer runs
 * it: wait for the printed URLs, log in with qemu-io / iscsi-inq, send
 * SIGINT to its process group (what Ctrl-C does), and check that no
 * process, namespace or temporary file is left.
 *
 * Both modes: the loopback pair (forced with TWINSAN_QUICKSTART_MODE even
 * as root; ports 21300-21331) and, as root, the failover lab with its own
 * prefix, where the printed failover command is run and I/O resumes.
 * Each run gets its own TMPDIR, which must be empty afterwards.
 *
 * Needs a fresh build, qemu-io and iscsi-inq; the lab mode needs root and redis-server.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Namespace as LabNamespace } from '../../src/cli/lab/netns';
import { compiledModule, deleteNamespace, exec, labEnv, listNamespaces, namespacePids, newRunId, processAlive, removeStaleNamespaces, requireRoot } from './lab';
import { until } from './lab/twinsan-lab';

const REPO = path.resolve(__dirname, '..', '..');
const BASE_PORT = 21300;

interface QuickstartRun {
  readonly child: ChildProcess;
  readonly tmp: string;
  output(): string;
  /** The exit code, or the signal name when npm ended by a signal. */
  exited: Promise<number | string>;
}

const runs: QuickstartRun[] = [];
let prefix = '';

/** `npm start -- ARGS` in its own process group, with a TMPDIR of its own. */
async function startQuickstart(args: readonly string[], env: Record<string, string>): Promise<QuickstartRun> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'tsan-quickstart-'));
  const child = spawn('npm', ['start', '--', ...args], { cwd: REPO, detached: true, env: { ...labEnv(), TMPDIR: tmp, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const run = { child, tmp, output: () => text, exited };
  runs.push(run);
  await until('the quickstart to print how to stop it', 180_000, async () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`npm start exited (${child.exitCode ?? child.signalCode}) before it was up:\n${text}`);
    return /Ctrl-C stops/.test(text);
  });
  return run;
}

/**
 * SIGINT to the whole process group, as Ctrl-C at a terminal; resolves with npm's exit: npm waits for
 * the script to finish, then ends by the same signal (so 'SIGINT', not the script's exit code 0).
 */
async function interrupt(run: QuickstartRun): Promise<number | string> {
  process.kill(-run.child.pid!, 'SIGINT');
  return Promise.race([
    run.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`npm start still running 60 s after SIGINT:\n${run.output()}`)), 60_000)),
  ]);
}

/** Pids of processes whose command line mentions `text`. */
async function processesMentioning(text: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(Number(entry));
  }
  return found;
}

async function expectNothingLeft(run: QuickstartRun, pids: readonly number[]): Promise<void> {
  expect(run.output()).toMatch(/stopped; nothing left behind/);
  for (const pid of pids) expect(processAlive(pid), `pid ${pid} still alive`).toBe(false);
  expect(await processesMentioning(run.tmp)).toEqual([]);
  expect(await readdir(run.tmp), `left in TMPDIR ${run.tmp}`).toEqual([]);
}

beforeAll(async () => {
  compiledModule('cli/quickstart');
  compiledModule('cli/lab');
  if (process.getuid?.() === 0) await removeStaleNamespaces();
});

afterAll(async () => {
  for (const run of runs) {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      try {
        process.kill(-run.child.pid!, 'SIGINT');
      } catch {
        // gone
      }
      await Promise.race([run.exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
      try {
        process.kill(-run.child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await rm(run.tmp, { recursive: true, force: true });
  }
  if (prefix) for (const name of await listNamespaces()) if (name.startsWith(`${prefix}-`)) await deleteNamespace(name);
}, 120_000);

describe('npm start', () => {
  it('loopback mode: a mirrored pair on 127.0.0.1, log in, Ctrl-C leaves nothing behind', { timeout: 240_000 }, async () => {
    const run = await startQuickstart(['--base-port', String(BASE_PORT), '--size', '64M'], { TWINSAN_QUICKSTART_MODE: 'loopback' });
    const out = run.output();
    expect(out).toMatch(/alias IPs and the failover of addresses need root/);
    const urls = [...out.matchAll(/served by node \w \(pid (\d+)\): (iscsi:\/\/127\.0\.0\.1:\d+\/\S+)/g)];
    expect(urls).toHaveLength(2);
    const pids = urls.map((m) => Number(m[1]));
    const [urlA, urlB] = urls.map((m) => m[2]!);

    const io = await exec('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', '-c', 'read -P 0x5a 0 1M', urlA!], { timeoutMs: 30_000 });
    expect(io.stdout).toMatch(/read 1048576\/1048576 bytes at offset 0/);
    expect(io.stdout).not.toMatch(/Pattern verification failed/);
    const inq = await exec('iscsi-inq', [urlB!], { timeoutMs: 30_000 });
    expect(inq.stdout).toMatch(/Peripheral Device Type/i);
    // The REST API command it printed works as printed (from the repository, where npm start runs).
    const apiLine = /the REST API: node (\S+) (status .*)$/m.exec(out);
    expect(apiLine, out).not.toBeNull();
    const status = await exec(process.execPath, [path.resolve(REPO, apiLine![1]!), ...apiLine![2]!.split(' ')], { timeoutMs: 30_000 });
    expect(status.stdout).toMatch(/v-a/);

    expect(await interrupt(run)).toBe('SIGINT');
    await expectNothingLeft(run, pids);
  });

  it('lab mode (root): the lab comes up, the printed failover command fails rg-a over, Ctrl-C leaves nothing behind', { timeout: 300_000 }, async () => {
    requireRoot('the lab mode of npm start', ['ip', 'redis-server', 'qemu-io']);
    prefix = `tsan-${newRunId()}q`;
    const run = await startQuickstart(['--mode', 'lab', '--prefix', prefix, '--size', '64M'], {});
    const out = run.output();
    const login = /ip netns exec (\S+) iscsi-inq (iscsi:\/\/\S+)/.exec(out);
    expect(login, out).not.toBeNull();
    const client = LabNamespace.existing(login![1]!);
    const url = login![2]!;
    expect(client.name).toBe(`${prefix}-client`);

    const io = await client.exec('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', '-c', 'read -P 0x5a 0 1M', url], { timeoutMs: 30_000 });
    expect(io.stdout).toMatch(/read 1048576\/1048576 bytes at offset 0/);

    // The failover command it printed: kill -9 of the node serving rg-a; the data is then read through the other node.
    const kill = /^\s*kill -9 (\d+)$/m.exec(out);
    expect(kill, out).not.toBeNull();
    const owner = Number(kill![1]);
    expect((await namespacePids(`${prefix}-a`)).concat(await namespacePids(`${prefix}-b`))).toContain(owner);
    process.kill(owner, 'SIGKILL');
    await until('reading rg-a back through the other node', 60_000, async () => {
      const r = await client.exec('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 1M', url], { allowFailure: true, timeoutMs: 20_000 });
      return r.code === 0 && /read 1048576\/1048576/.test(r.stdout) && !/Pattern verification failed/.test(r.stdout);
    });

    const names = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
    expect(names.sort()).toEqual(['a', 'b', 'client', 'sw', 'witness'].map((r) => `${prefix}-${r}`).sort());
    const pids = (await Promise.all(names.map((n) => namespacePids(n)))).flat();
    expect(pids.length).toBeGreaterThanOrEqual(2); // the surviving node and the witness at least

    expect(await interrupt(run)).toBe('SIGINT');
    await expectNothingLeft(run, pids);
    expect((await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`))).toEqual([]);
  });
});
