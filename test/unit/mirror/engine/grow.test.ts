/**
 * Online grow of a mirrored volume: each node grows its replica, the
 * secondary first; writes past the old end replicate once both have grown.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KiB, MiB, Pair, VOLUME_SIZE, fileBytes, nodePair, pattern, spec, tempDir, waitReplication } from './helpers';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let pair: Pair | null = null;
afterEach(async () => {
  await pair?.close();
  pair = null;
});

describe('MirroredVolume.grow', () => {
  it('grows both replicas online, secondary first, and replicates writes past the old end', async () => {
    pair = await nodePair();
    const priSpec = spec(tmp, 'grow-1', 'primary');
    const secSpec = spec(tmp, 'grow-1', 'secondary');
    const pri = await pair.a.openVolume(priSpec);
    const sec = await pair.b.openVolume(secSpec);
    await waitReplication(pri, 'in-sync');
    const bigger = VOLUME_SIZE + 4 * MiB;
    await sec.grow(bigger);
    expect(sec.store.sizeBytes).toBe(bigger);
    expect(pri.store.sizeBytes).toBe(VOLUME_SIZE);
    await pri.grow(bigger);
    expect(pri.store.sizeBytes).toBe(bigger);
    const data = pattern(9, 64 * KiB);
    await pri.store.writev(VOLUME_SIZE + 1 * MiB, [data]);
    expect(pri.status().replication).toBe('in-sync');
    expect(fileBytes(secSpec.backingPath).subarray(VOLUME_SIZE + 1 * MiB, VOLUME_SIZE + 1 * MiB + 64 * KiB).equals(data)).toBe(true);
    await expect(pri.grow(VOLUME_SIZE)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('a replica grown while the other is away handshakes again once the other has grown', async () => {
    pair = await nodePair();
    const priSpec = spec(tmp, 'grow-2', 'primary');
    const secSpec = spec(tmp, 'grow-2', 'secondary');
    const pri = await pair.a.openVolume(priSpec);
    await pri.grow(VOLUME_SIZE + 1 * MiB);
    const sec = await pair.b.openVolume(secSpec);
    await sec.grow(VOLUME_SIZE + 1 * MiB);
    await waitReplication(pri, 'in-sync');
    await waitReplication(sec, 'in-sync');
    expect(fileBytes(secSpec.backingPath).length).toBe(VOLUME_SIZE + 1 * MiB);
  });
});
