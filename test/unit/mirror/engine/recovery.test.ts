/**
 * Recovery: crashes (a node's files copied as a crash leaves them, reopened
 * by a new node), failover, split brain and its manual resolution, the
 * initial full sync of a new volume, online verify.
 */
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MirroredVolume, MirrorStatus } from '../../../../src/mirror';
import {
  KiB,
  MiB,
  Pair,
  REGION,
  VOLUME_SIZE,
  crashCopy,
  fileBytes,
  nodePair,
  pattern,
  randomWrites,
  sleep,
  spec,
  tempDir,
  waitFor,
  waitReplication,
} from './helpers';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let pair: Pair | null = null;
afterEach(async () => {
  await pair?.close();
  pair = null;
});

async function connectedVolume(p: Pair, id = 'vol'): Promise<{ pri: MirroredVolume; sec: MirroredVolume; priPath: string; secPath: string }> {
  const priSpec = spec(tmp, id, 'primary');
  const secSpec = spec(tmp, id, 'secondary');
  const pri = await p.a.openVolume(priSpec);
  const sec = await p.b.openVolume(secSpec);
  await waitReplication(pri, 'in-sync');
  await waitReplication(sec, 'in-sync');
  return { pri, sec, priPath: priSpec.backingPath, secPath: secSpec.backingPath };
}

function recordResync(v: MirroredVolume): MirrorStatus[] {
  const seen: MirrorStatus[] = [];
  v.on('status', (s) => {
    if (s.resync) seen.push(s);
  });
  return seen;
}

describe('restarts', () => {
  it('after a clean shutdown of both nodes they reconnect in sync, without a resync', async () => {
    pair = await nodePair();
    const { pri, priPath, secPath } = await connectedVolume(pair);
    await randomWrites(pri, 50, 40);
    await pair.a.close();
    await pair.b.close();
    const a2 = await pair.restart('a');
    const b2 = await pair.restart('b');
    const pri2 = await a2.openVolume({ ...spec(tmp, 'vol', 'primary'), backingPath: priPath, create: false });
    const sec2 = await b2.openVolume({ ...spec(tmp, 'vol', 'secondary'), backingPath: secPath, create: false });
    const seen = recordResync(pri2);
    await waitReplication(pri2, 'in-sync');
    await waitReplication(sec2, 'in-sync');
    expect(pri2.status().lastDecision).toBe('same-current-clean');
    expect(seen).toEqual([]);
    await randomWrites(pri2, 20, 41);
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
  });
});

