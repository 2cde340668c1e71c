/**
 * A volume's mirror metadata: generations, flags, dirty bitmap and activity
 * log in `<backing>.twinsan-meta` beside the backing file (which holds the
 * volume's data only). See format.ts for the layout.
 *
 * Every update is durable (written and fdatasync'd) before its promise
 * resolves. Updates made while a commit runs share the next one: one commit
 * writes the changed bitmap words, the activity log and the superblock, then
 * fdatasyncs once.
 *
 * Crash safety:
 * - superblock and activity log alternate between two copies, the newest
 *   valid copy wins on load, so a torn write falls back to the previous
 *   durable state (which is all anyone was told about);
 * - the clean flag (with a CRC of the whole bitmap) is written only after the
 *   bitmap and the emptied activity log are durable, and withdrawn durably
 *   before the next bitmap or log write;
 * - opening after an unclean shutdown folds the activity log's hot extents
 *   into the bitmap and, if the replica was primary, sets primaryCrashed,
 *   durably, before open() resolves;
 * - a file with no valid superblock, an unreadable activity log after an
 *   unclean shutdown, a bitmap failing its CRC after a clean one, or a
 *   truncated file is refused with MetadataCorruptError, never taken as clean.
 *
 * Memory: the whole bitmap (ceil(regions / 8) bytes, at most 64 MiB; 32 MiB
 * for 16 TiB at 64 KiB regions) plus the hot-extent table.
 */
import { promises as fs } from 'node:fs';
import { Generations, generationsProblem, initialGenerations } from '../generations';
import { ActivityLog } from './activity-log';
import { BitmapWrite, CommitHooks, DirtyBitmap } from './bitmap';
import {
  AL_OFFSET,
  decodeAlRecord,
  decodeSuperblock,
  Decoded,
  encodeAlRecord,
  encodeSuperblock,
  Layout,
  layoutFor,
  MAX_VOLUME_ID_BYTES,
  META_FLAGS,
  MetaFlag,
  newest,
  Superblock,
  SUPERBLOCK_SLOT_SIZE,
} from './format';
import {
  MetadataBusyError,
  MetadataClosedError,
  MetadataConfigError,
  MetadataCorruptError,
  MetadataFailedError,
  MetadataMismatchError,
  MetadataNotFoundError,
} from './errors';
import { GroupCommit } from './group-commit';
import { MetaFile } from './meta-file';
import { extentCount, tunable } from './tunables';

export const META_SUFFIX = '.twinsan-meta';

/** The metadata file of a backing file: `<backing>.twinsan-meta` (a path that already ends so is kept). */
export function metadataPath(backingPath: string): string {
  return backingPath.endsWith(META_SUFFIX) ? backingPath : `${backingPath}${META_SUFFIX}`;
}

export interface VolumeMetadataOptions {
  /** Identifies the volume; an existing file must carry the same id (at most 128 UTF-8 bytes). */
  readonly volumeId: string;
  /** The volume size; an existing file must record the same (change it with resize()). */
  readonly sizeBytes: number;
  /** Bytes per bitmap bit (META_TUNABLES.regionSize). At creation; an existing file must match if given. */
  readonly regionSize?: number;
  /** Create the file when it does not exist. */
  readonly create?: boolean;
  /** At creation only (META_TUNABLES.alExtentSize); later opens use the recorded value. */
  readonly alExtentSize?: number;
  /** At creation only (META_TUNABLES.alExtents); later opens use the recorded value. */
  readonly alExtents?: number;
}

export type MetaFlags = { readonly [K in MetaFlag]: boolean };
/** Flags the caller sets; `clean` belongs to markClean/close. */
export type SettableFlag = Exclude<MetaFlag, 'clean'>;

export interface MetaStats {
  /** Commits that wrote something. */
  readonly commits: number;
  /** pwritev calls on the metadata file. */
  readonly writes: number;
  /** fdatasync calls on the metadata file. */
  readonly syncs: number;
  readonly bytesWritten: number;
  readonly alActivations: number;
  readonly alEvictions: number;
}

