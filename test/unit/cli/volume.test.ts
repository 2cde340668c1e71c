import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHarness, CliHarness } from './harness';

let h: CliHarness;
beforeAll(async () => {
  h = await cliHarness();
});
afterAll(async () => {
  await h.close();
});

describe('twinsan volume', () => {
  it('volume_list_prints_an_aligned_table', async () => {
    const r = await h.run(['volume', 'list']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+SIZE\s+THIN\s+RG\s+OWNER\s+MIRROR\s+SESSIONS\s+IQN$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^vol1\s+1 GiB\s+yes\s+rg-a\s+node-a\s+in-sync\s+1\s+iqn\.2026-11\.io\.twinsan:vol1$/);
    expect(lines[2]).toMatch(/^vol2\s+2 GiB\s+no\s+rg-b\s+node-b\s+resyncing \d+\.\d% \(\d+(\.\d+)? MiB to sync\)\s+0\s+iqn/);
    // Columns line up: every row has its RG column where the header has it.
    const rgAt = lines[0]!.indexOf('RG');
    for (const l of lines.slice(1)) expect(l.slice(rgAt, rgAt + 3)).toBe("rg-");
  });

  it('volume_list_json_is_the_api_body_exactly', async () => {
    const r = await h.run(['volume', 'list', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${await h.inject('/api/v1/volumes')}\n`);
  });

  it('volume_create_sends_the_size_in_bytes_and_shows_the_volume', async () => {
    const r = await h.run(['volume', 'create', 'vol3', '--size', '10G', '--rg', 'rg-a', '--thin', '--block-size', '4096']);
    expect(r.code).toBe(0);
    expect(h.control.callsTo('createVolume').at(-1)?.args[0]).toEqual({ name: 'vol3', sizeBytes: 10 * 1024 ** 3, thin: true, resourceGroup: 'rg-a', blockSize: 4096 });
    expect(r.stdout).toMatch(/^Name: +vol3$/m);
    expect(r.stdout).toMatch(/^Size: +10 GiB \(10737418240 bytes\)$/m);
    expect(r.stdout).toMatch(/^URLs: +iscsi:\/\/198\.18\.0\.50:3260\/iqn\.2026-11\.io\.twinsan:vol3\/0$/m);
  });

  it('volume_create_conflict_names_the_field_and_the_argument', async () => {
    const r = await h.run(['volume', 'create', 'vol1', '--size', '1G', '--rg', 'rg-a']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('twinsan: volume vol1 exists (field name, from NAME) [409 Conflict]\n');
  });

  it('volume_create_with_an_unknown_group_names_rg', async () => {
    const r = await h.run(['volume', 'create', 'vol9', '--size', '1G', '--rg', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no resource group nope \(field resourceGroup, from --rg\) \[400 Bad Request\]/);
  });

  it('volume_create_with_a_name_the_schema_refuses_gets_a_400_naming_name', async () => {
    const r = await h.run(['volume', 'create', 'bad name!', '--size', '1G', '--rg', 'rg-a']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\(field name, from NAME\) \[400 Bad Request\]/);
    expect(h.control.callsTo('createVolume').some((c) => (c.args[0] as { name: string }).name === 'bad name!')).toBe(false);
  });

  it('volume_create_with_a_bad_size_is_a_usage_error', async () => {
    const r = await h.run(['volume', 'create', 'vol9', '--size', '10Q', '--rg', 'rg-a']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--size <size>.*"10Q" is not a size/);
  });

  it('volume_show_gives_the_details', async () => {
    const r = await h.run(['volume', 'show', 'vol1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^IQN: +iqn\.2026-11\.io\.twinsan:vol1$/m);
    expect(r.stdout).toMatch(/^Mirror: +in-sync$/m);
    expect(r.stdout).toMatch(/^Owner: +node-a$/m);
  });

  it('volume_show_of_a_missing_volume_is_a_404_exit_1', async () => {
    const r = await h.run(['volume', 'show', 'ghost']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('twinsan: no volume ghost [404 Not Found]\n');
  });

  it('volume_show_watch_follows_the_resync_with_plain_lines_when_not_a_tty', async () => {
    h.control.step = 0.25;
    const r = await h.run(['volume', 'show', 'vol2', '--watch', '--interval', '10']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Mirror: +resyncing 50\.0%/m);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toEqual(['resync vol2: 50.0% 2 MiB to go', 'resync vol2: 75.0% 1 MiB to go', 'vol2: in-sync']);
    expect(r.stderr).not.toMatch(/\u001b/);
  });

  it('volume_show_watch_on_a_terminal_draws_a_bar', async () => {
    const r = await h.run(['volume', 'show', 'vol2', '--watch', '--interval', '10'], { stderrIsTTY: true });
    expect(r.code).toBe(0);
    // Already in sync after the previous test: nothing to follow.
    expect(r.stderr).toBe('vol2: in-sync (not resyncing)\n');
  });

  it('volume_resize_patches_the_size', async () => {
    const r = await h.run(['volume', 'resize', 'vol3', '--size', '20G']);
    expect(r.code).toBe(0);
    expect(h.control.callsTo('updateVolume').at(-1)?.args).toEqual(['vol3', { sizeBytes: 20 * 1024 ** 3 }]);
    expect(r.stdout).toMatch(/^Size: +20 GiB/m);
    const shrink = await h.run(['volume', 'resize', 'vol3', '--size', '1G']);
    expect(shrink.code).toBe(1);
    expect(shrink.stderr).toMatch(/volumes only grow \(field sizeBytes, from --size\)/);
  });

  it('volume_delete_is_refused_with_sessions_unless_forced', async () => {
    const refused = await h.run(['volume', 'delete', 'vol1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/initiator\(s\) logged in.*\[412 Precondition Failed\]/);
    const forced = await h.run(['volume', 'delete', 'vol1', '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toBe('deleted volume vol1\n');
    expect(h.control.callsTo('deleteVolume').at(-1)?.args).toEqual(['vol1', { force: true }]);
  });
});
