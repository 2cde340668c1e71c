/**
 * The REST API of a `twinsan lab` pair (lab.json nodes[].api and .token),
 * called from the client namespace, and a stamped-write workload
 * (stamped-load.mjs) through a resource group's alias IP.
 *
 *   LabRestApi.open(lab)                  one NamespaceAgent in the client namespace
 *     call(node, method, path, {body?, raw?, token?})   any answer (status, text, parsed JSON)
 *     get / post / put / del(node, path, body?)          expects 2xx, resolves with the JSON
 *     answers                            every answer's text so far (tests look for secrets in them)
 *     waitJob(node, id, ms)              polls GET /jobs/{id} until done (throws when it failed)
 *   StampedLoad(ns, alias, iqn)           stamped-load.mjs in the client namespace
 *     more(n) / finish(): LoadResult
 */
import path from 'node:path';
import type { LabFile } from '../../../src/cli/lab';
import { NamespaceAgent } from '../../../src/cli/lab';
import type { Namespace as LabNamespace } from '../../../src/cli/lab/netns';
import type { LabProcess } from './netns';
import { until } from './twinsan-lab';

export interface ApiAnswer {
  readonly status: number;
  readonly text: string;
  /** The parsed body; undefined when it is not JSON. */
  readonly json: unknown;
}

export interface CallOptions {
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent as it is, with Content-Type: application/json (for malformed bodies). */
  readonly raw?: string;
  /** Overrides the node's token; null sends none. */
  readonly token?: string | null;
  readonly timeoutMs?: number;
}

export class LabRestApi {
  /** The text of every answer received, in order. */
  readonly answers: string[] = [];

  private constructor(
    private readonly agent: NamespaceAgent,
    private readonly lab: LabFile,
  ) {}

  static open(lab: LabFile): LabRestApi {
    return new LabRestApi(NamespaceAgent.start(lab.client.netns), lab);
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  async call(node: string, method: string, route: string, o: CallOptions = {}): Promise<ApiAnswer> {
    const entry = this.lab.nodes.find((n) => n.id === node);
    if (!entry) throw new Error(`no node ${node} in lab.json`);
    const token = o.token === undefined ? entry.token : o.token;
    const headers: Record<string, string> = {};
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    if (body !== undefined) headers['content-type'] = 'application/json';
    const answer = await this.agent.http(`${entry.api}/api/v1${route}`, { method, headers, ...(body !== undefined ? { body } : {}), timeoutMs: o.timeoutMs ?? 60_000 });
    this.answers.push(answer.body);
    let json: unknown;
    try {
      json = JSON.parse(answer.body);
    } catch {
      json = undefined;
    }
    return { status: answer.status, text: answer.body, json };
  }

  private async ok<T>(node: string, method: string, route: string, body?: unknown): Promise<T> {
    const a = await this.call(node, method, route, body === undefined ? {} : { body });
    if (a.status < 200 || a.status > 299) throw new Error(`${method} ${route} on node ${node}: ${a.status} ${a.text}`);
    return a.json as T;
  }

  get<T>(node: string, route: string): Promise<T> {
    return this.ok<T>(node, 'GET', route);
  }

  post<T>(node: string, route: string, body: unknown = {}): Promise<T> {
    return this.ok<T>(node, 'POST', route, body);
  }

  put<T>(node: string, route: string, body: unknown): Promise<T> {
    return this.ok<T>(node, 'PUT', route, body);
  }

  del<T>(node: string, route: string): Promise<T> {
    return this.ok<T>(node, 'DELETE', route);
  }

  /** Polls the job until it is done; throws when it failed or did not finish in `ms`. */
  async waitJob(node: string, id: string, ms: number): Promise<JobView> {
    const job = await until(`job ${id} on node ${node}`, ms, async () => {
      const j = await this.get<JobView>(node, `/jobs/${encodeURIComponent(id)}`);
      return j.state === 'running' ? null : j;
    });
    if (job.state !== 'done') throw new Error(`job ${id} (${job.kind} ${job.subject}) ${job.state}: ${job.error}`);
    return job;
  }
}

export interface JobView {
  readonly id: string;
  readonly kind: string;
  readonly subject: string;
  readonly state: 'running' | 'done' | 'failed';
  readonly progress: number;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly error: string | null;
  readonly result: Record<string, unknown> | null;
}

export interface NodeView {
  readonly id: string;
  readonly state: string;
  readonly maintenance: boolean;
  readonly protocol: { readonly min: number; readonly max: number; readonly negotiated: number | null } | null;
  readonly owns: readonly string[];
}

export interface GroupView {
  readonly name: string;
  readonly owner: string | null;
  readonly preferredNode: string;
  readonly aliasIps: readonly { readonly address: string; readonly prefix: number; readonly interface: string }[];
  readonly volumes: readonly string[];
  readonly state: string;
}

export interface VolumeView {
  readonly name: string;
  readonly iqn: string;
  readonly sizeBytes: number;
  readonly resourceGroup: string | null;
  readonly owner: string | null;
  readonly mirror: { readonly state: string; readonly resyncProgress: number | null; readonly outOfSyncBytes: number };
  readonly sessions: number;
  readonly urls: readonly string[];
}

const LOAD_SCRIPT = path.resolve(__dirname, 'stamped-load.mjs');

export interface LoadResult {
  acked: number;
  runMs: number;
  maxPauseMs: number | null;
  longestPauses: { atMs: number; ms: number }[];
  counts: Record<string, number>;
  reconnects: { lostAtMs: number; readyAfterMs: number; refused: number }[];
  ioErrors: { seq: number; message: string }[];
  ioErrorCount: number;
  verify: { checked: number; mismatchCount: number; mismatched: unknown[] } | { error: string };
}

/** stamped-load.mjs (4 writers, 4 KiB writes over 4096 slots) through `alias`:3260 to `iqn`, in the client namespace. */
export class StampedLoad {
  private out = '';
  private err = '';
  readonly proc: LabProcess;
  /** performance.now() when the load was spawned (its pauses' atMs count from a little after: node's start-up). */
  readonly spawnedAt = performance.now();

