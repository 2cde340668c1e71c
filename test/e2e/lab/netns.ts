/**
 * Network namespaces for e2e tests: creation, commands and processes inside
 * them, and cleanup that also runs when a test or the whole run fails.
 *
 * Every name is `tsan-<run id>-<role>`; the run id embeds the creating
 * process's pid, so removeStaleNamespaces() deletes the leftovers of crashed
 * runs (pid no longer alive) and never a namespace of a run still going.
 * Nothing here touches an interface of the root namespace: commands either
 * manage namespaces (`ip netns add|del|pids`) or run inside one
 * (`ip -n NS ...`, `ip netns exec NS ...`).
 */
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';

export const LAB_PREFIX = 'tsan-';
const NAME_PATTERN = /^tsan-(\d+)x[0-9a-f]+-/;

/** Throws, naming the test, when not root or when a tool the lab needs is missing. */
export function requireRoot(what: string, tools: readonly string[] = ['ip', 'tcpdump']): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(
      `${what} needs root: it creates network namespaces, veth pairs and a bridge (uid is ${String(process.getuid?.())}). ` +
        'Run it as root (CI runs as root).',
    );
  }
  for (const tool of tools) {
    const found = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { env: labEnv() });
    if (found.status !== 0) throw new Error(`${what} needs ${tool} (Debian packages iproute2, tcpdump, iputils-arping)`);
  }
}

/** A fresh id for one test run: the pid (for stale detection) and random bits. */
export function newRunId(): string {
  return `${process.pid}x${randomBytes(2).toString('hex')}`;
}

export interface ExecOptions {
  readonly timeoutMs?: number;
  /** Resolve with a non-zero exit instead of rejecting. */
  readonly allowFailure?: boolean;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** PATH with the sbin directories (ip, tcpdump live there on Debian). */
export function labEnv(): NodeJS.ProcessEnv {
  const path = process.env['PATH'] ?? '/usr/bin:/bin';
  return { ...process.env, PATH: `${path}:/usr/sbin:/sbin` };
}

/** Runs a command to completion (argument array, no shell). */
export function exec(cmd: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      [...args],
      { timeout: options.timeoutMs ?? 15_000, env: labEnv(), encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (err && (!options.allowFailure || typeof err.code !== 'number')) {
          reject(new Error(`${cmd} ${args.join(' ')}: ${err.killed ? 'timed out' : `exit ${String(err.code)}`}: ${stderr.trim() || err.message}`));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A long-running process started in a namespace. */
export interface LabProcess {
  readonly child: ChildProcess;
  readonly label: string;
  /** Resolves with the exit code (or 128 + signal) when it ends. */
  readonly exited: Promise<number>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<number>;
}

const liveNamespaces = new Set<Namespace>();
let exitHookInstalled = false;

export class Namespace {
  private readonly processes = new Set<LabProcess>();
  private destroyed = false;

  private constructor(readonly name: string) {}

  /** `ip netns add NAME` and loopback up. The name must carry LAB_PREFIX. */
  static async create(name: string): Promise<Namespace> {
    if (!name.startsWith(LAB_PREFIX)) throw new Error(`lab namespace names start with ${LAB_PREFIX}: ${name}`);
    await exec('ip', ['netns', 'add', name]);
    const ns = new Namespace(name);
    liveNamespaces.add(ns);
    installExitHook();
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** `ip -n NAME ARGS...`; resolves with stdout. */
  async ip(...args: string[]): Promise<string> {
    return (await exec('ip', ['-n', this.name, ...args])).stdout;
  }

  /** `ip -n NAME -json ARGS...`, parsed. */
  async ipJson<T = unknown>(...args: string[]): Promise<T> {
    const out = await this.ip('-json', ...args);
    return (out.trim() === '' ? [] : JSON.parse(out)) as T;
  }

  /** Runs a command inside the namespace to completion. */
  exec(cmd: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return exec('ip', ['netns', 'exec', this.name, cmd, ...args], options);
  }

  /** Sets a sysctl inside the namespace (net.* keys are per namespace). */
  async sysctl(key: string, value: string | number): Promise<void> {
    await this.exec('sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** Starts a long-running process inside the namespace; it is stopped by destroy(). */
  spawn(cmd: string, args: readonly string[], label = `${cmd} in ${this.name}`): LabProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { env: labEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<number>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
      child.once('error', () => resolve(127));
    });
    const proc: LabProcess = {
      child,
      label,
      exited,
      stop: async (graceMs = 2000) => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        this.processes.delete(proc);
        return exited;
      },
    };
    this.processes.add(proc);
    void exited.then(() => this.processes.delete(proc));
    return proc;
  }

  /** Stops its processes, kills any left inside, deletes the namespace. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.processes].map((p) => p.stop(1000)));
    await deleteNamespace(this.name);
    liveNamespaces.delete(this);
  }

  /** Synchronous destroy for process exit hooks. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.processes) p.child.kill('SIGKILL');
    deleteNamespaceSync(this.name);
    liveNamespaces.delete(this);
  }
}

/** Kills what still runs inside (our own test processes) and deletes the namespace. */
export async function deleteNamespace(name: string): Promise<void> {
  const pids = await exec('ip', ['netns', 'pids', name], { allowFailure: true });
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) killQuietly(Number(pid));
  await exec('ip', ['netns', 'del', name], { allowFailure: true });
}

function deleteNamespaceSync(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { env: labEnv(), encoding: 'utf8' });
  for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean)) killQuietly(Number(pid));
  spawnSync('ip', ['netns', 'del', name], { env: labEnv() });
}

/**
 * Deletes lab namespaces whose creating process is gone (crashed runs),
 * and nothing else. Resolves with the names deleted.
 */
export async function removeStaleNamespaces(): Promise<string[]> {
  const listed = await exec('ip', ['netns', 'list'], { allowFailure: true });
  const stale: string[] = [];
  for (const line of listed.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = NAME_PATTERN.exec(name);
    if (!match || processAlive(Number(match[1]))) continue;
    await deleteNamespace(name);
    stale.push(name);
  }
  return stale;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killQuietly(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const ns of [...liveNamespaces]) ns.destroySync();
  });
}
