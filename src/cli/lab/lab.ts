/**
 * The one-machine failover lab: `twinsan lab up | start-node | down`.
 *
 * up builds the namespaces of plan.ts, starts a redis-server witness and two
 * `twinsan node` processes (detached, logging to files in the lab
 * directory, so they outlive the CLI), waits until rg-a is served by node a,
 * rg-b by node b, both volumes are in sync and both alias IPs accept iSCSI
 * connections from the client namespace, then writes lab.json.
 *
 * Everything up makes is recorded in lab-state.json before it is made, so
 * down removes exactly that, after a complete, partial or interrupted up,
 * and a second down finds nothing to do. A failed up removes what it made
 * itself (after reading the logs into its error).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { generateToken } from '../../api';
import { ConfigError, parseNodeConfig } from '../../resource-groups';
import { createLan } from './lan';
import { LAB_FILE, LabFile, LabNodeEntry, LabState, STATE_FILE, readLabFile, readState, writeJsonAtomic } from './lab-file';
import { LabNodeApi } from './node-api';
import { LabConfigInput, labNodeConfig, nodeConfigFile, nodeDataDir, nodeLogFile, nodeTokenFile, restApiUrl, statusUrl } from './node-config';
import { deleteNamespace, killQuietly, labEnv, listNamespaces, namespacePids, requireRoot } from './netns';
import { NamespaceAgent } from './ns-agent';
import {
  FRONT_ADDRESSES,
  FRONT_PREFIX_LENGTH,
  GROUPS,
  LAB_NODE_IDS,
  LabNodeId,
  PORTS,
  REPLICATION_LINKS,
  checkPrefix,
  iqnOf,
  lunUrlOf,
  namespacesOf,
  witnessUrl,
} from './plan';

/** dist/cli/bin.js, from dist/cli/lab (the CLI) and from src/cli/lab (tests importing the sources) alike. */
export const TWINSAN_BIN = path.resolve(__dirname, '..', '..', '..', 'dist', 'cli', 'bin.js');

export const DEFAULT_VOLUME_SIZE = 256 * 1024 * 1024;
const SECRET_FILE = 'pair.secret';
const WITNESS_DIR = 'witness';
const WITNESS_LOG = 'witness.log';

export interface LabLog {
  (line: string): void;
}

export interface UpOptions {
  readonly dir: string;
  readonly prefix: string;
  readonly volumeSizeBytes?: number;
  /** Bound on the wait for the pair to serve and be in sync. */
  readonly readyTimeoutMs?: number;
  readonly log?: LabLog;
  /** Aborting stops the wait; the lab is then removed. */
  readonly signal?: AbortSignal;
}

const noLog: LabLog = () => undefined;

/** Records what up makes, before it makes it. */
class StateRecorder {
  private state: LabState;

  constructor(
    private readonly dir: string,
    initial: LabState,
  ) {
    this.state = initial;
  }

  save(): Promise<void> {
    return writeJsonAtomic(path.join(this.dir, STATE_FILE), this.state);
  }

  async files(...names: string[]): Promise<void> {
    this.state = { ...this.state, files: [...this.state.files, ...names.filter((n) => !this.state.files.includes(n))] };
    await this.save();
  }
}