  constructor(
    ns: LabNamespace,
    readonly label: string,
    alias: string,
    iqn: string,
  ) {
    this.proc = ns.spawn(process.execPath, [LOAD_SCRIPT, alias, '3260', iqn, '4096', '4', '4096'], `stamped-load ${label}`);
    this.proc.child.stdout!.on('data', (d: Buffer) => (this.out = (this.out + d.toString()).slice(-200_000)));
    this.proc.child.stderr!.on('data', (d: Buffer) => (this.err = (this.err + d.toString()).slice(-20_000)));
  }

  get acked(): number {
    const m = [...this.out.matchAll(/^acked (\d+)$/gm)].at(-1);
    return m ? Number(m[1]) : 0;
  }

  /** Waits until `n` more writes than now are acknowledged. */
  async more(n: number, ms = 60_000): Promise<void> {
    const target = this.acked + n;
    await until(`${target} acknowledged writes by ${this.label} (stderr: ${this.err.slice(-500)})`, ms, async () => this.acked >= target);
  }

  /** Stops the writers; resolves with the read-back result. */
  async finish(): Promise<LoadResult> {
    this.proc.child.stdin!.write('stop\n');
    const line = await until(`the result of ${this.label}`, 120_000, async () => /^RESULT (.*)$/m.exec(this.out));
    await this.proc.exited;
    return JSON.parse(line[1]!) as LoadResult;
  }

  async kill(): Promise<void> {
    await this.proc.stop(1000);
  }
}

/** One line for the test output. */
export function describeLoad(label: string, r: LoadResult): string {
  return (
    `${label}: ${r.acked} writes acknowledged in ${r.runMs} ms; longest I/O pause ${r.maxPauseMs} ms; ` +
    `longest pauses ${JSON.stringify(r.longestPauses)}; retries ${JSON.stringify(r.counts)}; reconnects ${r.reconnects.length}`
  );
}
