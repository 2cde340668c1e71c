/**
 * The connected write path (src/mirror/volume/write-path.ts, replica.ts):
 * two MirrorNodes over two loopback links, volumes on temp files.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BlockIoError } from '../../../../src/block';
import { MirroredVolume } from '../../../../src/mirror';
import { KiB, MiB, Pair, fileBytes, nodePair, pattern, randomWrites, sleep, spec, tempDir, waitFor, waitReplication } from './helpers';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let pair: Pair | null = null;
afterEach(async () => {
  await pair?.close();
  pair = null;
});

/** Volume `id`: primary on A, secondary on B, in sync. */
async function connectedVolume(p: Pair, id = 'vol-1'): Promise<{ pri: MirroredVolume; sec: MirroredVolume; priPath: string; secPath: string }> {
  const priSpec = spec(tmp, id, 'primary');
  const secSpec = spec(tmp, id, 'secondary');
  const pri = await p.a.openVolume(priSpec);
  const sec = await p.b.openVolume(secSpec);
  await waitReplication(pri, 'in-sync');
  await waitReplication(sec, 'in-sync');
  return { pri, sec, priPath: priSpec.backingPath, secPath: secSpec.backingPath };
}

describe('connected replication', () => {
  it('replicates a write and acknowledges it only once the secondary completed it', async () => {
    pair = await nodePair();
    const { pri, priPath, secPath } = await connectedVolume(pair);
    const secStore = pair.storesB.get('vol-1')!;
    secStore.holdWrites = true;
    const data = pattern(1, 64 * KiB);
    let acked = false;
    const write = pri.store.writev(128 * KiB, [data]).then(() => void (acked = true));
    await waitFor(() => secStore.heldCount === 1, 5_000, 'the write held on the secondary');
    await sleep(100);
    expect(acked).toBe(false);
    expect(fileBytes(priPath).subarray(128 * KiB, 192 * KiB).equals(data)).toBe(true);
    secStore.holdWrites = false;
    secStore.release();
    await write;
    expect(acked).toBe(true);
    expect(fileBytes(secPath).subarray(128 * KiB, 192 * KiB).equals(data)).toBe(true);
    expect(pri.status().replication).toBe('in-sync');
    expect(pri.status().dirtyBytes).toBe(0);
  });

  it('replicates writeZeroes, discard and flush; FUA writes and large writes', async () => {
    pair = await nodePair();
    const { pri, priPath, secPath } = await connectedVolume(pair);
    await pri.store.writev(0, [pattern(2, 1 * MiB)]);
    await pri.store.writeZeroes(64 * KiB, 64 * KiB);
    await pri.store.discard(256 * KiB, 128 * KiB);
    const big = pattern(3, 6 * MiB);
    await pri.store.writev(1 * MiB, [big.subarray(0, 3 * MiB), big.subarray(3 * MiB)], { fua: true });
    await pri.store.flush();
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
    const sec = fileBytes(secPath);
    expect(sec.subarray(64 * KiB, 128 * KiB).every((b) => b === 0)).toBe(true);
    expect(sec.subarray(256 * KiB, 384 * KiB).every((b) => b === 0)).toBe(true);
    expect(sec.subarray(1 * MiB, 7 * MiB).equals(big)).toBe(true);
  });

  it('overlapping concurrent writes end identical on both replicas', async () => {
    pair = await nodePair();
    const { pri, priPath, secPath } = await connectedVolume(pair);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 400; i++) {
      // Heavily overlapping: offsets within 256 KiB, lengths 4..64 KiB.
      const offset = ((i * 37) % 60) * 4 * KiB;
      const len = (1 + ((i * 13) % 16)) * 4 * KiB;
      writes.push(pri.store.writev(offset, [pattern(1000 + i, len)]));
    }
    await Promise.all(writes);
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
  });

  it('the secondary store refuses writes and keeps flushes local; a primary refuses replicated writes', async () => {
    pair = await nodePair();
    const { pri, sec } = await connectedVolume(pair);
    await expect(sec.store.writev(0, [Buffer.alloc(4096)])).rejects.toMatchObject({ code: 'EROFS' });
    await expect(sec.store.writev(0, [Buffer.alloc(4096)])).rejects.toBeInstanceOf(BlockIoError);
    // Reads and flushes through a secondary's store are local and leave replication alone.
    await sec.store.flush();
    expect((await sec.store.read(0, 4096)).length).toBe(4096);
    expect(sec.status().replication).toBe('in-sync');
    expect(pri.status().replication).toBe('in-sync');
    // What a peer would send as a replicated write to the volume this node is primary for.
    await expect(pri.inbound.write({ volumeId: 'vol-1', offset: 0, length: 4096, fua: false }, [Buffer.alloc(4096)])).rejects.toMatchObject({ code: 'EROFS' });
  });

  it('loses no write and reports no error when one link drops mid-flight', async () => {
    pair = await nodePair();
    const { pri, priPath, secPath } = await connectedVolume(pair);
    const p = pair;
    const writing = randomWrites(pri, 600, 7);
    await sleep(30);
    p.proxies[0]!.cut();
    await sleep(30);
    p.proxies[1]!.cut();
    await writing;
    await pri.store.flush();
    expect(pri.status().replication).toBe('in-sync');
    expect(pri.status().dirtyBytes).toBe(0);
    expect(fileBytes(secPath).equals(fileBytes(priPath))).toBe(true);
  });

  it('replicates both ways at once: A primary for one volume, B for the other', async () => {
    pair = await nodePair();
    const s1a = spec(tmp, 'one', 'primary');
    const s1b = spec(tmp, 'one', 'secondary');
    const s2a = spec(tmp, 'two', 'secondary');
    const s2b = spec(tmp, 'two', 'primary');
    const [one, two] = await Promise.all([pair.a.openVolume(s1a), pair.b.openVolume(s2b)]);
    const [oneSec, twoSec] = await Promise.all([pair.b.openVolume(s1b), pair.a.openVolume(s2a)]);
    for (const v of [one, two, oneSec, twoSec]) await waitReplication(v, 'in-sync');
    await Promise.all([randomWrites(one, 300, 1), randomWrites(two, 300, 2)]);
    expect(fileBytes(s1b.backingPath).equals(fileBytes(s1a.backingPath))).toBe(true);
    expect(fileBytes(s2a.backingPath).equals(fileBytes(s2b.backingPath))).toBe(true);
    expect(fileBytes(s1a.backingPath).equals(fileBytes(s2b.backingPath))).toBe(false);
  });

  it('replicates SCSI state snapshots, newest per kind, and resends them after reconnecting', async () => {
    pair = await nodePair();
    const { pri, sec } = await connectedVolume(pair);
    const seen: [string, string][] = [];
    sec.onScsiState((kind, json) => seen.push([kind, json.toString()]));
    await pri.replicateScsiState('pr', Buffer.from('{"gen":1}'));
    await pri.replicateScsiState('pr', Buffer.from('{"gen":2}'));
    expect(seen).toEqual([
      ['pr', '{"gen":1}'],
      ['pr', '{"gen":2}'],
    ]);
    pair.partition();
    await waitReplication(pri, 'connecting');
    await pri.replicateScsiState('pr', Buffer.from('{"gen":3}'));
    pair.heal();
    await waitFor(() => seen.length === 3, 10_000, 'the snapshot sent again after the handshake');
    expect(seen[2]).toEqual(['pr', '{"gen":3}']);
  });
});
