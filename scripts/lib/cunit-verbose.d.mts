// Types for cunit-verbose.mjs.

export type TestResult = 'passed' | 'failed' | 'skipped' | 'unfinished' | 'not-run';

export interface CunitTest {
  readonly suite: string;
  readonly name: string;
  result: TestResult;
  /** The [SKIPPED] lines the test printed before its result. */
  readonly skipped: string[];
  /** [FAILED] lines and CUnit's assertion details. */
  readonly messages: string[];
}

export interface CunitSummary {
  readonly total: number;
  readonly ran: number;
  readonly passed: number;
  readonly failed: number;
  readonly inactive: number;
}

export interface ParsedRun {
  readonly tests: CunitTest[];
  /** CUnit's own "tests" summary row, or null when the run did not finish. */
  readonly cunit: CunitSummary | null;
  /** Disagreements between our counts and CUnit's, unfinished tests. */
  readonly problems: string[];
}

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  notRun: number;
}

export declare function parseVerbose(text: string): ParsedRun;
export declare function parseList(text: string, family?: string): string[];
export declare function tally(tests: readonly Pick<CunitTest, 'suite' | 'result'>[]): { suites: Map<string, Counts>; total: Counts };
