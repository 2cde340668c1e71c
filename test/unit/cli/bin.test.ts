/**
 * The built `twinsan` (dist/cli/bin.js, from `npm run build:ts` or `npm test`)
 * as scripts run it: exit codes and where its output goes.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHarness, CliHarness, unreachablePort } from './harness';

const BIN = path.resolve(__dirname, '../../../dist/cli/bin.js');

function twinsan(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

let h: CliHarness;
beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (npx tsc -p .)`);
  h = await cliHarness();
});
afterAll(async () => {
  await h.close();
});

describe('twinsan binary', () => {
  it('bin_exit_codes_0_1_2_3', async () => {
    const ok = await twinsan(['rg', 'list', '--json'], h.env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(`${await h.inject('/api/v1/resource-groups')}\n`);
    const refused = await twinsan(['volume', 'show', 'ghost'], h.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('twinsan: no volume ghost [404 Not Found]\n');
    const usage = await twinsan(['volume', 'create', 'v', '--size', 'lots', '--rg', 'rg-a'], h.env);
    expect(usage.code).toBe(2);
    const unknown = await twinsan(['volume', 'list', '--colour'], h.env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--colour'/);
    const port = await unreachablePort();
    const unreachable = await twinsan(['status'], { TWINSAN_API: `http://127.0.0.1:${port}` });
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr.startsWith(`twinsan: cannot reach http://127.0.0.1:${port}/api/v1/`), unreachable.stderr).toBe(true);
  });

  it('bin_events_follow_into_a_closed_pipe_ends_quietly', async () => {
    h.control.emit('move', 'rg-a moved', 'rg-a');
    const child = spawn(process.execPath, [BIN, 'events', '--follow', '--limit', '1'], { env: { PATH: process.env['PATH'] ?? '', ...h.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const first = await new Promise<string>((resolve) => child.stdout.once('data', (b: Buffer) => resolve(b.toString())));
    expect(first).toMatch(/rg-a moved/);
    // The reader goes away (as `| head -1` does), then more events are written to the pipe.
    child.stdout.destroy();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    while (child.exitCode === null) {
      h.control.emit('move', 'rg-a moved again', 'rg-a');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 50))]);
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });

  it('bin_help_and_version_exit_0', async () => {
    const help = await twinsan(['--help'], {});
    expect(help.code).toBe(0);
    for (const c of ['status', 'pair', 'volume', 'rg', 'move', 'acl', 'maintenance', 'verify', 'sessions', 'jobs', 'events', 'token', 'node', 'target']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    }
    const sub = await twinsan(['maintenance', 'enter', '--help'], {});
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/--no-wait/);
    const version = await twinsan(['--version'], {});
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});
