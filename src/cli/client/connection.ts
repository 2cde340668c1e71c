/**
 * Where the API is and how to prove who we are: the connection options every
 * API command takes, resolved against the environment.
 *
 *   --api URL          or TWINSAN_API          (default http://127.0.0.1:8080)
 *   --token-file FILE  or TWINSAN_TOKEN_FILE   (preferred: the token never shows in `ps`)
 *   --token TOKEN      or TWINSAN_TOKEN        (argv is readable by every local user: warned)
 *   --ca FILE          or TWINSAN_CA           (https with a private CA or self-signed certificate)
 *   --insecure                                 (https without verifying: test setups only)
 */
import { readFile, stat } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from './errors';

export const DEFAULT_API = 'http://127.0.0.1:8080';
export const DEFAULT_TIMEOUT_S = 60;

/** What commander collects from the options added by addConnectionOptions(). */
export interface ConnectionOptions {
  readonly api?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly ca?: string;
  readonly insecure?: boolean;
  readonly timeout?: number;
  readonly json?: boolean;
}

export interface ClientConfig {
  /** The API base, e.g. https://198.18.0.1:8443 (routes are /api/v1/... under it). */
  readonly base: URL;
  readonly token: string | null;
  /** Where the token came from, for the 401 hint: "--token-file /etc/twinsan/api-token", "TWINSAN_TOKEN". */
  readonly tokenSource: string | null;
  /** PEM CA bundle that signs the API's certificate (--ca). */
  readonly ca: Buffer | null;
  readonly insecure: boolean;
  readonly timeoutMs: number;
}

function parseTimeout(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600) throw new InvalidArgumentError('timeout must be a number of seconds, more than 0 and at most 3600');
  return n;
}

/** The options every command that talks to the API has. */
export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--api <url>', `API base URL (env TWINSAN_API; default ${DEFAULT_API})`))
    .addOption(new Option('--token-file <file>', 'file holding the API token (env TWINSAN_TOKEN_FILE); should be mode 0600'))
    .addOption(new Option('--token <token>', 'API token (env TWINSAN_TOKEN); visible to other users in ps, prefer --token-file'))
    .addOption(new Option('--ca <file>', 'PEM CA certificate(s) to trust for an https API (env TWINSAN_CA)'))
    .addOption(new Option('--insecure', 'https without verifying the certificate (test setups only)'))
    .addOption(new Option('--timeout <seconds>', 'give up on a request after this long').argParser(parseTimeout).default(DEFAULT_TIMEOUT_S))
    .addOption(new Option('--json', "print the API's JSON instead of tables (for scripts)"));
}

/** True for a token that can go in an Authorization header as is. */
function validToken(token: string): boolean {
  return /^[\x21-\x7e]+$/.test(token);
}

async function readTokenFile(file: string, source: string, warn: (line: string) => void): Promise<string> {
  let mode: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new UsageError(`token file ${file} (${source}) is not a regular file`);
    mode = st.mode & 0o777;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read token file ${file} (${source}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if ((mode & 0o077) !== 0) {
    // Anyone who can read the file can drive the pair (delete volumes, move groups).
    warn(`warning: token file ${file} is readable by group or others (mode 0${mode.toString(8)}); run: chmod 600 ${file}`);
  }
  let token: string;
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new UsageError(`cannot read token file ${file} (${source}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (token === '') throw new UsageError(`token file ${file} (${source}) is empty`);
  if (!validToken(token)) throw new UsageError(`token file ${file} (${source}) holds more than one printable word`);
  return token;
}

/** Resolve the options against the environment; warnings go through warn (one line each). */
export async function resolveConnection(
  opts: ConnectionOptions,
  env: Readonly<Record<string, string | undefined>>,
  warn: (line: string) => void,
): Promise<ClientConfig> {
  const apiText = opts.api ?? (env['TWINSAN_API'] || DEFAULT_API);
  let base: URL;
  try {
    base = new URL(apiText);
  } catch {
    throw new UsageError(`--api: "${apiText}" is not a URL (e.g. https://198.18.0.1:8443)`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError(`--api: "${apiText}" must be an http:// or https:// URL`);
  if (base.search || base.hash) throw new UsageError(`--api: "${apiText}" must not have a query or fragment`);
  if (opts.insecure && base.protocol === 'http:') warn('warning: --insecure has no effect on an http:// API');

  let token: string | null = null;
  let tokenSource: string | null = null;
  if (opts.token !== undefined) {
    // Command lines are world-readable (/proc/PID/cmdline, ps) and land in shell history.
    warn('warning: --token puts the API token where other local users can read it (ps, /proc) and in shell history; prefer --token-file or TWINSAN_TOKEN_FILE');
    token = opts.token.trim();
    tokenSource = '--token';
  } else if (opts.tokenFile !== undefined) {
    tokenSource = `--token-file ${opts.tokenFile}`;
    token = await readTokenFile(opts.tokenFile, '--token-file', warn);
  } else if (env['TWINSAN_TOKEN']) {
    token = env['TWINSAN_TOKEN'].trim();
    tokenSource = 'TWINSAN_TOKEN';
  } else if (env['TWINSAN_TOKEN_FILE']) {
    tokenSource = `TWINSAN_TOKEN_FILE ${env['TWINSAN_TOKEN_FILE']}`;
    token = await readTokenFile(env['TWINSAN_TOKEN_FILE'], 'TWINSAN_TOKEN_FILE', warn);
  }
  if (token !== null && !validToken(token)) throw new UsageError(`the API token (${tokenSource}) must be one word of printable characters`);

  let ca: Buffer | null = null;
  const caFile = opts.ca ?? (env['TWINSAN_CA'] || undefined);
  if (caFile !== undefined) {
    const source = opts.ca !== undefined ? '--ca' : 'TWINSAN_CA';
    try {
      ca = await readFile(caFile);
    } catch (err) {
      throw new UsageError(`${source}: cannot read ${caFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (base.protocol === 'http:') warn(`warning: ${source} has no effect on an http:// API`);
  }
  return { base, token, tokenSource, ca, insecure: opts.insecure ?? false, timeoutMs: (opts.timeout ?? DEFAULT_TIMEOUT_S) * 1000 };
}
