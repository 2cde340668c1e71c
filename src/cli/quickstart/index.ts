/**
 * `twinsan quickstart` (what `npm start` runs): a working pair on this
 * machine until Ctrl-C.
 *
 * - as root, the failover lab (`twinsan lab up`, in a temporary directory):
 *   prints the iscsi:// URLs, how to log in from the client namespace and
 *   the command that fails rg-a over;
 * - without root, two nodes on 127.0.0.1 mirroring two volumes
 *   (loopback-pair.ts), with a note that alias IPs and their failover need root.
 *
 * `--mode loopback` (or TWINSAN_QUICKSTART_MODE=loopback) picks the
 * loopback pair even as root. SIGINT or SIGTERM stops everything it started
 * and removes its temporary directory.
 */
import { Command, InvalidArgumentError } from 'commander';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseSize } from '../parse';
import { checkPrefix, labDown, labSummary, labUp, twinsanCommand } from '../lab';
import { DEFAULT_BASE_PORT, LAST_PORT_OFFSET, LoopbackPair, checkBasePort } from './loopback-pair';

export const QUICKSTART_MODES = ['auto', 'lab', 'loopback'] as const;
export type QuickstartMode = (typeof QUICKSTART_MODES)[number];
const isMode = (v: string): v is QuickstartMode => (QUICKSTART_MODES as readonly string[]).includes(v);

export interface QuickstartOptions {
  readonly mode?: QuickstartMode;
  readonly prefix?: string;
  readonly basePort?: number;
  readonly volumeSizeBytes?: number;
  readonly readyTimeoutMs?: number;
}

const DEFAULT_SIZE = 256 * 1024 * 1024;
const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

const say = (line: string): void => {
  process.stderr.write(`twinsan quickstart: ${line}\n`);
};

function resolveMode(asked: QuickstartMode | undefined): 'lab' | 'loopback' {
  const fromEnv = process.env['TWINSAN_QUICKSTART_MODE'];
  if (asked === undefined && fromEnv !== undefined && !isMode(fromEnv)) {
    throw new Error(`TWINSAN_QUICKSTART_MODE="${fromEnv}" is not one of ${QUICKSTART_MODES.join(', ')}`);
  }
  const mode = asked ?? (fromEnv as QuickstartMode | undefined) ?? 'auto';
  if (mode === 'lab' && !isRoot()) throw new Error('the failover lab needs root (network namespaces, alias IPs): run it with sudo, or use --mode loopback');
  if (mode === 'auto') return isRoot() ? 'lab' : 'loopback';
  return mode;
}