export async function labUp(o: UpOptions): Promise<LabFile> {
  requireRoot('lab up', ['ip', 'redis-server']);
  const prefixProblem = checkPrefix(o.prefix);
  if (prefixProblem) throw new Error(prefixProblem);
  const log = o.log ?? noLog;
  const dir = path.resolve(o.dir);
  const dirCreated = await prepareDirectory(dir);

  const names = namespacesOf(o.prefix);
  const existing = new Set(await listNamespaces());
  const taken = Object.values(names).filter((n) => existing.has(n));
  if (taken.length > 0) {
    if (dirCreated) await rmdir(dir).catch(() => undefined);
    throw new Error(`namespace ${taken.join(', ')} already exists: another lab uses prefix "${o.prefix}" (twinsan lab down --dir ITS_DIR, or --prefix OTHER)`);
  }
  // Recorded before they are made (none existed a moment ago), so an interrupted up leaves nothing down cannot find.
  const recorder = new StateRecorder(dir, { prefix: o.prefix, dirCreated, namespaces: Object.values(names), files: [] });
  await recorder.save();

  const agents: NamespaceAgent[] = [];
  try {
    return await buildLab(dir, o, recorder, agents, log);
  } catch (err) {
    const logs = await logTails(dir);
    log(`lab up failed: ${(err as Error).message}; removing what it made`);
    for (const agent of agents) await agent.close().catch(() => undefined);
    agents.length = 0;
    await labDown(dir, { log }).catch((downErr: unknown) => log(`lab down after the failed up: ${(downErr as Error).message}`));
    throw new Error(`${(err as Error).message}${logs}`);
  } finally {
    for (const agent of agents) await agent.close().catch(() => undefined);
  }
}

/** Creates DIR if missing; refuses one that already holds a lab. Resolves with whether it created it. */
async function prepareDirectory(dir: string): Promise<boolean> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return true;
  }
  for (const name of [STATE_FILE, LAB_FILE]) {
    if (await exists(path.join(dir, name))) throw new Error(`${dir} already holds a lab (${name}): twinsan lab down --dir ${dir} first`);
  }
  return false;
}

