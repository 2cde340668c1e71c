import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHarness, CliHarness } from './harness';

let h: CliHarness;
beforeAll(async () => {
  h = await cliHarness();
});
afterAll(async () => {
  await h.close();
});

describe('twinsan maintenance, verify, jobs', () => {
  it('maintenance_enter_follows_the_evacuation_with_plain_progress_lines_off_a_terminal', async () => {
    h.control.step = 0.25;
    const r = await h.run(['maintenance', 'enter', 'node-a', '--interval', '10']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.slice(0, -1)).toEqual([
      'evacuate node-a: 0.0% running',
      'evacuate node-a: 25.0%',
      'evacuate node-a: 50.0%',
      'evacuate node-a: 75.0%',
      'evacuate node-a: 100.0% done',
    ]);
    expect(lines.at(-1)).toMatch(/^evacuate node-a: done in \d+\.\d s$/);
    expect(r.stderr).not.toMatch(/\u001b/);
    expect(h.control.callsTo('enterMaintenance').at(-1)?.args).toEqual(['node-a']);
  });

  it('maintenance_exit_on_a_terminal_draws_a_bar_and_prints_the_final_job_with_json', async () => {
    const r = await h.run(['maintenance', 'exit', 'node-a', '--interval', '10', '--json'], { stderrIsTTY: true });
    expect(r.code).toBe(0);
    const job = JSON.parse(r.stdout) as { kind: string; state: string; id: string };
    expect(job).toMatchObject({ kind: 'failback', state: 'done' });
    expect(r.stdout).toBe(`${await h.inject(`/api/v1/jobs/${job.id}`)}\n`);
    // cli-progress drew on stderr: cursor control and the bar's blocks, then the last line.
    expect(r.stderr).toMatch(/\u001b\[/);
    expect(r.stderr).toMatch(/end maintenance node-a \[[\u2588\u2591]{30}\] \d+%/);
    expect(r.stderr).toMatch(/end maintenance node-a: done in \d+\.\d s\n$/);
  });

  it('maintenance_no_wait_returns_the_running_job', async () => {
    const r = await h.run(['maintenance', 'enter', 'node-b', '--no-wait']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Job: +job-\d+$/m);
    expect(r.stdout).toMatch(/^State: +running$/m);
    expect(r.stderr).toMatch(/^follow it with: twinsan jobs job-\d+ --wait\n$/);
    const id = /Job: +(job-\d+)/.exec(r.stdout)![1]!;
    const wait = await h.run(['jobs', id, '--wait', '--interval', '10']);
    expect(wait.code).toBe(0);
    expect(wait.stderr).toMatch(/evacuate node-b: done in/);
  });

  it('maintenance_exit_when_not_in_maintenance_is_refused', async () => {
    const r = await h.run(['maintenance', 'exit', 'node-a']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('twinsan: node node-a is not in maintenance [412 Precondition Failed]\n');
  });

  it('maintenance_on_an_unknown_node_is_a_404', async () => {
    const r = await h.run(['maintenance', 'enter', 'node-z']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no node node-z/);
  });

  it('a_failed_job_fails_the_command_with_its_error', async () => {
    h.control.failNextVerify = 'rg-b: peer not in sync';
    const r = await h.run(['verify', 'vol1', '--interval', '10']);
    const id = /job (job-\d+)/.exec(r.stderr)?.[1];
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^verify vol1: failed: rg-b: peer not in sync$/m);
    expect(r.stderr).toMatch(new RegExp(`^twinsan: job ${id} \\(verify vol1\\) failed: rg-b: peer not in sync\\n$`, 'm'));
  });

  it('verify_repair_reports_the_result', async () => {
    h.control.jobResult = { differences: 3, repaired: 3 };
    const r = await h.run(['verify', 'vol2', '--repair', '--algorithm', 'crc32c', '--interval', '10']);
    expect(r.code).toBe(0);
    expect(h.control.callsTo('verify').at(-1)?.args).toEqual(['vol2', { repair: true, algorithm: 'crc32c' }]);
    expect(r.stdout).toBe('vol2: differences 3, repaired 3\n');
    const bad = await h.run(['verify', 'vol2', '--algorithm', 'md5']);
    expect(bad.code).toBe(2);
  });

  it('jobs_lists_every_job', async () => {
    const r = await h.run(['jobs']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+KIND\s+SUBJECT\s+STATE\s+PROGRESS\s+STARTED\s+FINISHED\s+ERROR$/);
    expect(lines.some((l) => /^job-1\s+evacuate\s+node-a\s+done\s+100\.0%\s+2026-11-22 05:00:00Z\s+2026-11-22 05:00:10Z\s+-$/.test(l))).toBe(true);
    const json = await h.run(['jobs', '--json']);
    expect(json.stdout).toBe(`${await h.inject('/api/v1/jobs')}\n`);
    const noId = await h.run(['jobs', '--wait']);
    expect(noId.code).toBe(2);
    expect(noId.stderr).toBe('twinsan: --wait needs a job ID\n');
  });

  it('sessions_table', async () => {
    const r = await h.run(['sessions']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^NODE\s+VOLUME\s+INITIATOR\s+PORTAL\s+REMOTE\s+CONNS\s+SINCE$/m);
    expect(r.stdout).toMatch(/^node-a\s+vol1\s+iqn\.1998-01\.com\.vmware:esx-01\s+198\.18\.0\.50:3260\s+198\.18\.0\.10:51234\s+1\s+2026-11-22 05:00:00Z$/m);
    h.control.sessionList = [];
    expect((await h.run(['sessions'])).stdout).toBe('no sessions\n');
  });
});
