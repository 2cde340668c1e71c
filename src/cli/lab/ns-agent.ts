/**
 * A helper process inside a lab namespace that makes HTTP requests and TCP
 * connection probes for us: a node's endpoint listens on the loopback of
 * its own namespace, and the lab's addresses exist only inside the lab, so
 * neither is reachable from the namespace the CLI runs in. One long-lived
 * `node` per namespace, JSON lines over its stdin/stdout, instead of one
 * process per poll.
 */
import { createInterface } from 'node:readline';
import { LabProcess, Namespace } from './netns';

/** The agent's program (plain JavaScript run with `node -e`; it needs nothing but Node's own modules). */
const AGENT_PROGRAM = `
const net = require('node:net');
const reply = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
const probe = (host, port, ms) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  const done = (ok) => { clearTimeout(t); s.destroy(); resolve(ok); };
  const t = setTimeout(() => done(false), ms);
  s.once('connect', () => done(true));
  s.once('error', () => done(false));
});
const ops = {
  async http(r) {
    const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body, signal: AbortSignal.timeout(r.timeoutMs) });
    return { status: res.status, body: await res.text() };
  },
  async connect(r) { return { connected: await probe(r.host, r.port, r.timeoutMs) }; },
};
require('node:readline').createInterface({ input: process.stdin })
  .on('line', (line) => {
    let r;
    try { r = JSON.parse(line); } catch { return; }
    const op = ops[r.op];
    if (!op) { reply({ id: r.id, error: 'unknown op ' + r.op }); return; }
    op(r).then((result) => reply({ id: r.id, result }), (e) => reply({ id: r.id, error: String((e && e.message) || e) }));
  })
  .on('close', () => process.exit(0));
`;

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export interface HttpRequest {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly timeoutMs?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

export class NamespaceAgent {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private gone: Error | null = null;

  private constructor(private readonly proc: LabProcess) {
    createInterface({ input: proc.child.stdout! }).on('line', (line) => {
      let message: { id?: number; result?: unknown; error?: string };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        return;
      }
      const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id!);
      if (message.error !== undefined) waiting.reject(new Error(message.error));
      else waiting.resolve(message.result);
    });
    let stderr = '';
    proc.child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    void proc.exited.then((code) => {
      this.gone = new Error(`${proc.label} exited (${code})${stderr ? `: ${stderr.trim()}` : ''}`);
      for (const p of this.pending.values()) p.reject(this.gone);
      this.pending.clear();
    });
  }

  /** Starts the agent inside namespace `netns` (which must exist). */
  static start(netns: string): NamespaceAgent {
    const ns = Namespace.existing(netns);
    return new NamespaceAgent(ns.spawn(process.execPath, ['-e', AGENT_PROGRAM], `lab agent in ${netns}`));
  }

  /** An HTTP request made inside the namespace; rejects when it cannot be made (refused, timed out). */
  http(url: string, request: HttpRequest = {}): Promise<HttpAnswer> {
    return this.call<HttpAnswer>('http', { url, method: request.method ?? 'GET', headers: request.headers ?? {}, body: request.body, timeoutMs: request.timeoutMs ?? 5000 });
  }

  /** Whether a TCP connection to host:port succeeds from inside the namespace within `timeoutMs`. */
  async canConnect(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
    return (await this.call<{ connected: boolean }>('connect', { host, port, timeoutMs })).connected;
  }

  /** Ends the agent (closes its stdin) and waits for it. */
  async close(): Promise<void> {
    this.proc.child.stdin!.end();
    await this.proc.stop(2000);
  }

  private call<T>(op: string, args: Record<string, unknown>): Promise<T> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.proc.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }
}
