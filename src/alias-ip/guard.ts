/**
 * The alias guard (protocol and state in guard-protocol.ts): runGuard() is
 * the guard process's loop, AliasGuard the node's end of the pipe.
 *
 * Signals: the guard ignores SIGINT, SIGTERM and SIGHUP. Ctrl-C and a
 * systemd stop signal the whole process group / cgroup; the node then shuts
 * down cleanly (removing its addresses and sending "release"), or dies, and
 * either way the guard follows its pipe, not the signal. Killed together with
 * the node (SIGKILL to the cgroup), nothing is removed: the node's start-up
 * removes the aliases left behind (NodeGroups), the second line of defence.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Alias, AliasSpec } from './address';
import { encodeGuardMessage, GUARD_MAX_LINE_BYTES, GuardMessage, GuardState, parseGuardMessage } from './guard-protocol';
import { AddressBackend } from './iproute';

export interface GuardLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** What the guard did when its input ended. */
export interface GuardOutcome {
  readonly released: boolean;
  readonly removed: readonly AliasSpec[];
  readonly failed: readonly AliasSpec[];
}

/**
 * More duties on the same pipe (the node's guard in src/resource-groups adds
 * its leases): lines whose op is in `ops` go to `take`, which throws to
 * refuse one. The alias ops stay the guard's own.
 */
export interface GuardExtension {
  readonly ops: ReadonlySet<string>;
  take(line: string): void;
}

/** The op of a line, when it is a JSON object with a string op (else undefined: the alias parser says what is wrong). */
function opOf(line: string): string | undefined {
  try {
    const raw: unknown = JSON.parse(line);
    return raw !== null && typeof raw === 'object' && typeof (raw as { op?: unknown }).op === 'string' ? (raw as { op: string }).op : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads messages from `input` until it ends, then deletes what the node
 * still held unless it released. Bad lines are logged and skipped (the node
 * is the only writer; a bad line must not cost the other addresses).
 */
export async function runGuard(
  input: Readable,
  backend: Pick<AddressBackend, 'remove'>,
  log: GuardLogger,
  interfaces: readonly string[] = [],
  extension?: GuardExtension,
): Promise<GuardOutcome> {
  const state = new GuardState(interfaces);
  let pending = '';
  const take = (line: string): void => {
    if (line.trim() === '') return;
    try {
      const op = extension && Buffer.byteLength(line) <= GUARD_MAX_LINE_BYTES ? opOf(line) : undefined;
      if (op !== undefined && extension!.ops.has(op)) {
        if (state.phase === 'released') throw new Error(`guard message ${op} after release`);
        extension!.take(line);
      } else state.apply(parseGuardMessage(line));
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'guard: message refused');
    }
  };
  input.setEncoding('utf8');
  for await (const chunk of input as AsyncIterable<string>) {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      take(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
    // No newline within the bound: drop it rather than buffer without end.
    if (Buffer.byteLength(pending) > GUARD_MAX_LINE_BYTES) {
      log.warn({ bytes: pending.length }, 'alias guard: over-long line dropped');
      pending = '';
    }
  }
  take(pending); // a last line without its newline still counts
  const doomed = state.endOfInput();
  if (state.phase === 'released') return { released: true, removed: [], failed: [] };
  const results = await Promise.allSettled(doomed.map((alias) => backend.remove(alias)));
  const removed: AliasSpec[] = [];
  const failed: AliasSpec[] = [];
  results.forEach((result, i) => {
    const alias = toSpec(doomed[i]!);
    if (result.status === 'fulfilled') removed.push(alias);
    else failed.push(alias);
    if (result.status === 'rejected') log.warn({ ...alias, err: (result.reason as Error).message }, 'alias guard: cannot remove the address');
  });
  if (removed.length > 0) log.warn({ addresses: removed.map((a) => `${a.address}/${a.prefix} dev ${a.interface}`) }, 'alias guard: the node died holding these addresses; removed them');
  return { released: false, removed, failed };
}

function toSpec(alias: Alias): AliasSpec {
  return { address: alias.address, prefix: alias.prefix, interface: alias.interface };
}

/** What AliasIpManager tells its guard. */
export interface AliasGuardPort {
  allow(interfaceName: string): Promise<void>;
  /** Resolves once the message is in the pipe: call before adding the address. */
  hold(alias: AliasSpec): Promise<void>;
  /** Call after the address was deleted. */
  drop(alias: AliasSpec): Promise<void>;
  /** Clean shutdown: the guard removes nothing and exits. */
  release(): Promise<void>;
}

/** dist/alias-ip/guard-main.js, also when this module runs from src/ (vitest). */
export const GUARD_ENTRY = __filename.endsWith('.ts') ? path.resolve(__dirname, '..', '..', 'dist', 'alias-ip', 'guard-main.js') : path.join(__dirname, 'guard-main.js');

export interface AliasGuardOptions {
  readonly interfaces: readonly string[];
  readonly log: GuardLogger;
  /** Default GUARD_ENTRY run by this node binary. */
  readonly command?: readonly string[];
}

/**
 * The node's end: spawns the guard and writes to its stdin. A guard that
 * is gone (failed to start, killed) is logged once; the node goes on
 * serving without it, since refusing to take an address over would be worse.
 */
export class AliasGuard implements AliasGuardPort {
  private readonly child: ChildProcess;
  private alive = true;
  private released = false;

  constructor(private readonly options: AliasGuardOptions) {
    const [command, ...args] = options.command ?? [process.execPath, GUARD_ENTRY];
    this.child = spawn(command!, [...args, ...options.interfaces], { stdio: ['pipe', 'ignore', 'inherit'] });
    this.child.on('error', (err) => this.lost(`cannot run the alias guard: ${err.message}`));
    this.child.on('exit', (code, signal) => {
      if (!this.released) this.lost(`the alias guard exited (${signal ?? `code ${String(code)}`})`);
    });
    this.child.stdin?.on('error', (err) => this.lost(`alias guard pipe: ${err.message}`));
    // Neither the child nor its pipe keeps the node's event loop alive.
    this.child.unref();
    if (this.child.stdin instanceof Socket) this.child.stdin.unref();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  allow(interfaceName: string): Promise<void> {
    return this.send({ op: 'allow', interface: interfaceName });
  }

  hold(alias: AliasSpec): Promise<void> {
    return this.send({ op: 'hold', alias });
  }

  drop(alias: AliasSpec): Promise<void> {
    return this.send({ op: 'drop', alias });
  }

  async release(): Promise<void> {
    if (this.released) return;
    await this.send({ op: 'release' });
    this.released = true;
    this.child.stdin?.end();
  }

  private send(message: GuardMessage): Promise<void> {
    return this.sendLine(encodeGuardMessage(message));
  }

  /** One line (with its newline) to the guard: a GuardExtension's message. Resolves once it is in the pipe. */
  protected sendLine(line: string): Promise<void> {
    const stdin = this.child.stdin;
    if (!this.alive || this.released || !stdin || stdin.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      stdin.write(line, (err) => {
        if (err) this.lost(`alias guard pipe: ${err.message}`);
        resolve();
      });
    });
  }

  private lost(why: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.options.log.warn({}, `${why}; alias addresses are no longer removed if this node dies (start-up still removes leftovers)`);
  }
}
