/**
 * The metadata file's I/O: a FileBackingStore (native pwritev/preadv/
 * fdatasync, off the event loop) plus counters, and atomic creation.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FileBackingStore } from '../../block';

export interface MetaIoStats {
  /** pwritev calls. */
  readonly writes: number;
  /** fdatasync calls. */
  readonly syncs: number;
  readonly bytesWritten: number;
}

export interface FileImage {
  readonly fileSize: number;
  readonly writes: readonly { readonly offset: number; readonly bytes: Buffer }[];
}

export class MetaFile {
  private writes = 0;
  private syncs = 0;
  private bytesWritten = 0;

  private constructor(
    readonly path: string,
    private readonly store: FileBackingStore,
  ) {}

  /** Opens an existing metadata file. */
  static async open(filePath: string): Promise<MetaFile> {
    return new MetaFile(filePath, await FileBackingStore.open(filePath, { thin: false }));
  }

  /**
   * Creates `filePath` with the given content, all or nothing: the content is
   * written and synced under a temporary name, then linked into place (which
   * fails if the file appeared meanwhile) and the directory synced.
   */
  static async create(filePath: string, image: FileImage): Promise<void> {
    const temp = `${filePath}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      const store = await FileBackingStore.open(temp, { create: true, sizeBytes: image.fileSize, thin: false });
      try {
        for (const w of image.writes) await store.writev(w.offset, [w.bytes]);
        await store.flush();
      } finally {
        await store.close();
      }
      await fs.link(temp, filePath);
    } finally {
      await fs.unlink(temp).catch(() => undefined);
    }
    await syncDirectory(path.dirname(filePath));
  }

  get sizeBytes(): number {
    return this.store.sizeBytes;
  }

  get stats(): MetaIoStats {
    return { writes: this.writes, syncs: this.syncs, bytesWritten: this.bytesWritten };
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.store.read(offset, length);
  }

  async write(offset: number, bytes: Buffer): Promise<void> {
    this.writes++;
    this.bytesWritten += bytes.length;
    await this.store.writev(offset, [bytes]);
  }

  async sync(): Promise<void> {
    this.syncs++;
    await this.store.flush();
  }

  resize(sizeBytes: number): Promise<void> {
    return this.store.resize(sizeBytes);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** fsync of a directory, so a new name in it is durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
