/**
 * The conformance floor: `npm run conformance` fails when twinsan falls below
 * bench/conformance-baseline.json or any issue-1 acceptance suite has a
 * failure. First the comparison rules (scripts/lib/baseline.mjs) on counts
 * written out by hand, then one real run of the script against twinsan only
 * (libiscsi's iscsi-test-cu, about 15 s).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACCEPTANCE_SUITES,
  compareToBaseline,
  describeComparison,
  parseBaseline,
  updateBaseline,
} from '../../scripts/lib/baseline.mjs';
import type { Baseline, RunCounts } from '../../scripts/lib/baseline.mjs';
import { describeRun, requireTools, run } from './helpers';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const counts = (passed: number, failed = 0, skipped = 0, notRun = 0) => ({ passed, failed, skipped, notRun });

function runOf(suites: Record<string, ReturnType<typeof counts>>): RunCounts {
  const totals = Object.values(suites).reduce((t, c) => ({ failed: t.failed + c.failed, notRun: t.notRun + c.notRun }), { failed: 0, notRun: 0 });
  return { totals, suites };
}

const BASE: Baseline = { version: 1, maxFailed: 0, minPassed: { Read10: 6, Write10: 6, Unmap: 0 } };

describe('conformance baseline rules', () => {
  it('accepts a run at or above every floor', () => {
    const r = compareToBaseline(runOf({ Read10: counts(6), Write10: counts(7), Unmap: counts(0, 0, 3) }), BASE, ['Read10']);
    expect(r.ok).toBe(true);
    expect(r.improvements).toEqual([{ suite: 'Write10', passed: 7, min: 6 }]);
  });

  it('names a suite that passes fewer tests than its floor, and one that vanished', () => {
    const r = compareToBaseline(runOf({ Read10: counts(5, 0, 1), Unmap: counts(0) }), BASE, []);
    expect(r.ok).toBe(false);
    expect(r.regressions.map((x) => x.suite)).toEqual(['Read10', 'Write10']);
    expect(describeComparison(r).join('\n')).toMatch(/regressed: Read10: 5 passed, baseline 6/);
  });

  it('allows no failure anywhere, even in a suite with a floor of 0', () => {
    const r = compareToBaseline(runOf({ Read10: counts(6), Write10: counts(6), Unmap: counts(0, 1, 2) }), BASE, []);
    expect(r.ok).toBe(false);
    expect(r.tooManyFailures).toBe('1 tests failed or did not finish (allowed: 0)');
  });

  it('fails an acceptance suite with a failed or unfinished test, or one missing from the run', () => {
    const r = compareToBaseline(
      runOf({ Read10: counts(6, 1), Write10: counts(6, 0, 0, 1), Unmap: counts(0) }),
      { ...BASE, maxFailed: 5 },
      ['Read10', 'Write10', 'iSCSITMF'],
    );
    expect(r.ok).toBe(false);
    expect(r.regressions).toEqual([]);
    expect(r.tooManyFailures).toBeNull();
    expect(r.acceptanceFailures.map((a) => a.suite)).toEqual(['Read10', 'Write10', 'iSCSITMF']);
  });

  it('lists the issue-1 acceptance suites', () => {
    expect([...ACCEPTANCE_SUITES].sort()).toEqual(
      [
        'Inquiry', 'Mandatory', 'ModeSense6', 'Prefetch10', 'Prefetch16', 'Read6', 'Read10', 'Read12', 'Read16',
        'ReadCapacity10', 'ReadCapacity16', 'ReportSupportedOpcodes', 'TestUnitReady', 'Verify10', 'Verify12', 'Verify16',
        'Write10', 'Write12', 'Write16', 'WriteVerify10', 'WriteVerify12', 'WriteVerify16',
        'iSCSIcmdsn', 'iSCSIdatasn', 'iSCSIResiduals', 'iSCSITMF',
      ].sort(),
    );
  });

  it('--update-baseline only raises floors; --force takes the run as it is', () => {
    const current = runOf({ Read10: counts(4), Write10: counts(9), WriteSame10: counts(6) });
    expect(updateBaseline(current, BASE, { date: 'd' }).minPassed).toEqual({ Read10: 6, Unmap: 0, Write10: 9, WriteSame10: 6 });
    expect(updateBaseline(current, BASE, { date: 'd', force: true }).minPassed).toEqual({ Read10: 4, Write10: 9, WriteSame10: 6 });
    expect(updateBaseline(current, null, { date: 'd' }).maxFailed).toBe(0);
  });

  it('rejects a malformed baseline file', () => {
    expect(() => parseBaseline('{"version":1,"maxFailed":0,"minPassed":{"Read10":-1}}', 'f')).toThrow(/minPassed.Read10/);
    expect(() => parseBaseline('{"version":2}', 'f')).toThrow(/version/);
    expect(() => parseBaseline('nope', 'f')).toThrow(/not JSON/);
  });

  it('the committed baseline is well formed, allows no failure and covers every acceptance suite', async () => {
    const b = parseBaseline(await readFile(path.join(REPO_ROOT, 'bench', 'conformance-baseline.json'), 'utf8'));
    expect(b.maxFailed).toBe(0);
    for (const suite of ACCEPTANCE_SUITES) expect(b.minPassed[suite], suite).toBeGreaterThan(0);
  });
});

describe('npm run conformance -- --only twinsan', () => {
  let dir: string;

  beforeAll(async () => {
    requireTools(['iscsi-test-cu']);
    dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-conformance-'));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('meets the committed baseline and exits 0', async () => {
    const out = path.join(dir, 'report.json');
    const r = await run(process.execPath, [path.join(REPO_ROOT, 'scripts', 'conformance.mjs'), '--only', 'twinsan', '--out', out], {
      cwd: REPO_ROOT,
      timeoutMs: 240_000,
    });
    expect(r.code, describeRun('conformance.mjs --only twinsan', r)).toBe(0);
    expect(r.stdout).toMatch(/^Baseline: OK/m);
    const report = JSON.parse(await readFile(out, 'utf8')) as { runs: { twinsan: { totals: { failed: number; notRun: number } } }; baseline: { ok: boolean } };
    expect(report.runs.twinsan.totals).toMatchObject({ failed: 0, notRun: 0 });
    expect(report.baseline.ok).toBe(true);
  }, 300_000);
});
