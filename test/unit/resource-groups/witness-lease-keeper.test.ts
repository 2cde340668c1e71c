/**
 * LeaseKeeper timing against the in-memory witness, on fake timers: the
 * server's clock and both nodes' clocks are the same fake Date.now.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  FORGOTTEN_HOLDER,
  LeaseHeldByOtherError,
  LeaseKeeper,
  MemoryWitness,
  MemoryWitnessServer,
  WitnessConfigError,
  WitnessUnavailableError,
  type MustStop,
} from '../../../src/resource-groups/witness';
import type { LeaseGrant } from '../../../src/resource-groups/witness';

const TTL = 1_000;
const RENEW = 300;
const SAFETY = 100;
const STOP = 150;

const now = (): number => Date.now();

let server: MemoryWitnessServer;
let a: MemoryWitness;
let b: MemoryWitness;
let keeper: LeaseKeeper;

function record(k: LeaseKeeper) {
  const events: { at: number; name: string; detail: unknown }[] = [];
  for (const name of ['acquired', 'renewed', 'renew-failed', 'must-stop', 'regained', 'lost'] as const) {
    k.on(name, (...args: unknown[]) => events.push({ at: now(), name, detail: args.length === 1 ? args[0] : args }));
  }
  return {
    events,
    names: () => events.map((e) => e.name),
    first: (name: string) => events.find((e) => e.name === name),
    count: (name: string) => events.filter((e) => e.name === name).length,
  };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  vi.setSystemTime(1_000_000);
  server = new MemoryWitnessServer(now);
  a = server.client({ now });
  b = server.client({ now });
  keeper = new LeaseKeeper({ witness: a, nodeId: 'node-a', now });
});

afterEach(() => {
  keeper.close();
  vi.useRealTimers();
});

describe('LeaseKeeper defaults', () => {
  it('uses the documented default timings (fail over in about a second when the peer dies)', () => {
    expect(keeper.tunables).toEqual({
      leaseTtlMs: TTL,
      renewIntervalMs: RENEW,
      renewRetryMs: 100,
      safetyMarginMs: SAFETY,
      stopBudgetMs: STOP,
      acquirePollMs: 50,
    });
  });

  it('refuses timings that leave no room for a second renewal before must-stop', () => {
    expect(() => new LeaseKeeper({ witness: a, nodeId: 'n', tunables: { leaseTtlMs: 600 } })).toThrow(WitnessConfigError);
    expect(() => new LeaseKeeper({ witness: a, nodeId: 'n', tunables: { renewRetryMs: 400 } })).toThrow(/renewRetryMs/);
    expect(() => new LeaseKeeper({ witness: a, nodeId: 'n', tunables: { leaseTtlMs: 6_000, renewIntervalMs: 2_000 } })).not.toThrow();
  });
});

describe('LeaseKeeper renewals', () => {
  it('acquires, renews every renewIntervalMs and exposes the fencing token and deadlines', async () => {
    const log = record(keeper);
    const t0 = now();
    const grant = await keeper.acquire('rg-1');
    expect(grant).toMatchObject({ rg: 'rg-1', node: 'node-a', epoch: 1, expiresAt: t0 + TTL });
    expect(keeper.fencingToken('rg-1')).toBe(1);
    expect(keeper.status('rg-1')).toMatchObject({ state: 'held', renewedAt: t0, mustStopAt: t0 + TTL - SAFETY - STOP, servingDeadline: t0 + TTL - SAFETY });
    expect(keeper.canServe('rg-1')).toBe(true);
    expect(keeper.servingDeadline('rg-1')).toBe(t0 + TTL - SAFETY);
    expect(keeper.servingDeadline('rg-2')).toBeUndefined();

    await vi.advanceTimersByTimeAsync(RENEW * 10 + 1);
    expect(log.count('renewed')).toBe(10);
    expect(log.count('must-stop')).toBe(0);
    expect(keeper.status('rg-1')?.renewedAt).toBe(t0 + RENEW * 10);
    expect(server.peek('rg-1')).toMatchObject({ node: 'node-a', epoch: 1, ttlMs: TTL - 1 });
    expect(keeper.fencingToken('rg-1')).toBe(1);
  });

  it('acquire of a held RG returns the current grant; concurrent acquires share one witness call', async () => {
    const spy = vi.spyOn(a, 'acquire');
    const [g1, g2] = await Promise.all([keeper.acquire('rg-1'), keeper.acquire('rg-1')]);
    expect(g1.epoch).toBe(g2.epoch);
    expect(spy).toHaveBeenCalledTimes(1);
    expect((await keeper.acquire('rg-1')).epoch).toBe(g1.epoch);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('refuses with LeaseHeldByOtherError naming the holder', async () => {
    await b.acquire('rg-1', 'node-b', TTL);
    const err = await keeper.acquire('rg-1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseHeldByOtherError);
    expect((err as LeaseHeldByOtherError).holder).toMatchObject({ node: 'node-b', epoch: 1 });
    expect((err as Error).message).toMatch(/node-b holds it at epoch 1/);
    expect(keeper.fencingToken('rg-1')).toBeUndefined();
  });

  it('release frees the lease at once and stops renewing', async () => {
    const g = await keeper.acquire('rg-1');
    expect(await keeper.release('rg-1')).toBe(true);
    expect(server.peek('rg-1')).toBeNull();
    const spy = vi.spyOn(a, 'renew');
    await vi.advanceTimersByTimeAsync(TTL * 3);
    expect(spy).not.toHaveBeenCalled();
    expect((await b.acquire('rg-1', 'node-b', TTL))!.epoch).toBe(g.epoch + 1);
    expect(await keeper.release('rg-1')).toBe(false);
  });
});

describe('LeaseKeeper must-stop', () => {
  it('cut off from the witness: must-stop at renew start + TTL - safety - stop budget, strictly before anyone can acquire', async () => {
    const log = record(keeper);
    await keeper.acquire('rg-1');
    await vi.advanceTimersByTimeAsync(RENEW * 2); // two renewals; the last one sent at t0 + 600
    const lastRenew = keeper.status('rg-1')!.renewedAt;
    a.available = false;

    // The other node asks every 10 ms.
    let bGotItAt: number | undefined;
    let bGrant: LeaseGrant | null = null;
    const poll = setInterval(() => {
      if (bGotItAt !== undefined) return;
      void b.acquire('rg-1', 'node-b', TTL).then((g) => {
        if (g && bGotItAt === undefined) {
          bGotItAt = now();
          bGrant = g;
        }
      });
    }, 10);
    await vi.advanceTimersByTimeAsync(TTL * 2);
    clearInterval(poll);

    const mustStop = log.first('must-stop')!;
    const info = mustStop.detail as MustStop;
    expect(mustStop.at).toBe(lastRenew + TTL - SAFETY - STOP);
    expect(info).toMatchObject({ rg: 'rg-1', epoch: 1, reason: 'renewals-failing', servingDeadline: lastRenew + TTL - SAFETY });
    expect(info.cause).toBeInstanceOf(WitnessUnavailableError);
    expect(log.count('renew-failed')).toBeGreaterThanOrEqual(3);
    expect(bGotItAt).toBe(lastRenew + TTL);
    expect(bGotItAt! - mustStop.at).toBe(SAFETY + STOP);
    expect(bGrant!.epoch).toBe(2);
    expect(keeper.status('rg-1')?.state).toBe('lapsed');
    expect(keeper.canServe('rg-1')).toBe(false);
    expect(log.count('must-stop')).toBe(1);
  });

  it('timing holds with a slow witness: the deadline counts from when the renewal was sent', async () => {
    a.latencyMs = 80;
    b.latencyMs = 80;
    const log = record(keeper);
    const sent = now();
    const acquiring = keeper.acquire('rg-1');
    await vi.advanceTimersByTimeAsync(80);
    await acquiring;
    expect(keeper.status('rg-1')!.renewedAt).toBe(sent);
    await vi.advanceTimersByTimeAsync(RENEW + 120); // the first renewal is sent at +300, answered at +380
    expect(keeper.status('rg-1')!.renewedAt).toBe(sent + RENEW);
    const lastRenew = keeper.status('rg-1')!.renewedAt;
    a.available = false;
    await vi.advanceTimersByTimeAsync(TTL);
    expect(log.first('must-stop')!.at).toBe(lastRenew + TTL - SAFETY - STOP);
    // The server got that renewal 40 ms after it was sent, so the lease outlives the must-stop by even more.
    expect(server.peek('rg-1')).toBeNull();
  });

  it('a renewal answered after the must-stop time it would set lapses the lease', async () => {
    const log = record(keeper);
    await keeper.acquire('rg-1');
    a.latencyMs = TTL; // every answer now takes a whole TTL
    await vi.advanceTimersByTimeAsync(TTL * 3);
    expect(log.count('must-stop')).toBe(1);
    expect(log.count('renewed')).toBe(0);
    expect(log.first('must-stop')!.at).toBe(TTL - SAFETY - STOP + 1_000_000);
  });

  it('regains the same epoch when the witness comes back before the lease expired', async () => {
    const log = record(keeper);
    await keeper.acquire('rg-1');
    a.available = false;
    await vi.advanceTimersByTimeAsync(TTL - SAFETY - STOP + 10);
    expect(log.count('must-stop')).toBe(1);
    a.available = true;
    await vi.advanceTimersByTimeAsync(RENEW);
    expect(log.count('regained')).toBe(1);
    expect(keeper.status('rg-1')).toMatchObject({ state: 'held', epoch: 1, failures: 0 });
    expect(keeper.canServe('rg-1')).toBe(true);
  });

  it('re-acquires with a higher epoch when the lease expired and nobody took it', async () => {
    const log = record(keeper);
    await keeper.acquire('rg-1');
    a.available = false;
    await vi.advanceTimersByTimeAsync(TTL * 2);
    expect(server.peek('rg-1')).toBeNull();
    a.available = true;
    await vi.advanceTimersByTimeAsync(RENEW + 1);
    const regained = log.first('regained')!.detail as LeaseGrant;
    expect(regained.epoch).toBe(2);
    expect(keeper.fencingToken('rg-1')).toBe(2);
    expect(server.peek('rg-1')).toMatchObject({ node: 'node-a', epoch: 2 });
  });

  it('lease taken by the other node while cut off: lost, and the keeper forgets the RG', async () => {
    const log = record(keeper);
    await keeper.acquire('rg-1');
    a.available = false;
    await vi.advanceTimersByTimeAsync(TTL + 1);
    expect(await b.acquire('rg-1', 'node-b', TTL)).toMatchObject({ epoch: 2 });
    a.available = true;
    await vi.advanceTimersByTimeAsync(RENEW + 1);
    expect(log.names().filter((n) => n !== 'renew-failed')).toEqual(['acquired', 'must-stop', 'lost']);
    expect(keeper.fencingToken('rg-1')).toBeUndefined();
    expect(keeper.rgs()).toEqual([]);
    expect(a.highestEpochSeen('rg-1')).toBe(2);
  });

  it('lease taken while still held (a witness that lost it): must-stop with lease-lost at once, then lost', async () => {
    const log = record(keeper);
    await keeper.acquire('rg-1');
    server.restart({ persistent: true });
    await b.acquire('rg-1', 'node-b', TTL);
    await vi.advanceTimersByTimeAsync(RENEW + 1);
    const stop = log.first('must-stop')!;
    expect(stop.at).toBe(1_000_000 + RENEW);
    expect(stop.detail).toMatchObject({ reason: 'lease-lost', servingDeadline: 1_000_000 + RENEW });
    expect(log.names()).toEqual(['acquired', 'must-stop', 'lost']);
  });

  it('a witness restarted without persistence: the lease lapses for one TTL (amnesia fence), then comes back above every epoch seen', async () => {
    const log = record(keeper);
    await b.acquire('rg-1', 'node-b', 100);
    await vi.advanceTimersByTimeAsync(101);
    await keeper.acquire('rg-1'); // epoch 2
    const t0 = now();
    server.restart({ persistent: false }); // leases and counters gone
    expect(server.counter('rg-1')).toBe(0);
    await vi.advanceTimersByTimeAsync(RENEW + 1); // renew: gone -> acquire: fenced
    expect(server.peek('rg-1')).toMatchObject({ node: FORGOTTEN_HOLDER, epoch: 2 });
    // Nobody may take it while the fence stands, not even a node that knows no epoch.
    expect(await b.acquire('rg-1', 'node-b', TTL)).toBeNull();
    await vi.advanceTimersByTimeAsync(TTL + RENEW);
    expect(log.first('must-stop')!.at).toBe(t0 + TTL - SAFETY - STOP);
    const regained = log.first('regained')!;
    expect((regained.detail as LeaseGrant).epoch).toBe(3);
    expect(regained.at).toBeGreaterThanOrEqual(t0 + RENEW + TTL);
    expect(log.count('lost')).toBe(0);
    expect(keeper.status('rg-1')).toMatchObject({ state: 'held', epoch: 3 });
  });

  it('waitAndAcquire takes the lease once the holder lets it expire', async () => {
    await b.acquire('rg-1', 'node-b', TTL);
    const t0 = now();
    const got = keeper.waitAndAcquire('rg-1', { timeoutMs: 5_000 });
    await vi.advanceTimersByTimeAsync(TTL + 100);
    const g = await got;
    expect(g.epoch).toBe(2);
    expect(keeper.status('rg-1')!.renewedAt - t0).toBeGreaterThanOrEqual(TTL);
    expect(keeper.status('rg-1')!.renewedAt - t0).toBeLessThanOrEqual(TTL + 50);
  });

  it('waitAndAcquire gives up after its timeout with the last error', async () => {
    await b.acquire('rg-1', 'node-b', 60_000);
    const got = keeper.waitAndAcquire('rg-1', { timeoutMs: 300 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(400);
    expect(await got).toBeInstanceOf(LeaseHeldByOtherError);
  });

  it('close stops every timer and emits nothing more', async () => {
    const log = record(keeper);
    await keeper.acquire('rg-1');
    keeper.close();
    const spy = vi.spyOn(a, 'renew');
    await vi.advanceTimersByTimeAsync(TTL * 3);
    expect(spy).not.toHaveBeenCalled();
    expect(log.names()).toEqual(['acquired']);
    await expect(keeper.acquire('rg-2')).rejects.toThrow(/closed/);
  });
});