describe('crashes', () => {
  it('primary crash with a write that reached only the secondary: the crashed primary is the source of its activity-log regions', async () => {
    pair = await nodePair();
    const { pri, sec, priPath, secPath } = await connectedVolume(pair);
    await randomWrites(pri, 50, 1);
    const old = fileBytes(priPath).subarray(2 * MiB, 2 * MiB + 64 * KiB);
    // The local write is held on the primary; the secondary completes it.
    const priStore = pair.storesA.get('vol')!;
    priStore.holdWrites = true;
    const secWrites = pair.storesB.get('vol')!.writes;
    const lost = pri.store.writev(2 * MiB, [pattern(77, 64 * KiB)]).catch(() => undefined);
    await waitFor(() => priStore.heldCount === 1 && pair!.storesB.get('vol')!.writes > secWrites, 5_000, 'the write on the secondary only');
    await sleep(50);
    const copy = tmp.file('crashed-primary.img');
    crashCopy(priPath, copy);
    priStore.holdWrites = false;
    priStore.release();
    await lost;
    await pair.a.close();
    await waitReplication(sec, 'connecting');
    expect(fileBytes(secPath).subarray(2 * MiB, 2 * MiB + 64 * KiB).equals(pattern(77, 64 * KiB))).toBe(true);

    const a2 = await pair.restart('a');
    const pri2 = await a2.openVolume({ ...spec(tmp, 'vol', 'primary'), backingPath: copy, create: false });
    const seen = recordResync(pri2);
    await waitReplication(pri2, 'in-sync');
    await waitReplication(sec, 'in-sync');
    expect(pri2.status().lastDecision).toBe('same-current-unclean');
    expect(seen.some((s) => s.resync?.direction === 'to-peer')).toBe(true);
    // The unacknowledged write is gone from both: the crashed primary's data won.
    expect(fileBytes(secPath).equals(fileBytes(copy))).toBe(true);
    expect(fileBytes(copy).subarray(2 * MiB, 2 * MiB + 64 * KiB).equals(old)).toBe(true);
  });

  it('secondary crash: the primary goes on alone, the restarted secondary gets a bitmap resync (with its own activity-log regions)', async () => {
    pair = await nodePair();
    const { pri, priPath, secPath } = await connectedVolume(pair);
    await randomWrites(pri, 50, 2);
    const copy = tmp.file('crashed-secondary.img');
    crashCopy(secPath, copy);
    await pair.b.close();
    await randomWrites(pri, 30, 3);
    await waitReplication(pri, 'degraded');
    const b2 = await pair.restart('b');
    const sec2 = await b2.openVolume({ ...spec(tmp, 'vol', 'secondary'), backingPath: copy, create: false });
    const seen = recordResync(sec2);
    await waitReplication(sec2, 'in-sync', 15_000);
    await waitReplication(pri, 'in-sync');
    expect(pri.status().lastDecision).toBe('local-wrote-alone');
    expect(seen.every((s) => s.resync?.direction === 'from-peer')).toBe(true);
    expect(fileBytes(copy).equals(fileBytes(priPath))).toBe(true);
  });

  it('primary crash and failover: the promoted secondary writes, the old primary comes back as secondary and is resynced from it', async () => {
    pair = await nodePair();
    const { pri, sec, priPath, secPath } = await connectedVolume(pair);
    await randomWrites(pri, 50, 4);
    const copy = tmp.file('old-primary.img');
    crashCopy(priPath, copy);
    await pair.a.close();
    await waitReplication(sec, 'connecting');
    await sec.promote();
    expect(sec.role).toBe('primary');
    await randomWrites(sec, 40, 5);
    expect(sec.status().replication).toBe('degraded');

    // Opening the old primary as primary again would make two primaries: refused.
    const a2 = await pair.restart('a');
    const dual = await a2.openVolume({ ...spec(tmp, 'vol', 'primary'), backingPath: copy, create: false });
    await waitFor(() => dual.status().replication === 'stopped', 10_000, 'refused');
    expect(dual.status().lastError).toMatch(/EDUALPRIMARY/);
    await dual.close();

    const old = await a2.openVolume({ ...spec(tmp, 'vol', 'secondary'), backingPath: copy, create: false });
    await waitReplication(old, 'in-sync', 15_000);
    await waitReplication(sec, 'in-sync');
    expect(sec.status().lastDecision).toBe('local-wrote-alone');
    expect(fileBytes(copy).equals(fileBytes(secPath))).toBe(true);

    // Failback: demote the interim primary, promote the original owner.
    await sec.demote();
    await old.promote();
    expect(old.role).toBe('primary');
    await waitReplication(old, 'in-sync');
    await randomWrites(old, 20, 6);
    expect(fileBytes(copy).equals(fileBytes(secPath))).toBe(true);
  });
});

describe('peer gone (the node layer knows the peer died)', () => {
  it('a secondary whose links all dropped is refused promotion while the peer may be primary; after peerGone it promotes at once and writes alone, while a primary is left to its degradeAfterMs wait', async () => {
    // degradeAfterMs and unavailableAfterMs far beyond the test: only peerGone can end the session.
    pair = await nodePair({ tunables: { degradeAfterMs: 60_000, unavailableAfterMs: 60_000, deadMs: 60_000 } });
    const { pri, sec, secPath } = await connectedVolume(pair);
    await randomWrites(pri, 20, 11);
    expect(pair.b.peerGone('links are up')).toBe(0);
    expect(sec.status().replication).toBe('in-sync');

    pair.partition();
    await waitFor(() => pair!.b.peerState === 'down', 5_000, 'b sees no link');
    await expect(sec.promote()).rejects.toMatchObject({ code: 'EDUALPRIMARY' });
    expect(sec.role).toBe('secondary');

    const before = sec.status().generations.current;
    // The primary's side keeps waiting degradeAfterMs (its writes are held, not acknowledged alone).
    expect(pair.a.peerGone('the peer died (test)')).toBe(0);
    expect(pri.status().replication).toBe('in-sync');
    expect(pair.b.peerGone('the peer died (test)')).toBe(1);
    await sec.promote();
    expect(sec.role).toBe('primary');
    // Promoted alone: a new generation, so the old primary's copy is recognised as behind when it returns.
    expect(sec.status().generations.current).not.toEqual(before);
    await sec.store.writev(2 * MiB, [pattern(77, 64 * KiB)]);
    expect(sec.status().replication).toBe('degraded');
    expect(fileBytes(secPath).subarray(2 * MiB, 2 * MiB + 64 * KiB).equals(pattern(77, 64 * KiB))).toBe(true);
  });
});

