/**
 * Driving a `twinsan lab` from a test: the CLI itself (dist/cli/bin.js lab
 * up | start-node | down), the nodes' state through their endpoints, and an
 * initiator in the client namespace writing stamped blocks.
 *
 *   twinsan(args, ms)                     runs the CLI to completion
 *   LabHandle.up(dir, prefix)             lab up + lab.json; handle.down() in afterAll
 *     view(id) / owner(rg) / aliasesOn(id) / waitSettled(victim)
 *   stamp(seq)                            the 4 KiB block written as number seq (at offset seq * 4 KiB)
 *   StampedWriter                         one qemu-io session (the kernel of a real initiator: libiscsi reconnects
 *                                         and retries by itself); restarted when it exits or stalls
 *   readBack(ns, url, count)              blocks 0..count-1 through the initiator (qemu-img dd)
 */
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { LabFile, LabNodeApi, LabNodeEntry, NamespaceAgent, NodeView, readLabFile } from '../../../src/cli/lab';
import { deleteNamespace, exec, ExecResult, LabProcess, listNamespaces } from './netns';
import { Namespace as LabNamespace } from '../../../src/cli/lab/netns';

export const TWINSAN_BIN = path.resolve(__dirname, '..', '..', '..', 'dist', 'cli', 'bin.js');
export const BLOCK = 4096;

/** `node dist/cli/bin.js ARGS...`; rejects with its output when it fails. */
export async function twinsan(args: readonly string[], timeoutMs: number): Promise<ExecResult> {
  const r = await exec(process.execPath, [TWINSAN_BIN, ...args], { timeoutMs, allowFailure: true });
  if (r.code !== 0) throw new Error(`twinsan ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function until<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

export class LabHandle {
  private readonly agents = new Map<string, NamespaceAgent>();

  private constructor(
    readonly dir: string,
    readonly prefix: string,
    public lab: LabFile,
  ) {}

  /** `twinsan lab up --dir DIR --prefix PREFIX`, then reads lab.json. */
  static async up(dir: string, prefix: string, extra: readonly string[] = []): Promise<LabHandle> {
    await twinsan(['lab', 'up', '--dir', dir, '--prefix', prefix, ...extra], 180_000);
    return new LabHandle(dir, prefix, await readLabFile(dir));
  }

  node(id: string): LabNodeEntry {
    const n = this.lab.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id} in lab.json`);
    return n;
  }

  other(id: string): LabNodeEntry {
    return this.lab.nodes.find((x) => x.id !== id)!;
  }

  client(): LabNamespace {
    return LabNamespace.existing(this.lab.client.netns);
  }

  /** HTTP and TCP probes from the client namespace. */
  clientAgent(): NamespaceAgent {
    return this.agent(this.lab.client.netns);
  }

  private agent(netns: string): NamespaceAgent {
    let a = this.agents.get(netns);
    if (!a) {
      a = NamespaceAgent.start(netns);
      this.agents.set(netns, a);
    }
    return a;
  }

  api(id: string): LabNodeApi {
    const n = this.node(id);
    return new LabNodeApi(this.agent(n.netns), n.status, n.api, n.token);
  }

  view(id: string): Promise<NodeView | null> {
    return this.api(id).view();
  }

  /** The node serving `rg` now, if exactly one does. */
  async owner(rg: string): Promise<LabNodeEntry | undefined> {
    const serving: LabNodeEntry[] = [];
    for (const n of this.lab.nodes) if ((await this.view(n.id))?.groups.get(rg) === 'serving') serving.push(n);
    return serving.length === 1 ? serving[0] : undefined;
  }

  /** Every IPv4 address on node `id`'s front-end interface (also aliases of groups lab.json does not know). */
  async frontAddresses(id: string): Promise<string[]> {
    const links = await LabNamespace.existing(this.node(id).netns).ipJson<{ addr_info: { local: string }[] }[]>('-4', 'addr', 'show', 'dev', 'eth1');
    return links.flatMap((l) => l.addr_info.map((a) => a.local));
  }

  /** The alias IPs of lab.json's groups configured on node `id`'s front-end interface. */
  async aliasesOn(id: string): Promise<string[]> {
    const all = this.lab.resourceGroups.flatMap((g) => g.aliasIps);
    return (await this.frontAddresses(id)).filter((a) => all.includes(a));
  }

  /** The last `lines` lines of every node's log, for a failure message. */
  async logTails(lines = 30): Promise<string> {
    let out = '';
    for (const n of this.lab.nodes) out += `\n--- node ${n.id} (${n.log}):\n${(await readFile(n.log, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n')}`;
    return out;
  }

  /** `twinsan lab start-node`; re-reads lab.json for the new pid. */
  async startNode(id: string): Promise<void> {
    await twinsan(['lab', 'start-node', '--dir', this.dir, id], 120_000);
    this.lab = await readLabFile(this.dir);
  }

  /** SIGKILL of node `id`; resolves when its process is gone. */
  async kill(id: string): Promise<number> {
    const pid = this.node(id).pid;
    process.kill(pid, 'SIGKILL');
    await until(`node ${id} (pid ${pid}) to die`, 10_000, async () => !(await LabNamespace.existing(this.node(id).netns).pids()).includes(pid));
    return pid;
  }

  /** Both nodes running and in sync, every group served by `owner`, none by the other. */
  async waitSettled(owner: string, ms = 120_000): Promise<void> {
    const groups = this.lab.resourceGroups.map((g) => g.name);
    await until(`every group on node ${owner} and both nodes in sync`, ms, async () => {
      const [o, s] = [await this.view(owner), await this.view(this.other(owner).id)];
      return (
        o?.state === 'running' &&
        s?.state === 'running' &&
        o.inSync &&
        s.inSync &&
        groups.every((g) => o.groups.get(g) === 'serving' && s.groups.get(g) === 'stopped')
      );
    });
  }

  /** `twinsan lab down`, then anything with the prefix still there (a failed down must not leak). */
  async down(): Promise<void> {
    for (const a of this.agents.values()) await a.close().catch(() => undefined);
    this.agents.clear();
    await twinsan(['lab', 'down', '--dir', this.dir], 60_000).catch((err: Error) => console.error(err.message));
    for (const name of await listNamespaces()) if (name.startsWith(`${this.prefix}-`)) await deleteNamespace(name);
  }
}

