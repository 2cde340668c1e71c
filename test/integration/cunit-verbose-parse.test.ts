/**
 * The conformance script's reading of iscsi-test-cu's verbose output
 * (scripts/lib/cunit-verbose.mjs). The input below is written by hand in
 * the shape libiscsi 1.19 / CUnit 2.1 print, including the cases that make
 * counting subtle.
 */
import { describe, expect, it } from 'vitest';
import { parseList, parseVerbose, tally } from '../../scripts/lib/cunit-verbose.mjs';

const OUTPUT = [
  '',
  '     CUnit - A unit testing framework for C - Version 2.1-3',
  '',
  'Suite: Alpha',
  '  Test: Plain ...passed',
  '  Test: NotImplemented ...    [SKIPPED] FOO is not implemented.',
  '    [SKIPPED] FOO is not implemented.',
  'passed',
  '  Test: Chatty ...    Doing step one',
  '    Doing step two',
  'passed',
  '  Test: Broken ...    [FAILED] FOO should have failed',
  'FAILED',
  '    1. test_foo.c:38  - CU_ASSERT_EQUAL(_r,0)',
  '    2. test_foo.c:40  - CU_ASSERT_EQUAL(_r,0)',
  'Suite: Beta',
  // A passing test followed on the same line by the suite teardown's log:
  '  Test: Reset ...passed    [FAILED] PRIN command: failed with sense.',
  '  Test: SkipThenFail ...    [SKIPPED] part one unsupported',
  'FAILED',
  '    1. test_bar.c:12  - CU_ASSERT_EQUAL(ret,0)',
  '',
  'Run Summary:    Type  Total    Ran Passed Failed Inactive',
  '              suites      2      2    n/a      0        0',
  '               tests      6      6      4      2        0',
  '             asserts     99     99     96      3      n/a',
  '',
].join('\n');

describe('parseVerbose', () => {
  const parsed = parseVerbose(OUTPUT);
  const byName = new Map(parsed.tests.map((t) => [`${t.suite}.${t.name}`, t]));

  it('finds every test with its suite', () => {
    expect([...byName.keys()]).toEqual(['Alpha.Plain', 'Alpha.NotImplemented', 'Alpha.Chatty', 'Alpha.Broken', 'Beta.Reset', 'Beta.SkipThenFail']);
  });

  it('counts a passed test that printed [SKIPPED] as skipped', () => {
    expect(byName.get('Alpha.NotImplemented')!.result).toBe('skipped');
    expect(byName.get('Alpha.Plain')!.result).toBe('passed');
    expect(byName.get('Alpha.Chatty')!.result).toBe('passed');
  });

  it('counts a FAILED test as failed even when it also printed [SKIPPED]', () => {
    expect(byName.get('Beta.SkipThenFail')!.result).toBe('failed');
  });

  it('keeps the assertion details of a failed test', () => {
    expect(byName.get('Alpha.Broken')!.messages).toEqual([
      '[FAILED] FOO should have failed',
      '1. test_foo.c:38  - CU_ASSERT_EQUAL(_r,0)',
      '2. test_foo.c:40  - CU_ASSERT_EQUAL(_r,0)',
    ]);
  });

  it('does not charge teardown output printed after a result to that test', () => {
    const reset = byName.get('Beta.Reset')!;
    expect(reset.result).toBe('passed');
    expect(reset.messages).toEqual([]);
  });

  it("agrees with CUnit's own summary", () => {
    expect(parsed.cunit).toEqual({ total: 6, ran: 6, passed: 4, failed: 2, inactive: 0 });
    expect(parsed.problems).toEqual([]);
    expect(tally(parsed.tests).total).toEqual({ passed: 3, failed: 2, skipped: 1, notRun: 0 });
  });

  it('reports a run cut short', () => {
    const cut = parseVerbose(OUTPUT.split('\n').slice(0, 10).join('\n'));
    expect(cut.tests.at(-1)).toMatchObject({ name: 'Chatty', result: 'unfinished' });
    expect(cut.cunit).toBeNull();
    expect(cut.problems).toEqual(['no CUnit run summary: the run did not finish', '1 test(s) started but never finished']);
  });
});

describe('tally', () => {
  it('counts per suite and in total, not-run tests apart', () => {
    const { suites, total } = tally([
      { suite: 'A', result: 'passed' },
      { suite: 'A', result: 'skipped' },
      { suite: 'B', result: 'failed' },
      { suite: 'B', result: 'not-run' },
    ]);
    expect(suites.get('A')).toEqual({ passed: 1, failed: 0, skipped: 1, notRun: 0 });
    expect(suites.get('B')).toEqual({ passed: 0, failed: 1, skipped: 0, notRun: 1 });
    expect(total).toEqual({ passed: 1, failed: 1, skipped: 1, notRun: 1 });
  });
});

describe('parseList', () => {
  it('keeps the Suite.Test entries of one family', () => {
    const list = ['ALL', 'ALL.Read10', 'ALL.Read10.Simple', 'ALL.Read10.BeyondEol', 'SCSI.Read10.Simple', 'iSCSI'].join('\n');
    expect(parseList(list)).toEqual(['Read10.Simple', 'Read10.BeyondEol']);
  });
});
