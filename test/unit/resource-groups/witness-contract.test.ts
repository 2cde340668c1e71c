/**
 * The Witness contract on the in-memory witness (the Redis one runs the same
 * checks against a real redis-server in test/integration/witness-redis),
 * NoWitness and its opt-in, errors, tunables and the scripts' reply parsing.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  FORGOTTEN_HOLDER,
  LEASE_TUNABLES,
  LeaseHeldByOtherError,
  LeaseLostError,
  MemoryWitnessServer,
  NoWitness,
  REDIS_WITNESS_TUNABLES,
  RedisWitness,
  WITNESS_ERROR_CODES,
  WITNESS_MODES,
  WitnessClosedError,
  WitnessConfigError,
  WitnessError,
  WitnessReplyError,
  WitnessUnavailableError,
  createWitness,
  resolveLeaseTunables,
  resolveRedisWitnessTunables,
} from '../../../src/resource-groups/witness';
import { ACQUIRE, SCRIPTS, leaseKeys, parseHolderReply, parseLeaseReply, parseReleaseReply } from '../../../src/resource-groups/witness/scripts';

describe('MemoryWitness: the lease contract', () => {
  let server: MemoryWitnessServer;
  const now = (): number => Date.now();
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    server = new MemoryWitnessServer(now);
  });
  afterEach(() => vi.useRealTimers());

  it('acquire: free -> granted, held by another -> null, already ours -> a new term with a higher epoch', async () => {
    const a = server.client();
    const b = server.client();
    const g1 = await a.acquire('rg', 'a', 1_000);
    expect(g1).toMatchObject({ rg: 'rg', node: 'a', epoch: 1, ttlMs: 1_000, expiresAt: now() + 1_000 });
    expect(await b.acquire('rg', 'b', 1_000)).toBeNull();
    expect(b.highestEpochSeen('rg')).toBe(1);
    const g2 = await a.acquire('rg', 'a', 1_000);
    expect(g2!.epoch).toBe(2);
    await expect(a.renew('rg', 'a', 1, 1_000)).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('renew: only the holder with the current epoch; extends the server-side expiry', async () => {
    const a = server.client();
    await a.acquire('rg', 'a', 1_000);
    await vi.advanceTimersByTimeAsync(900);
    await a.renew('rg', 'a', 1, 1_000);
    await vi.advanceTimersByTimeAsync(900);
    expect(await a.holder('rg')).toMatchObject({ node: 'a', epoch: 1, ttlMs: 100 });
    const wrongNode = await a.renew('rg', 'b', 1, 1_000).catch((e: unknown) => e);
    expect(wrongNode).toBeInstanceOf(LeaseLostError);
    expect((wrongNode as LeaseLostError).current).toMatchObject({ node: 'a', epoch: 1 });
    expect((wrongNode as Error).message).toMatch(/a holds it at epoch 1/);
    await vi.advanceTimersByTimeAsync(100);
    const expired = await a.renew('rg', 'a', 1, 1_000).catch((e: unknown) => e);
    expect((expired as LeaseLostError).current).toBeNull();
    expect((expired as Error).message).toMatch(/expired or was released/);
  });

  it('epochs strictly increase across expiry, release and re-acquire by either node', async () => {
    const a = server.client();
    const b = server.client();
    const epochs: number[] = [];
    epochs.push((await a.acquire('rg', 'a', 100))!.epoch);
    await vi.advanceTimersByTimeAsync(100);
    epochs.push((await b.acquire('rg', 'b', 100))!.epoch);
    expect(await b.release('rg', 'b', epochs[1]!)).toBe(true);
    expect(await b.release('rg', 'b', epochs[1]!)).toBe(false);
    epochs.push((await a.acquire('rg', 'a', 100))!.epoch);
    epochs.push((await a.acquire('rg', 'a', 100))!.epoch);
    expect(epochs).toEqual([1, 2, 3, 4]);
  });

  it('a witness that forgot epochs a node has seen fences the lease for one TTL, then grants above them', async () => {
    const a = server.client();
    await a.acquire('rg', 'a', 100);
    await a.acquire('rg', 'a', 100);
    server.restart({ persistent: false }); // leases and counters gone
    expect(await a.acquire('rg', 'a', 100)).toBeNull();
    expect(await a.holder('rg')).toMatchObject({ node: FORGOTTEN_HOLDER, epoch: 2, ttlMs: 100 });
    const refused = await server.client().acquire('rg', 'b', 100);
    expect(refused).toBeNull(); // nobody, not even a node that knows nothing
    await vi.advanceTimersByTimeAsync(100);
    expect((await a.acquire('rg', 'a', 100))!.epoch).toBe(3);

    server.restart({ persistent: false });
    const restartedNode = server.client(); // a restarted node knows nothing ...
    restartedNode.observeEpoch('rg', 7); // ... unless told, e.g. from its persisted state
    expect(await restartedNode.acquire('rg', 'a', 100)).toBeNull();
    await vi.advanceTimersByTimeAsync(100);
    expect((await restartedNode.acquire('rg', 'a', 100))!.epoch).toBe(8);

    server.restart({ persistent: false });
    expect(await server.client().acquire('rg', 'a', 100, { minEpoch: 20 })).toBeNull();
    await vi.advanceTimersByTimeAsync(100);
    expect((await server.client().acquire('rg', 'a', 100))!.epoch).toBe(21);
  });

  it('the documented hole: a node that knows no epoch on a witness that forgot everything starts again at 1', async () => {
    const a = server.client();
    await a.acquire('rg', 'a', 100);
    await a.acquire('rg', 'a', 100);
    server.restart({ persistent: false });
    expect((await server.client().acquire('rg', 'b', 100))!.epoch).toBe(1);
  });

  it('LeaseHeldByOtherError explains the amnesia fence', () => {
    expect(new LeaseHeldByOtherError('rg', 'a', { node: FORGOTTEN_HOLDER, epoch: 3, ttlMs: 900 }).message).toBe(
      'a cannot acquire the lease of rg: the witness lost track of it (restart or failover) and keeps it free of holders for another 900 ms',
    );
  });

  it('a cut-off client fails with WitnessUnavailableError; a lost reply leaves the lease applied', async () => {
    const a = server.client({ latencyMs: 10 });
    a.available = false;
    const p = a.acquire('rg', 'a', 1_000).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    expect(await p).toBeInstanceOf(WitnessUnavailableError);
    a.available = true;
    const q = a.acquire('rg', 'a', 1_000).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(5);
    a.available = false; // the reply is lost on its way back
    await vi.advanceTimersByTimeAsync(5);
    expect(await q).toBeInstanceOf(WitnessUnavailableError);
    expect(server.peek('rg')).toMatchObject({ node: 'a', epoch: 1 });
  });

  it('validates names, ttls and epochs before asking', async () => {
    const a = server.client();
    await expect(a.acquire('bad name', 'a', 100)).rejects.toBeInstanceOf(WitnessConfigError);
    await expect(a.acquire('rg{x}', 'a', 100)).rejects.toThrow(/resource group name/);
    await expect(a.acquire('rg', '', 100)).rejects.toThrow(/node id/);
    await expect(a.acquire('rg', 'a', 0)).rejects.toThrow(/ttl/);
    await expect(a.acquire('rg', 'a', 1.5)).rejects.toThrow(/ttl/);
    await expect(a.renew('rg', 'a', -1, 100)).rejects.toThrow(/epoch/);
    await expect(a.renew('rg', 'a', 1e15, 100)).rejects.toThrow(/epoch/);
  });

  it('the outdated record: set by one node, seen by the other, cleared only by naming the node it names', async () => {
    const a = server.client();
    const b = server.client();
    expect(await b.outdated('rg')).toBeNull();
    await a.markOutdated('rg', 'b');
    await a.markOutdated('rg', 'b');
    expect(await b.outdated('rg')).toBe('b');
    expect(await a.outdated('other-rg')).toBeNull();
    await b.clearOutdated('rg', 'a');
    expect(await b.outdated('rg')).toBe('b');
    await b.clearOutdated('rg', 'b');
    expect(await a.outdated('rg')).toBeNull();
    await b.clearOutdated('rg', 'b');
    a.available = false;
    await expect(a.markOutdated('rg', 'b')).rejects.toBeInstanceOf(WitnessUnavailableError);
    await expect(a.outdated('rg')).rejects.toBeInstanceOf(WitnessUnavailableError);
    await expect(a.markOutdated('bad name', 'b')).rejects.toBeInstanceOf(WitnessConfigError);
  });

  it('closed clients refuse', async () => {
    const a = server.client();
    await a.close();
    await expect(a.holder('rg')).rejects.toBeInstanceOf(WitnessClosedError);
  });
});

describe('no witness', () => {
  it('NoWitness exists only with the explicit risky opt-in', () => {
    expect(() => new NoWitness({ allowTakeoverWithoutWitness: false })).toThrow(WitnessConfigError);
    expect(() => new NoWitness({} as { allowTakeoverWithoutWitness: boolean })).toThrow(/risky mode/);
    expect(new NoWitness({ allowTakeoverWithoutWitness: true }).kind).toBe('none');
  });

  it('NoWitness grants everything with per-process epochs and renews only its own term', async () => {
    const w = new NoWitness({ allowTakeoverWithoutWitness: true });
    const g = await w.acquire('rg', 'a', 100);
    expect(g.epoch).toBe(1);
    expect((await w.renew('rg', 'a', 1, 100)).epoch).toBe(1);
    await expect(w.renew('rg', 'a', 2, 100)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await w.holder('rg')).toMatchObject({ node: 'a', epoch: 1 });
    expect(await w.release('rg', 'a', 1)).toBe(true);
    expect((await w.acquire('rg', 'b', 100, { minEpoch: 9 })).epoch).toBe(10);
  });

  it('createWitness picks the mode: witness, safe default, risky opt-in; refuses both at once', async () => {
    expect(createWitness({})).toEqual({ mode: 'no-witness', witness: null });
    const risky = createWitness({ allowTakeoverWithoutWitness: true });
    expect(risky.mode).toBe('no-witness-risky');
    expect(risky.witness).toBeInstanceOf(NoWitness);
    const w = createWitness({ redis: { host: '127.0.0.1', port: 1 }, redisTunables: { connectTimeoutMs: 50, reconnectMaxDelayMs: 5_000 } });
    expect(w.mode).toBe('witness');
    expect(w.witness).toBeInstanceOf(RedisWitness);
    await w.witness!.close();
    expect(() => createWitness({ redis: { host: '127.0.0.1', port: 1 }, allowTakeoverWithoutWitness: true })).toThrow(WitnessConfigError);
    expect(Object.keys(WITNESS_MODES).sort()).toEqual(['no-witness', 'no-witness-risky', 'witness']);
    expect(WITNESS_MODES['no-witness-risky']).toMatch(/BOTH nodes serve/);
  });

  it('RedisWitness refuses bad connections', () => {
    expect(() => new RedisWitness({ connection: { host: '', port: 1 } })).toThrow(/host/);
    expect(() => new RedisWitness({ connection: { host: 'h', port: 70_000 } })).toThrow(/port/);
    expect(() => new RedisWitness({ connection: { sentinels: [], name: 'm' } })).toThrow(/at least one sentinel/);
    expect(() => new RedisWitness({ connection: { sentinels: [{ host: 'h', port: 1 }], name: '' } })).toThrow(/master group/);
    expect(() => new RedisWitness({ connection: { host: 'h', port: 1 }, keyPrefix: 'a{b' })).toThrow(/prefix/);
    expect(() => new RedisWitness({ connection: { host: 'h', port: 1 }, tunables: { commandTimeoutMs: 1 } })).toThrow(/commandTimeoutMs/);
  });
});

describe('errors', () => {
  const samples: WitnessError[] = [
    new WitnessUnavailableError('renew rg', 'Command timed out'),
    new LeaseLostError('rg', 'a', 3, { node: 'b', epoch: 4, ttlMs: 900 }),
    new LeaseHeldByOtherError('rg', 'a', { node: 'b', epoch: 4, ttlMs: 900 }),
    new WitnessReplyError('acquire rg', 'ERR bad'),
    new WitnessClosedError('acquire rg'),
    new WitnessConfigError('bad'),
  ];

  it('one class per code, every code documented and used', () => {
    expect(samples.map((e) => e.code).sort()).toEqual(Object.keys(WITNESS_ERROR_CODES).sort());
    expect(new Set(samples.map((e) => e.name)).size).toBe(samples.length);
    for (const e of samples) {
      expect(e).toBeInstanceOf(Error);
      expect(e).toBeInstanceOf(WitnessError);
      expect(WITNESS_ERROR_CODES[e.code].length).toBeGreaterThan(20);
    }
  });

  it('messages say what happened', () => {
    expect(samples[0]!.message).toBe('witness unavailable during renew rg: Command timed out');
    expect(samples[1]!.message).toBe('lease of rg at epoch 3 is no longer held by a: b holds it at epoch 4');
    expect(samples[2]!.message).toBe('a cannot acquire the lease of rg: b holds it at epoch 4 for another 900 ms');
  });
});

describe('tunables', () => {
  it('every tunable has a default within its bounds, a unit and a doc', () => {
    for (const t of [...Object.values(LEASE_TUNABLES), ...Object.values(REDIS_WITNESS_TUNABLES)]) {
      expect(t.default).toBeGreaterThanOrEqual(t.min);
      expect(t.default).toBeLessThanOrEqual(t.max);
      expect(t.doc.length).toBeGreaterThan(20);
    }
    expect(resolveLeaseTunables()).toMatchObject({ leaseTtlMs: 1_000, renewIntervalMs: 300 });
    expect(resolveRedisWitnessTunables()).toMatchObject({ commandTimeoutMs: 200, replicasToAck: 0 });
  });

  it('refuses unknown names and values out of bounds', () => {
    expect(() => resolveLeaseTunables({ leaseTtl: 5 } as never)).toThrow(/unknown lease tunable leaseTtl/);
    expect(() => resolveLeaseTunables({ leaseTtlMs: 50 })).toThrow(/\[100, 600000\] ms/);
    expect(() => resolveRedisWitnessTunables({ replicasToAck: 17 })).toThrow(/replicasToAck/);
  });
});

describe('scripts', () => {
  it('are named by the sha1 of their source (what EVALSHA sends)', () => {
    for (const s of SCRIPTS) expect(s.sha1).toBe(createHash('sha1').update(s.lua).digest('hex'));
    expect(new Set(SCRIPTS.map((s) => s.sha1)).size).toBe(SCRIPTS.length);
    expect(ACQUIRE.numKeys).toBe(2);
  });

  it('keep both keys of an RG in one hash slot', () => {
    expect(leaseKeys('p:', 'rg-1')).toEqual({ lease: 'p:{rg-1}:lease', epoch: 'p:{rg-1}:epoch', outdated: 'p:{rg-1}:outdated' });
  });

  it('parse replies, including RESP2 nulls, RESP3 false and buffers', () => {
    expect(parseLeaseReply([1, 'a', 5, 1000], 'op')).toEqual({ ok: true, holder: { node: 'a', epoch: 5, ttlMs: 1000 } });
    expect(parseLeaseReply([0, null, 0, -2], 'op')).toEqual({ ok: false, holder: null });
    expect(parseLeaseReply([0, false, 0, -2], 'op')).toEqual({ ok: false, holder: null });
    expect(parseLeaseReply([0, Buffer.from('b'), '7', 12], 'op')).toEqual({ ok: false, holder: { node: 'b', epoch: 7, ttlMs: 12 } });
    expect(parseLeaseReply([0, 'b', 7, -1], 'op').holder!.ttlMs).toBe(Number.POSITIVE_INFINITY);
    expect(parseHolderReply([null, 0, -2, 9], 'op')).toEqual({ holder: null, counter: 9 });
    expect(parseReleaseReply(1, 'op')).toBe(true);
    expect(parseReleaseReply(0, 'op')).toBe(false);
  });

  it('refuse replies of the wrong shape with WitnessReplyError', () => {
    expect(() => parseLeaseReply('OK', 'acquire rg')).toThrow(WitnessReplyError);
    expect(() => parseLeaseReply([1, 'a', 'x', 1], 'acquire rg')).toThrow(/epoch is "x"/);
    expect(() => parseHolderReply([1, 2, 3], 'holder rg')).toThrow(/array of 4/);
    expect(() => parseReleaseReply(null, 'release rg')).toThrow(WitnessReplyError);
  });
});
