// Types for proc.mjs.

export interface RunOptions {
  /** Hard limit for the whole command; default 30 s. */
  readonly timeoutMs?: number;
  /** Written to stdin, which is then closed; otherwise stdin is /dev/null. */
  readonly input?: string | Buffer;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Bytes kept per stream; default 16 MiB. */
  readonly maxOutputBytes?: number;
}

export interface RunResult {
  /** Exit code, or 128 + signal number when a signal ended the command. */
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly durationMs: number;
}

/** Run to completion; rejects only when the command cannot be started. */
export declare function run(cmd: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
export declare function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number;
/** A finished command, told for an assertion message. */
export declare function describeRun(what: string, r: RunResult): string;
export declare function sleep(ms: number): Promise<void>;

export interface Daemon {
  readonly label: string;
  readonly pid: number | undefined;
  /** Resolves to the exit status once the process has exited. */
  readonly exited: Promise<number>;
  status(): number | undefined;
  stdout(): string;
  stderr(): string;
  /** Throws, with the daemon's output, if it has exited. */
  assertRunning(what?: string): void;
  /** The first match of `pattern` in its stdout (or stderr), waiting for it; rejects if it exits or times out first. */
  waitForOutput(pattern: RegExp, options?: { stream?: 'stdout' | 'stderr'; timeoutMs?: number }): Promise<RegExpExecArray>;
  /** Signal (default SIGTERM), wait up to timeoutMs, then SIGKILL; the exit status. */
  stop(options?: { signal?: NodeJS.Signals; timeoutMs?: number }): Promise<number>;
  killSync(): void;
}

export declare function spawnDaemon(
  cmd: string,
  args: readonly string[],
  options?: { label?: string; env?: NodeJS.ProcessEnv; cwd?: string },
): Daemon;
