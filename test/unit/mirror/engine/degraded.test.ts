/**
 * Degraded mode and the resync after it: all links cut, writes go on after
 * degradeAfterMs with their regions durably dirty, reconnecting resyncs only
 * the dirty regions while foreground writes go on.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BlockIoError } from '../../../../src/block';
import { MirroredVolume, MirrorStatus } from '../../../../src/mirror';
import {
  FAST,
  KiB,
  Pair,
  REGION,
  VOLUME_SIZE,
  fileBytes,
  metadataOnDisk,
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

describe('degraded mode', () => {
  it('with every link cut, a write completes after degradeAfterMs with its regions durably dirty and a new generation', async () => {
    pair = await nodePair();
    const { pri, priPath } = await connectedVolume(pair);
    const before = pri.status().generations;
    pair.partition();
    const started = Date.now();
    await pri.store.writev(3 * REGION + 4 * KiB, [pattern(9, 8 * KiB)]);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(FAST.degradeAfterMs! - 50);
    // What the disk says right after the acknowledgement.
    const onDisk = await metadataOnDisk(priPath, tmp.file('copy.img'), 'vol');
    try {
      // (Opening the copy folds its activity log in too: the whole hot 4 MiB extent reads dirty.)
      expect(onDisk.bitmap.isDirty(3)).toBe(true);
      expect(onDisk.generations.current).not.toBe(before.current);
      expect(onDisk.generations.bitmap).toBe(before.current);
    } finally {
      await onDisk.close();
    }
    expect(pri.status().replication).toBe('degraded');
    expect(pri.status().dirtyBytes).toBe(REGION);
    // Later writes do not wait for the peer at all.
    const t2 = Date.now();
    await pri.store.writev(10 * REGION, [pattern(10, 4 * KiB)]);
    expect(Date.now() - t2).toBeLessThan(FAST.degradeAfterMs!);
    // onPeerLost ran once for this disconnection.
    expect(pri.status().generations.current).toBe(onDisk.generations.current);
    expect(pri.status().dirtyBytes).toBe(2 * REGION);
  });

  it('marks a write whose outcome on the peer is unknown (sent, no answer, links lost) dirty before acknowledging it', async () => {
    pair = await nodePair();
    const { pri, priPath } = await connectedVolume(pair);
    const secStore = pair.storesB.get('vol')!;
    secStore.holdWrites = true;
    const write = pri.store.writev(5 * REGION, [pattern(5, 4 * KiB)]);
    await waitFor(() => secStore.heldCount === 1, 5_000, 'the write on the secondary');
    pair.partition();
    await write;
    const onDisk = await metadataOnDisk(priPath, tmp.file('copy.img'), 'vol');
    try {
      expect(onDisk.bitmap.isDirty(5)).toBe(true);
    } finally {
      await onDisk.close();
    }
    secStore.holdWrites = false;
    secStore.release();
  });

  it('a write the peer fails is acknowledged once its region is durably dirty, and the volume degrades', async () => {
    pair = await nodePair();
    const { pri } = await connectedVolume(pair);
    const secStore = pair.storesB.get('vol')!;
    secStore.failWrites = new BlockIoError('EIO', 'injected: the secondary cannot write');
    await pri.store.writev(6 * REGION, [pattern(6, 4 * KiB)]);
    // Marked in the bitmap before the acknowledgement (the activity log alone would not say it differs).
    expect(pri.status().dirtyBytes).toBe(REGION);
    expect(pri.status().replication).not.toBe('in-sync');
    // The data is on the primary all the same.
    expect((await pri.store.read(6 * REGION, 4 * KiB)).equals(pattern(6, 4 * KiB))).toBe(true);
    secStore.failWrites = null;
  });

  it('a write that fails locally after the peer took it is failed to the caller, its region dirty, and replication stops', async () => {
    pair = await nodePair();
    const { pri } = await connectedVolume(pair);
    const priStore = pair.storesA.get('vol')!;
    const secStore = pair.storesB.get('vol')!;
    const secWrites = secStore.writes;
    priStore.failWrites = new BlockIoError('EIO', 'injected: the primary cannot write');
    await expect(pri.store.writev(7 * REGION, [pattern(7, 4 * KiB)])).rejects.toMatchObject({ code: 'EIO' });
    expect(secStore.writes).toBe(secWrites + 1);
    expect(pri.status().dirtyBytes).toBe(REGION);
    expect(pri.status().replication).not.toBe('in-sync');
    priStore.failWrites = null;
  });

  it('after reconnecting, resyncs only the dirty regions while foreground writes go on, and ends in sync with identical data', async () => {
    pair = await nodePair({ tunables: { resyncMaxBytesPerSec: 4 * 1024 * 1024, resyncMinBytesPerSec: 1024 * 1024, resyncChunkBytes: 64 * KiB } });
    const { pri, sec, priPath, secPath } = await connectedVolume(pair);
    pair.partition();
    await randomWrites(pri, 20, 11);
    expect(pri.status().replication).toBe('degraded');
    const dirty = pri.status().dirtyBytes;
    expect(dirty).toBeGreaterThan(0);
    expect(dirty).toBeLessThan(VOLUME_SIZE / 2);

    const statuses: MirrorStatus[] = [];
    pri.on('status', (s) => statuses.push(s));
    const secWritesBefore = pair.storesB.get('vol')!.writes;
    pair.heal();
    await waitReplication(pri, 'resyncing');
    // Foreground writes while the resync runs.
    let duringResync = 0;
    const foreground = randomWrites(pri, 300, 12, 4, () => {
      if (pri.status().replication === 'resyncing') duringResync++;
    });
    await waitReplication(pri, 'in-sync', 20_000);
    await foreground;
    expect(duringResync).toBeGreaterThan(0);
    await waitReplication(sec, 'in-sync');
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
    expect(pri.status().dirtyBytes).toBe(0);
    expect(sec.status().dirtyBytes).toBe(0);
    expect(sec.status().generations.current).toBe(pri.status().generations.current);
    expect(pri.status().generations.bitmap).toBeNull();

    const progress = statuses.filter((s) => s.resync).map((s) => s.resync!);
    expect(progress.length).toBeGreaterThan(0);
    const last = progress[progress.length - 1]!;
    expect(last.direction).toBe('to-peer');
    expect(last.mode).toBe('bitmap');
    // Only the dirty regions were copied (the union; the secondary had none).
    expect(last.bytesTotal).toBe(dirty);
    // Writes the secondary received: resync chunks plus foreground writes, nothing like a full copy.
    const secWrites = pair.storesB.get('vol')!.writes - secWritesBefore;
    expect(secWrites).toBeLessThanOrEqual(dirty / (64 * KiB) + 300 + 10);
  });

  it('a resync interrupted by another partition resumes from both bitmaps and ends identical', async () => {
    pair = await nodePair({ tunables: { resyncMaxBytesPerSec: 2 * 1024 * 1024, resyncMinBytesPerSec: 1024 * 1024, resyncChunkBytes: 64 * KiB, resyncWindow: 1 } });
    const { pri, sec, priPath, secPath } = await connectedVolume(pair);
    pair.partition();
    await randomWrites(pri, 30, 31);
    const dirty = pri.status().dirtyBytes;
    pair.heal();
    await waitReplication(pri, 'resyncing');
    await waitFor(() => (pri.status().resync?.bytesDone ?? 0) > 0, 10_000, 'some progress');
    pair.partition();
    await randomWrites(pri, 20, 32);
    await waitReplication(pri, 'degraded');
    expect(sec.status().consistent).toBe(false);
    // Copied regions were cleared on the source, new writes marked: less than before plus the new ones.
    expect(pri.status().dirtyBytes).toBeLessThan(dirty + 20 * 64 * KiB);
    pair.heal();
    await waitReplication(pri, 'in-sync', 30_000);
    await waitReplication(sec, 'in-sync');
    expect(sec.status().consistent).toBe(true);
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
  });

  it('a write in flight when the links drop and come back within degradeAfterMs is replicated, not degraded', async () => {
    pair = await nodePair();
    const { pri, priPath, secPath } = await connectedVolume(pair);
    const writing = randomWrites(pri, 200, 21, 4);
    await sleep(20);
    pair.partition();
    await sleep(100);
    pair.heal();
    await writing;
    expect(pri.status().replication).toBe('in-sync');
    expect(pri.status().dirtyBytes).toBe(0);
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
  });
});
