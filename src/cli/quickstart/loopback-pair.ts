/**
 * The quickstart's pair without root: two `twinsan node` processes on
 * 127.0.0.1, child processes of this one, mirroring two volumes over two
 * replication links — v-a served by node a, v-b by node b — with the same
 * mirroring as the lab but no resource groups (alias IPs need root).
 *
 * Ports, from a base P: iSCSI P (a) and P+1 (b); replication links P+10,
 * P+11 (a) and P+12, P+13 (b); status endpoints P+20 (a) and P+21 (b); REST
 * APIs P+30 (a) and P+31 (b), each with its token in <dataDir>/api.token.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, parseNodeConfig } from '../../resource-groups';
import { TWINSAN_BIN } from '../lab';

export const DEFAULT_BASE_PORT = 13260;
/** The highest port the pair uses is the base + this. */
export const LAST_PORT_OFFSET = 31;
const IQN_BASE = 'iqn.2026-11.io.twinsan.quickstart';
const NODES = ['a', 'b'] as const;
type PairNodeId = (typeof NODES)[number];

export interface LoopbackNode {
  readonly id: PairNodeId;
  readonly pid: number;
  readonly statusUrl: string;
  /** The REST API's base URL and the file holding its token. */
  readonly api: string;
  readonly tokenFile: string;
  readonly log: string;
  /** iscsi:// URL of the volume this node serves. */
  readonly url: string;
  readonly volume: string;
}

export interface LoopbackPairOptions {
  readonly dir: string;
  readonly basePort: number;
  readonly volumeSizeBytes: number;
  readonly readyTimeoutMs: number;
  readonly signal?: AbortSignal;
}

interface Ports {
  readonly iscsi: number;
  readonly links: readonly [number, number];
  readonly status: number;
  readonly api: number;
}

function portsOf(base: number, id: PairNodeId): Ports {
  const i = id === 'a' ? 0 : 1;
  return { iscsi: base + i, links: [base + 10 + 2 * i, base + 11 + 2 * i], status: base + 20 + i, api: base + 30 + i };
}

export function checkBasePort(base: number): string | null {
  return Number.isInteger(base) && base >= 1024 && base + LAST_PORT_OFFSET <= 65535
    ? null
    : `base port ${base} must be 1024..${65535 - LAST_PORT_OFFSET} (the pair uses ports up to ${LAST_PORT_OFFSET} above it)`;
}

function nodeConfig(id: PairNodeId, o: LoopbackPairOptions, secretFile: string, volumeIds: Readonly<Record<PairNodeId, string>>): Record<string, unknown> {
  const peer: PairNodeId = id === 'a' ? 'b' : 'a';
  const mine = portsOf(o.basePort, id);
  const theirs = portsOf(o.basePort, peer);
  return {
    nodeId: id,
    clusterId: 'quickstart',
    dataDir: path.join(o.dir, `node-${id}`),
    iscsi: { listen: [`127.0.0.1:${mine.iscsi}`] },
    peer: {
      nodeId: peer,
      secretFile,
      links: mine.links.map((port, i) => ({ local: `127.0.0.1:${port}`, peer: `127.0.0.1:${theirs.links[i]}` })),
    },
    volumes: NODES.map((owner) => ({ id: volumeIds[owner], name: `v-${owner}`, iqn: `${IQN_BASE}:v-${owner}`, sizeBytes: o.volumeSizeBytes, thin: true, owner })),
    status: { listen: `127.0.0.1:${mine.status}` },
    api: { listen: `127.0.0.1:${mine.api}` },
    log: { level: 'info' },
  };
}

/** The two node processes; stop() ends them (SIGTERM, then SIGKILL) and resolves when both are gone. */
export class LoopbackPair {
  private constructor(
    readonly nodes: readonly LoopbackNode[],
    private readonly children: readonly ChildProcess[],
  ) {}

  static async start(o: LoopbackPairOptions): Promise<LoopbackPair> {
    const secretFile = path.join(o.dir, 'pair.secret');
    await writeFile(secretFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const volumeIds = { a: randomUUID(), b: randomUUID() };
    const children: ChildProcess[] = [];
    const nodes: LoopbackNode[] = [];
    const pair = new LoopbackPair(nodes, children);
    try {
      for (const id of NODES) {
        const config = nodeConfig(id, o, secretFile, volumeIds);
        const file = path.join(o.dir, `node-${id}.json`);
        try {
          await parseNodeConfig(config, { file });
        } catch (err) {
          if (err instanceof ConfigError) throw new Error(`the quickstart made a node config the node would refuse:\n${err.message}`);
          throw err;
        }
        await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
        const log = path.join(o.dir, `node-${id}.log`);
        const fd = openSync(log, 'a', 0o600);
        let child: ChildProcess;
        try {
          // Own process group: a Ctrl-C at the terminal reaches only the quickstart, which stops the nodes in order.
          child = spawn(process.execPath, [TWINSAN_BIN, 'node', 'start', '--config', file], { stdio: ['ignore', fd, fd], detached: true });
        } finally {
          closeSync(fd);
        }
        child.once('error', () => undefined); // seen as the missing pid, or as the node not answering
        if (child.pid === undefined) throw new Error(`cannot start node ${id}`);
        children.push(child);
        const ports = portsOf(o.basePort, id);
        nodes.push({
          id,
          pid: child.pid,
          statusUrl: `http://127.0.0.1:${ports.status}/status`,
          api: `http://127.0.0.1:${ports.api}`,
          tokenFile: path.join(o.dir, `node-${id}`, 'api.token'),
          log,
          url: `iscsi://127.0.0.1:${ports.iscsi}/${IQN_BASE}:v-${id}/0`,
          volume: `v-${id}`,
        });
      }
      await pair.waitReady(o.readyTimeoutMs, o.signal);
    } catch (err) {
      await pair.stop();
      throw err;
    }
    return pair;
  }

  private async waitReady(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (signal?.aborted) throw new Error('interrupted while waiting for the pair');
      const dead = this.nodes.find((_, i) => this.children[i]!.exitCode !== null || this.children[i]!.signalCode !== null);
      if (dead) throw new Error(`node ${dead.id} exited (see ${dead.log})`);
      const views = await Promise.all(this.nodes.map((n) => status(n.statusUrl)));
      if (views.every((v) => v?.state === 'running' && v.inSync === true) && (await Promise.all(this.nodes.map((n) => apiUp(n.api)))).every(Boolean)) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(ms / 1000)} s waiting for both nodes to run in sync (logs: ${this.nodes.map((n) => n.log).join(', ')})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async stop(graceMs = 5000): Promise<void> {
    const running = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    const exits = running.map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve())));
    for (const c of running) c.kill('SIGTERM');
    const killer = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), graceMs);
    await Promise.all(exits);
    clearTimeout(killer);
  }

  /** Resolves when a node process ends (by itself or killed from outside) with its id and exit. */
  onExit(cb: (id: string, code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.children.forEach((c, i) => c.once('exit', (code, signal) => cb(this.nodes[i]!.id, code, signal)));
  }
}

async function apiUp(base: string): Promise<boolean> {
  try {
    return (await fetch(`${base}/api/v1/health`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

async function status(url: string): Promise<{ state?: unknown; inSync?: unknown } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as { state?: unknown; inSync?: unknown }) : null;
  } catch {
    return null;
  }
}
