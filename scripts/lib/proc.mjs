// Child processes with bounded lifetimes: run() for a command that should
// finish, spawnDaemon() for a server that runs until stopped. Every wait is
// bounded; SIGKILL follows SIGTERM after a grace period.
//
// Plain ESM (used by scripts without a build step and by the vitest
// helpers); types in proc.d.mts.

import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const KILL_GRACE_MS = 2_000;
const TAIL_BYTES = 256 * 1024;

/**
 * Run one command to completion. stdin is /dev/null unless `input` is given;
 * on timeout the command gets SIGTERM, then SIGKILL. Always resolves, except
 * when the command cannot be started (missing binary).
 */
export function run(cmd, args, options = {}) {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxBytes = options.maxOutputBytes ?? 16 * 1024 * 1024;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out = new HeadBuffer(maxBytes);
    const err = new HeadBuffer(maxBytes);
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    if (options.input !== undefined) child.stdin.end(options.input);

    let timedOut = false;
    let killTimer;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({
        code: exitCodeOf(code, signal),
        signal,
        stdout: out.text(),
        stderr: err.text() + (timedOut ? `\n[run] ${cmd} killed after its ${timeoutMs} ms limit\n` : ''),
        timedOut,
        durationMs: Date.now() - started,
      });
    });
  });
}

/** Shell-style status: the exit code, or 128 + the signal's number. */
export function exitCodeOf(code, signal) {
  if (code !== null && code !== undefined) return code;
  return 128 + (signal ? os.constants.signals[signal] ?? 0 : 0);
}

/** A finished command, told for an assertion message. */
export function describeRun(what, r) {
  return `${what}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`;
}

/** Keeps the first `max` bytes of a stream. */
class HeadBuffer {
  constructor(max) {
    this.max = max;
    this.chunks = [];
    this.bytes = 0;
    this.dropped = 0;
  }
  push(chunk) {
    const room = this.max - this.bytes;
    const kept = room <= 0 ? chunk.subarray(0, 0) : chunk.subarray(0, room);
    if (kept.length > 0) this.chunks.push(kept);
    this.bytes += kept.length;
    this.dropped += chunk.length - kept.length;
  }
  text() {
    const s = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped > 0 ? `${s}\n[run] ${this.dropped} further bytes dropped\n` : s;
  }
}

/** Keeps the last `max` bytes of a stream (a daemon's log). */
class TailBuffer {
  constructor(max) {
    this.max = max;
    this.buf = Buffer.alloc(0);
  }
  push(chunk) {
    const joined = Buffer.concat([this.buf, chunk]);
    this.buf = joined.length > this.max ? joined.subarray(joined.length - this.max) : joined;
  }
  text() {
    return this.buf.toString('utf8');
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Start a long-running child whose output is kept (last 256 KiB of each
 * stream). stop() signals it and waits, with SIGKILL after `timeoutMs`;
 * it resolves to the exit status (128 + signal when a signal ended it).
 */
export function spawnDaemon(cmd, args, { label = path.basename(cmd), env, cwd } = {}) {
  const child = spawn(cmd, args, { env: env ?? process.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = new TailBuffer(TAIL_BYTES);
  const stderr = new TailBuffer(TAIL_BYTES);
  child.stdout.on('data', (c) => stdout.push(c));
  child.stderr.on('data', (c) => stderr.push(c));
  let status;
  let spawnError;
  const exited = new Promise((resolve) => {
    child.on('error', (e) => {
      spawnError = e;
      status = 127;
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      status = exitCodeOf(code, signal);
      resolve(status);
    });
  });
  const daemon = {
    label,
    pid: child.pid,
    exited,
    status: () => status,
    stdout: () => stdout.text(),
    stderr: () => (spawnError ? `${spawnError.message}\n` : '') + stderr.text(),
    /** Throws if the daemon has exited; the message carries its stderr. */
    assertRunning(what = 'while starting') {
      if (status !== undefined) {
        throw new Error(`${label} exited with status ${status} ${what}\n--- stderr ---\n${daemon.stderr().slice(-8000)}\n--- stdout ---\n${daemon.stdout().slice(-4000)}`);
      }
    },
    /**
     * Resolves with the first match of `pattern` in the daemon's stdout (or
     * stderr), checked on every chunk it writes; rejects, with its output,
     * if it exits first or nothing matches within `timeoutMs`. A port that
     * accepts is not proof a log line was written: loggers write
     * asynchronously, and a loaded machine can deliver the line later.
     */
    waitForOutput(pattern, { stream = 'stdout', timeoutMs = 15_000 } = {}) {
      const source = stream === 'stderr' ? child.stderr : child.stdout;
      const text = stream === 'stderr' ? daemon.stderr : daemon.stdout;
      return new Promise((resolve, reject) => {
        let settled = false;
        const settle = (fn) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          source.off('data', check);
          fn();
        };
        // Listeners run in order: the tail buffer has taken the chunk when this runs.
        function check() {
          const m = pattern.exec(text());
          if (m) settle(() => resolve(m));
        }
        const timer = setTimeout(() => {
          check();
          const why = `no output matching ${pattern} within ${timeoutMs} ms`;
          settle(() => reject(new Error(`${label}: ${why}\n--- stderr ---\n${daemon.stderr().slice(-8000)}\n--- stdout ---\n${daemon.stdout().slice(-4000)}`)));
        }, timeoutMs);
        source.on('data', check);
        // 'exit' may come before the last 'data': look once more when the stream has ended.
        const onEnded = () => {
          check();
          settle(() => reject(new Error(`${label} exited with status ${status} before writing ${pattern}\n--- stderr ---\n${daemon.stderr().slice(-8000)}\n--- stdout ---\n${daemon.stdout().slice(-4000)}`)));
        };
        exited.then(() => (source.closed ? onEnded() : source.once('close', onEnded)));
        check();
      });
    },
    async stop({ signal = 'SIGTERM', timeoutMs = 10_000 } = {}) {
      if (status !== undefined) return status;
      child.kill(signal);
      const timer = sleep(timeoutMs).then(() => 'timeout');
      if ((await Promise.race([exited, timer])) === 'timeout' && status === undefined) {
        child.kill('SIGKILL');
        await Promise.race([exited, sleep(KILL_GRACE_MS)]);
      }
      return status ?? 137;
    },
    killSync() {
      if (status === undefined) {
        try {
          child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
  return daemon;
}
