#!/usr/bin/env node
// npm run conformance [-- --only twinsan|tgt] [--size BYTES] [--timeout SECONDS] [--out FILE]
//                       [--baseline FILE] [--update-baseline [--force]]
//
// Runs libiscsi's SCSI/iSCSI conformance suite, `iscsi-test-cu --test=ALL`,
// against
//   (a) a fresh `twinsan target --thin` on a temp backing file (LUN 0), and
//   (b) Debian's tgtd started here the same way the integration tests do
//       (tid 1, backing file as LUN 1: tgt's LUN 0 is its controller, on
//       which iscsi-test-cu cannot even start),
// each on its own free loopback port and bounded in time, then prints a
// per-suite table side by side, the totals, and the tests that failed on
// twinsan, and writes everything as JSON to
// bench/results/conformance-<YYYY-MM-DD>.json.
//
// iscsi-test-cu invocation (libiscsi 1.19):
//   --test=ALL       the 230 tests of family ALL (SCSI and iSCSI are other
//                    families overlapping it; see --list)
//   --dataloss       without it every test that writes is skipped
//   --verbose        the default output mode; it is the only mode that says
//                    which test printed [SKIPPED] (see below). --xml writes
//                    CUnitAutomated-Results.xml, which knows pass and fail
//                    only.
//   --initiator-name / --initiator-name-2
//                    the two initiator IQNs the reservation and multi-nexus
//                    tests log in with (-i / -I); both must be allowed by
//                    the target's ACL (tgt: bound to ALL).
//   Not given: --allow-sanitize (SANITIZE tests then skip), and no second
//   (multipath) URL, so the Multipath tests skip.
//   Exit status: 0 when all tests passed, 1 when any failed, 255 when it
//   could not log in at all. Page codes and LUN come from the URL
//   iscsi://host:port/iqn/lun.
//
// Counting (see scripts/lib/cunit-verbose.mjs): CUnit 2.1 has no skip, so
// libiscsi marks a test it cannot run by printing "[SKIPPED] reason" and
// returning, which CUnit counts as passed. Here:
//   failed  = CUnit reported FAILED;
//   skipped = CUnit reported passed, and the test printed [SKIPPED] before
//             its result (a partial skip counts as skipped);
//   passed  = CUnit reported passed with no [SKIPPED] line;
//   not run = listed by `iscsi-test-cu --list` but never finished (crash,
//             timeout).
// passed + skipped is checked against CUnit's own Passed column, failed
// against its Failed column; a mismatch is printed and stored.
//
// Baseline (scripts/lib/baseline.mjs): the twinsan run is checked against
// bench/conformance-baseline.json (--baseline FILE for another), which holds
// per suite the minimum number of genuinely passed tests and the number of
// failures allowed (0). The suites of the issue-1 acceptance list
// (ACCEPTANCE_SUITES: Inquiry, Read*/Write*/Verify*, iSCSI*, ...) must have
// no failed or unfinished test. Regressed suites are printed.
// --update-baseline rewrites the file from this run, raising minimums only;
// with --force it takes the run's numbers as they are (may lower them).
//
// Exit status: 0 when twinsan met its baseline (or was not run), 1 when it
// had a failed or unfinished test or fell below the baseline, 2 when a
// target could not be started, a tool is missing or the baseline file is
// unreadable.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { run } from './lib/proc.mjs';
import { launchTgt, launchTwinsan } from './lib/targets.mjs';
import { INSTALL_HINT, requireTools } from './lib/tools.mjs';
import { parseList, parseVerbose, tally } from './lib/cunit-verbose.mjs';
import { compareToBaseline, describeComparison, parseBaseline, updateBaseline } from './lib/baseline.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const INITIATOR_1 = 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test';
const INITIATOR_2 = 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2';
const TARGETS = ['twinsan', 'tgt'];
const DEFAULT_BASELINE = path.join(REPO_ROOT, 'bench', 'conformance-baseline.json');

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    size: { type: 'string', default: String(64 * 1024 * 1024) },
    timeout: { type: 'string', default: '1200' },
    out: { type: 'string' },
    baseline: { type: 'string' },
    'update-baseline': { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});

