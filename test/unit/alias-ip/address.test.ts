import { describe, expect, it } from 'vitest';
import { formatAddress, ipv6Bytes, isValidInterfaceName, parseAlias } from '../../../src/alias-ip/address';
import { AliasIpError } from '../../../src/alias-ip/errors';

describe('parseAlias', () => {
  it('accepts an IPv4 alias and gives its bytes and key', () => {
    const alias = parseAlias({ address: '198.18.0.10', prefix: 24, interface: 'eth1' });
    expect(alias).toMatchObject({ family: 4, prefix: 24, interface: 'eth1', key: '4:c612000a' });
    expect([...alias.bytes]).toEqual([198, 18, 0, 10]);
  });

  it('gives every text form of one IPv6 address the same key', () => {
    const forms = ['fd00:7157::50', 'fd00:7157:0:0:0:0:0:50', 'FD00:7157:0000::0050', 'fd00:7157::0.0.0.80'];
    const keys = forms.map((address) => parseAlias({ address, prefix: 64, interface: 'eth1' }).key);
    expect(new Set(keys)).toEqual(new Set(['6:fd007157000000000000000000000050']));
  });

  it.each([
    [{ address: '198.18.0.300', prefix: 24, interface: 'eth1' }, /not an IPv4 or IPv6/],
    [{ address: 'fe80::1%eth1', prefix: 64, interface: 'eth1' }, /not an IPv4 or IPv6/],
    [{ address: '198.18.0.10', prefix: 0, interface: 'eth1' }, /prefix must be an integer from 1 to 32/],
    [{ address: '198.18.0.10', prefix: 33, interface: 'eth1' }, /1 to 32/],
    [{ address: 'fd00::1', prefix: 129, interface: 'eth1' }, /1 to 128/],
    [{ address: '198.18.0.10', prefix: 24.5, interface: 'eth1' }, /prefix/],
    [{ address: '198.18.0.10', prefix: 24, interface: 'eth1/x' }, /bad interface name/],
    [{ address: '198.18.0.10', prefix: 24, interface: 'a-very-long-name0' }, /bad interface name/],
    [{ address: '127.0.0.2', prefix: 8, interface: 'eth1' }, /loopback/],
    [{ address: '224.0.0.1', prefix: 24, interface: 'eth1' }, /multicast/],
    [{ address: '0.0.0.0', prefix: 24, interface: 'eth1' }, /unspecified/],
    [{ address: '::', prefix: 64, interface: 'eth1' }, /unspecified/],
    [{ address: '::1', prefix: 128, interface: 'eth1' }, /loopback/],
    [{ address: 'ff02::1', prefix: 64, interface: 'eth1' }, /multicast/],
    [{ address: 'fe80::50', prefix: 64, interface: 'eth1' }, /link-local/],
  ])('refuses %j', (spec, message) => {
    let caught: unknown;
    try {
      parseAlias(spec);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AliasIpError);
    expect(caught).toMatchObject({ code: 'EINVAL' });
    expect((caught as Error).message).toMatch(message);
  });
});

describe('address text', () => {
  it('formats IPv6 with the longest zero run compressed', () => {
    expect(formatAddress(ipv6Bytes('fd00:7157:0:0:0:0:0:50'))).toBe('fd00:7157::50');
    expect(formatAddress(ipv6Bytes('fd00:0:0:1:0:0:0:2'))).toBe('fd00:0:0:1::2');
    expect(formatAddress(ipv6Bytes('fd00:1:2:3:4:5:6:7'))).toBe('fd00:1:2:3:4:5:6:7');
    expect(formatAddress(Buffer.from([198, 18, 0, 10]))).toBe('198.18.0.10');
  });

  it('knows valid interface names', () => {
    expect(isValidInterfaceName('eth1')).toBe(true);
    expect(isValidInterfaceName('bond0.100')).toBe(true);
    expect(isValidInterfaceName('')).toBe(false);
    expect(isValidInterfaceName('eth1:0')).toBe(false);
    expect(isValidInterfaceName('x'.repeat(16))).toBe(false);
  });
});
