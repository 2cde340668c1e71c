// Types for baseline.mjs.
import type { Counts } from './cunit-verbose.mjs';

export declare const BASELINE_VERSION: 1;
export declare const ACCEPTANCE_SUITES: readonly string[];

export interface Baseline {
  readonly version: 1;
  readonly note?: string;
  readonly updated?: string;
  readonly libiscsi?: string;
  /** Failed or unfinished tests allowed in the whole run. */
  readonly maxFailed: number;
  /** Suite → minimum number of genuinely passed tests. */
  readonly minPassed: Readonly<Record<string, number>>;
}

export interface RunCounts {
  readonly totals: Pick<Counts, 'failed' | 'notRun'>;
  readonly suites: Readonly<Record<string, Counts>>;
}

export interface Comparison {
  readonly ok: boolean;
  readonly regressions: ReadonlyArray<{ suite: string; passed: number; min: number; why: string }>;
  readonly acceptanceFailures: ReadonlyArray<{ suite: string; why: string }>;
  readonly tooManyFailures: string | null;
  readonly improvements: ReadonlyArray<{ suite: string; passed: number; min: number }>;
}

export declare function compareToBaseline(run: RunCounts, baseline: Baseline, acceptance?: readonly string[]): Comparison;
export declare function updateBaseline(
  run: RunCounts,
  old: Baseline | null,
  options?: { force?: boolean; date?: string; libiscsi?: string },
): Baseline;
export declare function parseBaseline(text: string, source?: string): Baseline;
export declare function describeComparison(result: Comparison): string[];
