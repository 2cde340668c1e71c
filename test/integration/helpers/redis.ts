/**
 * Real redis-server processes for the witness tests, on free loopback ports,
 * each in its own temporary directory, stopped and removed even when a test
 * fails (cleanup.ts). Nothing listens beyond 127.0.0.1.
 *
 *   const r = await startRedis();                      // --save '' --appendonly no
 *   const p = await startRedis({ appendonly: true });  // AOF, fsync always: survives restart()
 *   await r.stop(); await r.start();                   // same port, same directory
 *   const s = await startSentinelSet();                // master + replica + 3 sentinels
 *   await s.failover();                                // SENTINEL FAILOVER, waits for the switch
 *   const x = await startTcpProxy(r.port);             // x.cut() / x.heal(): a node cut off
 *
 * Sentinel runs as `redis-server <conf> --sentinel` (Debian's redis-server
 * package has no separate redis-sentinel binary unless redis-sentinel is
 * installed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { findTool } from '../../../scripts/lib/tools.mjs';
import { freePort } from '../../../scripts/lib/ports.mjs';
import { track, type Disposable } from './cleanup';

export const REDIS_HOST = '127.0.0.1';
const STOP_GRACE_MS = 5_000;
const START_TIMEOUT_MS = 15_000;

/** The redis-server binary, or an error saying what to install. */
export function redisServerBinary(): string {
  const bin = findTool('redis-server');
  if (!bin) throw new Error('redis-server is not installed: apt-get install -y --no-install-recommends redis-server (the install step of .ci/run does)');
  return bin;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `probe` until it returns a value other than undefined, or throw after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(intervalMs);
  }
}