/** Block number `seq`: a header naming it, then bytes from a SHA-256 chain seeded by it (distinct per block). */
export function stamp(seq: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const header = Buffer.from(`twinsan-lab block ${seq}\n`);
  header.copy(block);
  let h = createHash('sha256').update(`seed ${seq}`).digest();
  for (let at = header.length; at < BLOCK; at += h.length) {
    h.copy(block, at);
    h = createHash('sha256').update(h).digest();
  }
  return block;
}

interface PendingWrite {
  readonly offset: number;
  /** true: acknowledged; false: qemu-io reported the write failed. */
  settle(acked: boolean): void;
}

/**
 * Writes stamped blocks through one qemu-io session in the client
 * namespace, like an application on an initiator: libiscsi notices the
 * dropped connection, reconnects to the same portal and IQN, and retries.
 * A write counts as acknowledged when qemu-io prints "wrote". If the
 * session ends or a write stalls for `stallMs`, a new qemu-io writes the
 * same block again (same bytes, same offset).
 */
export class StampedWriter {
  private proc: LabProcess | null = null;
  private pending: PendingWrite | null = null;
  private lastLines: string[] = [];
  /** qemu-io sessions started (1 + restarts). */
  sessions = 0;

  constructor(
    private readonly ns: LabNamespace,
    private readonly url: string,
    private readonly stampDir: string,
    private readonly stallMs = 15_000,
  ) {}

  private startSession(): LabProcess {
    this.sessions++;
    const proc = this.ns.spawn('qemu-io', ['-f', 'raw', this.url], 'qemu-io writer');
    const onLine = (line: string): void => {
      this.lastLines = [...this.lastLines.slice(-20), line];
      const p = this.pending;
      if (!p) return;
      const m = /wrote (\d+)\/(\d+) bytes at offset (\d+)/.exec(line);
      if (m && Number(m[3]) === p.offset && m[1] === m[2]) {
        this.pending = null;
        p.settle(true);
      } else if (/write failed/.test(line)) {
        this.pending = null;
        p.settle(false);
      }
    };
    createInterface({ input: proc.child.stdout! }).on('line', onLine);
    createInterface({ input: proc.child.stderr! }).on('line', onLine);
    return proc;
  }

  /** Writes block `seq` until it is acknowledged (bounded by `giveUpMs`); resolves with the acknowledgement time (performance.now()). */
  async write(seq: number, giveUpMs = 60_000): Promise<number> {
    const file = path.join(this.stampDir, `block-${seq}`);
    await writeFile(file, stamp(seq));
    const offset = seq * BLOCK;
    const deadline = performance.now() + giveUpMs;
    try {
      for (;;) {
        if (!this.proc || this.proc.child.exitCode !== null || this.proc.child.signalCode !== null) this.proc = this.startSession();
        const proc = this.proc;
        const settled = new Promise<boolean>((settle) => (this.pending = { offset, settle }));
        proc.child.stdin!.write(`write -s ${file} ${offset} ${BLOCK}\n`);
        const outcome = await Promise.race([
          settled.then((acked) => (acked ? ('acked' as const) : ('failed' as const))),
          proc.exited.then(() => 'exited' as const),
          sleep(this.stallMs).then(() => 'stalled' as const),
        ]);
        if (outcome === 'acked') return performance.now();
        this.pending = null;
        if (outcome === 'stalled') await proc.stop(1000);
        if (performance.now() > deadline) throw new Error(`block ${seq} not acknowledged within ${giveUpMs} ms; qemu-io said:\n${this.lastLines.join('\n')}`);
        await sleep(200); // the write failed, or qemu-io could not open the device (nobody serves the alias yet): again shortly
      }
    } finally {
      await rm(file, { force: true });
    }
  }

  async close(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc) return;
    proc.child.stdin!.end();
    await Promise.race([proc.exited, sleep(3000)]);
    await proc.stop(1000);
  }
}

/** Blocks 0..count-1 of the LU at `url`, read through the initiator in `ns`. */
export async function readBack(ns: LabNamespace, url: string, count: number, scratchDir: string): Promise<Buffer> {
  const out = path.join(scratchDir, 'read-back.raw');
  await rm(out, { force: true });
  await ns.exec('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', `if=${url}`, `of=${out}`, `bs=${BLOCK}`, `count=${count}`], { timeoutMs: 60_000 });
  try {
    return await readFile(out);
  } finally {
    await rm(out, { force: true });
  }
}

/** The numbers of the blocks among `acked` whose bytes in `image` are not what was written. */
export function lostBlocks(image: Buffer, acked: Iterable<number>): number[] {
  const lost: number[] = [];
  for (const seq of acked) {
    const at = seq * BLOCK;
    if (image.length < at + BLOCK || !image.subarray(at, at + BLOCK).equals(stamp(seq))) lost.push(seq);
  }
  return lost;
}
