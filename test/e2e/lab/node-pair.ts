/**
 * Two `twinsan node` processes with one resource group, for the e2e tests
 * of moves and takeovers: a bridged lab LAN (198.18.0.0/24 only) with
 *
 *   a 198.18.0.1  node-a, preferred owner of rg1 (alias 198.18.0.50/24 on eth1)
 *   b 198.18.0.2  node-b
 *   h 198.18.0.3  the initiator and the witness (redis-server :6379)
 *
 * one mirrored volume v1 in rg1 (two replication links, front-end
 * heartbeat 200 ms / dead 900 ms), and each node's loopback status endpoint
 * on 127.0.0.1:`statusPort` inside its namespace (GET /status, POST
 * /move?rg= ...). Needs root, redis-server and a fresh build (dist/).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLan, Lan } from './lan';
import { LabProcess, Namespace, newRunId, removeStaleNamespaces } from './netns';

export const PAIR_BIN = path.resolve(__dirname, '../../../dist/cli/bin.js');
export const PAIR_IQN = 'iqn.2026-11.io.twinsan.lab:v1';
export const PAIR_ALIAS = '198.18.0.50';
const SECRET = 'lab secret of twenty-four bytes';

export type NodeName = 'a' | 'b';

export interface PairOptions {
  /** Names the temporary directory and the cluster id. */
  readonly name: string;
  /** TCP port of each node's loopback status endpoint (inside its own namespace). */
  readonly statusPort: number;
}

interface RunningNode {
  readonly proc: LabProcess;
  tail: string;
}