async function buildLab(dir: string, o: UpOptions, recorder: StateRecorder, agents: NamespaceAgent[], log: LabLog): Promise<LabFile> {
  const names = namespacesOf(o.prefix);
  const checkAbort = (): void => {
    if (o.signal?.aborted) throw new Error('interrupted');
  };

  log(`namespaces ${Object.values(names).join(', ')}`);
  const lan = await createLan(
    o.prefix,
    [
      { name: 'a', ipv4: `${FRONT_ADDRESSES.a}/${FRONT_PREFIX_LENGTH}` },
      { name: 'b', ipv4: `${FRONT_ADDRESSES.b}/${FRONT_PREFIX_LENGTH}` },
      { name: 'witness', ipv4: `${FRONT_ADDRESSES.witness}/${FRONT_PREFIX_LENGTH}` },
      { name: 'client', ipv4: `${FRONT_ADDRESSES.client}/${FRONT_PREFIX_LENGTH}` },
    ],
    { keepAfterExit: true },
  );
  const nsA = lan.station('a').ns;
  const nsB = lan.station('b').ns;
  for (const link of REPLICATION_LINKS) {
    // Both ends made from inside the lab: created in a, the peer end moved straight into b.
    await nsA.ip('link', 'add', link.ifname, 'type', 'veth', 'peer', 'name', link.ifname, 'netns', nsB.name);
    await nsA.ip('addr', 'add', `${link.a}/${link.prefixLength}`, 'dev', link.ifname);
    await nsB.ip('addr', 'add', `${link.b}/${link.prefixLength}`, 'dev', link.ifname);
    await nsA.ip('link', 'set', link.ifname, 'up');
    await nsB.ip('link', 'set', link.ifname, 'up');
  }
  checkAbort();

  const files = [SECRET_FILE, WITNESS_DIR, WITNESS_LOG, ...LAB_NODE_IDS.flatMap((id) => [nodeConfigFile(dir, id), nodeTokenFile(dir, id), nodeDataDir(dir, id), nodeLogFile(dir, id)].map((f) => path.basename(f))), LAB_FILE];
  await recorder.files(...files);
  const secretFile = path.join(dir, SECRET_FILE);
  await writeFile(secretFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const input: LabConfigInput = {
    dir,
    clusterId: `lab-${o.prefix}`,
    secretFile,
    volumes: GROUPS.map((g) => ({ name: g.volume, id: randomUUID() })),
    sizeBytes: o.volumeSizeBytes ?? DEFAULT_VOLUME_SIZE,
  };
  // Each node's API token is made here (the node takes an existing token file as it is), so lab.json can carry it.
  const tokens = {} as Record<LabNodeId, string>;
  for (const id of LAB_NODE_IDS) {
    tokens[id] = generateToken();
    await writeFile(nodeTokenFile(dir, id), `${tokens[id]}\n`, { mode: 0o600 });
  }
  for (const id of LAB_NODE_IDS) {
    const config = labNodeConfig(id, input);
    const file = nodeConfigFile(dir, id);
    await checkNodeConfig(config, file);
    await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  }

  log(`witness: redis-server at ${witnessUrl()} in ${names.witness}`);
  await mkdir(path.join(dir, WITNESS_DIR), { mode: 0o700 });
  const witness = startDetached(
    names.witness,
    'redis-server',
    ['--bind', FRONT_ADDRESSES.witness, '--port', String(PORTS.witness), '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', path.join(dir, WITNESS_DIR)],
    path.join(dir, WITNESS_LOG),
  );
  const agentOf = { a: NamespaceAgent.start(names.a), b: NamespaceAgent.start(names.b), client: NamespaceAgent.start(names.client) };
  agents.push(agentOf.a, agentOf.b, agentOf.client);
  await waitFor('the witness to accept connections from both nodes', 15_000, o.signal, async () => {
    if (!witness.running()) throw new Error(`redis-server exited (see ${path.join(dir, WITNESS_LOG)})`);
    return (await agentOf.a.canConnect(FRONT_ADDRESSES.witness, PORTS.witness)) && (await agentOf.b.canConnect(FRONT_ADDRESSES.witness, PORTS.witness));
  });

  const started = {} as Record<LabNodeId, DetachedProcess>;
  for (const id of LAB_NODE_IDS) {
    log(`node ${id}: ${[process.execPath, TWINSAN_BIN, 'node', 'start', '--config', nodeConfigFile(dir, id)].join(' ')} in ${names[id]}`);
    started[id] = startNode(names[id], nodeConfigFile(dir, id), nodeLogFile(dir, id));
  }
  const apis = { a: new LabNodeApi(agentOf.a, statusUrl(), restApiUrl('a'), tokens.a), b: new LabNodeApi(agentOf.b, statusUrl(), restApiUrl('b'), tokens.b) };
  log('waiting until rg-a is served by a, rg-b by b, and both volumes are in sync');
  await waitFor('both resource groups serving and both volumes in sync', o.readyTimeoutMs ?? 120_000, o.signal, async () => {
    for (const id of LAB_NODE_IDS) {
      if (!started[id].running()) throw new Error(`node ${id} exited (see ${nodeLogFile(dir, id)})`);
    }
    const views = { a: await apis.a.view(), b: await apis.b.view() };
    for (const g of GROUPS) {
      if (views[g.preferredNode]?.groups.get(g.name) !== 'serving') return false;
    }
    if (!views.a?.inSync || !views.b?.inSync) return false;
    for (const g of GROUPS) if (!(await agentOf.client.canConnect(g.alias, PORTS.iscsi))) return false;
    // The REST API starts once the node runs: both answer from the client namespace.
    for (const id of LAB_NODE_IDS) if (!(await agentOf.client.canConnect(FRONT_ADDRESSES[id], PORTS.restApi))) return false;
    return true;
  });

  const nodes: LabNodeEntry[] = [];
  for (const id of LAB_NODE_IDS) {
    const ns = lan.station(id);
    nodes.push({
      id,
      netns: ns.ns.name,
      pid: started[id].pid,
      api: restApiUrl(id),
      token: tokens[id],
      tokenFile: nodeTokenFile(dir, id),
      status: statusUrl(),
      frontMac: ns.mac,
      frontIp: FRONT_ADDRESSES[id],
      config: nodeConfigFile(dir, id),
      log: nodeLogFile(dir, id),
      volumes: GROUPS.map((g) => ({ name: g.volume, backing: path.join(nodeDataDir(dir, id), `${g.volume}.img`) })),
    });
  }
  const lab: LabFile = {
    prefix: o.prefix,
    client: { netns: names.client, frontIp: FRONT_ADDRESSES.client },
    witness: { url: witnessUrl(), pid: witness.pid, netns: names.witness, log: path.join(dir, WITNESS_LOG) },
    nodes,
    resourceGroups: GROUPS.map((g) => ({
      name: g.name,
      preferredNode: g.preferredNode,
      aliasIps: [g.alias],
      volumes: [g.volume],
      targets: [{ iqn: iqnOf(g.volume), url: lunUrlOf(g.alias, g.volume) }],
    })),
  };
  await writeJsonAtomic(path.join(dir, LAB_FILE), lab);
  return lab;
}

async function checkNodeConfig(config: Record<string, unknown>, file: string): Promise<void> {
  try {
    // The secret file exists already; the parse reads it as the node will.
    await parseNodeConfig(config, { file });
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`the lab made a node config the node would refuse:\n${err.message}`);
    throw err;
  }
}

