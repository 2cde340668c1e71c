/**
 * RedisWitness and LeaseKeeper against a real redis-server on loopback:
 * contention, fencing epochs across expiry, release and restarts (with and
 * without AOF), EVALSHA fallback, and a node cut off from Redis fencing
 * itself (must-stop) strictly before the other node can take the lease.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FORGOTTEN_HOLDER,
  LeaseKeeper,
  LeaseLostError,
  RedisWitness,
  WitnessUnavailableError,
  type LeaseGrant,
  type MustStop,
  type RedisWitnessOptions,
} from '../../src/resource-groups/witness';
import { leaseKeys } from '../../src/resource-groups/witness/scripts';
import { freePort, track, type Disposable } from './helpers';
import { startRedis, startTcpProxy, waitFor, type RedisServer } from './helpers/redis';

let prefixes = 0;
const nextPrefix = (): string => `twinsan:test:${process.pid}:${++prefixes}:`;

const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function witness(port: number, options: Partial<RedisWitnessOptions> = {}): RedisWitness {
  const w = new RedisWitness({ connection: { host: '127.0.0.1', port }, ...options });
  const d: Disposable = { label: `witness client to ${port}`, dispose: () => w.close(), disposeSync: () => void w.close() };
  track(d);
  return w;
}

async function connectedPair(port: number, options: Partial<RedisWitnessOptions> = {}): Promise<[RedisWitness, RedisWitness]> {
  const keyPrefix = options.keyPrefix ?? nextPrefix();
  const a = witness(port, { ...options, keyPrefix, connectionName: 'node-a' });
  const b = witness(port, { ...options, keyPrefix, connectionName: 'node-b' });
  await Promise.all([a.ready(), b.ready()]);
  return [a, b];
}

function keeperEvents(k: LeaseKeeper) {
  const events: { at: number; name: string; detail: unknown }[] = [];
  for (const name of ['acquired', 'renewed', 'renew-failed', 'must-stop', 'regained', 'lost'] as const) {
    k.on(name, (...args: unknown[]) => events.push({ at: now(), name, detail: args.length === 1 ? args[0] : args }));
  }
  return { events, first: (name: string) => events.find((e) => e.name === name), count: (name: string) => events.filter((e) => e.name === name).length };
}

/** Ask for the lease every `everyMs` until granted; resolves with the grant and when it was granted (sent-time of the winning call). */
async function pollAcquire(w: RedisWitness, rg: string, node: string, ttlMs: number, everyMs: number, timeoutMs: number): Promise<{ grant: LeaseGrant; sentAt: number; at: number }> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const sentAt = now();
    const g = await w.acquire(rg, node, ttlMs).catch(() => null);
    if (g) return { grant: g, sentAt, at: now() };
    if (now() > deadline) throw new Error(`${node} did not get ${rg} within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

describe('RedisWitness on a redis-server without persistence', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });

  it('two nodes contending for 32 leases at once: exactly one wins each, and both agree who', async () => {
    const [a, b] = await connectedPair(redis.port);
    const rgs = Array.from({ length: 32 }, (_, i) => `rg-${i}`);
    const results = await Promise.all(rgs.flatMap((rg) => [a.acquire(rg, 'node-a', 5_000), b.acquire(rg, 'node-b', 5_000)]));
    for (let i = 0; i < rgs.length; i++) {
      const [ga, gb] = [results[2 * i], results[2 * i + 1]];
      expect((ga ? 1 : 0) + (gb ? 1 : 0), rgs[i]).toBe(1);
      const winner = (ga ?? gb)!;
      expect(winner.epoch).toBe(1);
      expect(await a.holder(rgs[i]!)).toMatchObject({ node: winner.node, epoch: 1 });
      expect(a.highestEpochSeen(rgs[i]!)).toBe(1);
      expect(b.highestEpochSeen(rgs[i]!)).toBe(1);
    }
    const wins = results.filter(Boolean).length;
    expect(wins).toBe(rgs.length);
  });

  it('epochs strictly increase across acquire, expiry, release and re-acquire by either node', async () => {
    const [a, b] = await connectedPair(redis.port);
    const epochs: number[] = [];
    // TTLs long enough that a loaded machine's stall between two calls does not expire a lease early.
    epochs.push((await a.acquire('rg', 'node-a', 1_000))!.epoch);
    expect(await b.acquire('rg', 'node-b', 1_000)).toBeNull();
    await sleep(1_100); // expired on the server
    expect(await a.holder('rg')).toBeNull();
    const gb = (await b.acquire('rg', 'node-b', 5_000))!;
    epochs.push(gb.epoch);
    expect(await b.release('rg', 'node-b', gb.epoch)).toBe(true);
    expect(await b.release('rg', 'node-b', gb.epoch)).toBe(false);
    epochs.push((await a.acquire('rg', 'node-a', 5_000))!.epoch);
    epochs.push((await a.acquire('rg', 'node-a', 5_000))!.epoch); // already ours: a new term
    expect(epochs).toEqual([1, 2, 3, 4]);
    const counter = await redis.command('GET', leaseKeys(a.keyPrefix, 'rg').epoch);
    expect(counter).toBe('4');
  });

  it('renew succeeds only for the current holder and epoch, and extends the server-side TTL', async () => {
    const [a, b] = await connectedPair(redis.port);
    // Lease 2 s, renewed after 1 s: without the renewal at most 1 s would be left, so more than
    // 1.5 s shows it was extended, with room for a loaded machine's stalls between the calls.
    const g = (await a.acquire('rg', 'node-a', 2_000))!;
    await sleep(1_000);
    const r = await a.renew('rg', 'node-a', g.epoch, 2_000);
    expect(r.epoch).toBe(g.epoch);
    const pttl = Number(await redis.command('PTTL', leaseKeys(a.keyPrefix, 'rg').lease));
    expect(pttl).toBeGreaterThan(1_500);
    await expect(b.renew('rg', 'node-b', g.epoch, 2_000)).rejects.toBeInstanceOf(LeaseLostError);
    const stale = await a.renew('rg', 'node-a', g.epoch + 1, 2_000).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(LeaseLostError);
    expect((stale as LeaseLostError).current).toMatchObject({ node: 'node-a', epoch: g.epoch });
    await sleep(2_100);
    const expired = await a.renew('rg', 'node-a', g.epoch, 2_000).catch((e: unknown) => e);
    expect(expired).toBeInstanceOf(LeaseLostError);
    expect((expired as LeaseLostError).current).toBeNull();
  });

  it('a holder that stops renewing loses the lease after its TTL; the other gets it with a higher epoch', async () => {
    const [a, b] = await connectedPair(redis.port);
    const ttl = 500;
    const sentA = now();
    const ga = (await a.acquire('rg', 'node-a', ttl))!;
    const got = await pollAcquire(b, 'rg', 'node-b', ttl, 5, 5_000);
    expect(got.grant.epoch).toBeGreaterThan(ga.epoch);
    // Redis expired it on its own clock: not before the TTL counted from A's request.
    expect(got.at - sentA).toBeGreaterThanOrEqual(ttl);
    expect(got.sentAt - sentA).toBeLessThan(ttl + 200);
    await expect(a.renew('rg', 'node-a', ga.epoch, ttl)).rejects.toThrow(/node-b holds it at epoch 2/);
  });

  it('the outdated record: one node marks the other\'s copy, the other sees it; a clear naming another node leaves it', async () => {
    const [a, b] = await connectedPair(redis.port);
    try {
      expect(await b.outdated('rg-outdated')).toBeNull();
      await a.markOutdated('rg-outdated', 'node-b');
      expect(await b.outdated('rg-outdated')).toBe('node-b');
      await b.clearOutdated('rg-outdated', 'node-a');
      expect(await a.outdated('rg-outdated')).toBe('node-b');
      await b.clearOutdated('rg-outdated', 'node-b');
      expect(await a.outdated('rg-outdated')).toBeNull();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('falls back from EVALSHA to EVAL after SCRIPT FLUSH', async () => {
    const [a] = await connectedPair(redis.port);
    await a.acquire('rg', 'node-a', 5_000);
    const evalCalls = async (): Promise<number> => {
      const stats = String(await redis.command('INFO', 'commandstats'));
      return Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    };
    const before = await evalCalls();
    await redis.command('SCRIPT', 'FLUSH');
    const h = await a.holder('rg');
    expect(h).toMatchObject({ node: 'node-a', epoch: 1 });
    expect(await evalCalls()).toBe(before + 1);
    await a.holder('rg'); // cached again: EVALSHA only
    expect(await evalCalls()).toBe(before + 1);
  });

  it('with replicasToAck and no replica, an acquire is refused as unavailable and given back', async () => {
    const [a] = await connectedPair(redis.port, { tunables: { replicasToAck: 1, replicaAckTimeoutMs: 20 } });
    const err = await a.acquire('rg', 'node-a', 5_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WitnessUnavailableError);
    expect((err as Error).message).toMatch(/only 0 of 1 replicas acknowledged/);
    expect(await a.holder('rg')).toBeNull();
  });

  it('fails fast with WitnessUnavailableError when nothing listens', async () => {
    const dead = await freePort();
    const w = witness(dead);
    const t0 = now();
    const err = await w.acquire('rg', 'node-a', 1_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WitnessUnavailableError);
    expect((err as Error).message).toMatch(/witness unavailable during acquire rg/);
    expect(now() - t0).toBeLessThan(500);
  });
});

describe('RedisWitness across redis-server restarts', () => {
  it('with AOF: the epoch counter and the lease (with its expiry) survive a restart', async () => {
    const redis = await startRedis({ appendonly: true });
    const [a, b] = await connectedPair(redis.port);
    const g1 = (await a.acquire('rg', 'node-a', 10_000))!;
    const g2 = (await b.acquire('other', 'node-b', 10_000))!;
    await redis.stop();
    await expect(a.holder('rg')).rejects.toBeInstanceOf(WitnessUnavailableError);
    await redis.start();
    await waitFor('both clients reconnected', async () => (a.connected && b.connected ? true : undefined), 10_000);
    expect(await b.holder('rg')).toMatchObject({ node: 'node-a', epoch: g1.epoch });
    expect(await b.acquire('rg', 'node-b', 1_000)).toBeNull();
    expect((await a.renew('rg', 'node-a', g1.epoch, 10_000)).epoch).toBe(g1.epoch);
    await a.release('rg', 'node-a', g1.epoch);
    await b.release('other', 'node-b', g2.epoch);
    // Fresh clients (restarted nodes, no memory) still get higher epochs: the counter was on disk.
    await redis.stop();
    await redis.start();
    const [c] = await connectedPair(redis.port, { keyPrefix: a.keyPrefix });
    expect((await c.acquire('rg', 'node-b', 1_000))!.epoch).toBe(g1.epoch + 1);
  });

  it('without persistence: the witness forgets, a node that saw an epoch fences the lease for one TTL, then grants above it', async () => {
    const redis = await startRedis();
    const [a, b] = await connectedPair(redis.port);
    for (let i = 0; i < 3; i++) await a.acquire('rg', 'node-a', 10_000);
    expect(a.highestEpochSeen('rg')).toBe(3);
    await redis.kill();
    await redis.start();
    await waitFor('reconnected', async () => (a.connected && b.connected ? true : undefined), 10_000);
    expect(await redis.command('GET', leaseKeys(a.keyPrefix, 'rg').epoch)).toBeNull();
    // A knows epoch 3; the witness knows nothing: it parks the lease for the TTL asked for instead of granting.
    expect(await a.acquire('rg', 'node-a', 2_000)).toBeNull(); // long enough that b's calls below come within it
    expect(await b.holder('rg')).toMatchObject({ node: FORGOTTEN_HOLDER, epoch: 3 });
    expect(await b.acquire('rg', 'node-b', 2_000)).toBeNull();
    const got = await pollAcquire(b, 'rg', 'node-b', 10_000, 20, 5_000);
    expect(got.grant.epoch).toBe(4);
    // A restarted node knows nothing: told the epoch it persisted (or its peer's data path saw), it stays monotonic ...
    await redis.kill();
    await redis.start();
    const [fresh] = await connectedPair(redis.port, { keyPrefix: a.keyPrefix });
    fresh.observeEpoch('rg', 4);
    expect(await fresh.acquire('rg', 'node-b', 1_000)).toBeNull();
    expect((await pollAcquire(fresh, 'rg', 'node-b', 10_000, 20, 5_000)).grant.epoch).toBe(5);
    // ... and without that, a witness without persistence starts again at 1 (README: "Persistence").
    await redis.kill();
    await redis.start();
    const [amnesic] = await connectedPair(redis.port, { keyPrefix: a.keyPrefix });
    expect((await amnesic.acquire('rg', 'node-b', 10_000))!.epoch).toBe(1);
  });
});

describe('LeaseKeeper: a node cut off from Redis fences itself before the other can take over', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });

  const TTL = 1_000;
  const SAFETY = 100;
  const STOP = 150;
  /** must-stop comes SAFETY + STOP before the earliest expiry; allow a loaded machine 150 ms of that. */
  const REQUIRED_GAP_MS = 100;

  for (const mode of ['blackhole', 'reset'] as const) {
    it(`cut off (${mode}): must-stop strictly before the other node acquires, with margin`, async () => {
      const proxy = await startTcpProxy(redis.port);
      const keyPrefix = nextPrefix();
      const a = witness(proxy.port, { keyPrefix, connectionName: 'node-a' });
      const b = witness(redis.port, { keyPrefix, connectionName: 'node-b' });
      await Promise.all([a.ready(), b.ready()]);
      const keeper = new LeaseKeeper({ witness: a, nodeId: 'node-a', tunables: { leaseTtlMs: TTL, safetyMarginMs: SAFETY, stopBudgetMs: STOP } });
      const log = keeperEvents(keeper);
      try {
        const g = await keeper.acquire('rg');
        await waitFor('two renewals', async () => (log.count('renewed') >= 2 ? true : undefined), 5_000, 10);
        expect(await b.acquire('rg', 'node-b', TTL)).toBeNull();

        proxy.cut(mode);
        const cutAt = now();
        const bGot = await pollAcquire(b, 'rg', 'node-b', TTL, 10, 5_000);
        await waitFor('must-stop', async () => log.first('must-stop'), 2_000, 10);

        const stop = log.first('must-stop')!;
        const info = stop.detail as MustStop;
        const lastRenew = info.servingDeadline - TTL + SAFETY;
        expect(info).toMatchObject({ rg: 'rg', epoch: g.epoch, reason: 'renewals-failing' });
        expect(info.cause).toBeInstanceOf(WitnessUnavailableError);
        expect(lastRenew).toBeLessThanOrEqual(cutAt);
        // must-stop at the computed time (node timers run on a whole-millisecond clock: up to 1 ms early, or late under load) ...
        expect(stop.at).toBeGreaterThanOrEqual(lastRenew + TTL - SAFETY - STOP - 2);
        expect(stop.at).toBeLessThan(info.servingDeadline);
        // ... and strictly before the other node could acquire, with margin.
        expect(bGot.at - stop.at, `must-stop at ${stop.at.toFixed(1)}, other acquired at ${bGot.at.toFixed(1)}`).toBeGreaterThanOrEqual(REQUIRED_GAP_MS);
        expect(bGot.at).toBeGreaterThanOrEqual(lastRenew + TTL);
        expect(bGot.grant.epoch).toBe(g.epoch + 1);
        expect(log.count('renew-failed')).toBeGreaterThanOrEqual(2);
        expect(log.count('renewed') + log.count('acquired')).toBeGreaterThanOrEqual(3);

        // Back in touch: the keeper finds the lease taken and gives the RG up.
        proxy.heal();
        await waitFor('lost', async () => log.first('lost'), 5_000, 20);
        expect((log.first('lost')!.detail as [string, LeaseLostError])[1].current).toMatchObject({ node: 'node-b', epoch: g.epoch + 1 });
        expect(keeper.fencingToken('rg')).toBeUndefined();
      } finally {
        keeper.close();
      }
    });
  }

  it('redis-server killed: must-stop before the lease could expire; after a restart with AOF the epoch goes on', async () => {
    const aof = await startRedis({ appendonly: true });
    const keyPrefix = nextPrefix();
    const a = witness(aof.port, { keyPrefix, connectionName: 'node-a' });
    const b = witness(aof.port, { keyPrefix, connectionName: 'node-b' });
    await Promise.all([a.ready(), b.ready()]);
    const keeper = new LeaseKeeper({ witness: a, nodeId: 'node-a', tunables: { leaseTtlMs: TTL } });
    const log = keeperEvents(keeper);
    try {
      const g = await keeper.acquire('rg');
      await waitFor('a renewal', async () => (log.count('renewed') >= 1 ? true : undefined), 5_000, 10);
      await aof.kill();
      const killedAt = now();
      await waitFor('must-stop', async () => log.first('must-stop'), 3_000, 10);
      const stop = log.first('must-stop')!;
      expect(stop.at - killedAt).toBeLessThan(TTL);
      const lastRenew = keeper.status('rg')!.renewedAt;
      // Keep the witness down past the lease's expiry, then bring it back with its data.
      await sleep(Math.max(0, lastRenew + TTL + 100 - now()));
      await aof.start();
      const bGot = await pollAcquire(b, 'rg', 'node-b', 5_000, 10, 10_000).catch(() => null);
      const holder = await waitFor('a holder', async () => (await b.holder('rg')) ?? undefined, 5_000);
      // Whoever won the lease after the restart, it is a new term above the one before the crash.
      expect(holder.epoch).toBeGreaterThan(g.epoch);
      if (bGot) {
        expect(bGot.at).toBeGreaterThan(lastRenew + TTL);
        expect(bGot.at - stop.at).toBeGreaterThanOrEqual(SAFETY + STOP);
      }
    } finally {
      keeper.close();
    }
  });
});

