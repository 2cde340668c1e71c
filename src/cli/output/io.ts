/**
 * The streams and environment a command runs with. bin.ts passes the
 * process's; tests pass their own, so commands run in-process against a
 * real HTTP server and their output is read back exactly.
 */

export interface OutStream {
  write(chunk: string): unknown;
  /** Set on a terminal: progress bars and prompts only then. */
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface InStream extends NodeJS.ReadableStream {
  readonly isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export interface CliIo {
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  readonly stdin: InStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Wait between polls of a job or a resync; tests make it instant. */
  readonly sleep: (ms: number) => Promise<void>;
}

/** `twinsan events --follow | head`: once the reader is gone, stop quietly instead of dying on EPIPE. */
function exitOnClosedPipe(stream: NodeJS.WriteStream): void {
  if (stream.listenerCount('error') > 0) return;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

export function processIo(): CliIo {
  exitOnClosedPipe(process.stdout);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}