/** What this process started with startDetached and has not reaped yet: pid -> resolves once reaped. */
const ownChildren = new Map<number, Promise<void>>();

/**
 * Waits (at most `ms`) until the children among `pids` that this process started have been reaped. A
 * killed child is gone from its namespace at once but stays a zombie until its parent waits for it; if
 * this process ended first, the zombie would pass to init, and not every init reaps orphans.
 */
async function reapOwnChildren(pids: readonly number[], ms: number): Promise<void> {
  const pending = pids.flatMap((pid) => {
    const exited = ownChildren.get(pid);
    return exited ? [exited] : [];
  });
  if (pending.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(pending), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** A process started by startDetached. */
export interface DetachedProcess {
  readonly pid: number;
  /** Not exited yet (as long as this process lives, which reaps it). */
  running(): boolean;
}

/**
 * Starts `cmd` inside `netns`, detached from this process (own session, no
 * pipes: stdout and stderr append to `logFile`), so it outlives the CLI.
 * `ip netns exec` execs in place, so the pid is the command's.
 */
export function startDetached(netns: string, cmd: string, args: readonly string[], logFile: string): DetachedProcess {
  const fd = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { detached: true, stdio: ['ignore', fd, fd], env: labEnv() });
    child.once('error', () => undefined); // reported through the missing pid below, or running() turning false
    if (child.pid === undefined) throw new Error(`cannot start ${cmd} in ${netns}`);
    child.unref();
    const running = (): boolean => child.exitCode === null && child.signalCode === null;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    ownChildren.set(child.pid, exited);
    void exited.then(() => ownChildren.delete(child.pid!));
    return { pid: child.pid, running };
  } finally {
    closeSync(fd);
  }
}

function startNode(netns: string, configFile: string, logFile: string): DetachedProcess {
  return startDetached(netns, process.execPath, [TWINSAN_BIN, 'node', 'start', '--config', configFile], logFile);
}

/** Polls `probe` (every 200 ms) until it is true; throws after `ms`, when aborted, or when the probe throws. */
export async function waitFor(what: string, ms: number, signal: AbortSignal | undefined, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (signal?.aborted) throw new Error(`interrupted while waiting for ${what}`);
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function logTails(dir: string): Promise<string> {
  let out = '';
  for (const file of [...LAB_NODE_IDS.map((id) => nodeLogFile(dir, id)), path.join(dir, WITNESS_LOG)]) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.trim() === '') continue;
    out += `\n--- last lines of ${path.basename(file)}:\n${text.trimEnd().split('\n').slice(-15).join('\n')}`;
  }
  return out;
}

export interface StartNodeOptions {
  readonly readyTimeoutMs?: number;
  readonly log?: LabLog;
}

