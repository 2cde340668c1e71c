/**
 * A twinsan pair for integration tests: two `twinsan node` processes, "a"
 * and "b", on loopback, each with its own temp dataDir, TWO replication
 * links, a status endpoint, and two volumes: v1 owned (served) by a, v2 by b.
 *
 *   const pair = await startPair({ sizeBytes: 64 * MiB });
 *   pair.url('v1')                 // iscsi://127.0.0.1:PORT/IQN/0 on node a
 *   await pair.waitInSync()        // both nodes report every volume in sync
 *   await pair.stop()              // SIGTERM both, bounded, SIGKILL fallback
 *   pair.backing('a', 'v1')        // node a's copy of v1
 *
 * `proxiedLinks: [1]` routes both directions of link 1 through TCP proxies
 * in the test process; pair.cutLink(1) destroys them (and every connection
 * through them) to take the link down for good.
 *
 * Every port is picked free on 127.0.0.1; a node that loses the race for
 * one (EADDRINUSE) makes the whole pair start again on new ports. Both
 * processes and the temp dirs are cleaned up even when a test fails
 * (cleanup.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, LOOPBACK } from '../../../scripts/lib/ports.mjs';
import { sleep, spawnDaemon } from '../../../scripts/lib/proc.mjs';
import type { Daemon } from '../../../scripts/lib/proc.mjs';
import { TWINSAN_BIN } from '../../../scripts/lib/targets.mjs';
import { track } from './cleanup';

export type PairNodeId = 'a' | 'b';
export type PairVolume = 'v1' | 'v2';

export const PAIR_VOLUMES: Readonly<Record<PairVolume, { readonly id: string; readonly owner: PairNodeId }>> = {
  v1: { id: '6f1d3c1e-7a52-4b8e-9c1a-0d2b5e8f4a11', owner: 'a' },
  v2: { id: '0b7e9f42-5c3d-4e6a-8f21-9a4c7d1e2b22', owner: 'b' },
};

/** What GET /status answers (src/resource-groups/node/node.ts NodeStatus), as far as tests read it. */
export interface PairNodeStatus {
  readonly nodeId: string;
  readonly state: string;
  readonly inSync: boolean;
  readonly peer: { readonly nodeId: string; readonly state: unknown; readonly channel: { readonly links: readonly PairLinkStats[] } | null };
  readonly volumes: readonly {
    readonly id: string;
    readonly name: string;
    readonly role: string;
    readonly inSync: boolean;
    readonly mirror: { readonly replication?: string } & Record<string, unknown>;
  }[];
  readonly targets: readonly { readonly name: string; readonly iqn: string; readonly urls: readonly string[] }[];
}

/** One replication link's counters as the mirror reports them (src/mirror/link LinkStats). */
export interface PairLinkStats {
  readonly index: number;
  readonly up: boolean;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly connects: number;
  readonly lastError: string | null;
}

export interface PairNode {
  readonly id: PairNodeId;
  readonly dir: string;
  readonly configPath: string;
  /** The config file's content. */
  readonly config: Record<string, unknown>;
  readonly iscsiPort: number;
  readonly statusUrl: string;
  readonly daemon: Daemon;
  status(): Promise<PairNodeStatus>;
}

export interface StartPairOptions {
  /** Size of both volumes (default 64 MiB). */
  readonly sizeBytes?: number;
  readonly thin?: boolean;
  /** Link indexes (0 or 1) whose connections go through proxies that cutLink() destroys. */
  readonly proxiedLinks?: readonly number[];
  /** How long both nodes get to come up (default 30 s). */
  readonly readyTimeoutMs?: number;
  /** log.level of both nodes (default "info"; TWINSAN_LOG_LEVEL overrides it). */
  readonly logLevel?: string;
}

export interface StopResult {
  readonly a: number;
  readonly b: number;
}

export interface Pair {
  readonly label: string;
  readonly a: PairNode;
  readonly b: PairNode;
  readonly sizeBytes: number;
  node(id: PairNodeId): PairNode;
  /** LUN 0 of the volume's target on its owner. */
  url(volume: PairVolume): string;
  iqn(volume: PairVolume): string;
  /** A node's copy of a volume. */
  backing(node: PairNodeId, volume: PairVolume): string;
  /** Resolves when both nodes report every volume in sync; rejects with both statuses after `timeoutMs`. */
  waitInSync(timeoutMs?: number): Promise<void>;
  /** Destroy the proxies of a proxied link: its connections drop and it cannot reconnect. */
  cutLink(index: number): void;
  /** SIGTERM both nodes at once, wait (bounded), SIGKILL the laggards; their exit statuses. */
  stop(options?: { readonly timeoutMs?: number }): Promise<StopResult>;
  /** Both nodes' output, for assertion messages. */
  logs(): string;
  dispose(): Promise<void>;
  disposeSync(): void;
}

