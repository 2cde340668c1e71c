/**
 * Runs `twinsan` API commands in-process against the real REST API
 * (buildApp over the API tests' FakeControl) listening on loopback, with
 * captured stdout/stderr and the exit code bin.ts would set.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { buildApp, startApiServer, TokenStore } from '../../../src/api';
import type { ApiServer, ApiTls } from '../../../src/api';
import type { JobInfo, VerifyRequest, VolumeInfo } from '../../../src/resource-groups';
import { reportError } from '../../../src/cli/commands';
import { buildProgram } from '../../../src/cli/program';
import type { CliIo, InStream, OutStream } from '../../../src/cli/output';
import { FakeControl } from '../api/fake-control';
import { freePort } from '../../../scripts/lib/ports.mjs';

/**
 * A loopback port where nothing listens (free a moment ago), for the
 * "cannot reach" cases. Servers themselves listen on port 0: vitest runs the
 * CLI test files at once, and fixed ports collided.
 */
export async function unreachablePort(): Promise<number> {
  return freePort();
}

/**
 * FakeControl whose jobs and resyncs move: each GET of a running job adds
 * `step` to its progress until it is done; each GET of a resyncing volume
 * does the same to its resync progress.
 */
export class MovingControl extends FakeControl {
  step = 0.25;
  /** Jobs that end failed with this error once they reach 100%. */
  failJobs = new Map<string, string>();
  jobResult: JobInfo['result'] = null;
  /** The next verify job ends failed with this error. */
  failNextVerify: string | null = null;
  private readonly progressed = new Map<string, JobInfo>();
  private readonly resync = new Map<string, number>();

  override async job(id: string): Promise<JobInfo> {
    const base = this.progressed.get(id) ?? (await super.job(id));
    if (base.state !== 'running') return base;
    const progress = Math.min(1, base.progress + this.step);
    const failed = progress >= 1 ? this.failJobs.get(id) : undefined;
    const next: JobInfo =
      progress < 1
        ? { ...base, progress }
        : {
            ...base,
            progress,
            state: failed === undefined ? 'done' : 'failed',
            finishedAt: '2026-11-22T05:00:10.000Z',
            error: failed ?? null,
            result: failed === undefined ? (this.jobResult ?? base.result) : null,
          };
    this.progressed.set(id, next);
    return next;
  }

  override async jobs(): Promise<readonly JobInfo[]> {
    return (await super.jobs()).map((j) => this.progressed.get(j.id) ?? j);
  }

  override async verify(volume: string, req: VerifyRequest): Promise<JobInfo> {
    const job = await super.verify(volume, req);
    if (this.failNextVerify !== null) this.failJobs.set(job.id, this.failNextVerify);
    this.failNextVerify = null;
    return job;
  }

  override async volume(name: string): Promise<VolumeInfo> {
    const v = await super.volume(name);
    if (v.mirror.state !== 'resyncing') return v;
    const progress = Math.min(1, (this.resync.get(name) ?? v.mirror.resyncProgress ?? 0) + this.step);
    this.resync.set(name, progress);
    return progress < 1
      ? { ...v, mirror: { ...v.mirror, resyncProgress: progress, outOfSyncBytes: Math.round((1 - progress) * 4 * 1048576) } }
      : { ...v, mirror: { state: 'in-sync', resyncProgress: null, outOfSyncBytes: 0, syncSource: null } };
  }
}

/** A stream that keeps what is written to it. */
export class Capture implements OutStream {
  text = '';
  constructor(
    readonly isTTY = false,
    readonly columns = 100,
  ) {}
  write(chunk: string, cb?: () => void): boolean {
    this.text += chunk;
    cb?.();
    return true;
  }
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Replaces the default environment (TWINSAN_API and TWINSAN_TOKEN_FILE of this harness). */
  readonly env?: Record<string, string | undefined>;
  /** Written to stdin, then ended. */
  readonly stdin?: string;
  readonly stdinIsTTY?: boolean;
  readonly stderrIsTTY?: boolean;
  /** Called while the command runs, with its live stdout (for --follow). */
  readonly during?: (stdout: Capture) => Promise<void>;
}

/** Run one command line through the program bin.ts runs. */
export async function runCli(args: readonly string[], env: Record<string, string | undefined>, options: Omit<RunOptions, 'env'> = {}): Promise<RunResult> {
  const stdout = new Capture();
  const stderr = new Capture(options.stderrIsTTY ?? false);
  const input = new PassThrough();
  const stdin = Object.assign(input, { isTTY: options.stdinIsTTY ?? false }) as PassThrough & InStream;
  if (options.stdin !== undefined) input.end(options.stdin);
  const io: CliIo = { stdout, stderr, stdin, env, sleep: () => new Promise((resolve) => setImmediate(resolve)) };
  // The program bin.ts runs, its root output to our streams.
  const program = buildProgram(io);
  let code = 0;
  const running = program.parseAsync(['node', 'twinsan', ...args]).catch((err: unknown) => {
    code = reportError(err, io);
  });
  if (options.during) await options.during(stdout);
  await running;
  return { code, stdout: stdout.text, stderr: stderr.text };
}

export interface CliHarness {
  readonly control: MovingControl;
  readonly tokens: TokenStore;
  readonly server: ApiServer;
  readonly dir: string;
  readonly tokenFile: string;
  readonly env: Record<string, string>;
  run(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** GET through fastify's inject: the API's own JSON, to compare --json output with. */
  inject(url: string): Promise<string>;
  close(): Promise<void>;
}

export async function cliHarness(tls?: ApiTls): Promise<CliHarness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-cli-'));
  const tokenFile = path.join(dir, 'api.token');
  const { store } = await TokenStore.open(tokenFile);
  const control = new MovingControl();
  const app = buildApp({ control, tokens: store, logger: pino({ level: 'silent' }), nodeId: 'node-a', dashboard: false });
  const server = await startApiServer({ app, listen: '127.0.0.1:0', ...(tls ? { tls } : {}) });
  const env = { TWINSAN_API: server.url, TWINSAN_TOKEN_FILE: tokenFile };
  return {
    control,
    tokens: store,
    server,
    dir,
    tokenFile,
    env,
    run: (args, options = {}) => runCli(args, options.env ?? env, options),
    async inject(url) {
      const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${store.current()}` } });
      return res.body;
    },
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