/** Starts lab node `id` again after it was killed, updates its pid in lab.json, and waits until it runs. */
export async function labStartNode(dirArg: string, id: string, o: StartNodeOptions = {}): Promise<LabNodeEntry> {
  requireRoot('lab start-node', ['ip']);
  const dir = path.resolve(dirArg);
  const lab = await readLabFile(dir);
  const entry = lab.nodes.find((n) => n.id === id);
  if (!entry) throw new Error(`no node "${id}" in ${path.join(dir, LAB_FILE)} (nodes: ${lab.nodes.map((n) => n.id).join(', ')})`);
  if (!(await listNamespaces()).includes(entry.netns)) throw new Error(`namespace ${entry.netns} is gone: the lab was taken down (twinsan lab up again)`);
  if ((await namespacePids(entry.netns)).includes(entry.pid)) throw new Error(`node ${id} is running (pid ${entry.pid}); kill it first (kill -9 ${entry.pid})`);

  await writeFile(entry.log, `--- twinsan lab start-node ${id} at ${new Date().toISOString()}\n`, { flag: 'a' });
  const node = startNode(entry.netns, entry.config, entry.log);
  const pid = node.pid;
  const updated: LabNodeEntry = { ...entry, pid };
  await writeJsonAtomic(path.join(dir, LAB_FILE), { ...lab, nodes: lab.nodes.map((n) => (n.id === id ? updated : n)) });
  o.log?.(`node ${id} started (pid ${pid}); waiting until it runs`);
  const agent = NamespaceAgent.start(entry.netns);
  try {
    const api = new LabNodeApi(agent, entry.status, entry.api, entry.token);
    await waitFor(`node ${id} to run`, o.readyTimeoutMs ?? 60_000, undefined, async () => {
      if (!node.running()) throw new Error(`node ${id} exited (see ${entry.log})${await logTails(dir)}`);
      return (await api.view())?.state === 'running';
    });
  } finally {
    await agent.close();
  }
  return updated;
}

export interface DownOptions {
  readonly log?: LabLog;
  /** How long processes get to stop after SIGTERM before SIGKILL. */
  readonly graceMs?: number;
}

/** Removes everything `lab up` made in DIR; resolves with false when there was nothing (already down). */
export async function labDown(dirArg: string, o: DownOptions = {}): Promise<boolean> {
  requireRoot('lab down', ['ip']);
  const log = o.log ?? noLog;
  const dir = path.resolve(dirArg);
  const state = await readState(dir);
  if (!state) return false;

  // Only the lab's own processes run in its namespaces: the nodes, the witness, and whatever was started there.
  const present = new Set(await listNamespaces());
  const namespaces = state.namespaces.filter((n) => present.has(n));
  const inside = async (): Promise<number[]> => (await Promise.all(namespaces.map((n) => namespacePids(n)))).flat();
  const waitEmpty = async (ms: number): Promise<number[]> => {
    const deadline = Date.now() + ms;
    let left = await inside();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      left = await inside();
    }
    return left;
  };
  const initial = await inside();
  for (const pid of initial) killQuietly(pid, 'SIGTERM');
  const stubborn = await waitEmpty(o.graceMs ?? 3000);
  for (const pid of stubborn) killQuietly(pid, 'SIGKILL');
  // SIGKILL is delivered asynchronously: the processes are gone once no namespace lists them.
  const left = await waitEmpty(5000);
  if (left.length > 0) log(`processes ${left.join(', ')} did not die on SIGKILL`);
  await reapOwnChildren(initial, 5000);
  for (const name of [...namespaces].reverse()) {
    await deleteNamespace(name);
    log(`deleted namespace ${name}`);
  }
  for (const name of state.files) await rm(path.join(dir, name), { recursive: true, force: true });
  await rm(path.join(dir, STATE_FILE), { force: true });
  if (state.dirCreated) {
    await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') log(`left ${dir} in place: ${err.code === 'ENOTEMPTY' ? 'it holds files the lab did not make' : err.message}`);
    });
  }
  return true;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