/** The superblock fields that change. */
interface Wanted {
  sizeBytes: number;
  flags: number;
  generations: Generations;
}

interface Loaded {
  readonly sb: Superblock;
  readonly hot: readonly number[];
  readonly bitmap: Buffer;
  readonly warnings: readonly string[];
}

export class VolumeMetadata {
  readonly bitmap: DirtyBitmap;
  readonly activityLog: ActivityLog;
  /** The previous close was clean (nothing was in flight). */
  readonly wasCleanShutdown: boolean;
  /** After an unclean shutdown: the activity log's hot extents, already folded into the bitmap. */
  readonly recoveredExtents: readonly number[];
  /** What loading had to work around (a damaged superblock or log copy), for the log. */
  readonly warnings: readonly string[];
  readonly volumeId: string;
  readonly regionSize: number;

  private durableSb: Superblock;
  private readonly wanted: Wanted;
  private sbDirty = false;
  private alSequence: number;
  private layout: Layout;
  private readonly committer: GroupCommit;
  private commits = 0;
  private closing: Promise<void> | null = null;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly file: MetaFile,
    loaded: Loaded,
    alSequence: number,
  ) {
    const { sb } = loaded;
    this.durableSb = sb;
    this.layout = sb.layout;
    this.volumeId = sb.volumeId;
    this.regionSize = sb.regionSize;
    this.alSequence = alSequence;
    this.warnings = loaded.warnings;
    this.wanted = { sizeBytes: sb.sizeBytes, flags: sb.flags, generations: sb.generations };
    this.wasCleanShutdown = (sb.flags & META_FLAGS.clean) !== 0;
    this.recoveredExtents = this.wasCleanShutdown ? [] : loaded.hot;
    this.committer = new GroupCommit(
      () => this.commitOnce(),
      (err) => new MetadataFailedError(`${path}: metadata write failed, reopen required: ${String(err)}`, err),
    );
    const hooks: CommitHooks = {
      request: () => this.committer.request(),
      current: () => this.committer.current(),
      check: () => this.check(),
    };
    this.bitmap = new DirtyBitmap(sb.sizeBytes, sb.regionSize, hooks, loaded.bitmap);
    this.activityLog = new ActivityLog(sb.alExtentSize, sb.alExtents, sb.sizeBytes, hooks, this.recoveredExtents);
  }

  /**
   * Opens (or with `create`, creates) the metadata of the volume whose
   * backing file is `backingPath`. Resolves once the metadata is marked in
   * use and, after an unclean shutdown, the activity log is folded into the
   * bitmap, durably.
   */
  static async open(backingPath: string, options: VolumeMetadataOptions): Promise<VolumeMetadata> {
    const filePath = metadataPath(backingPath);
    checkOptions(options);
    if (!(await exists(filePath))) {
      if (!options.create) throw new MetadataNotFoundError(`${filePath}: no metadata file (open with create to make one)`);
      await MetaFile.create(filePath, initialImage(options)).catch((err: unknown) => {
        if ((err as { code?: unknown }).code !== 'EEXIST') throw err; // created meanwhile: open that one
      });
    }
    const file = await MetaFile.open(filePath);
    try {
      const loaded = await load(filePath, file);
      checkMatches(filePath, loaded.sb, options);
      const meta = new VolumeMetadata(filePath, file, loaded, loaded.alSequence);
      await meta.start();
      return meta;
    } catch (err) {
      await file.close().catch(() => undefined);
      throw err;
    }
  }

  /** The volume size as last stored. */
  get sizeBytes(): number {
    return this.durableSb.sizeBytes;
  }

  /** The generations as last stored durably. */
  get generations(): Generations {
    return this.durableSb.generations;
  }

  /** The flags as last stored durably. */
  get flags(): MetaFlags {
    const f = this.durableSb.flags;
    return {
      consistent: (f & META_FLAGS.consistent) !== 0,
      primary: (f & META_FLAGS.primary) !== 0,
      clean: (f & META_FLAGS.clean) !== 0,
      primaryCrashed: (f & META_FLAGS.primaryCrashed) !== 0,
    };
  }

  get stats(): MetaStats {
    const io = this.file.stats;
    const al = this.activityLog.stats;
    return { commits: this.commits, ...io, alActivations: al.activations, alEvictions: al.evictions };
  }

  /** Stores new generations; resolves when durable. */
  setGenerations(g: Generations): Promise<void> {
    const problem = generationsProblem(g);
    if (problem) return Promise.reject(new TypeError(`malformed generations: ${problem}`));
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    this.wanted.generations = { current: g.current, bitmap: g.bitmap, history: [...g.history] };
    this.sbDirty = true;
    return this.committer.request();
  }

  /** Sets or clears flags (not `clean`); resolves when durable. */
  setFlags(changes: { readonly [K in SettableFlag]?: boolean }): Promise<void> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    for (const [name, on] of Object.entries(changes) as [string, boolean | undefined][]) {
      if (on === undefined) continue;
      if (name === 'clean' || !(name in META_FLAGS)) return Promise.reject(new TypeError(`flag ${name} cannot be set`));
      const bit = META_FLAGS[name as SettableFlag];
      this.wanted.flags = on ? this.wanted.flags | bit : this.wanted.flags & ~bit;
    }
    this.sbDirty = true;
    return this.committer.request();
  }

  /**
   * Records a clean state: lazily cleared bits and the emptied activity log
   * are made durable, then the clean flag with the bitmap's CRC. Needs the
   * activity log idle (MetadataBusyError otherwise). Any later bitmap or log
   * update withdraws the flag first. close() calls this.
   */
  markClean(): Promise<void> {
    return this.committer.exclusive(async () => {
      this.check();
      if (this.activityLog.inflightWrites() > 0) {
        throw new MetadataBusyError(`${this.path}: ${this.activityLog.inflightWrites()} writes in flight`);
      }
      this.activityLog.clearIdle();
      const bitmapWrites = this.bitmap.takeWrites(true);
      const crc = this.bitmap.checksum();
      const al = this.activityLog.takeChange();
      await this.io(() => this.writeBatch(bitmapWrites, al, null));
      this.wanted.flags |= META_FLAGS.clean;
      this.sbDirty = false;
      await this.io(async () => {
        const sb = await this.writeSuperblock(this.snapshot(crc));
        await this.file.sync();
        this.durableSb = sb;
      });
    });
  }

  /**
   * Changes the volume size. New regions are clean unless `dirtyNewRegions`
   * (use that when the new space may differ between the replicas).
   */
  resize(newSizeBytes: number, options: { readonly dirtyNewRegions?: boolean } = {}): Promise<void> {
    return this.committer.exclusive(async () => {
      this.check();
      const layout = layoutFor(newSizeBytes, this.regionSize, this.durableSb.alExtents);
      extentCount(newSizeBytes, this.durableSb.alExtentSize);
      await this.withdrawClean();
      const growing = layout.fileSize > this.file.sizeBytes;
      const from = this.bitmap.resizeTo(newSizeBytes, options.dirtyNewRegions ?? false);
      this.activityLog.resizeTo(newSizeBytes);
      this.wanted.sizeBytes = newSizeBytes;
      this.layout = layout;
      this.sbDirty = false;
      await this.io(async () => {
        // Growing: new bitmap bytes first (their content explicitly: a crash in
        // an earlier resize may have left old bytes there), then the superblock.
        // Shrinking: the superblock first; bits past the end are ignored on load.
        if (growing) await this.file.resize(layout.fileSize);
        const tail = this.bitmap.bytesFrom(from);
        if (tail.length > 0) await this.file.write(layout.bitmapOffset + from, tail);
        if (tail.length > 0) await this.file.sync();
        const sb = await this.writeSuperblock(this.snapshot(this.durableSb.bitmapCrc));
        await this.file.sync();
        this.durableSb = sb;
        if (layout.fileSize < this.file.sizeBytes) await this.file.resize(layout.fileSize);
      });
    });
  }

  /**
   * Waits for pending commits, marks the metadata clean when no write is in
   * flight (otherwise it stays unclean and the next open recovers the
   * activity log), and closes the file. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  // --- Internals ----------------------------------------------------------

  private async closeOnce(): Promise<void> {
    let error: unknown = null;
    if (this.committer.failed === null) {
      try {
        await this.committer.idle();
        if (this.activityLog.inflightWrites() === 0) await this.markClean();
      } catch (err) {
        error = err;
      }
    }
    this.closed = true;
    await this.file.close().catch((err: unknown) => {
      error ??= err;
    });
    if (error) throw error;
  }

  private check(): void {
    if (this.closed) throw new MetadataClosedError(`${this.path}: metadata is closed`);
    if (this.committer.failed !== null) throw this.committer.failed;
  }

  /** Marks the metadata in use, folding the activity log into the bitmap after an unclean shutdown. */
  private async start(): Promise<void> {
    const marks: Promise<void>[] = [];
    for (const e of this.recoveredExtents) {
      const { offset, length } = this.activityLog.extentRange(e);
      if (length > 0) marks.push(this.bitmap.mark(offset, length));
    }
    let flags = this.wanted.flags & ~META_FLAGS.clean;
    if (!this.wasCleanShutdown && (flags & META_FLAGS.primary) !== 0) flags |= META_FLAGS.primaryCrashed;
    this.wanted.flags = flags;
    this.sbDirty = true;
    await Promise.all([...marks, this.committer.request()]);
  }

  private snapshot(bitmapCrc: number): Superblock {
    return {
      ...this.durableSb,
      sizeBytes: this.wanted.sizeBytes,
      flags: this.wanted.flags,
      generations: this.wanted.generations,
      layout: this.layout,
      bitmapCrc,
    };
  }

  /** One group commit: whatever the bitmap, activity log and superblock have pending. */
  private async commitOnce(): Promise<void> {
    const bitmapWrites = this.bitmap.takeWrites(false);
    const al = this.activityLog.takeChange();
    const sb = this.sbDirty ? this.snapshot(this.durableSb.bitmapCrc) : null;
    this.sbDirty = false;
    await this.writeBatch(bitmapWrites, al, sb);
  }

  /** Writes bitmap words, log and superblock, then fdatasyncs once (twice when the clean flag must go first). */
  private async writeBatch(bitmapWrites: readonly BitmapWrite[], al: readonly number[] | null, sb: Superblock | null): Promise<void> {
    const touchesData = bitmapWrites.length > 0 || al !== null;
    if (!touchesData && !sb) {
      this.bitmap.settleWrites();
      return;
    }
    this.commits++;
    if (touchesData && (this.durableSb.flags & META_FLAGS.clean) !== 0) {
      await this.withdrawClean();
      if (sb) sb = { ...sb, flags: sb.flags & ~META_FLAGS.clean };
    }
    const writes: Promise<unknown>[] = [];
    if (sb) writes.push(this.writeSuperblock(sb));
    if (al) writes.push(this.writeActivityLog(al));
    for (const w of bitmapWrites) writes.push(this.file.write(this.layout.bitmapOffset + w.offset, w.bytes));
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    await this.file.sync();
    this.bitmap.settleWrites();
    if (sb) this.durableSb = (results[0] as PromiseFulfilledResult<Superblock>).value;
  }

  /** Durably removes the clean flag, if set, before the bitmap or log changes on disk. */
  private async withdrawClean(): Promise<void> {
    if ((this.durableSb.flags & META_FLAGS.clean) === 0) return;
    this.wanted.flags &= ~META_FLAGS.clean;
    await this.io(async () => {
      const sb = await this.writeSuperblock({ ...this.durableSb, flags: this.durableSb.flags & ~META_FLAGS.clean });
      await this.file.sync();
      this.durableSb = sb;
    });
  }

  /** Writes the next superblock copy (not yet synced); returns what was written. */
  private async writeSuperblock(state: Superblock): Promise<Superblock> {
    const sb = { ...state, sequence: this.durableSb.sequence + 1 };
    await this.file.write((sb.sequence % 2) * SUPERBLOCK_SLOT_SIZE, encodeSuperblock(sb));
    return sb;
  }

  private async writeActivityLog(extents: readonly number[]): Promise<void> {
    const sequence = this.alSequence + 1;
    const copy = encodeAlRecord({ sequence, extentSize: this.durableSb.alExtentSize, extents }, this.layout.alCopySize);
    await this.file.write(this.layout.alOffset + (sequence % 2) * this.layout.alCopySize, copy);
    this.alSequence = sequence;
  }

  /** Runs file I/O outside a group commit: a failure is sticky, as in one. */
  private async io(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      throw this.committer.fail(err);
    }
  }
}

