// Parse the verbose (-v, the default) console output of libiscsi's
// iscsi-test-cu (CUnit 2.1 basic interface) into one result per test.
//
// Shape of that output:
//   Suite: Read10
//     Test: Simple ...passed
//     Test: BeyondEol ...    [SKIPPED] READ10 is not implemented.
//       [SKIPPED] READ10 is not implemented.
//   passed
//     Test: Invalid ...    [FAILED] READ10 ... should have failed
//   FAILED
//       1. test_read10_invalid.c:58  - CU_ASSERT_EQUAL(ret,0)
//   ...
//   Run Summary:    Type  Total    Ran Passed Failed Inactive
//                  suites     51     51    n/a      0        0
//                   tests    230    230    222      8        0
//
// CUnit 2.1 has no "skipped" state: libiscsi reports a test it cannot run
// (command not implemented, LU not thin / not removable, --dataloss or
// --allow-sanitize not given, no multipath URL) by logging "[SKIPPED] ..."
// and returning, which CUnit counts as passed. So:
//   failed  = CUnit says FAILED (whatever else the test printed);
//   skipped = CUnit says passed and the test printed at least one [SKIPPED]
//             line before its result;
//   passed  = CUnit says passed and the test printed no [SKIPPED] line.
// Only lines between "Test: X ..." and that test's passed/FAILED marker
// count: the suite's setup/teardown also logs (e.g. Reserve6's teardown
// prints "[FAILED] PRIN ..." right after LUNReset's "passed"), and those
// belong to no test. passed + skipped must equal CUnit's own Passed count
// and failed its Failed count; parseVerbose reports any difference.

const SUITE = /^Suite: (.+?)\s*$/;
const TEST = /^ {2}Test: (.+?) \.\.\.(.*)$/;
const RESULT = /^(passed|FAILED)(.*)$/;
const SUMMARY_TESTS = /^\s+tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/;
const ASSERT_DETAIL = /^\s+\d+\. \S+:\d+\s+- /;

/**
 * @param {string} text the complete stdout of `iscsi-test-cu -v ...`
 * @returns {{ tests: Array<{ suite: string, name: string, result: 'passed'|'failed'|'skipped'|'unfinished', skipped: string[], messages: string[] }>, cunit: null | { total: number, ran: number, passed: number, failed: number, inactive: number }, problems: string[] }}
 */
export function parseVerbose(text) {
  const tests = [];
  let suite = '';
  let current; // test whose result marker has not been seen yet
  let lastFinished; // test whose assertion details may follow
  let cunit = null;

  const note = (line) => {
    const t = line.trim();
    if (t.startsWith('[SKIPPED]')) current.skipped.push(t);
    else if (t.startsWith('[FAILED]')) current.messages.push(t);
  };
  const finish = (marker) => {
    current.result = marker === 'FAILED' ? 'failed' : current.skipped.length > 0 ? 'skipped' : 'passed';
    lastFinished = current;
    current = undefined;
  };

  for (const line of text.split('\n')) {
    let m;
    if ((m = SUITE.exec(line))) {
      suite = m[1];
      current = lastFinished = undefined;
      continue;
    }
    if ((m = TEST.exec(line))) {
      current = { suite, name: m[1], result: 'unfinished', skipped: [], messages: [] };
      lastFinished = undefined;
      tests.push(current);
      const rest = m[2];
      const r = RESULT.exec(rest);
      if (r) finish(r[1]);
      else note(rest);
      continue;
    }
    if ((m = SUMMARY_TESTS.exec(line))) {
      cunit = { total: +m[1], ran: +m[2], passed: +m[3], failed: +m[4], inactive: +m[5] };
      continue;
    }
    if (/^Run Summary:/.test(line)) {
      current = lastFinished = undefined;
      continue;
    }
    if (current) {
      const r = RESULT.exec(line);
      if (r) finish(r[1]);
      else note(line);
    } else if (lastFinished?.result === 'failed' && ASSERT_DETAIL.test(line)) {
      lastFinished.messages.push(line.trim());
    }
  }

  const problems = [];
  const count = (result) => tests.filter((t) => t.result === result).length;
  if (cunit) {
    if (count('passed') + count('skipped') !== cunit.passed) {
      problems.push(`passed ${count('passed')} + skipped ${count('skipped')} != CUnit's passed ${cunit.passed}`);
    }
    if (count('failed') !== cunit.failed) problems.push(`failed ${count('failed')} != CUnit's failed ${cunit.failed}`);
    if (tests.length !== cunit.ran) problems.push(`${tests.length} tests seen != CUnit's ran ${cunit.ran}`);
  } else {
    problems.push('no CUnit run summary: the run did not finish');
  }
  if (count('unfinished') > 0) problems.push(`${count('unfinished')} test(s) started but never finished`);
  return { tests, cunit, problems };
}

/** Tests named by `iscsi-test-cu --list` under a family, as "Suite.Test". */
export function parseList(text, family = 'ALL') {
  const out = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split('.');
    if (parts.length === 3 && parts[0] === family) out.push(`${parts[1]}.${parts[2]}`);
  }
  return out;
}

/** Per-suite and total counts of passed / failed / skipped / not run. */
export function tally(tests) {
  const zero = () => ({ passed: 0, failed: 0, skipped: 0, notRun: 0 });
  const suites = new Map();
  const total = zero();
  for (const t of tests) {
    const key = t.result === 'unfinished' || t.result === 'not-run' ? 'notRun' : t.result;
    if (!suites.has(t.suite)) suites.set(t.suite, zero());
    suites.get(t.suite)[key]++;
    total[key]++;
  }
  return { suites, total };
}
