/**
 * Programs run inside lab namespaces: the alias-IP manager as a node's child
 * process (alias-ip-agent.cjs over dist/), a UDP echo responder and prober,
 * and arping.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { LabProcess, Namespace } from './netns';

const REPO = path.resolve(__dirname, '..', '..', '..');

/**
 * dist/<dir>/index.js, checked to exist and to be no older than its sources
 * (`npm test` runs tsc first; run `npm run build:ts` before running e2e
 * tests on their own).
 */
export function compiledModule(dir: string): string {
  const compiled = path.join(REPO, 'dist', dir, 'index.js');
  const sources = path.join(REPO, 'src', dir);
  let builtAt: number;
  try {
    builtAt = statSync(compiled).mtimeMs;
  } catch {
    throw new Error(`${path.relative(REPO, compiled)} is missing: run \`npm run build:ts\` first`);
  }
  for (const name of readdirSync(sources)) {
    if (name.endsWith('.ts') && statSync(path.join(sources, name)).mtimeMs > builtAt) {
      throw new Error(`src/${dir}/${name} is newer than dist/${dir}: run \`npm run build:ts\` first`);
    }
  }
  return compiled;
}

/** An error the agent reported, with the manager's code. */
export class AgentError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly sysCode?: string,
    readonly errorName?: string,
  ) {
    super(message);
  }
}

export interface AliasSpecJson {
  readonly address: string;
  readonly prefix: number;
  readonly interface: string;
}

export interface AliasIpAgent {
  readonly process: LabProcess;
  add(spec: AliasSpecJson): Promise<{ changed: boolean }>;
  remove(spec: AliasSpecJson): Promise<{ changed: boolean }>;
  isServed(spec: AliasSpecJson): Promise<boolean>;
  announce(spec: AliasSpecJson, overrides?: object): Promise<{ framesSent: number; cancelled: boolean; refreshAt?: number }>;
  removeAll(): Promise<AliasSpecJson[]>;
  owned(): Promise<AliasSpecJson[]>;
  /** Log lines the manager wrote (info/warn). */
  log(): string[];
  /** Closes stdin (the agent exits) and waits. */
  stop(): Promise<void>;
}

/** Starts `node alias-ip-agent.cjs` inside `ns` with AliasIpManager options (JSON-able). */
export async function startAliasIpAgent(ns: Namespace, options: object): Promise<AliasIpAgent> {
  const proc = ns.spawn(
    process.execPath,
    [path.join(__dirname, 'alias-ip-agent.cjs'), compiledModule('alias-ip'), JSON.stringify(options)],
    `alias-ip agent in ${ns.name}`,
  );
  const logLines: string[] = [];
  createInterface({ input: proc.child.stderr! }).on('line', (line) => logLines.push(line));
  const waiting = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  let ready: (() => void) | undefined;
  let failed: ((err: Error) => void) | undefined;
  const started = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  createInterface({ input: proc.child.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as {
      ready?: boolean;
      id?: number;
      ok?: boolean;
      result?: unknown;
      error?: { message: string; code?: string; sysCode?: string; name?: string };
    };
    if (message.ready !== undefined) {
      if (message.ready) ready?.();
      else failed?.(new AgentError(message.error?.message ?? 'agent failed', message.error?.code));
      return;
    }
    const pending = waiting.get(message.id!);
    waiting.delete(message.id!);
    if (message.ok) pending?.resolve(message.result);
    else pending?.reject(new AgentError(message.error!.message, message.error!.code, message.error!.sysCode, message.error!.name));
  });
  void proc.exited.then((code) => {
    const err = new Error(`${proc.label} exited with ${code}: ${logLines.slice(-5).join(' | ')}`);
    failed?.(err);
    for (const pending of waiting.values()) pending.reject(err);
    waiting.clear();
  });
  await started;

  let nextId = 1;
  const call = <T>(op: string, ...args: unknown[]): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      proc.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });

  return {
    process: proc,
    add: (spec) => call('add', spec),
    remove: (spec) => call('remove', spec),
    isServed: (spec) => call('isServed', spec),
    announce: (spec, overrides = {}) => call('announce', spec, overrides),
    removeAll: () => call('removeAll'),
    owned: () => call('owned'),
    listen: (host, port) => call('listen', host, port),
    log: () => [...logLines],
    async stop() {
      proc.child.stdin!.end();
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), 3000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
}

const UDP_ECHO = path.join(__dirname, 'udp-echo.cjs');

/** A UDP responder in `ns` answering every datagram on `port` with `label`. */
export async function startUdpEcho(ns: Namespace, port: number, label: string): Promise<LabProcess> {
  const proc = ns.spawn(process.execPath, [UDP_ECHO, 'serve', String(port), label], `udp echo ${label} in ${ns.name}`);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: proc.child.stdout! }).on('line', (line) => line === 'ready' && resolve());
    void proc.exited.then((code) => reject(new Error(`${proc.label} exited with ${code}`)));
  });
  return proc;
}

/** Sends a datagram from `ns` to address:port; resolves with the label that answered, or undefined at the timeout. */
export async function udpProbe(ns: Namespace, address: string, port: number, timeoutMs = 3000): Promise<string | undefined> {
  const r = await ns.exec(process.execPath, [UDP_ECHO, 'probe', address, String(port), String(timeoutMs)], {
    allowFailure: true,
    timeoutMs: timeoutMs + 5000,
  });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** `arping -c COUNT -I IFNAME ADDRESS` from `ns`: the MACs that answered, in order. */
export async function arping(ns: Namespace, ifname: string, address: string, count = 1): Promise<string[]> {
  const r = await ns.exec('arping', ['-c', String(count), '-w', String(count + 2), '-I', ifname, address], {
    allowFailure: true,
    timeoutMs: (count + 5) * 1000,
  });
  return [...r.stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]{17})\]/g)].map((m) => m[1]!.toLowerCase());
}