// --- Opening ----------------------------------------------------------------

async function exists(filePath: string): Promise<boolean> {
  try {
    await fs.stat(filePath);
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return false;
    throw err;
  }
}

function checkOptions(options: VolumeMetadataOptions): void {
  const idBytes = Buffer.byteLength(options.volumeId ?? '', 'utf8');
  if (idBytes === 0 || idBytes > MAX_VOLUME_ID_BYTES) {
    throw new MetadataConfigError(`volume id must be 1..${MAX_VOLUME_ID_BYTES} UTF-8 bytes (got ${idBytes})`);
  }
  if (!Number.isSafeInteger(options.sizeBytes) || options.sizeBytes < 0) {
    throw new MetadataConfigError(`volume size ${options.sizeBytes} is not a byte count`);
  }
  if (options.regionSize !== undefined) tunable('regionSize', options.regionSize);
  tunable('alExtentSize', options.alExtentSize);
  tunable('alExtents', options.alExtents);
}

/** A new file: both superblock copies, both (empty) log copies, a clear bitmap. Not consistent, EMPTY generation. */
function initialImage(options: VolumeMetadataOptions): { fileSize: number; writes: { offset: number; bytes: Buffer }[] } {
  const regionSize = tunable('regionSize', options.regionSize);
  const alExtentSize = tunable('alExtentSize', options.alExtentSize);
  const alExtents = tunable('alExtents', options.alExtents);
  const layout = layoutFor(options.sizeBytes, regionSize, alExtents);
  extentCount(options.sizeBytes, alExtentSize);
  const sb: Superblock = {
    sequence: 0,
    volumeId: options.volumeId,
    sizeBytes: options.sizeBytes,
    regionSize,
    alExtentSize,
    alExtents,
    flags: META_FLAGS.clean,
    layout,
    bitmapCrc: new DirtyBitmap(options.sizeBytes, regionSize, null).checksum(),
    generations: initialGenerations(),
  };
  const writes = [0, 1].flatMap((n) => [
    { offset: n * SUPERBLOCK_SLOT_SIZE, bytes: encodeSuperblock({ ...sb, sequence: n }) },
    { offset: layout.alOffset + n * layout.alCopySize, bytes: encodeAlRecord({ sequence: n, extentSize: alExtentSize, extents: [] }, layout.alCopySize) },
  ]);
  return { fileSize: layout.fileSize, writes };
}

