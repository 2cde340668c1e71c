/** Burst timing, refresh, cancellation and option checking of the announcer, on fake timers. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseAlias } from '../../../src/alias-ip/address';
import { Announcer, DEFAULT_ANNOUNCE_CONFIG, resolveAnnounceConfig, roundFrames } from '../../../src/alias-ip/announcer';
import { AliasIpError } from '../../../src/alias-ip/errors';
import { FakeLink, MAC_ETH1 } from './fakes';

const V4 = parseAlias({ address: '198.18.0.10', prefix: 24, interface: 'eth1' });
const V6 = parseAlias({ address: 'fd00:7157::50', prefix: 64, interface: 'eth1' });

let link: FakeLink;
let served: boolean;
let announcer: Announcer;
let t0: number;
const warnings: string[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  t0 = Date.now();
  link = new FakeLink();
  served = true;
  warnings.length = 0;
  announcer = new Announcer({
    link,
    stillServed: async () => served,
    logger: { info: () => undefined, warn: (_details, message) => warnings.push(message) },
  });
});

afterEach(() => {
  announcer.cancelAll();
  vi.useRealTimers();
});

const offsets = (): number[] => link.sent.map((s) => s.at - t0);

describe('defaults', () => {
  it('are 5 rounds 200 ms apart, both ARP forms, a refresh of 5 rounds after 5 s', () => {
    expect(DEFAULT_ANNOUNCE_CONFIG).toEqual({
      repeat: 5,
      intervalMs: 200,
      arpForms: ['request', 'reply'],
      garpRefreshDelayMs: 5000,
      garpRefreshRepeat: 5,
    });
  });
});

describe('IPv4 burst', () => {
  it('sends 5 rounds of request + reply 200 ms apart, then the refresh 5 s after the first round', async () => {
    const done = announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG);
    await vi.advanceTimersByTimeAsync(1000);
    const result = await done;
    expect(result).toMatchObject({ framesSent: 10, cancelled: false });
    expect(result.refreshAt?.getTime()).toBe(t0 + 5000);
    expect(link.kinds()).toEqual(Array(5).fill(['arp1', 'arp2']).flat());
    expect(offsets()).toEqual([0, 0, 200, 200, 400, 400, 600, 600, 800, 800]);
    expect(link.sent.every((s) => s.ifname === 'eth1')).toBe(true);

    await vi.advanceTimersByTimeAsync(3999);
    expect(link.sent.length).toBe(10);
    await vi.advanceTimersByTimeAsync(1001);
    expect(offsets().slice(10)).toEqual([5000, 5000, 5200, 5200, 5400, 5400, 5600, 5600, 5800, 5800]);
    expect(announcer.pendingKeys()).toEqual([]);
  });

  it('sends only the configured form and honours repeat, interval and refresh settings', async () => {
    const config = resolveAnnounceConfig(DEFAULT_ANNOUNCE_CONFIG, {
      arpForms: ['request'],
      repeat: 3,
      intervalMs: 100,
      garpRefreshDelayMs: 2000,
      garpRefreshRepeat: 1,
    });
    const done = announcer.announce(V4, config);
    await vi.advanceTimersByTimeAsync(3000);
    expect((await done).framesSent).toBe(3);
    expect(link.kinds()).toEqual(['arp1', 'arp1', 'arp1', 'arp1']);
    expect(offsets()).toEqual([0, 100, 200, 2000]);
  });

  it('schedules no refresh when garpRefreshDelayMs is 0', async () => {
    const done = announcer.announce(V4, { ...DEFAULT_ANNOUNCE_CONFIG, garpRefreshDelayMs: 0 });
    await vi.advanceTimersByTimeAsync(1000);
    expect((await done).refreshAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.sent.length).toBe(10);
  });
});

describe('IPv6 burst', () => {
  it('sends one unsolicited NA per round', async () => {
    const done = announcer.announce(V6, DEFAULT_ANNOUNCE_CONFIG);
    await vi.advanceTimersByTimeAsync(1000);
    expect((await done).framesSent).toBe(5);
    expect(link.kinds()).toEqual(['na', 'na', 'na', 'na', 'na']);
    expect(link.sent[0]!.frame.subarray(0, 6).toString('hex')).toBe('333300000001');
  });
});

describe('cancellation', () => {
  it('stops a running burst before its next round and drops the refresh', async () => {
    const done = announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG);
    await vi.advanceTimersByTimeAsync(250);
    announcer.cancel(V4.key);
    expect(await done).toMatchObject({ framesSent: 4, cancelled: true });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.sent.length).toBe(4);
  });

  it('drops a scheduled refresh', async () => {
    const done = announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG);
    await vi.advanceTimersByTimeAsync(1000);
    await done;
    expect(announcer.pendingKeys()).toEqual([V4.key]);
    announcer.cancel(V4.key);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.sent.length).toBe(10);
  });

  it('replaces the pending refresh when the address is announced again', async () => {
    void announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG);
    await vi.advanceTimersByTimeAsync(3000);
    void announcer.announce(V4, { ...DEFAULT_ANNOUNCE_CONFIG, repeat: 1, garpRefreshRepeat: 1 });
    await vi.advanceTimersByTimeAsync(10_000);
    // first burst 10, second announcement 2, its refresh 2 (at 8 s); the first refresh (at 5 s) never ran
    expect(offsets()).toEqual([0, 0, 200, 200, 400, 400, 600, 600, 800, 800, 3000, 3000, 8000, 8000]);
  });

  it('skips the refresh when the address is no longer served', async () => {
    const done = announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG);
    await vi.advanceTimersByTimeAsync(1000);
    await done;
    served = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.sent.length).toBe(10);
    expect(warnings).toEqual(['alias no longer served: refresh announcement skipped']);
  });
});

describe('link problems', () => {
  it('refuses a non-Ethernet interface with ENOTETHER', async () => {
    link.hwType = 772;
    await expect(announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG)).rejects.toMatchObject({ code: 'ENOTETHER' });
    link.hwType = 1;
    link.mac = Buffer.alloc(6);
    await expect(announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG)).rejects.toMatchObject({ code: 'ENOTETHER' });
    expect(announcer.pendingKeys()).toEqual([]);
  });

  it('passes a send failure to the caller of the first burst, and only logs one in the refresh', async () => {
    link.failSend = new AliasIpError('ELINK', 'frame send on eth1 failed: ENETDOWN', { sysCode: 'ENETDOWN' });
    await expect(announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG)).rejects.toMatchObject({ code: 'ELINK', sysCode: 'ENETDOWN' });
    link.failSend = undefined;
    const done = announcer.announce(V4, DEFAULT_ANNOUNCE_CONFIG);
    await vi.advanceTimersByTimeAsync(1000);
    await done;
    link.failSend = new Error('boom');
    await vi.advanceTimersByTimeAsync(5000);
    expect(warnings).toEqual(['alias refresh announcement failed']);
  });
});

describe('options', () => {
  it.each([
    [{ repeat: 0 }, /repeat/],
    [{ repeat: 1000 }, /repeat/],
    [{ intervalMs: -1 }, /intervalMs/],
    [{ intervalMs: 1.5 }, /intervalMs/],
    [{ garpRefreshDelayMs: -5 }, /garpRefreshDelayMs/],
    [{ garpRefreshRepeat: 101 }, /garpRefreshRepeat/],
    [{ arpForms: [] }, /arpForms/],
    [{ arpForms: ['probe'] }, /arpForms/],
    [{ arpForms: ['reply', 'reply'] }, /arpForms/],
  ])('refuses %j with EINVAL', (overrides, message) => {
    expect(() => resolveAnnounceConfig(DEFAULT_ANNOUNCE_CONFIG, overrides as never)).toThrow(message);
  });

  it('ignores undefined overrides', () => {
    expect(resolveAnnounceConfig(DEFAULT_ANNOUNCE_CONFIG, { repeat: undefined } as never)).toEqual(DEFAULT_ANNOUNCE_CONFIG);
  });

  it('builds one round as one frame per ARP form, or one NA', () => {
    expect(roundFrames(V4, MAC_ETH1, { arpForms: ['reply', 'request'] }).map((f) => f.readUInt16BE(20))).toEqual([2, 1]);
    expect(roundFrames(V6, MAC_ETH1, { arpForms: ['request'] }).length).toBe(1);
  });
});