/** Resolves on the first SIGINT/SIGTERM (and aborts `aborter`); later signals only say that stopping is under way. */
function stopSignal(aborter: AbortController): { stopped: Promise<NodeJS.Signals>; dispose(): void } {
  let first: ((s: NodeJS.Signals) => void) | null = null;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (first = resolve));
  const on = (signal: NodeJS.Signals): void => {
    if (first) {
      const resolve = first;
      first = null;
      aborter.abort();
      resolve(signal);
    } else {
      say('still stopping: removing what was started, one moment');
    }
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  // Signal handlers do not keep Node running, and the lab's processes are detached: without this
  // the quickstart would end as soon as the lab is up, leaving it behind.
  const keepAlive = setInterval(() => undefined, 60_000);
  return {
    stopped,
    dispose: () => {
      clearInterval(keepAlive);
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

export async function runQuickstart(o: QuickstartOptions = {}): Promise<void> {
  const mode = resolveMode(o.mode);
  const aborter = new AbortController();
  const signals = stopSignal(aborter);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-quickstart-'));
  try {
    if (mode === 'lab') await runLab(dir, o, aborter.signal, signals.stopped);
    else await runLoopback(dir, o, aborter.signal, signals.stopped);
  } catch (err) {
    // A Ctrl-C while the pair was coming up: what was started is gone again, which is what was asked.
    if (!aborter.signal.aborted) throw err;
    say(`interrupted while starting (${(err as Error).message})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
    signals.dispose();
  }
  say('stopped; nothing left behind');
}

async function runLab(dir: string, o: QuickstartOptions, signal: AbortSignal, stopped: Promise<NodeJS.Signals>): Promise<void> {
  const labDir = path.join(dir, 'lab');
  say(`root: building the failover lab in network namespaces (${labDir})`);
  try {
    const lab = await labUp({
      dir: labDir,
      prefix: o.prefix ?? 'tw',
      volumeSizeBytes: o.volumeSizeBytes ?? DEFAULT_SIZE,
      readyTimeoutMs: o.readyTimeoutMs ?? 120_000,
      log: say,
      signal,
    });
    process.stdout.write(`${labSummary(lab, labDir)}\nCtrl-C stops everything (the same as lab down).\n`);
    await stopped;
    say('stopping: lab down');
  } finally {
    // Also after a failed or interrupted up (it removes its own leftovers; this finds nothing then).
    await labDown(labDir, { log: say });
  }
}

async function runLoopback(dir: string, o: QuickstartOptions, signal: AbortSignal, stopped: Promise<NodeJS.Signals>): Promise<void> {
  const basePort = o.basePort ?? DEFAULT_BASE_PORT;
  say(`${isRoot() ? 'loopback mode' : 'not root'}: two nodes on 127.0.0.1 (ports ${basePort}-${basePort + LAST_PORT_OFFSET}), data in ${dir}`);
  const pair = await LoopbackPair.start({
    dir,
    basePort,
    volumeSizeBytes: o.volumeSizeBytes ?? DEFAULT_SIZE,
    readyTimeoutMs: o.readyTimeoutMs ?? 120_000,
    signal,
  });
  try {
    let stopping = false;
    pair.onExit((id, code, sig) => {
      if (!stopping) say(`node ${id} exited (${sig ?? `code ${code}`}); the other node serves its volume alone (Ctrl-C to stop)`);
    });
    const [a, b] = pair.nodes;
    const lines = [
      'a mirrored pair is up on 127.0.0.1: every write to either volume is on both nodes before it is acknowledged',
      '',
      ...pair.nodes.map((n) => `  ${n.volume} served by node ${n.id} (pid ${n.pid}): ${n.url}`),
      '',
      'log in:',
      `  iscsi-inq ${a!.url}`,
      `  qemu-io -f raw -c 'write -P 0x5a 0 1M' -c 'read -P 0x5a 0 1M' ${a!.url}`,
      `the REST API: ${twinsanCommand('status', '--api', a!.api, '--token-file', a!.tokenFile)}`,
      `a node's own view: curl -s ${a!.statusUrl}`,
      '',
      'note: alias IPs and the failover of addresses need root (network namespaces, ip addr, gratuitous ARP);',
      'run `sudo npm start` for the two-node lab, where `kill -9 <pid>` of a node fails its resource group over.',
      `here, the mirror without its peer: kill -9 ${b!.pid}   (node a keeps serving ${a!.volume}, degraded)`,
      '',
      `Ctrl-C stops both nodes and removes ${dir}.`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    await stopped;
    stopping = true;
    say('stopping both nodes');
  } finally {
    await pair.stop();
  }
}

function parseMode(value: string): QuickstartMode {
  if (!isMode(value)) throw new InvalidArgumentError(`"${value}" is not one of ${QUICKSTART_MODES.join(', ')}`);
  return value;
}

function parsePrefix(value: string): string {
  const problem = checkPrefix(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function parseBasePort(value: string): number {
  const n = Number(value);
  const problem = checkBasePort(n);
  if (problem) throw new InvalidArgumentError(problem);
  return n;
}

export function quickstartCommand(): Command {
  return new Command('quickstart')
    .description('a working pair on this machine until Ctrl-C: the failover lab as root, else two nodes on 127.0.0.1 (what `npm start` runs)')
    .option('--mode <mode>', `${QUICKSTART_MODES.join(' | ')} (default auto: lab as root, loopback otherwise; env TWINSAN_QUICKSTART_MODE)`, parseMode)
    .option('--prefix <prefix>', 'lab mode: namespace name prefix (default tw)', parsePrefix)
    .option('--base-port <port>', `loopback mode: the pair uses this port and up to ${LAST_PORT_OFFSET} above it (default ${DEFAULT_BASE_PORT})`, parseBasePort)
    .option('--size <bytes>', `size of each volume (default ${DEFAULT_SIZE / 1024 / 1024} MiB)`, parseSize)
    .action(async (opts: { mode?: QuickstartMode; prefix?: string; basePort?: number; size?: number }) => {
      await runQuickstart({
        ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
        ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
        ...(opts.basePort !== undefined ? { basePort: opts.basePort } : {}),
        ...(opts.size !== undefined ? { volumeSizeBytes: opts.size } : {}),
      });
    });
}
