/**
 * CHAP secrets for `twinsan acl set`: from a file (or "-" for stdin), or
 * typed at a terminal prompt without echo. A secret given on the command line
 * is accepted with a warning only: every local user can read a process's
 * arguments (ps, /proc/PID/cmdline) and the shell keeps them in its history.
 */
import { readFile, stat } from 'node:fs/promises';
import { UsageError } from './client';
import type { CliIo } from './output';

/** More than any CHAP secret (RFC 7143 allows 255 bytes in practice); bounds what is read from a file or stdin. */
const MAX_SECRET_INPUT = 4096;

/** One line ending is not part of the secret (files written by `echo` have one). */
function stripNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}

export async function readSecretFile(file: string, option: string, io: CliIo): Promise<string> {
  let text: string;
  if (file === '-') {
    text = await readStdin(io, option);
  } else {
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new UsageError(`${option}: ${file} is not a regular file`);
      if ((st.mode & 0o077) !== 0) {
        io.stderr.write(`warning: ${option}: ${file} is readable by group or others (mode 0${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}\n`);
      }
      if (st.size > MAX_SECRET_INPUT) throw new UsageError(`${option}: ${file} is larger than ${MAX_SECRET_INPUT} bytes: not a CHAP secret`);
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`${option}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  const secret = stripNewline(text);
  if (secret === '') throw new UsageError(`${option}: ${file === '-' ? 'stdin' : file} holds an empty secret`);
  if (/[\r\n]/.test(secret)) throw new UsageError(`${option}: ${file === '-' ? 'stdin' : file} holds more than one line`);
  return secret;
}

function readStdin(io: CliIo, option: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += b.length;
      if (size > MAX_SECRET_INPUT) {
        cleanup();
        reject(new UsageError(`${option}: stdin holds more than ${MAX_SECRET_INPUT} bytes: not a CHAP secret`));
        return;
      }
      chunks.push(b);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new UsageError(`${option}: cannot read stdin: ${err.message}`));
    };
    const cleanup = (): void => {
      io.stdin.off('data', onData);
      io.stdin.off('end', onEnd);
      io.stdin.off('error', onError);
      io.stdin.pause();
    };
    io.stdin.on('data', onData);
    io.stdin.on('end', onEnd);
    io.stdin.on('error', onError);
    io.stdin.resume();
  });
}

/** Key handling of the hidden prompt: what each control key does. */
const PROMPT_KEYS: Readonly<Record<string, 'enter' | 'cancel' | 'erase'>> = {
  '\r': 'enter',
  '\n': 'enter',
  '\u0003': 'cancel', // Ctrl-C
  '\u0004': 'cancel', // Ctrl-D
  '\u007f': 'erase', // Backspace (DEL)
  '\b': 'erase',
};

/**
 * Lines typed at the terminal, not echoed (raw mode). Keys that arrive
 * together (a paste: both entries at once) are kept for the next line.
 */
class HiddenLines {
  private pending = '';
  private waiter: { resolve: (line: string) => void; reject: (err: Error) => void } | null = null;
  private readonly onData = (chunk: string | Buffer): void => {
    this.pending += String(chunk);
    this.deliver();
  };

  private readonly onEnd = (): void => {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(new UsageError('the terminal closed at the secret prompt'));
  };

  constructor(private readonly io: CliIo) {
    io.stdin.setRawMode?.(true);
    io.stdin.setEncoding('utf8');
    io.stdin.on('data', this.onData);
    io.stdin.on('end', this.onEnd);
    io.stdin.resume();
  }

  read(prompt: string): Promise<string> {
    this.io.stderr.write(prompt);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.deliver();
    });
  }

  close(): void {
    this.io.stdin.off('data', this.onData);
    this.io.stdin.off('end', this.onEnd);
    this.io.stdin.setRawMode?.(false);
    this.io.stdin.pause();
  }

  private deliver(): void {
    if (!this.waiter) return;
    let value = '';
    let used = 0;
    for (const ch of this.pending) {
      used += ch.length;
      const key = Object.hasOwn(PROMPT_KEYS, ch) ? PROMPT_KEYS[ch] : undefined;
      if (key === 'enter' || key === 'cancel') {
        const waiter = this.waiter;
        this.waiter = null;
        this.pending = this.pending.slice(used);
        this.io.stderr.write('\n');
        if (key === 'enter') waiter.resolve(value);
        else waiter.reject(new UsageError('cancelled at the secret prompt'));
        return;
      }
      if (key === 'erase') value = [...value].slice(0, -1).join('');
      else if (value.length < MAX_SECRET_INPUT) value += ch;
    }
    // No line end yet: keep the keys for when it comes (bounded like the secret itself).
    if (this.pending.length > MAX_SECRET_INPUT) this.pending = this.pending.slice(-MAX_SECRET_INPUT);
  }
}

/** Ask twice at the terminal; the two must match. */
export async function promptSecret(io: CliIo, what: string): Promise<string> {
  const lines = new HiddenLines(io);
  try {
    const first = await lines.read(`${what}: `);
    if (first === '') throw new UsageError(`${what}: empty secret`);
    const again = await lines.read(`${what} (again): `);
    if (again !== first) throw new UsageError(`${what}: the two entries differ`);
    return first;
  } finally {
    lines.close();
  }
}

export interface SecretSources {
  /** --x-secret-file */
  readonly file?: string;
  /** --x-secret (argv: warned) */
  readonly value?: string;
}

/**
 * The secret for a CHAP user from the first source given: the argv value
 * (with a warning), the file, or a prompt when stdin is a terminal.
 */
export async function resolveSecret(io: CliIo, sources: SecretSources, names: { readonly file: string; readonly value: string; readonly what: string }): Promise<string> {
  if (sources.value !== undefined && sources.file !== undefined) throw new UsageError(`give ${names.value} or ${names.file}, not both`);
  if (sources.value !== undefined) {
    io.stderr.write(
      `warning: ${names.value} puts the secret where other local users can read it (ps, /proc) and in shell history; prefer ${names.file} FILE or the prompt\n`,
    );
    if (sources.value === '') throw new UsageError(`${names.value}: empty secret`);
    return sources.value;
  }
  if (sources.file !== undefined) return readSecretFile(sources.file, names.file, io);
  if (io.stdin.isTTY === true) return promptSecret(io, names.what);
  throw new UsageError(`${names.what}: give ${names.file} FILE (or - for stdin); there is no terminal to prompt on`);
}
