// The conformance floor for twinsan (bench/conformance-baseline.json) and the
// check of a run against it. Types in baseline.d.mts.
//
// A baseline holds, per iscsi-test-cu suite, the minimum number of tests
// that must genuinely pass on twinsan (passed, not skipped: see
// cunit-verbose.mjs), plus the number of failures allowed anywhere (0).
// A run regresses when
//   - a suite passes fewer tests than its minimum (or is missing),
//   - more tests failed or did not finish than allowed, or
//   - an acceptance suite (ACCEPTANCE_SUITES, issue 1) has a failure or an
//     unfinished test, or is missing.
// Numbers only go up: updateBaseline() raises each minimum to the current
// run and never lowers one unless forced.

export const BASELINE_VERSION = 1;

/** Suites that must run with zero failures: the acceptance list of issue 1 ("Step 1"). */
export const ACCEPTANCE_SUITES = Object.freeze([
  'Inquiry',
  'Mandatory',
  'ModeSense6',
  'Prefetch10',
  'Prefetch16',
  'Read6',
  'Read10',
  'Read12',
  'Read16',
  'ReadCapacity10',
  'ReadCapacity16',
  'ReportSupportedOpcodes',
  'TestUnitReady',
  'Verify10',
  'Verify12',
  'Verify16',
  'Write10',
  'Write12',
  'Write16',
  'WriteVerify10',
  'WriteVerify12',
  'WriteVerify16',
  'iSCSIcmdsn',
  'iSCSIdatasn',
  'iSCSIResiduals',
  'iSCSITMF',
]);

const NOTE =
  'Floor for `npm run conformance` (scripts/conformance.mjs) on twinsan: per suite, the minimum number of ' +
  'iscsi-test-cu tests that must genuinely pass (passed without [SKIPPED]); maxFailed is the number of failed ' +
  'or unfinished tests allowed in the whole run. Raise with `npm run conformance -- --only twinsan --update-baseline`; ' +
  'lowering needs --force.';

/**
 * Check a twinsan run against a baseline.
 * @param {{ totals: { failed: number, notRun: number }, suites: Record<string, { passed: number, failed: number, skipped: number, notRun: number }> }} run
 * @param {{ maxFailed: number, minPassed: Record<string, number> }} baseline
 */
export function compareToBaseline(run, baseline, acceptance = ACCEPTANCE_SUITES) {
  const regressions = [];
  for (const [suite, min] of Object.entries(baseline.minPassed)) {
    const passed = run.suites[suite]?.passed ?? 0;
    if (!run.suites[suite]) regressions.push({ suite, passed, min, why: `suite missing from the run (baseline: ${min} passed)` });
    else if (passed < min) regressions.push({ suite, passed, min, why: `${passed} passed, baseline ${min}` });
  }
  const acceptanceFailures = [];
  for (const suite of acceptance) {
    const c = run.suites[suite];
    if (!c) acceptanceFailures.push({ suite, why: 'suite missing from the run' });
    else if (c.failed > 0 || c.notRun > 0) acceptanceFailures.push({ suite, why: `${c.failed} failed, ${c.notRun} not run (must be 0)` });
  }
  const bad = run.totals.failed + run.totals.notRun;
  const tooManyFailures = bad > baseline.maxFailed ? `${bad} tests failed or did not finish (allowed: ${baseline.maxFailed})` : null;
  const improvements = Object.entries(run.suites)
    .filter(([suite, c]) => c.passed > (baseline.minPassed[suite] ?? 0))
    .map(([suite, c]) => ({ suite, passed: c.passed, min: baseline.minPassed[suite] ?? 0 }));
  return {
    ok: regressions.length === 0 && acceptanceFailures.length === 0 && tooManyFailures === null,
    regressions,
    acceptanceFailures,
    tooManyFailures,
    improvements,
  };
}

/**
 * The baseline after `run`: every suite's minimum becomes max(old, passed);
 * with `force`, exactly `passed` (suites absent from the run are dropped).
 * maxFailed is kept (0 unless someone edits the file by hand).
 */
export function updateBaseline(run, old, { force = false, date = new Date().toISOString(), libiscsi = 'unknown' } = {}) {
  const minPassed = {};
  const names = new Set([...Object.keys(run.suites), ...(force || !old ? [] : Object.keys(old.minPassed))]);
  for (const suite of [...names].sort((a, b) => a.localeCompare(b))) {
    const now = run.suites[suite]?.passed ?? 0;
    minPassed[suite] = force || !old ? now : Math.max(now, old.minPassed[suite] ?? 0);
  }
  return {
    version: BASELINE_VERSION,
    note: NOTE,
    updated: date,
    libiscsi,
    maxFailed: old?.maxFailed ?? 0,
    minPassed,
  };
}

/** Parse and check a baseline file's contents; throws with a readable message. */
export function parseBaseline(text, source = 'baseline') {
  let b;
  try {
    b = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not JSON: ${e.message}`);
  }
  if (b?.version !== BASELINE_VERSION) throw new Error(`${source}: version must be ${BASELINE_VERSION}`);
  if (!Number.isInteger(b.maxFailed) || b.maxFailed < 0) throw new Error(`${source}: maxFailed must be a non-negative integer`);
  if (typeof b.minPassed !== 'object' || b.minPassed === null) throw new Error(`${source}: minPassed must be an object`);
  for (const [suite, n] of Object.entries(b.minPassed)) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`${source}: minPassed.${suite} must be a non-negative integer`);
  }
  return b;
}

/** Lines describing a comparison, for the console. */
export function describeComparison(result) {
  const lines = [];
  if (result.ok) lines.push('Baseline: OK (no suite below its floor, no failures, acceptance suites clean)');
  else lines.push('Baseline: REGRESSED');
  for (const r of result.regressions) lines.push(`  regressed: ${r.suite}: ${r.why}`);
  for (const a of result.acceptanceFailures) lines.push(`  acceptance suite ${a.suite}: ${a.why}`);
  if (result.tooManyFailures) lines.push(`  ${result.tooManyFailures}`);
  if (result.improvements.length > 0) {
    lines.push(`  above the baseline (raise it with --update-baseline): ${result.improvements.map((i) => `${i.suite} ${i.min}->${i.passed}`).join(', ')}`);
  }
  return lines;
}
