/**
 * Network namespaces for `twinsan lab` and the e2e tests (test/e2e/lab
 * re-exports this): creation, commands and processes inside them, and
 * deletion together with whatever still runs inside.
 *
 * Nothing here touches an interface of the root namespace: commands either
 * manage namespaces (`ip netns add|del|pids|list`) or run inside one
 * (`ip -n NS ...`, `ip netns exec NS ...`).
 *
 * A namespace made for a test goes away when the creating process exits
 * (an exit hook deletes any still alive); a lab's namespaces are made with
 * `keepAfterExit` and outlive the CLI until `twinsan lab down`.
 */
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';

/** iproute2 accepts any file name; the lab keeps to a portable subset. */
const NAMESPACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Throws, naming the command, when not root or when a tool it needs is missing. */
export function requireRoot(what: string, tools: readonly string[] = ['ip', 'tcpdump']): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(
      `${what} needs root: it creates network namespaces, veth pairs and a bridge (uid is ${String(process.getuid?.())}). ` +
        'Run it as root (sudo).',
    );
  }
  const missing = tools.filter((tool) => !toolExists(tool));
  if (missing.length > 0) {
    throw new Error(`${what} needs ${missing.join(', ')} on PATH (Debian packages: iproute2, tcpdump, iputils-arping, redis-server, qemu-utils, libiscsi-bin)`);
  }
}

export function toolExists(tool: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { env: labEnv() }).status === 0;
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

export interface NamespaceOptions {
  /** Leave the namespace in place when this process exits (a lab torn down later by `lab down`). */
  readonly keepAfterExit?: boolean;
}

const liveNamespaces = new Set<Namespace>();
let exitHookInstalled = false;

export class Namespace {
  private readonly processes = new Set<LabProcess>();
  private destroyed = false;

  private constructor(readonly name: string) {}

  /** `ip netns add NAME` and loopback up. */
  static async create(name: string, options: NamespaceOptions = {}): Promise<Namespace> {
    if (!NAMESPACE_NAME.test(name)) throw new Error(`"${name}" is not a lab namespace name (1-64 of A-Z a-z 0-9 _ . -)`);
    await exec('ip', ['netns', 'add', name]);
    const ns = new Namespace(name);
    if (!options.keepAfterExit) {
      liveNamespaces.add(ns);
      installExitHook();
    }
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** A namespace that already exists (made by an earlier `lab up`); never deleted at exit. */
  static existing(name: string): Namespace {
    if (!NAMESPACE_NAME.test(name)) throw new Error(`"${name}" is not a lab namespace name (1-64 of A-Z a-z 0-9 _ . -)`);
    return new Namespace(name);
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

  /** The pids of the processes running inside. */
  async pids(): Promise<number[]> {
    return namespacePids(this.name);
  }

  /**
   * Starts a long-running process inside the namespace, attached to this
   * process (its pipes are ours); it is stopped by destroy().
   */
  spawn(cmd: string, args: readonly string[], label = `${cmd} in ${this.name}`): LabProcess {
    // `ip netns exec` execs the command in place (no fork), so child.pid is the command's pid.
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

/** The names of every network namespace (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const listed = await exec('ip', ['netns', 'list'], { allowFailure: true });
  return listed.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(Boolean);
}

/** The pids running inside namespace `name` ([] when it does not exist). */
export async function namespacePids(name: string): Promise<number[]> {
  const r = await exec('ip', ['netns', 'pids', name], { allowFailure: true });
  return r.code === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
}

/** Kills what still runs inside (only our own processes live there) and deletes the namespace. */
export async function deleteNamespace(name: string): Promise<void> {
  for (const pid of await namespacePids(name)) killQuietly(pid, 'SIGKILL');
  await exec('ip', ['netns', 'del', name], { allowFailure: true });
}

function deleteNamespaceSync(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { env: labEnv(), encoding: 'utf8' });
  for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean)) killQuietly(Number(pid), 'SIGKILL');
  spawnSync('ip', ['netns', 'del', name], { env: labEnv() });
}

/**
 * Whether `pid` is a running process. A zombie (exited, not yet reaped by its parent) counts as gone:
 * it holds nothing but its process-table entry, and where init does not reap orphans (some container
 * and micro-VM inits) an orphaned zombie stays forever.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return processState(pid) !== 'Z';
}

/** The state letter of /proc/<pid>/stat (R, S, D, Z, ...), or null when it cannot be read. */
function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) || null;
  } catch {
    return null;
  }
}

/** Sends `signal` unless the pid is gone (or is this process or init). */
export function killQuietly(pid: number, signal: NodeJS.Signals): void {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
  try {
    process.kill(pid, signal);
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
