/** VolumeMetadata on real files: durability, group commit, crash and corruption handling, resize. */
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EMPTY_GENERATION, Generations, newGenerationId, onPeerLost, onPromote } from '../../../../src/mirror/generations';
import {
  MetadataBusyError,
  MetadataClosedError,
  MetadataCorruptError,
  MetadataFailedError,
  MetadataMismatchError,
  MetadataNotFoundError,
  metadataPath,
  VolumeMetadata,
  VolumeMetadataOptions,
} from '../../../../src/mirror/meta';
import { AL_OFFSET, layoutFor, SUPERBLOCK_SLOT_SIZE } from '../../../../src/mirror/meta/format';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const R = 64 * KiB;
const SIZE = 1 * GiB; // 16 Ki regions, 2 KiB of bitmap

const dir = mkdtempSync(path.join(os.tmpdir(), 'twinsan-meta-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const backing = (name: string): string => path.join(dir, `${n++}-${name}.img`);

const opened: VolumeMetadata[] = [];
async function open(backingPath: string, options: Partial<VolumeMetadataOptions> = {}): Promise<VolumeMetadata> {
  const meta = await VolumeMetadata.open(backingPath, { volumeId: 'vol-1', sizeBytes: SIZE, create: true, ...options });
  opened.push(meta);
  return meta;
}
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((m) => m.close()));
});

/** What a crash leaves: the file as it is on disk now, under another name (the original stays open). */
function crashCopy(meta: VolumeMetadata): string {
  const copy = backing('crash');
  copyFileSync(meta.path, metadataPath(copy));
  return copy;
}

function scribble(file: string, offset: number, length: number, byte = 0x5a): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(length, byte), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

function superblockSequence(file: string, slot: number): bigint {
  return readFileSync(file).readBigUInt64LE(slot * SUPERBLOCK_SLOT_SIZE + 16);
}