/** Polls `probe` every 100 ms until it yields a truthy value, or throws after `ms`. */
export async function until<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export class NodePair {
  private readonly nodes = new Map<NodeName, RunningNode>();
  private readonly others: LabProcess[] = [];

  private constructor(
    readonly lan: Lan,
    readonly dir: string,
    private readonly options: PairOptions,
  ) {}

  /** Builds the LAN, writes both configs and starts the witness (the nodes are started with start()). */
  static async create(options: PairOptions): Promise<NodePair> {
    if (!existsSync(path.resolve(__dirname, '../../../dist/resource-groups/node-groups.js'))) throw new Error('build first: npm run build:ts');
    await removeStaleNamespaces();
    const dir = await mkdtemp(path.join(os.tmpdir(), `tsan-${options.name}-`));
    const lan = await createLan(newRunId(), [
      { name: 'a', ipv4: '198.18.0.1/24' },
      { name: 'b', ipv4: '198.18.0.2/24' },
      { name: 'h', ipv4: '198.18.0.3/24' },
    ]);
    const pair = new NodePair(lan, dir, options);
    for (const s of ['a', 'b'] as const) await writeFile(path.join(dir, `node-${s}.json`), JSON.stringify(pair.config(s), null, 2));
    await pair.startWitness();
    return pair;
  }

  ns(name: NodeName | 'h'): Namespace {
    return this.lan.station(name).ns;
  }

  private config(self: NodeName): unknown {
    const me = self === 'a' ? 1 : 2;
    const other = self === 'a' ? 2 : 1;
    return {
      nodeId: `node-${self}`,
      clusterId: this.options.name,
      dataDir: path.join(this.dir, self),
      iscsi: { listen: [`198.18.0.${me}:3260`] },
      peer: {
        nodeId: self === 'a' ? 'node-b' : 'node-a',
        secret: SECRET,
        links: [
          { local: `198.18.0.${me}:7001`, peer: `198.18.0.${other}:7001` },
          { local: `198.18.0.${me}:7002`, peer: `198.18.0.${other}:7002` },
        ],
      },
      heartbeat: { local: `198.18.0.${me}:7400`, peer: `198.18.0.${other}:7400`, intervalMs: 200, deadMs: 900 },
      witness: { redis: '198.18.0.3:6379' },
      volumes: [{ id: '3c0ffee0-1111-4222-8333-444455556666', name: 'v1', iqn: PAIR_IQN, sizeBytes: 64 * 1024 * 1024, thin: true }],
      resourceGroups: [{ name: 'rg1', preferredNode: 'node-a', aliasIps: [{ address: PAIR_ALIAS, prefix: 24, interface: 'eth1' }], volumes: ['v1'], failback: 'manual' }],
      log: { level: 'info' },
      status: { listen: `127.0.0.1:${this.options.statusPort}` },
    };
  }

  private async startWitness(): Promise<void> {
    const h = this.ns('h');
    const redis = h.spawn('redis-server', ['--bind', '198.18.0.3', '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', this.dir], 'redis');
    this.others.push(redis);
    let out = '';
    redis.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    redis.child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await until('redis', 10_000, async () => (await h.exec('redis-cli', ['-h', '198.18.0.3', 'ping'], { allowFailure: true })).stdout.includes('PONG')).catch((err: Error) => {
      throw new Error(`${err.message}\n${out}`);
    });
  }

  /** Starts (or restarts) a node. */
  start(self: NodeName): LabProcess {
    const proc = this.ns(self).spawn(process.execPath, [PAIR_BIN, 'node', '--config', path.join(this.dir, `node-${self}.json`)], `node-${self}`);
    const node: RunningNode = { proc, tail: '' };
    const keep = (d: Buffer): void => {
      node.tail = (node.tail + d.toString()).slice(-40_000);
    };
    proc.child.stdout!.on('data', keep);
    proc.child.stderr!.on('data', keep);
    this.nodes.set(self, node);
    return proc;
  }

  /** SIGKILL, and wait for it to be gone. */
  async kill(self: NodeName): Promise<void> {
    const n = this.nodes.get(self);
    if (!n) return;
    n.proc.child.kill('SIGKILL');
    await n.proc.exited;
  }

  /** The last lines the node printed (its pino log). */
  tail(self: NodeName): string {
    return this.nodes.get(self)?.tail ?? '';
  }

  /** GET /status on the node's loopback endpoint; null when it does not answer. */
  async status(self: NodeName): Promise<any> {
    const r = await this.ns(self).exec(
      process.execPath,
      ['-e', `fetch('http://127.0.0.1:${this.options.statusPort}/status').then(r=>r.text()).then(t=>process.stdout.write(t)).catch(()=>process.exit(3))`],
      { allowFailure: true, timeoutMs: 5000 },
    );
    return r.code === 0 ? JSON.parse(r.stdout) : null;
  }

  /** rg1's state on the node ('serving', 'stopped', ...), or null. */
  async rgState(self: NodeName): Promise<string | null> {
    return (await this.status(self))?.resourceGroups?.groups?.[0]?.state ?? null;
  }

  /** POST to the node's loopback endpoint (e.g. '/move?rg=rg1'). */
  async post(self: NodeName, pathAndQuery: string): Promise<{ code: number; body: string }> {
    const r = await this.ns(self).exec(
      process.execPath,
      [
        '-e',
        `fetch('http://127.0.0.1:${this.options.statusPort}${pathAndQuery}',{method:'POST'}).then(async r=>{process.stdout.write(r.status+' '+await r.text())}).catch(e=>{process.stdout.write('0 '+e.message)})`,
      ],
      { allowFailure: true, timeoutMs: 60_000 },
    );
    const [code, ...rest] = r.stdout.split(' ');
    return { code: Number(code), body: rest.join(' ') };
  }

  /** Starts both nodes and waits until a serves rg1 and b's copy is in sync. */
  async startBoth(): Promise<void> {
    this.start('a');
    this.start('b');
    try {
      await until('rg1 serving on a', 30_000, async () => (await this.rgState('a')) === 'serving');
      await until('v1 in sync on b', 60_000, async () => (await this.status('b'))?.inSync === true);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nnode-a:\n${this.tail('a')}\nnode-b:\n${this.tail('b')}`);
    }
  }

  /** Stops every process and removes the namespaces and the directory. */
  async destroy(): Promise<void> {
    for (const n of this.nodes.values()) await n.proc.stop(2000).catch(() => undefined);
    for (const p of this.others) await p.stop(2000).catch(() => undefined);
    await this.lan.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}