const NODE_IDS: readonly PairNodeId[] = ['a', 'b'];
const LINKS = 2;

/** Start the pair and wait until both nodes run (not necessarily in sync yet). */
export async function startPair(options: StartPairOptions = {}): Promise<Pair> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startPairOnce(options);
    } catch (err) {
      lastError = err;
      if (!/EADDRINUSE|address already in use/i.test((err as Error).message)) break;
    }
  }
  throw lastError;
}

/** `count` distinct free loopback ports. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort(LOOPBACK));
  return [...ports];
}

interface NodePorts {
  readonly iscsi: number;
  readonly status: number;
  readonly links: readonly number[];
}

async function startPairOnce(options: StartPairOptions): Promise<Pair> {
  const sizeBytes = options.sizeBytes ?? 64 * 1024 * 1024;
  const proxied = new Set(options.proxiedLinks ?? []);
  for (const i of proxied) if (!Number.isInteger(i) || i < 0 || i >= LINKS) throw new Error(`no link ${i} to proxy (links are 0..${LINKS - 1})`);
  const root = await mkdtemp(path.join(os.tmpdir(), 'twinsan-pair-'));
  const proxies = new Map<number, TcpProxy[]>();
  const daemons: Daemon[] = [];
  const killAll = (): void => {
    for (const d of daemons) d.killSync();
    for (const list of proxies.values()) for (const p of list) p.destroy();
  };
  try {
    const all = await freePorts(2 * (2 + LINKS));
    const ports: Record<PairNodeId, NodePorts> = {
      a: { iscsi: all[0]!, status: all[1]!, links: all.slice(2, 2 + LINKS) },
      b: { iscsi: all[2 + LINKS]!, status: all[3 + LINKS]!, links: all.slice(4 + LINKS) },
    };
    // Where each node dials link i of the other: directly, or via a proxy forwarding to it.
    const dialTarget = (from: PairNodeId, i: number): number => ports[from === 'a' ? 'b' : 'a'].links[i]!;
    const dialAddress: Record<PairNodeId, number[]> = { a: [], b: [] };
    for (let i = 0; i < LINKS; i++) {
      for (const from of NODE_IDS) {
        if (proxied.has(i)) {
          const proxy = await startTcpProxy(dialTarget(from, i));
          proxies.set(i, [...(proxies.get(i) ?? []), proxy]);
          dialAddress[from][i] = proxy.port;
        } else {
          dialAddress[from][i] = dialTarget(from, i);
        }
      }
    }

    const secret = randomBytes(24).toString('base64');
    const clusterId = `test-${process.pid}-${ports.a.iscsi}`;
    const nodes = {} as Record<PairNodeId, PairNode>;
    for (const id of NODE_IDS) {
      const dir = path.join(root, id);
      const peer: PairNodeId = id === 'a' ? 'b' : 'a';
      const config = {
        nodeId: id,
        clusterId,
        dataDir: dir,
        iscsi: { listen: [`${LOOPBACK}:${ports[id].iscsi}`] },
        peer: {
          nodeId: peer,
          secret,
          links: ports[id].links.map((local, i) => ({ local: `${LOOPBACK}:${local}`, peer: `${LOOPBACK}:${dialAddress[id][i]}` })),
        },
        volumes: (Object.entries(PAIR_VOLUMES) as [PairVolume, (typeof PAIR_VOLUMES)[PairVolume]][]).map(([name, v]) => ({
          id: v.id,
          name,
          iqn: iqnOf(clusterId, name),
          sizeBytes,
          thin: options.thin ?? true,
          owner: v.owner,
        })),
        log: { level: options.logLevel ?? 'info' },
        status: { listen: `${LOOPBACK}:${ports[id].status}` },
      };
      const configPath = path.join(root, `node-${id}.json`);
      await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
      const daemon = spawnDaemon(process.execPath, [TWINSAN_BIN, 'node', '--config', configPath], { label: `twinsan node ${id}` });
      daemons.push(daemon);
      const statusUrl = `http://${LOOPBACK}:${ports[id].status}/status`;
      nodes[id] = { id, dir, configPath, config, iscsiPort: ports[id].iscsi, statusUrl, daemon, status: () => fetchStatus(statusUrl) };
    }

    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    await Promise.all(NODE_IDS.map((id) => waitRunning(nodes[id], deadline)));
    return makePair(root, sizeBytes, clusterId, nodes, proxies, killAll);
  } catch (err) {
    killAll();
    await Promise.all(daemons.map((d) => d.exited));
    const logs = daemons.map((d) => `--- ${d.label} stderr ---\n${d.stderr().slice(-4000)}\n--- ${d.label} stdout ---\n${d.stdout().slice(-4000)}`).join('\n');
    await rm(root, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
}

function iqnOf(clusterId: string, volume: PairVolume): string {
  return `iqn.2026-11.io.twinsan.test:${clusterId}-${volume}`;
}

async function fetchStatus(url: string): Promise<PairNodeStatus> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as PairNodeStatus;
}

async function waitRunning(node: PairNode, deadline: number): Promise<void> {
  for (;;) {
    node.daemon.assertRunning('before it was running');
    try {
      if ((await node.status()).state === 'running') return;
    } catch {
      // not listening yet
    }
    if (Date.now() >= deadline) throw new Error(`node ${node.id} was not running by the deadline`);
    await sleep(100);
  }
}

function makePair(
  root: string,
  sizeBytes: number,
  clusterId: string,
  nodes: Record<PairNodeId, PairNode>,
  proxies: Map<number, TcpProxy[]>,
  killAll: () => void,
): Pair {
  let stopping: Promise<StopResult> | undefined;
  const pair: Pair = {
    label: `twinsan pair in ${root}`,
    a: nodes.a,
    b: nodes.b,
    sizeBytes,
    node: (id) => nodes[id],
    iqn: (volume) => iqnOf(clusterId, volume),
    url: (volume) => `iscsi://${LOOPBACK}:${nodes[PAIR_VOLUMES[volume].owner].iscsiPort}/${iqnOf(clusterId, volume)}/0`,
    backing: (node, volume) => path.join(nodes[node].dir, `${volume}.img`),
    async waitInSync(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown[] = [];
      for (;;) {
        for (const id of NODE_IDS) nodes[id].daemon.assertRunning('while waiting for the pair to be in sync');
        try {
          const statuses = await Promise.all(NODE_IDS.map((id) => nodes[id].status()));
          last = statuses;
          if (statuses.every((s) => s.inSync)) return;
        } catch (err) {
          last = [String(err)];
        }
        if (Date.now() >= deadline) throw new Error(`the pair was not in sync within ${timeoutMs} ms; last status:\n${JSON.stringify(last, null, 2)}`);
        await sleep(200);
      }
    },
    cutLink(index) {
      const list = proxies.get(index);
      if (!list) throw new Error(`link ${index} is not proxied`);
      for (const p of list) p.destroy();
    },
    stop(options = {}) {
      stopping ??= (async () => {
        const [a, b] = await Promise.all(NODE_IDS.map((id) => nodes[id].daemon.stop({ signal: 'SIGTERM', timeoutMs: options.timeoutMs ?? 15_000 })));
        for (const list of proxies.values()) for (const p of list) p.destroy();
        return { a: a!, b: b! };
      })();
      return stopping;
    },
    logs() {
      return NODE_IDS.map((id) => `--- node ${id} stderr ---\n${nodes[id].daemon.stderr().slice(-6000)}\n--- node ${id} stdout ---\n${nodes[id].daemon.stdout().slice(-6000)}`).join('\n');
    },
    async dispose() {
      await pair.stop();
      await rm(root, { recursive: true, force: true });
    },
    disposeSync() {
      killAll();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return track(pair);
}

/* ---------------- a TCP proxy whose destruction takes a link down ---------------- */

export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stop accepting and reset every connection through the proxy. */
  destroy(): void;
}

/** Forward every connection made to a free loopback port to `targetPort`. */
export async function startTcpProxy(targetPort: number, host = LOOPBACK): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let destroyed = false;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect({ host, port: targetPort });
    sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      server.close();
      for (const s of sockets) s.resetAndDestroy();
      sockets.clear();
    },
  };
}
