/**
 * RedisWitness through a Sentinel set on loopback: one master, one replica,
 * three sentinels (quorum 2). A lease taken before a failover (SENTINEL
 * FAILOVER) is still held and exclusive on the new master, and the epoch
 * counter goes on from where it was.
 *
 * With replicasToAck: 1 every grant and renewal waits until the replica has
 * it, so a failover cannot forget a lease we were told we hold; the price,
 * with a single replica, is that renewals fail from the failover until the
 * old master has rejoined as a replica (Sentinel converts it some seconds
 * later): the lease lapses (must-stop; the decision table keeps serving
 * while the peer is alive) and is regained after (README.md "Sentinel").
 */
import { describe, expect, it } from 'vitest';
import { LeaseKeeper, RedisWitness, type LeaseGrant, type MustStop, type RedisWitnessOptions } from '../../src/resource-groups/witness';
import { leaseKeys } from '../../src/resource-groups/witness/scripts';
import { track } from './helpers';
import { redisCommand, startSentinelSet, waitFor, type SentinelSet } from './helpers/redis';

const KEY_PREFIX = 'twinsan:sentinel-test:';

function witness(options: RedisWitnessOptions): RedisWitness {
  const w = new RedisWitness(options);
  track({ label: 'sentinel witness client', dispose: () => w.close(), disposeSync: () => void w.close() });
  return w;
}

async function pair(set: SentinelSet, tunables: RedisWitnessOptions['tunables']): Promise<[RedisWitness, RedisWitness]> {
  const a = witness({ connection: set.connection, keyPrefix: KEY_PREFIX, tunables, connectionName: 'node-a' });
  const b = witness({ connection: set.connection, keyPrefix: KEY_PREFIX, tunables, connectionName: 'node-b' });
  await Promise.all([a.ready(10_000), b.ready(10_000)]);
  expect(await set.masterPort()).toBe(set.master.port);
  return [a, b];
}

const leaseField = (port: number, field: string): Promise<unknown> => redisCommand(port, ['HGET', leaseKeys(KEY_PREFIX, 'rg').lease, field]);

describe('RedisWitness with Sentinel', () => {
  it('a lease survives a failover: same holder and epoch on the new master, no must-stop, still exclusive, epochs go on', async () => {
    const set = await startSentinelSet();
    const [a, b] = await pair(set, { commandTimeoutMs: 1_000 });
    // A lease long enough for the failover (a few seconds) to fit in one term.
    const keeper = new LeaseKeeper({ witness: a, nodeId: 'node-a', tunables: { leaseTtlMs: 10_000, renewIntervalMs: 500, renewRetryMs: 100 } });
    const mustStops: MustStop[] = [];
    keeper.on('must-stop', (info) => mustStops.push(info));
    try {
      const g = await keeper.acquire('rg');
      expect(await b.acquire('rg', 'node-b', 10_000)).toBeNull();
      // Asynchronous replication: wait until the replica has the grant (README: a failover in this window forgets it).
      await waitFor('the grant on the replica', async () => ((await leaseField(set.replica.port, 'epoch')) === String(g.epoch) ? true : undefined));

      const newMaster = await set.failover();
      expect(newMaster).toBe(set.replica.port);

      const before = keeper.status('rg')!.renewedAt;
      await waitFor('a renewal on the new master', async () => {
        const s = keeper.status('rg');
        return s && s.state === 'held' && s.renewedAt > before + 1_000 ? true : undefined;
      }, 20_000, 50);
      expect(mustStops).toEqual([]);
      expect(keeper.fencingToken('rg')).toBe(g.epoch);
      expect(await leaseField(newMaster, 'node')).toBe('node-a');

      await waitFor('node-b on the new master', async () => ((await b.holder('rg').catch(() => null)) ? true : undefined), 10_000);
      expect(await b.holder('rg')).toMatchObject({ node: 'node-a', epoch: g.epoch });
      expect(await b.acquire('rg', 'node-b', 10_000)).toBeNull();
      expect(await keeper.release('rg')).toBe(true);
      expect((await b.acquire('rg', 'node-b', 10_000))?.epoch).toBe(g.epoch + 1);
    } finally {
      keeper.close();
    }
  }, 90_000);

  it('replicasToAck 1: grants are on the replica before they are reported; after a failover the lease lapses until a replica is back, then is regained', async () => {
    const set = await startSentinelSet();
    const [a, b] = await pair(set, { replicasToAck: 1, replicaAckTimeoutMs: 200, commandTimeoutMs: 1_000 });
    const keeper = new LeaseKeeper({ witness: a, nodeId: 'node-a', tunables: { leaseTtlMs: 4_000, renewIntervalMs: 500, renewRetryMs: 100 } });
    const events: string[] = [];
    let regained: LeaseGrant | undefined;
    keeper.on('must-stop', () => events.push('must-stop'));
    keeper.on('regained', (grant) => {
      events.push('regained');
      regained = grant;
    });
    keeper.on('lost', () => events.push('lost'));
    try {
      const g = await keeper.acquire('rg');
      // No waiting here: the acquire itself waited for the replica.
      expect(await leaseField(set.replica.port, 'epoch')).toBe(String(g.epoch));

      const newMaster = await set.failover();
      await waitFor('the lease regained', async () => (regained ? true : undefined), 60_000, 100);
      expect(events).toEqual(['must-stop', 'regained']);
      // Same term if the old master rejoined before the lease expired, a new one if not: never older.
      expect(regained!.epoch).toBeGreaterThanOrEqual(g.epoch);
      expect(keeper.status('rg')?.state).toBe('held');
      expect(await leaseField(newMaster, 'epoch')).toBe(String(regained!.epoch));
      expect(await b.acquire('rg', 'node-b', 4_000)).toBeNull();
      expect(b.highestEpochSeen('rg')).toBe(regained!.epoch);
    } finally {
      keeper.close();
    }
  }, 120_000);
});
