/**
 * examples/systemd/twinsan.service and examples/node.json: the unit starts
 * the README's start command as an unprivileged user with exactly the
 * alias-IP capabilities and the hardening chosen for it; the example config
 * is one the node accepts, in the directories the unit gives the node.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../../../src/resource-groups/node/config';
import { execArgv, unitValue } from './parsers';
import { configArg, documentedStartCommand, EXAMPLE_CONFIG, read, REPO, systemdUnit } from './repo';

/** The capabilities alias IPs need: ip(8) changes addresses (NET_ADMIN), GARP goes out on AF_PACKET (NET_RAW). */
const ALIAS_IP_CAPABILITIES = ['CAP_NET_ADMIN', 'CAP_NET_RAW'];

/** [Service] settings chosen for the unit, with the value each must have. */
const HARDENING: Readonly<Record<string, string>> = {
  NoNewPrivileges: 'yes',
  ProtectSystem: 'strict',
  ProtectHome: 'yes',
  PrivateTmp: 'yes',
  ProtectKernelTunables: 'yes',
  ProtectKernelModules: 'yes',
  ProtectKernelLogs: 'yes',
  ProtectControlGroups: 'yes',
  ProtectClock: 'yes',
  ProtectHostname: 'yes',
  RestrictNamespaces: 'yes',
  RestrictRealtime: 'yes',
  RestrictSUIDSGID: 'yes',
  LockPersonality: 'yes',
  SystemCallArchitectures: 'native',
  UMask: '0077',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('examples/systemd/twinsan.service', () => {
  const unit = systemdUnit();
  const value = (key: string): string | undefined => unitValue(unit, 'Service', key);

  it('has the [Unit], [Service] and [Install] sections', () => {
    expect(Object.keys(unit)).toEqual(['Unit', 'Service', 'Install']);
    expect(unitValue(unit, 'Install', 'WantedBy')).toBe('multi-user.target');
    expect(unitValue(unit, 'Unit', 'After')).toContain('network-online.target');
  });

  it('starts the start command the README documents', () => {
    const argv = execArgv(value('ExecStart')!);
    const documented = documentedStartCommand();
    // systemd wants an absolute path; the rest is the documented command word for word.
    expect(path.isAbsolute(argv[0]!)).toBe(true);
    expect([path.basename(argv[0]!), ...argv.slice(1)]).toEqual([path.basename(documented[0]!), ...documented.slice(1)]);
  });

  it('is Type=simple, since the node does not speak sd_notify, and restarts on failure', () => {
    const notifies = sourceFiles(path.join(REPO, 'src')).some((f) => readFileSync(f, 'utf8').includes('NOTIFY_SOCKET'));
    expect(value('Type')).toBe(notifies ? 'notify' : 'simple');
    expect(value('Restart')).toBe('on-failure');
    // The node stops gracefully on SIGTERM; mixed: ip(8) children are not signalled mid-change.
    expect(value('KillSignal')).toBe('SIGTERM');
    expect(value('KillMode')).toBe('mixed');
  });

  it('runs as an unprivileged user with exactly the alias-IP capabilities, ambient so ip(8) inherits them', () => {
    expect(value('User')).toBe('twinsan');
    expect(value('AmbientCapabilities')!.split(/\s+/).sort()).toEqual(ALIAS_IP_CAPABILITIES);
    expect(value('CapabilityBoundingSet')!.split(/\s+/).sort()).toEqual(ALIAS_IP_CAPABILITIES);
  });

  it('has the hardening chosen for it, without the settings that would break the node', () => {
    for (const [key, expected] of Object.entries(HARDENING)) expect(value(key), key).toBe(expected);
    // AF_NETLINK for ip(8), AF_PACKET for gratuitous ARP, AF_INET(6) for iSCSI, replication, API.
    expect(value('RestrictAddressFamilies')!.split(/\s+/)).toEqual(expect.arrayContaining(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX']));
    // V8's JIT needs W+X memory; block-device backings need /dev.
    expect(value('MemoryDenyWriteExecute')).toBeUndefined();
    expect(value('PrivateDevices')).toBeUndefined();
    expect(Number(value('LimitNOFILE'))).toBeGreaterThanOrEqual(65536);
  });

  it('gives the node the directories the example config uses: dataDir is the state directory, the config in the configuration directory', async () => {
    const raw: unknown = JSON.parse(read(EXAMPLE_CONFIG));
    const config = await parseNodeConfig(raw, { file: '/etc/twinsan/node.json', readSecretFile: async () => 'example-secret-0123456789abcdef' });
    expect(config.dataDir).toBe(path.join('/var/lib', value('StateDirectory')!));
    const configFile = configArg(execArgv(value('ExecStart')!));
    expect(path.dirname(configFile)).toBe(path.join('/etc', value('ConfigurationDirectory')!));
    // ProtectSystem=strict leaves only the state directory writable: the API token must live there.
    const tokenFile = (raw as { api?: { tokenFile?: string } }).api?.tokenFile;
    expect(tokenFile).toBeDefined();
    expect(tokenFile!.startsWith(`${config.dataDir}/`)).toBe(true);
  });
});