describe('split brain', () => {
  it('is detected when both sides wrote while apart, overwrites nothing, and is resolved manually by discarding the victim', async () => {
    pair = await nodePair();
    const { pri, sec, priPath, secPath } = await connectedVolume(pair);
    await randomWrites(pri, 30, 8);
    pair.partition();
    await pri.store.writev(1 * MiB, [pattern(100, 128 * KiB)]);
    await waitReplication(sec, 'connecting');
    await sec.promote();
    await sec.store.writev(1 * MiB + 64 * KiB, [pattern(200, 128 * KiB)]);
    await sec.store.writev(5 * MiB, [pattern(201, 64 * KiB)]);
    const priBefore = fileBytes(priPath);
    const secBefore = fileBytes(secPath);
    pair.heal();
    await waitReplication(pri, 'split-brain');
    await waitReplication(sec, 'split-brain');
    expect(pri.status().lastError).toMatch(/split brain/);
    await sleep(200);
    expect(fileBytes(priPath).equals(priBefore)).toBe(true);
    expect(fileBytes(secPath).equals(secBefore)).toBe(true);
    // The primary goes on writing, alone.
    await pri.store.writev(6 * MiB, [pattern(101, 64 * KiB)]);
    expect(pri.status().replication).toBe('split-brain');

    await expect(sec.resolveSplitBrain({ discardLocalData: true })).rejects.toMatchObject({ code: 'EINVAL' });
    await sec.demote();
    await sec.resolveSplitBrain({ discardLocalData: true });
    await waitReplication(sec, 'in-sync', 15_000);
    await waitReplication(pri, 'in-sync');
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
    expect(fileBytes(secPath).subarray(5 * MiB, 5 * MiB + 64 * KiB).equals(pattern(201, 64 * KiB))).toBe(false);
    expect(fileBytes(secPath).subarray(1 * MiB, 1 * MiB + 128 * KiB).equals(pattern(100, 128 * KiB))).toBe(true);
    await expect(pri.resolveSplitBrain({ discardLocalData: false })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('initial sync and verify', () => {
  it('fully syncs a newly created secondary from a primary that wrote before it existed, with writes going on', async () => {
    pair = await nodePair({ tunables: { resyncMaxBytesPerSec: 16 * MiB, resyncMinBytesPerSec: 4 * MiB } });
    const priSpec = spec(tmp, 'new', 'primary', { thin: false });
    const pri = await pair.a.openVolume(priSpec);
    await randomWrites(pri, 40, 9);
    const secSpec = spec(tmp, 'new', 'secondary', { thin: false });
    const sec = await pair.b.openVolume(secSpec);
    const seen = recordResync(pri);
    await waitReplication(pri, 'resyncing');
    expect(sec.status().consistent).toBe(false);
    await randomWrites(pri, 100, 10, 4);
    await waitReplication(pri, 'in-sync', 15_000);
    await waitReplication(sec, 'in-sync');
    expect(sec.status().consistent).toBe(true);
    expect(seen[seen.length - 1]!.resync!.mode).toBe('full');
    expect(seen[seen.length - 1]!.resync!.bytesTotal).toBe(VOLUME_SIZE);
    expect(fileBytes(secSpec.backingPath).equals(fileBytes(priSpec.backingPath))).toBe(true);
    // A newly created secondary cannot be promoted before its sync is done; afterwards it is consistent.
    expect(sec.status().generations.current).toBe(pri.status().generations.current);
  });

  it('keeps a thin target thin: holes of the source go as unmaps', async () => {
    pair = await nodePair();
    const priSpec = spec(tmp, 'thin', 'primary');
    const pri = await pair.a.openVolume(priSpec);
    await pri.store.writev(1 * MiB, [pattern(5, 256 * KiB)]);
    const secSpec = spec(tmp, 'thin', 'secondary');
    const sec = await pair.b.openVolume(secSpec);
    await waitReplication(sec, 'in-sync');
    await waitReplication(pri, 'in-sync');
    expect(fileBytes(secSpec.backingPath).equals(fileBytes(priSpec.backingPath))).toBe(true);
    expect(statSync(secSpec.backingPath).blocks * 512).toBeLessThan(2 * MiB);
  });

  it('verify finds a planted difference and resyncs it on request', async () => {
    pair = await nodePair();
    const { pri, sec, priPath, secPath } = await connectedVolume(pair);
    await randomWrites(pri, 60, 12);
    const fd = openSync(secPath, 'r+');
    writeSync(fd, Buffer.alloc(512, 0xee), 0, 512, 7 * REGION + 1000);
    closeSync(fd);
    const report = await pri.verify();
    expect(report.regionsChecked).toBe(VOLUME_SIZE / REGION);
    expect(report.differing).toEqual([{ offset: 7 * REGION, length: REGION }]);
    expect(report.resynced).toBe(false);
    const crc = await sec.verify({ algorithm: 'crc32c' });
    expect(crc.differing).toEqual([{ offset: 7 * REGION, length: REGION }]);

    const repair = await pri.verify({ resyncDifferences: true });
    expect(repair.resynced).toBe(true);
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
    const again = await pri.verify();
    expect(again.differing).toEqual([]);
    expect(pri.status().replication).toBe('in-sync');
  });
});