if (opts.help) {
  console.log(
    'usage: node scripts/conformance.mjs [--only twinsan|tgt] [--size BYTES] [--timeout SECONDS per target] [--out FILE]\n' +
      '         [--baseline FILE] [--update-baseline [--force]]',
  );
  process.exit(0);
}
if (opts.only !== undefined && !TARGETS.includes(opts.only)) fail(`--only must be one of ${TARGETS.join(', ')}`);
const size = Number(opts.size);
const timeoutMs = Number(opts.timeout) * 1000;
if (!Number.isSafeInteger(size) || size <= 0 || size % 512 !== 0) fail('--size must be a positive multiple of 512');
if (!(timeoutMs > 0)) fail('--timeout must be a positive number of seconds');
const selected = opts.only ? [opts.only] : TARGETS;
const baselineFile = path.resolve(opts.baseline ?? DEFAULT_BASELINE);
if (opts['update-baseline'] && !selected.includes('twinsan')) fail('--update-baseline needs a twinsan run');
if (opts.force && !opts['update-baseline']) fail('--force only goes with --update-baseline');
// Read the baseline before spending minutes on runs: a broken file is a setup error.
const baseline = selected.includes('twinsan') ? await loadBaseline(baselineFile, { required: !opts['update-baseline'] }) : null;

function fail(message, code = 2) {
  console.error(`conformance: ${message}`);
  process.exit(code);
}

try {
  requireTools(['iscsi-test-cu', ...(selected.includes('tgt') ? ['tgtd', 'tgtadm'] : [])]);
} catch (e) {
  fail(e.message);
}
if (selected.includes('tgt') && process.getuid?.() !== 0) fail(`tgtd needs root. ${INSTALL_HINT}`);

const listing = await run('iscsi-test-cu', ['--list'], { timeoutMs: 30_000 });
const catalogue = parseList(listing.stdout);
if (catalogue.length === 0) fail(`iscsi-test-cu --list printed no ALL.* tests:\n${listing.stderr}`);

const runs = {};
let setupFailed = false;
for (const kind of selected) {
  console.error(`conformance: ${kind}: starting target (${size} bytes)`);
  let target;
  try {
    target = kind === 'twinsan' ? await launchTwinsan({ size, thin: true }) : await launchTgt({ size });
  } catch (e) {
    console.error(`conformance: ${kind}: could not start: ${e.message}`);
    runs[kind] = { error: `could not start: ${e.message}` };
    setupFailed = true;
    continue;
  }
  try {
    runs[kind] = await runSuite(kind, target);
  } finally {
    const status = await target.stop();
    if (runs[kind]) runs[kind].targetExitStatus = status;
    await target.dispose();
  }
}

const report = {
  date: new Date().toISOString(),
  tool: { libiscsi: await packageVersion('libiscsi-bin'), tgt: await packageVersion('tgt') },
  counting:
    'failed = CUnit FAILED; skipped = CUnit passed after printing [SKIPPED]; passed = CUnit passed, no [SKIPPED]; notRun = listed but never finished',
  size,
  runs,
};
printReport(report);

// The twinsan run against its floor (see the header comment).
const tw = runs.twinsan?.totals ? runs.twinsan : undefined;
let verdict = null;
if (tw) {
  let floor = baseline;
  if (opts['update-baseline']) {
    floor = updateBaseline(tw, baseline, { force: opts.force, date: report.date, libiscsi: report.tool.libiscsi });
    await writeFile(baselineFile, `${JSON.stringify(floor, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(process.cwd(), baselineFile) || baselineFile}${opts.force ? ' (forced)' : ' (minimums raised only)'}`);
  }
  verdict = compareToBaseline(tw, floor);
  report.baseline = { file: path.relative(REPO_ROOT, baselineFile), ...verdict };
  console.log(`\n${describeComparison(verdict).join('\n')}`);
}

const outFile = opts.out ?? path.join(REPO_ROOT, 'bench', 'results', `conformance-${report.date.slice(0, 10)}.json`);
await mkdir(path.dirname(outFile), { recursive: true });
await writeFile(outFile, `${JSON.stringify(report, null, 2)}\n`);
console.log(`\nwrote ${path.relative(process.cwd(), outFile) || outFile}`);

if (setupFailed) process.exit(2);
if (!tw) process.exit(0);
process.exit(verdict.ok && tw.totals.failed === 0 && tw.totals.notRun === 0 ? 0 : 1);

async function loadBaseline(file, { required }) {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT' && !required) return null;
    fail(`cannot read baseline ${file}: ${e.message}${e.code === 'ENOENT' ? ' (create it with --update-baseline)' : ''}`);
  }
  try {
    return parseBaseline(text, file);
  } catch (e) {
    fail(e.message);
  }
}

