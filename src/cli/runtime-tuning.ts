/**
 * V8 settings of the processes that carry I/O: `twinsan target` and
 * `twinsan node start`. Applied once, first thing, by those commands; the
 * CLI's client commands keep Node's defaults.
 *
 * `--no-incremental-marking-task`: V8 starts an incremental mark-compact
 * from a task when its soft limit says the old generation is near its
 * allocation limit. On the data path that fired every few tens of
 * milliseconds once a burst of large writes had passed through (each
 * socket read is an ArrayBuffer of up to 64 KiB outside the heap, and the
 * in-flight ones that survive two scavenges are only freed by a
 * mark-compact), and a 4 KiB write workload then paid 6-13 mark-compacts
 * per 40 000 writes, with the write barrier and V8's marking threads
 * competing for the cores: ~19 instead of ~11 us of CPU per write, and
 * 94 instead of 40 us per QD1 read (docs/performance.md, fourth round).
 * Without the task, marking starts when the allocation limit itself is
 * reached (and on external memory pressure, which V8 handles apart), so
 * the heap stays bounded by the same limits; it is just not collected
 * early.
 *
 * TWINSAN_V8_DEFAULTS=1 keeps V8's defaults (for measuring the difference).
 */
import { setFlagsFromString } from 'node:v8';

export const DATA_PATH_V8_FLAGS: readonly string[] = ['--no-incremental-marking-task'];

/** Applies DATA_PATH_V8_FLAGS unless the environment opts out; returns the flags applied. */
export function tuneRuntimeForDataPath(
  env: NodeJS.ProcessEnv = process.env,
  apply: (flag: string) => void = setFlagsFromString,
): readonly string[] {
  if (env['TWINSAN_V8_DEFAULTS'] === '1') return [];
  for (const flag of DATA_PATH_V8_FLAGS) apply(flag);
  return DATA_PATH_V8_FLAGS;
}
