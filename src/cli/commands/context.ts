/**
 * What every API command shares: the connection, the output mode, checked
 * answers, and following a job with a progress bar.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { JobInfo } from '../../resource-groups';
import { ApiClient, ApiResponse, CliError, ConnectionOptions, EXIT, RequestOptions, addConnectionOptions, resolveConnection } from '../client';
import { CliIo, duration, startProgress } from '../output';

export interface Ctx {
  readonly io: CliIo;
  readonly client: ApiClient;
  /** --json: print the API's JSON as it came, nothing else on stdout. */
  readonly json: boolean;
}

/** Default wait between polls of a job or a resync, and the option that changes it. */
export const DEFAULT_INTERVAL_MS = 1000;

/** Polling interval in milliseconds, 10 ms to 1 minute. */
export function parseInterval(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 10 || n > 60_000) throw new InvalidArgumentError('interval must be a whole number of milliseconds from 10 to 60000');
  return n;
}

/** Write to stdout. */
export function out(ctx: Ctx, text: string): void {
  ctx.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** A message for people, on stderr (stdout stays clean for --json). */
export function note(ctx: Ctx, line: string): void {
  ctx.io.stderr.write(`${line}\n`);
}

/** --json: the body exactly as the API sent it. */
export function printJson(ctx: Ctx, res: ApiResponse): void {
  if (res.text !== '') ctx.io.stdout.write(res.text.endsWith('\n') ? res.text : `${res.text}\n`);
}

const API_COMMANDS = new WeakSet<Command>();

/** Mark a command as one that talks to the API: addApiOptions() gives it the connection options. */
export function markApi(cmd: Command): Command {
  API_COMMANDS.add(cmd);
  return cmd;
}

/**
 * Add the connection options to every marked command of a tree. Done once the
 * tree is built, so that a command's help lists its own options first.
 */
export function addApiOptions(cmd: Command): void {
  if (API_COMMANDS.has(cmd)) addConnectionOptions(cmd);
  for (const sub of cmd.commands) addApiOptions(sub);
}

/** A leaf command that talks to the API. */
export function apiCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return markApi(parent.command(nameAndArgs).description(description));
}

/**
 * The action of an API command: resolves the connection from its options,
 * then runs. run gets the parsed positional arguments and the options.
 */
export function apiAction<O extends ConnectionOptions>(
  io: CliIo,
  run: (ctx: Ctx, args: readonly string[], opts: O) => Promise<void>,
): (...commanderArgs: unknown[]) => Promise<void> {
  return async (...commanderArgs: unknown[]) => {
    const cmd = commanderArgs[commanderArgs.length - 1] as Command;
    const opts = mergedOptions(cmd) as O;
    const config = await resolveConnection(opts, io.env, (line) => io.stderr.write(`${line}\n`));
    const ctx: Ctx = { io, client: new ApiClient(config), json: opts.json ?? false };
    await run(ctx, cmd.processedArgs as string[], opts);
  };
}

/**
 * The command's options over those given to its ancestors: the connection
 * options may come before the command (`twinsan --ca F volume list`, as an
 * alias can add them) or after it. A value given on the command line wins
 * over a default wherever it was given; the command's own wins over its
 * ancestors'.
 */
function mergedOptions(cmd: Command): Record<string, unknown> {
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.unshift(c);
  const merged: Record<string, unknown> = {};
  for (const c of chain) {
    for (const [key, value] of Object.entries(c.opts())) {
      if (value === undefined) continue;
      if (c.getOptionValueSource(key) !== 'default' || !(key in merged)) merged[key] = value;
    }
  }
  return merged;
}

/** The answer as an object of the expected shape (the API's DTOs, src/resource-groups/control.ts). */
export function asObject<T>(res: ApiResponse, what: string): T {
  if (typeof res.json !== 'object' || res.json === null || Array.isArray(res.json)) {
    throw new CliError(`unexpected answer from the API: ${what} is not a JSON object`, EXIT.refused);
  }
  return res.json as T;
}

export function asArray<T>(res: ApiResponse, what: string): readonly T[] {
  if (!Array.isArray(res.json)) throw new CliError(`unexpected answer from the API: ${what} is not a JSON array`, EXIT.refused);
  return res.json as readonly T[];
}

/** Path segment for a name from the command line. */
export function seg(name: string): string {
  return encodeURIComponent(name);
}

export async function getObject<T>(ctx: Ctx, path: string, what: string, options: RequestOptions = {}): Promise<{ value: T; res: ApiResponse }> {
  const res = await ctx.client.get(path, options);
  return { value: asObject<T>(res, what), res };
}

export async function getArray<T>(ctx: Ctx, path: string, what: string, options: RequestOptions = {}): Promise<{ value: readonly T[]; res: ApiResponse }> {
  const res = await ctx.client.get(path, options);
  return { value: asArray<T>(res, what), res };
}

/**
 * Poll a job until it is no longer running, with a progress bar on stderr.
 * A failed job prints its error and fails the command (exit 1); --json
 * prints the final JobInfo either way.
 */
export async function followJob(ctx: Ctx, first: ApiResponse, title: string, intervalMs: number): Promise<JobInfo> {
  let job = asObject<JobInfo>(first, 'the job');
  const progress = startProgress(ctx.io.stderr, title);
  const started = Date.now();
  let res = first;
  try {
    progress.update(job.progress, job.state);
    while (job.state === 'running') {
      await ctx.io.sleep(intervalMs);
      const next = await getObject<JobInfo>(ctx, `/api/v1/jobs/${seg(job.id)}`, `job ${job.id}`);
      job = next.value;
      res = next.res;
      progress.update(job.progress, job.state === 'running' ? '' : job.state);
    }
  } finally {
    progress.finish(
      job.state === 'done'
        ? `${title}: done in ${duration(Date.now() - started)}`
        : job.state === 'failed'
          ? `${title}: failed: ${job.error ?? 'no reason given'}`
          : `${title}: stopped following job ${job.id} (${job.state})`,
    );
  }
  if (ctx.json) printJson(ctx, res);
  if (job.state === 'failed') throw new CliError(`job ${job.id} (${job.kind} ${job.subject}) failed: ${job.error ?? 'no reason given'}`, EXIT.refused);
  return job;
}