async function runSuite(kind, target) {
  const cwd = await mkdtemp(path.join(os.tmpdir(), `conformance-${kind}-`));
  const args = ['--test=ALL', '--dataloss', '--verbose', `--initiator-name=${INITIATOR_1}`, `--initiator-name-2=${INITIATOR_2}`, target.url];
  console.error(`conformance: ${kind}: iscsi-test-cu ${args.join(' ')}`);
  try {
    const r = await run('iscsi-test-cu', args, { cwd, timeoutMs });
    const parsed = parseVerbose(r.stdout);
    const seen = new Set(parsed.tests.map((t) => `${t.suite}.${t.name}`));
    const tests = [
      ...parsed.tests,
      ...catalogue.filter((id) => !seen.has(id)).map((id) => {
        const [suite, name] = id.split('.');
        return { suite, name, result: 'not-run', skipped: [], messages: [] };
      }),
    ];
    const { suites, total } = tally(tests);
    const problems = [...parsed.problems];
    if (r.timedOut) problems.push(`iscsi-test-cu killed after ${timeoutMs / 1000} s`);
    if (r.code !== 0 && r.code !== 1) problems.push(`iscsi-test-cu exited ${r.code}: ${r.stderr.trim().slice(-500)}`);
    console.error(`conformance: ${kind}: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped, ${total.notRun} not run (${(r.durationMs / 1000).toFixed(1)} s)`);
    return {
      url: target.url,
      command: `iscsi-test-cu ${args.join(' ')}`,
      exitCode: r.code,
      durationMs: r.durationMs,
      cunit: parsed.cunit,
      problems,
      totals: total,
      suites: Object.fromEntries(suites),
      tests,
      stderrTail: r.stderr.slice(-2000),
      targetStderrTail: target.stderr().slice(-4000),
    };
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

function printReport({ runs: results }) {
  const kinds = Object.keys(results).filter((k) => results[k].totals);
  const suiteNames = [...new Set(kinds.flatMap((k) => Object.keys(results[k].suites)))].sort((a, b) => a.localeCompare(b));
  const cell = (c) => (c ? `${c.passed}/${c.failed}/${c.skipped}${c.notRun ? ` (+${c.notRun} not run)` : ''}` : '-');
  const width = Math.max(5, ...suiteNames.map((s) => s.length));
  const colWidth = 22;
  const header = ['Suite'.padEnd(width), ...kinds.map((k) => `${k} pass/fail/skip`.padEnd(colWidth))].join('  ');
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const suite of suiteNames) {
    console.log([suite.padEnd(width), ...kinds.map((k) => cell(results[k].suites[suite]).padEnd(colWidth))].join('  '));
  }
  console.log('-'.repeat(header.length));
  console.log(['TOTAL'.padEnd(width), ...kinds.map((k) => cell(results[k].totals).padEnd(colWidth))].join('  '));
  for (const k of Object.keys(results)) {
    const r = results[k];
    if (r.error) {
      console.log(`\n${k}: ${r.error.split('\n')[0]}`);
      continue;
    }
    const c = r.cunit;
    console.log(
      `\n${k}: ${r.totals.passed} passed, ${r.totals.failed} failed, ${r.totals.skipped} skipped, ${r.totals.notRun} not run of ${r.tests.length}` +
        (c ? ` (CUnit: ran ${c.ran}, passed ${c.passed}, failed ${c.failed})` : ''),
    );
    for (const p of r.problems) console.log(`  ! ${p}`);
  }
  for (const k of kinds) {
    const reasons = new Map();
    for (const t of results[k].tests) {
      if (t.result === 'skipped') reasons.set(t.skipped[0], (reasons.get(t.skipped[0]) ?? 0) + 1);
    }
    console.log(`\nWhy tests skipped on ${k}:`);
    for (const [reason, n] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(3)}  ${reason}`);
  }
  const tw = results.twinsan;
  if (tw?.tests) {
    const bad = tw.tests.filter((t) => t.result === 'failed' || t.result === 'unfinished' || t.result === 'not-run');
    console.log(`\nFailed on twinsan (${bad.length}):`);
    for (const t of bad) console.log(`  ${t.suite}.${t.name} [${t.result}]${t.messages[0] ? ` ${t.messages[0]}` : ''}`);
  }
}

async function packageVersion(name) {
  const r = await run('dpkg-query', ['-W', '-f=${Version}', name], { timeoutMs: 10_000 }).catch(() => undefined);
  return r?.code === 0 ? r.stdout.trim() : 'unknown';
}