/** One command to a server on loopback with a short-lived client; rejects when it does not answer in time. */
export async function redisCommand(port: number, args: (string | number)[], timeoutMs = 2_000): Promise<unknown> {
  const client = new Redis({
    host: REDIS_HOST,
    port,
    lazyConnect: true,
    retryStrategy: null,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    enableReadyCheck: false,
    protocol: 2,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const [cmd, ...rest] = args;
    return await client.call(String(cmd), ...rest);
  } finally {
    client.disconnect();
  }
}

export interface RedisServerOptions {
  /** AOF with fsync on every write (default false: --save '' --appendonly no, nothing persists). */
  readonly appendonly?: boolean;
  /** Start as a replica of this loopback port. */
  readonly replicaOf?: number;
  /** Run as a Sentinel with this configuration (the `port`/`dir` lines are added). */
  readonly sentinelConfig?: string;
  readonly label?: string;
}

export interface RedisServer extends Disposable {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly running: boolean;
  /** (Re)start on the same port and directory; resolves when it answers PING. */
  start(): Promise<void>;
  /** SIGTERM (Redis writes its AOF and exits), SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  command(...args: (string | number)[]): Promise<unknown>;
  /** The last lines of its log, for failure messages. */
  logTail(lines?: number): Promise<string>;
}

class RedisProcess implements RedisServer {
  readonly host = REDIS_HOST;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly label: string,
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  get running(): boolean {
    return this.child !== null;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const log = createWriteStream(path.join(this.dir, 'output.log'), { flags: 'a' });
    const child = spawn(redisServerBinary(), this.args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.child = child;
    let exitInfo = '';
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = `exited with ${signal ?? code}`;
        if (this.child === child) this.child = null;
        resolve();
      });
      child.once('error', (e) => {
        exitInfo = `could not start: ${e.message}`;
        if (this.child === child) this.child = null;
        resolve();
      });
    });
    try {
      await waitFor(`${this.label} on port ${this.port}`, async () => {
        if (this.child !== child) throw new Error(`${this.label} ${exitInfo}`);
        return (await this.command('PING')) === 'PONG' ? true : undefined;
      }, START_TIMEOUT_MS);
    } catch (e) {
      const tail = await this.logTail();
      await this.kill();
      throw new Error(`${(e as Error).message}\n--- ${this.label} log ---\n${tail}`);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const killed = await Promise.race([this.exited.then(() => false), sleep(STOP_GRACE_MS).then(() => true)]);
    if (killed) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  command(...args: (string | number)[]): Promise<unknown> {
    return redisCommand(this.port, args);
  }

  async logTail(lines = 40): Promise<string> {
    const files = ['redis.log', 'output.log'];
    const parts: string[] = [];
    for (const f of files) {
      const text = await readFile(path.join(this.dir, f), 'utf8').catch(() => '');
      if (text) parts.push(text.trimEnd().split('\n').slice(-lines).join('\n'));
    }
    return parts.join('\n');
  }

  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  disposeSync(): void {
    try {
      this.child?.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Start a redis-server on a free loopback port in a new temporary directory. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-redis-'));
  const label = options.label ?? (options.sentinelConfig ? `sentinel ${port}` : `redis-server ${port}`);
  let args: string[];
  if (options.sentinelConfig !== undefined) {
    const conf = path.join(dir, 'sentinel.conf');
    await writeFile(
      conf,
      [`port ${port}`, `bind ${REDIS_HOST}`, 'daemonize no', `dir "${dir}"`, `logfile "${path.join(dir, 'redis.log')}"`, options.sentinelConfig].join('\n') + '\n',
    );
    args = [conf, '--sentinel'];
  } else {
    args = [
      '--port', String(port),
      '--bind', REDIS_HOST,
      '--daemonize', 'no',
      '--dir', dir,
      '--logfile', path.join(dir, 'redis.log'),
      '--save', '',
      ...(options.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
      ...(options.replicaOf !== undefined ? ['--replicaof', REDIS_HOST, String(options.replicaOf)] : []),
    ];
  }
  const server = track(new RedisProcess(label, port, dir, args));
  await server.start();
  return server;
}

export interface SentinelSet {
  readonly name: string;
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinels: readonly RedisServer[];
  /** What RedisWitness takes as `connection`. */
  readonly connection: { sentinels: { host: string; port: number }[]; name: string };
  /** The master's port as the sentinels report it. */
  masterPort(): Promise<number>;
  /** SENTINEL FAILOVER; resolves with the new master's port once the sentinels and the new master agree. */
  failover(timeoutMs?: number): Promise<number>;
}

/**
 * A master, one replica and three sentinels (quorum 2) on loopback, ready
 * for a failover: every sentinel knows the replica and its link is up.
 */
export async function startSentinelSet(options: { name?: string; downAfterMs?: number } = {}): Promise<SentinelSet> {
  const name = options.name ?? 'twinsan-witness';
  const master = await startRedis({ label: 'sentinel-set master' });
  const replica = await startRedis({ label: 'sentinel-set replica', replicaOf: master.port });
  const conf = [
    `sentinel monitor ${name} ${REDIS_HOST} ${master.port} 2`,
    `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 2_000}`,
    `sentinel failover-timeout ${name} 10000`,
    `sentinel parallel-syncs ${name} 1`,
  ].join('\n');
  const sentinels: RedisServer[] = [];
  for (let i = 0; i < 3; i++) sentinels.push(await startRedis({ sentinelConfig: conf, label: `sentinel ${i + 1}` }));

  await waitFor('the replica in sync', async () => {
    const info = String(await replica.command('INFO', 'replication'));
    return /master_link_status:up/.test(info) ? true : undefined;
  });
  for (const s of sentinels) {
    await waitFor(`sentinel ${s.port} to know the replica and the other sentinels`, async () => {
      const replicas = (await s.command('SENTINEL', 'REPLICAS', name)) as string[][];
      const ok = replicas.some((r) => {
        const f = fields(r);
        return f.port === String(replica.port) && !/disconnected|s_down/.test(f.flags ?? '') && f['master-link-status'] === 'ok';
      });
      const peers = (await s.command('SENTINEL', 'SENTINELS', name)) as string[][];
      return ok && peers.length === 2 ? true : undefined;
    }, 30_000, 100);
  }

  const masterPort = async (): Promise<number> => {
    for (const s of sentinels) {
      try {
        const addr = (await s.command('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[] | null;
        if (addr) return Number(addr[1]);
      } catch {
        // ask the next one
      }
    }
    throw new Error('no sentinel answered GET-MASTER-ADDR-BY-NAME');
  };

  return {
    name,
    master,
    replica,
    sentinels,
    connection: { sentinels: sentinels.map((s) => ({ host: REDIS_HOST, port: s.port })), name },
    masterPort,
    async failover(timeoutMs = 30_000): Promise<number> {
      const before = await masterPort();
      await sentinels[0]!.command('SENTINEL', 'FAILOVER', name);
      const target = before === master.port ? replica : master;
      return waitFor('the failover', async () => {
        const now = await Promise.all(sentinels.map(async (s) => {
          const addr = (await s.command('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[];
          return Number(addr[1]);
        }));
        if (!now.every((p) => p === target.port)) return undefined;
        const role = (await target.command('ROLE')) as unknown[];
        return role[0] === 'master' ? target.port : undefined;
      }, timeoutMs, 100);
    },
  };
}

function fields(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

export interface TcpProxy extends Disposable {
  readonly port: number;
  /**
   * Cut the node off. 'blackhole' (default): nothing is forwarded any more
   * and new connections are accepted but never answered, so commands time
   * out (a pulled cable). 'reset': every connection is dropped as well (a
   * dead port).
   */
  cut(mode?: 'blackhole' | 'reset'): void;
  /** Forward again: paused connections resume where they were, connections opened while cut are dropped. */
  heal(): void;
  readonly isCut: boolean;
}

interface ProxiedPair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
}

/** A loopback TCP proxy to `targetPort`, to cut one client off from a server the others still reach. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<ProxiedPair>();
  const held = new Set<net.Socket>();
  let isCut = false;
  const server = net.createServer((client) => {
    client.on('error', () => {});
    if (isCut) {
      held.add(client); // a black hole: accepted, never answered
      client.on('close', () => held.delete(client));
      return;
    }
    const upstream = net.connect({ host: REDIS_HOST, port: targetPort });
    upstream.on('error', () => {});
    const pair = { client, upstream };
    pairs.add(pair);
    const close = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: REDIS_HOST, port: 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const destroyAll = (): void => {
    for (const p of [...pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
    for (const s of [...held]) s.destroy();
  };
  const proxy: TcpProxy = {
    label: `tcp proxy ${port} -> ${targetPort}`,
    port,
    get isCut() {
      return isCut;
    },
    cut(mode: 'blackhole' | 'reset' = 'blackhole') {
      isCut = true;
      for (const p of [...pairs]) {
        if (mode === 'reset') {
          p.client.destroy();
          p.upstream.destroy();
          continue;
        }
        p.client.unpipe(p.upstream);
        p.upstream.unpipe(p.client);
        p.client.pause();
        p.upstream.pause();
      }
    },
    heal() {
      isCut = false;
      for (const s of [...held]) s.destroy();
      for (const p of pairs) {
        p.client.pipe(p.upstream);
        p.upstream.pipe(p.client);
      }
    },
    async dispose() {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    disposeSync() {
      destroyAll();
      server.close();
    },
  };
  return track(proxy);
}
