/**
 * run(): one external command with a hard time limit, returning
 * { code, stdout, stderr, timedOut, ... }. The implementation is shared with
 * scripts/conformance.mjs, hence it lives in scripts/lib.
 */
export { run, describeRun, exitCodeOf } from '../../../scripts/lib/proc.mjs';
export type { RunOptions, RunResult } from '../../../scripts/lib/proc.mjs';
