/**
 * AliasIpManager over in-memory address and link fakes: idempotence, the
 * allowed-interface rule, conflicts, ownership and removeAll, announcement
 * gating and cancellation.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AliasIpError, AliasIpManager, AliasIpManagerOptions, AliasSpec } from '../../../src/alias-ip';
import { FakeAddresses, FakeLink, silentLogger } from './fakes';

const PORTAL: AliasSpec = { address: '198.18.0.10', prefix: 24, interface: 'eth1' };
const PORTAL6: AliasSpec = { address: 'fd00:7157::50', prefix: 64, interface: 'eth1' };

let addresses: FakeAddresses;
let link: FakeLink;
let manager: AliasIpManager;

function makeManager(options: Partial<AliasIpManagerOptions> = {}): AliasIpManager {
  return new AliasIpManager({ interfaces: ['eth1', 'eth2'], addressBackend: addresses, link, logger: silentLogger, ...options });
}

beforeEach(() => {
  addresses = new FakeAddresses(['lo', 'eth0', 'eth1', 'eth2']);
  addresses.configure('eth1', '198.18.0.1', 24);
  link = new FakeLink();
  manager = makeManager();
});

afterEach(() => {
  vi.useRealTimers();
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(AliasIpError);
    return (err as AliasIpError).code;
  }
}

describe('idempotent add and remove', () => {
  it('adds once: a second add changes nothing', async () => {
    expect(await manager.isServed(PORTAL)).toBe(false);
    expect(await manager.add(PORTAL)).toEqual({ changed: true });
    expect(await manager.add(PORTAL)).toEqual({ changed: false });
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.1/24', '198.18.0.10/24']);
    expect(addresses.calls).toEqual(['add 198.18.0.10/24 dev eth1 nodad']);
    expect(await manager.isServed(PORTAL)).toBe(true);
  });

  it('removes once: a second remove succeeds without a change', async () => {
    await manager.add(PORTAL);
    expect(await manager.remove(PORTAL)).toEqual({ changed: true });
    expect(await manager.remove(PORTAL)).toEqual({ changed: false });
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.1/24']);
  });

  it('matches IPv6 addresses by value, not by spelling', async () => {
    await manager.add(PORTAL6);
    expect(await manager.add({ ...PORTAL6, address: 'fd00:7157:0:0::50' })).toEqual({ changed: false });
    expect(await manager.isServed({ ...PORTAL6, address: 'FD00:7157::0050' })).toBe(true);
    expect(await manager.remove({ ...PORTAL6, address: 'fd00:7157:0::50' })).toEqual({ changed: true });
  });

  it('passes the DAD choice to the backend', async () => {
    await manager.add(PORTAL6);
    expect(addresses.calls).toEqual(['add fd00:7157::50/64 dev eth1 nodad']);
  });

  it('succeeds when ip fails because the address appeared meanwhile', async () => {
    addresses.beforeNextChange = () => addresses.configure('eth1', '198.18.0.10', 24);
    expect(await manager.add(PORTAL)).toEqual({ changed: false });
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.1/24', '198.18.0.10/24']);
  });

  it('succeeds when ip fails because the address vanished meanwhile', async () => {
    await manager.add(PORTAL);
    addresses.beforeNextChange = () => addresses.unconfigure('eth1', '198.18.0.10');
    expect(await manager.remove(PORTAL)).toEqual({ changed: false });
  });

  it('removes the address whatever its prefix: the intent is to stop serving it', async () => {
    addresses.configure('eth1', '198.18.0.10', 16);
    expect(await manager.remove(PORTAL)).toEqual({ changed: true });
    expect(addresses.calls).toEqual(['del 198.18.0.10/16 dev eth1']);
  });

  it('runs concurrent calls one at a time', async () => {
    const results = await Promise.all([manager.add(PORTAL), manager.add(PORTAL), manager.remove(PORTAL), manager.add(PORTAL)]);
    expect(results.map((r) => r.changed)).toEqual([true, false, true, true]);
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.1/24', '198.18.0.10/24']);
  });
});

describe('refusals', () => {
  it('touches only the allowed interfaces and names the one refused', async () => {
    const spec = { ...PORTAL, interface: 'eth0' };
    for (const call of [manager.add(spec), manager.remove(spec), manager.isServed(spec), manager.announce(spec)]) {
      await expect(call).rejects.toThrow(/interface eth0 is not one this manager may touch \(allowed: eth1, eth2\)/);
    }
    await expect(manager.add(spec)).rejects.toMatchObject({ code: 'ENOTALLOWED' });
    expect(addresses.calls).toEqual([]);
    expect(link.sent).toEqual([]);
  });

  it('needs a non-empty list of valid interface names', () => {
    expect(() => new AliasIpManager({ interfaces: [] })).toThrow(AliasIpError);
    expect(() => new AliasIpManager({ interfaces: ['eth1', 'bad/name'] })).toThrow(/bad\/name/);
  });

  it('refuses an allowed interface that does not exist with ENODEV', async () => {
    const m = new AliasIpManager({ interfaces: ['eth9'], addressBackend: addresses, link });
    expect(await codeOf(m.add({ ...PORTAL, interface: 'eth9' }))).toBe('ENODEV');
  });

  it('refuses an address configured with another prefix (EPREFIX) or on another interface (EADDRINUSE)', async () => {
    addresses.configure('eth1', '198.18.0.10', 16);
    expect(await codeOf(manager.add(PORTAL))).toBe('EPREFIX');
    expect(await manager.isServed(PORTAL)).toBe(false);
    addresses.unconfigure('eth1', '198.18.0.10');
    addresses.configure('eth0', '198.18.0.10', 24);
    expect(await codeOf(manager.add(PORTAL))).toBe('EADDRINUSE');
    expect(addresses.calls).toEqual([]);
  });

  it('refuses an IPv6 address whose DAD failed', async () => {
    addresses.configure('eth1', 'fd00:7157::50', 64, { dadFailed: true, tentative: true });
    expect(await codeOf(manager.add(PORTAL6))).toBe('EDADFAILED');
    expect(await manager.isServed(PORTAL6)).toBe(false);
  });

  it('refuses bad specs and options with EINVAL', async () => {
    expect(await codeOf(manager.add({ ...PORTAL, prefix: 40 }))).toBe('EINVAL');
    expect(await codeOf(manager.announce(PORTAL, { repeat: 0 }))).toBe('EINVAL');
    expect(() => makeManager({ announce: { intervalMs: -1 } })).toThrow(AliasIpError);
  });
});

describe('IPv6 duplicate address detection', () => {
  it('waits until the address is no longer tentative when DAD is on', async () => {
    const m = makeManager({ ipv6Dad: true });
    addresses.beforeNextChange = () => {
      setTimeout(() => {
        const list = addresses.links.get('eth1')!;
        addresses.links.set('eth1', list.map((a) => (a.address === 'fd00:7157::50' ? { ...a, tentative: false } : a)));
      }, 250);
    };
    const original = addresses.add.bind(addresses);
    addresses.add = async (alias, options) => {
      await original(alias, options);
      const list = addresses.links.get('eth1')!;
      addresses.links.set('eth1', list.map((a) => (a.address === 'fd00:7157::50' ? { ...a, tentative: true } : a)));
    };
    const started = Date.now();
    expect(await m.add(PORTAL6)).toEqual({ changed: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(addresses.calls).toEqual(['add fd00:7157::50/64 dev eth1']);
  });

  it('removes the address it added and fails with EDADFAILED when DAD fails', async () => {
    const m = makeManager({ ipv6Dad: true });
    const original = addresses.add.bind(addresses);
    addresses.add = async (alias, options) => {
      await original(alias, options);
      const list = addresses.links.get('eth1')!;
      addresses.links.set('eth1', list.map((a) => (a.address === 'fd00:7157::50' ? { ...a, dadFailed: true } : a)));
    };
    expect(await codeOf(m.add(PORTAL6))).toBe('EDADFAILED');
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.1/24']);
    expect(m.ownedAddresses()).toEqual([]);
  });
});

describe('ownership and removeAll', () => {
  it('removes only the addresses this manager owns', async () => {
    await manager.add(PORTAL);
    await manager.add(PORTAL6);
    await manager.add({ address: '198.18.2.10', prefix: 24, interface: 'eth2' });
    addresses.configure('eth1', '198.18.0.99', 24); // an operator's address, never given to the manager
    const removed = await manager.removeAll();
    expect(removed).toEqual([PORTAL, PORTAL6, { address: '198.18.2.10', prefix: 24, interface: 'eth2' }]);
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.1/24', '198.18.0.99/24']);
    expect(addresses.addresses('eth2')).toEqual([]);
    expect(await manager.removeAll()).toEqual([]);
  });

  it('forgets addresses removed explicitly', async () => {
    await manager.add(PORTAL);
    await manager.remove(PORTAL);
    addresses.configure('eth1', '198.18.0.10', 24); // re-added by someone else later
    expect(await manager.removeAll()).toEqual([]);
    expect(addresses.addresses('eth1')).toContain('198.18.0.10/24');
  });

  it('adopts an address add() finds in place (restart after a crash), unless told not to', async () => {
    addresses.configure('eth1', '198.18.0.10', 24);
    expect(await manager.add(PORTAL)).toEqual({ changed: false });
    expect(manager.ownedAddresses()).toEqual([PORTAL]);
    expect(await manager.removeAll()).toEqual([PORTAL]);

    addresses.configure('eth1', '198.18.0.10', 24);
    const strict = makeManager({ adoptExisting: false });
    expect(await strict.add(PORTAL)).toEqual({ changed: false });
    expect(await strict.removeAll()).toEqual([]);
    expect(addresses.addresses('eth1')).toContain('198.18.0.10/24');
  });

  it('tries every address and then reports the first failure', async () => {
    await manager.add(PORTAL);
    await manager.add(PORTAL6);
    addresses.beforeNextChange = () => {
      throw new AliasIpError('ECOMMAND', 'ip: boom');
    };
    await expect(manager.removeAll()).rejects.toThrow('ip: boom');
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.1/24', '198.18.0.10/24']);
    expect(manager.ownedAddresses()).toEqual([PORTAL]);
    expect(await manager.removeAll()).toEqual([PORTAL]);
  });
});

describe('announce', () => {
  it('refuses an address this node does not serve', async () => {
    expect(await codeOf(manager.announce(PORTAL))).toBe('ENOTSERVED');
    addresses.configure('eth1', '198.18.0.10', 16);
    expect(await codeOf(manager.announce(PORTAL))).toBe('ENOTSERVED');
    expect(link.sent).toEqual([]);
  });

  it('announces with the manager defaults, overridable per call', async () => {
    vi.useFakeTimers();
    const m = makeManager({ announce: { arpForms: ['reply'], garpRefreshDelayMs: 0 } });
    await m.add(PORTAL);
    let done = m.announce(PORTAL);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await done).toMatchObject({ framesSent: 5, cancelled: false });
    expect(link.kinds()).toEqual(['arp2', 'arp2', 'arp2', 'arp2', 'arp2']);
    done = m.announce(PORTAL, { repeat: 2, arpForms: ['request', 'reply'] });
    await vi.advanceTimersByTimeAsync(1000);
    expect((await done).framesSent).toBe(4);
  });

  it('remove() cuts a running burst short and drops the refresh', async () => {
    vi.useFakeTimers();
    await manager.add(PORTAL);
    const done = manager.announce(PORTAL);
    await vi.advanceTimersByTimeAsync(300);
    await manager.remove(PORTAL);
    expect(await done).toMatchObject({ cancelled: true, framesSent: 4 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.sent.length).toBe(4);
  });

  it('a remove() issued right after announce() stops the burst that announce starts', async () => {
    vi.useFakeTimers();
    await manager.add(PORTAL);
    const done = manager.announce(PORTAL);
    const removed = manager.remove(PORTAL);
    await vi.advanceTimersByTimeAsync(10_000);
    await removed;
    expect((await done).cancelled).toBe(true);
    expect(link.sent.length).toBeLessThanOrEqual(2); // at most the first round, sent while still served
  });

  it('removeAll() cancels every refresh', async () => {
    vi.useFakeTimers();
    await manager.add(PORTAL);
    await manager.add(PORTAL6);
    const done = Promise.all([manager.announce(PORTAL), manager.announce(PORTAL6)]);
    await vi.advanceTimersByTimeAsync(1000);
    await done;
    expect(link.sent.length).toBe(15);
    await manager.removeAll();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.sent.length).toBe(15);
  });
});
