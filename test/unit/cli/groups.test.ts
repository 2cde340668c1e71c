import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHarness, CliHarness } from './harness';

let h: CliHarness;
beforeAll(async () => {
  h = await cliHarness();
});
afterAll(async () => {
  await h.close();
});

describe('twinsan rg, move, pair, node, status', () => {
  it('rg_list_shows_owner_preferred_aliases_and_volumes', async () => {
    const r = await h.run(['rg', 'list']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATE\s+OWNER\s+PREFERRED\s+FAILBACK\s+ALIAS IPS\s+VOLUMES$/);
    expect(lines[1]).toMatch(/^rg-a\s+serving\s+node-a\s+node-a\s+auto\s+198\.18\.0\.50\/24@eth1\s+vol1$/);
    expect(lines[2]).toMatch(/^rg-b\s+serving\s+node-b\s+node-b\s+manual\s+198\.18\.0\.51\/24@eth1\s+vol2$/);
  });

  it('rg_create_parses_repeated_aliases', async () => {
    const r = await h.run(['rg', 'create', 'rg-c', '--preferred', 'node-b', '--alias', '198.18.0.60/24@eth1', '--alias', '2001:db8::60/64@eth2', '--failback', 'manual']);
    expect(r.code).toBe(0);
    expect(h.control.callsTo('createResourceGroup').at(-1)?.args[0]).toEqual({
      name: 'rg-c',
      preferredNode: 'node-b',
      aliasIps: [
        { address: '198.18.0.60', prefix: 24, interface: 'eth1' },
        { address: '2001:db8::60', prefix: 64, interface: 'eth2' },
      ],
      failback: 'manual',
    });
    expect(r.stdout).toMatch(/^Alias IPs: +198\.18\.0\.60\/24@eth1\n +2001:db8::60\/64@eth2$/m);
  });

  it('rg_create_with_a_bad_alias_is_a_usage_error_naming_it', async () => {
    const calls = h.control.calls.length;
    for (const [alias, why] of [
      ['198.18.0.60@eth1', /is not ADDRESS\/PREFIX@INTERFACE/],
      ['198.18.0.300/24@eth1', /"198\.18\.0\.300" .* is not an IPv4 or IPv6 address/],
      ['198.18.0.60/33@eth1', /prefix \/33 .* must be 1 to 32/],
      ['198.18.0.60/24@this-name-is-too-long', /is not an interface name/],
    ] as const) {
      const r = await h.run(['rg', 'create', 'rg-x', '--preferred', 'node-a', '--alias', alias]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(why);
    }
    expect(h.control.calls.length).toBe(calls);
  });

  it('rg_create_with_a_bad_failback_choice_is_a_usage_error', async () => {
    const r = await h.run(['rg', 'create', 'rg-x', '--preferred', 'node-a', '--alias', '198.18.0.61/24@eth1', '--failback', 'sometimes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Allowed choices are auto, manual/);
  });

  it('rg_update_sends_only_what_is_given_and_refuses_nothing', async () => {
    const r = await h.run(['rg', 'update', 'rg-c', '--failback', 'auto']);
    expect(r.code).toBe(0);
    expect(h.control.callsTo('updateResourceGroup').at(-1)?.args).toEqual(['rg-c', { failback: 'auto' }]);
    const empty = await h.run(['rg', 'update', 'rg-c']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe('twinsan: rg update: nothing to change (give --preferred, --alias or --failback)\n');
  });

  it('move_shortcut_and_rg_move_switch_the_owner', async () => {
    const r = await h.run(['move', 'rg-a']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rg-a: serving on node-b \(\d+\.\d s\)\n$/);
    expect(r.stderr).toBe('moving rg-a ...\n');
    const back = await h.run(['rg', 'failback', 'rg-a', '--json']);
    expect(back.code).toBe(0);
    expect(JSON.parse(back.stdout)).toMatchObject({ name: 'rg-a', owner: 'node-a' });
    expect(back.stderr).toBe('');
    const again = await h.run(['rg', 'move', 'rg-a']);
    expect(again.stdout).toMatch(/^rg-a: serving on node-b/);
    expect(h.control.callsTo('moveResourceGroup')).toHaveLength(2);
  });

  it('rg_delete_refused_while_it_holds_volumes', async () => {
    const r = await h.run(['rg', 'delete', 'rg-b']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/still holds volumes \[412 Precondition Failed\]/);
    const ok = await h.run(['rg', 'delete', 'rg-c']);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toBe('deleted resource group rg-c\n');
  });

  it('pair_status_and_create', async () => {
    const s = await h.run(['pair', 'status']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^Pair: +paired$/m);
    expect(s.stdout).toMatch(/^Config version: +7 \(peer: same\)$/m);
    expect(s.stdout).toMatch(/^Links: +198\.18\.1\.1:7001 <-> 198\.18\.1\.2:7001 up$/m);
    const refused = await h.run(['pair', 'create', '--peer-api', 'https://198.18.0.2:8443']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/already paired \[409 Conflict\]/);
    h.control.paired = false;
    const created = await h.run(['pair', 'create', '--peer-api', 'https://198.18.0.2:8443']);
    expect(created.code).toBe(0);
    expect(h.control.callsTo('createPair').at(-1)?.args[0]).toEqual({ peerApi: 'https://198.18.0.2:8443' });
    const bad = await h.run(['pair', 'create', '--peer-api', 'ftp://x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/must be an http:\/\/ or https:\/\/ URL/);
  });

  it('node_list_and_show', async () => {
    const r = await h.run(['node', 'list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^NODE\s+STATE\s+MAINTENANCE\s+OWNS\s+RELEASE\s+PROTOCOL\s+API$/m);
    expect(r.stdout).toMatch(/^node-a \*\s+up\s+no\s+\S+\s+0\.1\.0\s+v1-2 \(using v2\)\s+https:\/\/198\.18\.0\.1:8443$/m);
    const one = await h.run(['node', 'show', 'node-b', '--json']);
    expect(one.stdout).toBe(`${await h.inject('/api/v1/nodes/node-b')}\n`);
    const missing = await h.run(['node', 'show', 'node-z']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^twinsan: no node node-z in this pair \(field id, from ID\) \[404 Not Found\]\n$/);
  });

  it('node_without_subcommand_or_config_is_a_usage_error', async () => {
    const r = await h.run(['node']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('twinsan: node: give a subcommand (start, list, show) or --config FILE\n');
    const start = await h.run(['node', 'start']);
    expect(start.code).toBe(2);
    expect(start.stderr).toMatch(/required option '--config <file>' not specified/);
  });

  it('node_start_and_node_config_both_run_the_node_with_that_config', async () => {
    const missing = `${h.dir}/no-such-node.json`;
    for (const args of [['node', 'start', '--config', missing], ['node', '--config', missing]]) {
      const r = await h.run(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain(missing);
    }
  });

  it('status_shows_everything_on_one_screen', async () => {
    const r = await h.run(['status']);
    expect(r.code).toBe(0);
    for (const section of ['NODES', 'RESOURCE GROUPS', 'VOLUMES', 'ATTENTION']) expect(r.stdout).toMatch(new RegExp(`^${section}$`, 'm'));
    expect(r.stdout).toMatch(/^Pair: +paired$/m);
    expect(r.stdout).toMatch(/^ +volume vol2 is resyncing$/m);
    expect(r.stdout).toMatch(/^ +resource group rg-a runs away from its preferred node node-a$/m);
  });

  it('status_json_holds_each_part_as_the_api_sent_it', async () => {
    const r = await h.run(['status', '--json']);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(parsed).toEqual({
      pair: JSON.parse(await h.inject('/api/v1/pair')),
      nodes: JSON.parse(await h.inject('/api/v1/nodes')),
      resourceGroups: JSON.parse(await h.inject('/api/v1/resource-groups')),
      volumes: JSON.parse(await h.inject('/api/v1/volumes')),
    });
  });
});
