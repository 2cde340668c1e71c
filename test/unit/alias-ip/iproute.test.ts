/** Address management through ip(8): parsing of its JSON and the argument arrays it is run with. */
import { describe, expect, it } from 'vitest';
import { parseAlias } from '../../../src/alias-ip/address';
import { AliasIpError } from '../../../src/alias-ip/errors';
import { addArgs, errnoFromIpStderr, IpRoute2, parseIpAddrJson } from '../../../src/alias-ip/iproute';

// Trimmed from `ip -json addr show` (iproute2 6.1) in a test namespace.
const SAMPLE = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK'], mtu: 65536, link_type: 'loopback', addr_info: [] },
  {
    ifindex: 3,
    link: 'eth2',
    ifname: 'eth1',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    address: '6a:c0:9b:85:50:d0',
    addr_info: [
      { family: 'inet', local: '198.18.0.10', prefixlen: 24, scope: 'global', label: 'eth1' },
      { family: 'inet', local: '198.18.0.11', prefixlen: 24, broadcast: '198.18.0.255', scope: 'global', secondary: true, label: 'eth1' },
      { family: 'inet6', local: 'fd00:7157::51', prefixlen: 64, scope: 'global', tentative: true },
      { family: 'inet6', local: 'fd00:7157::52', prefixlen: 64, scope: 'global', tentative: true, dadfailed: true },
      { family: 'inet6', local: 'fd00:7157::50', prefixlen: 64, scope: 'global', nodad: true },
    ],
  },
  {},
]);

describe('parseIpAddrJson', () => {
  it('reads links, flags and every address with its prefix and DAD state', () => {
    const links = parseIpAddrJson(SAMPLE);
    expect(links.map((l) => [l.name, l.index, l.up])).toEqual([
      ['lo', 1, false],
      ['eth1', 3, true],
    ]);
    const eth1 = links[1]!;
    expect(eth1.addresses.map((a) => [a.family, a.address, a.prefix, a.secondary, a.tentative, a.dadFailed])).toEqual([
      [4, '198.18.0.10', 24, false, false, false],
      [4, '198.18.0.11', 24, true, false, false],
      [6, 'fd00:7157::51', 64, false, true, false],
      [6, 'fd00:7157::52', 64, false, true, true],
      [6, 'fd00:7157::50', 64, false, false, false],
    ]);
    expect(eth1.addresses[4]!.bytes.toString('hex')).toBe('fd007157000000000000000000000050');
  });

  it('fails with ECOMMAND on output that is not the expected JSON', () => {
    expect(() => parseIpAddrJson('Device "x" does not exist.')).toThrow(AliasIpError);
    expect(() => parseIpAddrJson('{"ifname":"eth1"}')).toThrow(/array/);
  });
});

describe('ip commands', () => {
  const v4 = parseAlias({ address: '198.18.0.10', prefix: 24, interface: 'eth1' });
  const v4host = parseAlias({ address: '198.18.0.10', prefix: 32, interface: 'eth1' });
  const v6 = parseAlias({ address: 'fd00:7157::50', prefix: 64, interface: 'eth1' });

  it('adds IPv4 with a derived broadcast (none for /31, /32) and IPv6 nodad unless DAD is wanted', () => {
    expect(addArgs(v4, { dad: false })).toEqual(['-4', 'addr', 'add', '198.18.0.10/24', 'brd', '+', 'dev', 'eth1']);
    expect(addArgs(v4host, { dad: false })).toEqual(['-4', 'addr', 'add', '198.18.0.10/32', 'dev', 'eth1']);
    expect(addArgs(v6, { dad: false })).toEqual(['-6', 'addr', 'add', 'fd00:7157::50/64', 'dev', 'eth1', 'nodad']);
    expect(addArgs(v6, { dad: true })).toEqual(['-6', 'addr', 'add', 'fd00:7157::50/64', 'dev', 'eth1']);
  });

  it('runs ip with argument arrays: list, add, del', async () => {
    const calls: (readonly string[])[] = [];
    const ip = new IpRoute2({ run: async (args) => (calls.push(args), args[0] === '-json' ? SAMPLE : '') });
    expect((await ip.list()).length).toBe(2);
    await ip.add(v6, { dad: false });
    await ip.remove({ interface: 'eth1', family: 4, address: '198.18.0.11', prefix: 24 });
    expect(calls).toEqual([
      ['-json', 'addr', 'show'],
      ['-6', 'addr', 'add', 'fd00:7157::50/64', 'dev', 'eth1', 'nodad'],
      ['-4', 'addr', 'del', '198.18.0.11/24', 'dev', 'eth1'],
    ]);
  });

  it('names errnos from ip stderr', () => {
    expect(errnoFromIpStderr('RTNETLINK answers: Operation not permitted')).toBe('EPERM');
    expect(errnoFromIpStderr('Error: ipv4: Address already assigned.')).toBe('EEXIST');
    expect(errnoFromIpStderr('Error: ipv4: Address not found.')).toBe('EADDRNOTAVAIL');
    expect(errnoFromIpStderr('Cannot find device "eth9"')).toBe('ENODEV');
    expect(errnoFromIpStderr('something new')).toBeUndefined();
  });

  it('reports a failing ip as ECOMMAND quoting the command and its stderr', async () => {
    const ip = new IpRoute2({ ipCommand: '/bin/false' });
    const err = await ip.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AliasIpError);
    expect(err).toMatchObject({ code: 'ECOMMAND' });
    expect((err as Error).message).toMatch(/^\/bin\/false -json addr show: exit 1/);
  });
});
