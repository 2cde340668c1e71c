import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture, cliHarness, CliHarness } from './harness';

let h: CliHarness;
beforeAll(async () => {
  h = await cliHarness();
  for (let i = 1; i <= 5; i++) h.control.emit('move', `rg-a moved (${i})`, 'rg-a');
});
afterAll(async () => {
  await h.close();
});

/** Wait until the command has printed what we expect (the command runs on the same event loop). */
async function until(out: Capture, pattern: RegExp): Promise<void> {
  while (!pattern.test(out.text)) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('twinsan events', () => {
  it('events_lists_the_newest_with_limit', async () => {
    const r = await h.run(['events', '--limit', '2']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SEQ\s+TIME\s+NODE\s+KIND\s+SUBJECT\s+MESSAGE$/);
    expect(lines.slice(1).map((l) => /^\s*(\d+)/.exec(l)?.[1])).toEqual(['4', '5']);
    expect(lines[2]).toMatch(/^\s*5\s+2026-11-22 05:00:04Z\s+node-a\s+move\s+rg-a\s+rg-a moved \(5\)$/);
  });

  it('events_after_json_is_the_api_page_exactly', async () => {
    const r = await h.run(['events', '--after', '3', '--limit', '1', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${await h.inject('/api/v1/events?after=3&limit=1')}\n`);
    const bad = await h.run(['events', '--limit', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--limit must be a whole number from 1 to 1000/);
  });

  it('events_json_is_the_api_page_when_whole_and_the_newest_events_when_cut', async () => {
    const all = await h.run(['events', '--json']);
    expect(all.stdout).toBe(`${await h.inject('/api/v1/events?after=0&limit=500')}\n`);
    const newest = await h.run(['events', '--json', '--limit', '2']);
    expect((JSON.parse(newest.stdout) as { seq: number }[]).map((e) => e.seq)).toEqual([4, 5]);
  });

  it('events_follow_prints_new_events_and_gives_up_with_exit_3_when_the_api_is_gone', async () => {
    const r = await h.run(['events', '--follow', '--limit', '1'], {
      during: async (stdout) => {
        await until(stdout, /rg-a moved \(5\)/);
        // Only what happens next arrives over the stream.
        while (h.control.subscribers === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        h.control.emit('failover', 'node-a took rg-b over', 'rg-b');
        await until(stdout, /took rg-b over/);
        await h.server.close();
      },
    });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toEqual(['2026-11-22 05:00:04Z  #5  node-a  move rg-a: rg-a moved (5)', '2026-11-22 05:00:05Z  #6  node-a  failover rg-b: node-a took rg-b over']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^event stream lost \(cannot reach .*\/api\/v1\/events\/stream: the server ended the event stream\); reconnecting in 1 s$/m);
    expect(r.stderr).toMatch(/connection refused \(ECONNREFUSED\)\n  hint: /);
  });
});