describe('creating and opening', () => {
  it('creates <backing>.twinsan-meta: empty generation, not consistent, clean bitmap', async () => {
    const b = backing('new');
    const meta = await open(b);
    expect(meta.path).toBe(`${b}.twinsan-meta`);
    expect(meta.generations).toEqual({ current: EMPTY_GENERATION, bitmap: null, history: [] });
    expect(meta.flags).toEqual({ consistent: false, primary: false, clean: false, primaryCrashed: false });
    expect(meta.wasCleanShutdown).toBe(true);
    expect(meta.bitmap.regionCount).toBe(SIZE / R);
    expect(meta.bitmap.dirtyRegions()).toBe(0);
    expect(meta.activityLog.hotExtents()).toEqual([]);
    expect(statSync(meta.path).size).toBe(layoutFor(SIZE, R, 1024).fileSize);
    expect(existsSync(b)).toBe(false); // the backing file is not touched
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('refuses a missing file without create, and a file of another volume, size or region size', async () => {
    const b = backing('checks');
    await expect(VolumeMetadata.open(b, { volumeId: 'v', sizeBytes: SIZE })).rejects.toBeInstanceOf(MetadataNotFoundError);
    await (await open(b)).close();
    await expect(open(b, { volumeId: 'other' })).rejects.toBeInstanceOf(MetadataMismatchError);
    await expect(open(b, { sizeBytes: 2 * SIZE })).rejects.toThrow(/resize/);
    await expect(open(b, { regionSize: 128 * KiB })).rejects.toBeInstanceOf(MetadataMismatchError);
    await expect(open(b, { regionSize: 3000 })).rejects.toThrow(/outside/);
    const again = await open(b, { create: false });
    expect(again.regionSize).toBe(R);
  });

  it('keeps the creation-time tunables', async () => {
    const b = backing('tunables');
    const meta = await open(b, { regionSize: 1 * MiB, alExtentSize: 1 * MiB, alExtents: 7 });
    expect(meta.activityLog.capacity).toBe(7);
    await meta.close();
    const again = await open(b, { alExtents: 100 });
    expect(again.regionSize).toBe(1 * MiB);
    expect(again.activityLog.capacity).toBe(7);
    expect(again.activityLog.extentSize).toBe(1 * MiB);
  });
});

describe('durable state', () => {
  it('generations, flags and bitmap survive close and reopen', async () => {
    const b = backing('state');
    const meta = await open(b);
    const g1 = onPromote(meta.generations, false);
    await meta.setGenerations(g1);
    await meta.setFlags({ consistent: true, primary: true });
    const g2 = onPeerLost(g1);
    await meta.setGenerations(g2);
    await meta.bitmap.mark(5 * R, 3 * R);
    expect(meta.generations).toEqual(g2);
    await meta.close();
    const again = await open(b);
    expect(again.wasCleanShutdown).toBe(true);
    expect(again.generations).toEqual(g2);
    expect(again.flags).toMatchObject({ consistent: true, primary: true, primaryCrashed: false });
    expect(again.bitmap.dirtyRegions()).toBe(3);
    expect(again.bitmap.findNextDirty(0)).toBe(5);
  });

  it('refuses malformed generations and the clean flag', async () => {
    const meta = await open(backing('bad'));
    await expect(meta.setGenerations({ current: 'nope', bitmap: null, history: [] })).rejects.toThrow(TypeError);
    await expect(meta.setFlags({ clean: true } as never)).rejects.toThrow(TypeError);
  });

  it('after close every call fails with MetadataClosedError', async () => {
    const meta = await open(backing('closed'));
    await meta.close();
    await meta.close(); // idempotent
    await expect(meta.bitmap.mark(0, 1)).rejects.toBeInstanceOf(MetadataClosedError);
    await expect(meta.setFlags({ primary: true })).rejects.toBeInstanceOf(MetadataClosedError);
    await expect(meta.activityLog.beginWrite(0, 1)).rejects.toBeInstanceOf(MetadataClosedError);
  });
});

describe('group commit', () => {
  it('N concurrent marks cost at most two fdatasyncs and write only the changed words', async () => {
    const meta = await open(backing('group'));
    const before = meta.stats;
    await Promise.all(Array.from({ length: 64 }, (_, i) => meta.bitmap.markRegions(i * 256)));
    const after = meta.stats;
    expect(after.syncs - before.syncs).toBeLessThanOrEqual(2);
    expect(after.bytesWritten - before.bytesWritten).toBeLessThanOrEqual(64 * 8 + 4096);
    expect(meta.bitmap.dirtyRegions()).toBe(64);
  });

  it('marks of durable bits, and writes to hot extents, touch the disk not at all', async () => {
    const meta = await open(backing('hot'));
    await meta.bitmap.mark(0, 10 * R);
    await meta.activityLog.beginWrite(0, 4096);
    meta.activityLog.endWrite(0, 4096);
    const before = meta.stats;
    for (let i = 0; i < 100; i++) {
      await meta.bitmap.mark(R, R);
      await meta.activityLog.beginWrite(i * 4096, 4096);
      meta.activityLog.endWrite(i * 4096, 4096);
    }
    expect(meta.stats).toEqual(before);
  });

  it('activations, marks and a generation change share a commit', async () => {
    const meta = await open(backing('share'));
    const before = meta.stats;
    await Promise.all([
      meta.activityLog.beginWrite(100 * MiB, 4096),
      meta.bitmap.mark(100 * MiB, 4096),
      meta.setGenerations(onPromote(meta.generations, true)),
    ]);
    expect(meta.stats.syncs - before.syncs).toBe(1);
    expect(meta.stats.commits - before.commits).toBe(1);
    meta.activityLog.endWrite(100 * MiB, 4096);
  });
});

describe('crashes', () => {
  it('reopening after an unclean shutdown folds the hot extents into the bitmap and flags a crashed primary', async () => {
    const meta = await open(backing('crash-al'));
    await meta.setFlags({ primary: true, consistent: true });
    await meta.activityLog.beginWrite(9 * 4 * MiB + 100, 4096); // extent 9
    await meta.activityLog.beginWrite(2 * 4 * MiB, 2 * 4 * MiB); // extents 2, 3
    meta.activityLog.endWrite(2 * 4 * MiB, 2 * 4 * MiB); // finished, but still hot
    const copy = crashCopy(meta);

    const after = await open(copy);
    expect(after.wasCleanShutdown).toBe(false);
    expect(after.recoveredExtents).toEqual([2, 3, 9]);
    expect(after.activityLog.hotExtents()).toEqual([2, 3, 9]);
    expect(after.flags).toMatchObject({ primaryCrashed: true, primary: true, clean: false });
    const regionsPerExtent = (4 * MiB) / R;
    expect(after.bitmap.dirtyRegions()).toBe(3 * regionsPerExtent);
    expect(after.bitmap.findNextDirty(0)).toBe(2 * regionsPerExtent);
    expect(after.bitmap.isDirty(9 * regionsPerExtent)).toBe(true);

    // The fold is durable: a second crash right away still knows.
    const twice = await open(crashCopy(after));
    expect(twice.bitmap.dirtyRegions()).toBe(3 * regionsPerExtent);
    expect(twice.flags.primaryCrashed).toBe(true);
    meta.activityLog.endWrite(9 * 4 * MiB + 100, 4096);
  });

  it('a secondary that crashes is not a crashed primary', async () => {
    const meta = await open(backing('crash-secondary'));
    const after = await open(crashCopy(meta));
    expect(after.wasCleanShutdown).toBe(false);
    expect(after.flags.primaryCrashed).toBe(false);
  });

  it('a torn newest superblock falls back to the previous one', async () => {
    const meta = await open(backing('torn-sb'));
    const g1 = onPromote(meta.generations, true);
    await meta.setGenerations(g1);
    const g2 = { ...g1, current: newGenerationId(), history: [g1.current] } satisfies Generations;
    await meta.setGenerations(g2);
    const copy = metadataPath(crashCopy(meta));
    const s0 = superblockSequence(copy, 0);
    const s1 = superblockSequence(copy, 1);
    const newestSlot = s0 > s1 ? 0 : 1;
    scribble(copy, newestSlot * SUPERBLOCK_SLOT_SIZE + 100, 50); // torn in the middle

    const after = await open(copy);
    expect(after.generations).toEqual(g1);
    expect(after.warnings.join()).toMatch(new RegExp(`superblock slot ${newestSlot} unusable \\(checksum`));
  });

  it('a superblock copied into the other slot is not trusted', async () => {
    const meta = await open(backing('misplaced'));
    await meta.setFlags({ consistent: true });
    const copy = metadataPath(crashCopy(meta));
    const bytes = readFileSync(copy);
    const newestSlot = superblockSequence(copy, 0) > superblockSequence(copy, 1) ? 0 : 1;
    const other = 1 - newestSlot;
    scribble(copy, newestSlot * SUPERBLOCK_SLOT_SIZE, 512); // lost...
    const fd = openSync(copy, 'r+');
    writeSync(fd, bytes, newestSlot * SUPERBLOCK_SLOT_SIZE, 512, other * SUPERBLOCK_SLOT_SIZE); // ...and misplaced
    closeSync(fd);
    await expect(open(copy)).rejects.toThrow(/does not belong in copy/);
  });

  it('both superblocks damaged: a clear error, never a fresh start', async () => {
    const meta = await open(backing('torn-both'));
    const copy = metadataPath(crashCopy(meta));
    scribble(copy, 40, 8);
    scribble(copy, SUPERBLOCK_SLOT_SIZE + 40, 8);
    await expect(open(copy)).rejects.toThrow(MetadataCorruptError);
    await expect(open(copy)).rejects.toThrow(/no valid superblock \(slot 0: checksum mismatch.*slot 1: checksum mismatch/);
  });

  it('a file that is not metadata, or is truncated, is refused', async () => {
    const foreign = backing('foreign');
    writeFileSync(metadataPath(foreign), Buffer.alloc(40000, 0x41));
    await expect(open(foreign)).rejects.toThrow(/bad magic/);

    const meta = await open(backing('short'));
    await meta.close();
    truncateSync(meta.path, AL_OFFSET + 100);
    await expect(open(meta.path)).rejects.toThrow(/truncated/);
    truncateSync(meta.path, 1000);
    await expect(open(meta.path)).rejects.toThrow(/too short/);
  });

  it('a torn newest activity-log copy falls back to the previous hot set', async () => {
    const meta = await open(backing('torn-al'));
    await meta.activityLog.beginWrite(0, 1); // extent 0: log sequence 2
    await meta.activityLog.beginWrite(5 * 4 * MiB, 1); // extent 5: log sequence 3, copy 1
    const copy = metadataPath(crashCopy(meta));
    const alCopy = 8192; // 24 + 4 * 1024 bytes, rounded up
    scribble(copy, AL_OFFSET + alCopy + 10, 4); // copy 1
    const after = await open(copy);
    // The write to extent 5 had not been issued when its activation was torn.
    expect(after.recoveredExtents).toEqual([0]);
    expect(after.warnings.join()).toMatch(/activity-log copy 1 unusable/);
    meta.activityLog.endWrite(0, 1);
    meta.activityLog.endWrite(5 * 4 * MiB, 1);
  });

  it('both activity-log copies damaged after an unclean shutdown: refused', async () => {
    const meta = await open(backing('torn-al-both'));
    await meta.activityLog.beginWrite(0, 1);
    const copy = metadataPath(crashCopy(meta));
    scribble(copy, AL_OFFSET + 10, 4);
    scribble(copy, AL_OFFSET + 8192 + 10, 4);
    await expect(open(copy)).rejects.toThrow(/activity log unreadable after an unclean shutdown/);
    meta.activityLog.endWrite(0, 1);
  });

  it('after a clean shutdown a damaged bitmap is detected by its checksum', async () => {
    const meta = await open(backing('bitmap-crc'));
    await meta.bitmap.mark(0, R);
    await meta.close();
    const { bitmapOffset } = layoutFor(SIZE, R, 1024);
    scribble(meta.path, bitmapOffset + 7, 1, 0x80);
    await expect(open(meta.path)).rejects.toThrow(/bitmap checksum mismatch/);
  });

  it('lazy clears are not durable until flushed; after a crash the bits come back', async () => {
    const meta = await open(backing('lazy'));
    await meta.bitmap.mark(0, 4 * R);
    meta.bitmap.clear(0, 2);
    expect((await open(crashCopy(meta))).bitmap.dirtyRegions()).toBe(4);
    await meta.bitmap.flushLazy();
    expect((await open(crashCopy(meta))).bitmap.dirtyRegions()).toBe(2);
  });

  it('a failed write fails the metadata for good', async () => {
    const meta = await open(backing('eio'));
    // Pull the file out from under it: every later write fails with EBADF.
    await (meta as unknown as { file: { close(): Promise<void> } }).file.close();
    await expect(meta.bitmap.mark(0, 1)).rejects.toBeInstanceOf(MetadataFailedError);
    await expect(meta.bitmap.mark(5 * R, 1)).rejects.toBeInstanceOf(MetadataFailedError);
    await expect(meta.setFlags({ primary: true })).rejects.toBeInstanceOf(MetadataFailedError);
    await expect(meta.activityLog.beginWrite(0, 1)).rejects.toBeInstanceOf(MetadataFailedError);
    await meta.close().catch(() => undefined);
  });
});

describe('clean shutdown', () => {
  it('markClean needs the activity log idle; a later change withdraws the clean flag first', async () => {
    const b = backing('clean');
    const meta = await open(b);
    await meta.activityLog.beginWrite(0, 1);
    await expect(meta.markClean()).rejects.toBeInstanceOf(MetadataBusyError);
    meta.activityLog.endWrite(0, 1);
    await meta.markClean();
    expect(meta.flags.clean).toBe(true);
    expect(meta.activityLog.hotExtents()).toEqual([]);
    expect((await open(crashCopy(meta))).wasCleanShutdown).toBe(true);

    await meta.bitmap.mark(3 * R, 1);
    expect(meta.flags.clean).toBe(false);
    const crashed = await open(crashCopy(meta));
    expect(crashed.wasCleanShutdown).toBe(false);
    expect(crashed.bitmap.isDirty(3)).toBe(true);
  });

  it('close with writes in flight leaves the metadata unclean', async () => {
    const b = backing('close-busy');
    const meta = await VolumeMetadata.open(b, { volumeId: 'vol-1', sizeBytes: SIZE, create: true });
    await meta.activityLog.beginWrite(8 * MiB, 1);
    await meta.close();
    const again = await open(b);
    expect(again.wasCleanShutdown).toBe(false);
    expect(again.recoveredExtents).toEqual([2]);
  });
});

describe('resize', () => {
  it('grows and shrinks the bitmap durably', async () => {
    const b = backing('resize');
    const meta = await open(b);
    await meta.bitmap.mark(SIZE - R, R);
    await meta.resize(2 * SIZE, { dirtyNewRegions: true });
    expect(meta.sizeBytes).toBe(2 * SIZE);
    expect(meta.bitmap.regionCount).toBe((2 * SIZE) / R);
    expect(meta.bitmap.dirtyRegions()).toBe(1 + SIZE / R);
    expect(statSync(meta.path).size).toBe(layoutFor(2 * SIZE, R, 1024).fileSize);
    const crashed = await open(crashCopy(meta), { sizeBytes: 2 * SIZE });
    expect(crashed.bitmap.dirtyRegions()).toBe(1 + SIZE / R);

    await meta.resize(SIZE / 2);
    expect(meta.bitmap.dirtyRegions()).toBe(0);
    await meta.bitmap.mark(0, R);
    await meta.resize(SIZE); // regrown regions are clean: no stale bits come back
    expect(meta.bitmap.dirtyRegions()).toBe(1);
    await meta.close();
    const again = await open(b);
    expect(again.sizeBytes).toBe(SIZE);
    expect(again.bitmap.dirtyRegions()).toBe(1);
    await expect(again.resize(2 ** 50)).rejects.toThrow(/larger regionSize/);
  });
});