async function load(filePath: string, file: MetaFile): Promise<Loaded & { alSequence: number }> {
  const corrupt = (why: string): MetadataCorruptError => new MetadataCorruptError(`${filePath}: ${why}`);
  if (file.sizeBytes < AL_OFFSET) throw corrupt(`${file.sizeBytes} bytes: too short for a metadata file`);
  const warnings: string[] = [];

  const head = await file.read(0, AL_OFFSET);
  const slots = [0, 1].map((n) => inSlot(n, decodeSuperblock(head.subarray(n * SUPERBLOCK_SLOT_SIZE, (n + 1) * SUPERBLOCK_SLOT_SIZE))));
  const sb = newest(slots);
  if (!sb) {
    const why = slots.map((s, n) => `slot ${n}: ${s.ok ? 'ok' : s.reason}`).join(', ');
    throw corrupt(`no valid superblock (${why})`);
  }
  slots.forEach((s, n) => {
    if (!s.ok) warnings.push(`superblock slot ${n} unusable (${s.reason}); using sequence ${sb.sequence}`);
  });
  const { layout } = sb;
  if (file.sizeBytes < layout.bitmapOffset + layout.bitmapBytes) {
    throw corrupt(`truncated: ${file.sizeBytes} bytes, the bitmap ends at ${layout.bitmapOffset + layout.bitmapBytes}`);
  }
  const clean = (sb.flags & META_FLAGS.clean) !== 0;

  const alBytes = await file.read(layout.alOffset, 2 * layout.alCopySize);
  const copies = [0, 1].map((n) =>
    inSlot(n, decodeAlRecord(alBytes.subarray(n * layout.alCopySize, (n + 1) * layout.alCopySize), sb.alExtents, sb.alExtentSize)),
  );
  const al = newest(copies);
  if (!al && !clean) {
    const why = copies.map((c, n) => `copy ${n}: ${c.ok ? 'ok' : c.reason}`).join(', ');
    throw corrupt(`activity log unreadable after an unclean shutdown, so the regions written at the crash are unknown (${why})`);
  }
  copies.forEach((c, n) => {
    if (!c.ok && al) warnings.push(`activity-log copy ${n} unusable (${c.reason}); using sequence ${al.sequence}`);
  });
  const extents = Math.ceil(sb.sizeBytes / sb.alExtentSize);
  const hot = clean || !al ? [] : [...new Set(al.extents)].filter((e) => e < extents).sort((a, b) => a - b);

  const bitmap = layout.bitmapBytes > 0 ? await file.read(layout.bitmapOffset, layout.bitmapBytes) : Buffer.alloc(0);
  if (clean) {
    const check = new DirtyBitmap(sb.sizeBytes, sb.regionSize, null, bitmap).checksum();
    if (check !== sb.bitmapCrc) throw corrupt('bitmap checksum mismatch after a clean shutdown (damaged bitmap)');
  }
  return { sb, hot, bitmap, warnings, alSequence: al?.sequence ?? 0 };
}

/** Record number n lives in copy n % 2; a valid record in the other copy is misplaced. */
function inSlot<T extends { readonly sequence: number }>(slot: number, d: Decoded<T>): Decoded<T> {
  if (d.ok && d.value.sequence % 2 !== slot) return { ok: false, reason: `sequence ${d.value.sequence} does not belong in copy ${slot}` };
  return d;
}

function checkMatches(filePath: string, sb: Superblock, options: VolumeMetadataOptions): void {
  if (sb.volumeId !== options.volumeId) {
    throw new MetadataMismatchError(`${filePath}: belongs to volume ${JSON.stringify(sb.volumeId)}, not ${JSON.stringify(options.volumeId)}`);
  }
  if (sb.sizeBytes !== options.sizeBytes) {
    throw new MetadataMismatchError(`${filePath}: records ${sb.sizeBytes} bytes, not ${options.sizeBytes} (resize() changes it)`);
  }
  if (options.regionSize !== undefined && sb.regionSize !== options.regionSize) {
    throw new MetadataMismatchError(`${filePath}: region size is ${sb.regionSize}, not ${options.regionSize}`);
  }
}
