/**
 * The receiving side of replication: a secondary applies the primary's
 * writes, zeroes, unmaps and flushes to its own replica, and a resync target
 * applies resync data.
 *
 * Replicated writes are bracketed by this node's own activity log, and
 * answered when the local write completed (FUA writes: when durable, being
 * written FUA here too). A replicated Flush is answered after this node's
 * fdatasync. A non-FUA write's extent stays hot until the data is durable
 * (completion.ts), so a crash of this node leaves every write it may have
 * lost inside its activity log, hence in its dirty bitmap on the next open.
 *
 * No interval lock is needed here: the primary never has two overlapping
 * requests in flight (write-path.ts), and the channel applies each request
 * exactly once.
 *
 * Resync data is written FUA and only then is this replica's own bit for
 * the region cleared (lazily): a bit never disappears before its region is
 * durable.
 */
import { BackingStore, BlockIoError } from '../../block';
import { Complete, ResyncData, Unmap, Write, WriteZeroes } from '../protocol';
import { MirrorError } from '../errors';
import { VolumeMetadata } from '../meta';
import { WriteCompletion } from './completion';

export interface ReplicaHost {
  readonly volumeId: string;
  readonly local: BackingStore;
  readonly meta: VolumeMetadata;
  readonly completion: WriteCompletion;
  /** While a handshake this node started is settling: the peer may replicate before we saw its answer. */
  settling(): Promise<void> | null;
  /** Throws MirrorError unless replicated writes are taken now (a connected secondary). */
  checkReplicating(): void;
  /** Throws MirrorError unless this replica is the target of a running resync; returns a progress counter. */
  checkResyncTarget(): { applied(bytes: number): void };
  begin(): () => void;
}

function checkRange(host: ReplicaHost, offset: number, length: number): void {
  const size = host.local.sizeBytes;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new MirrorError('EINVAL', `${host.volumeId}: range ${offset}+${length} outside 0..${size}`);
  }
}

export class Replica {
  constructor(private readonly host: ReplicaHost) {}

  write(w: Complete<Write>, payload: readonly Buffer[]): Promise<void> {
    return this.apply(w.offset, w.length, w.fua, () => this.host.local.writev(w.offset, payload, { fua: w.fua }));
  }

  writeZeroes(z: Complete<WriteZeroes>): Promise<void> {
    const local = this.host.local;
    return this.apply(z.offset, z.length, false, () => (z.unmap && local.thin ? local.discard(z.offset, z.length) : local.writeZeroes(z.offset, z.length)));
  }

  unmap(u: Complete<Unmap>): Promise<void> {
    return this.apply(u.offset, u.length, false, () => this.host.local.discard(u.offset, u.length));
  }

  async flush(): Promise<void> {
    const host = this.host;
    await this.ready();
    const end = host.begin();
    try {
      const taken = host.completion.beforeFlush();
      try {
        await host.local.flush();
      } catch (err) {
        host.completion.afterFlush(taken, false, err);
        throw err;
      }
      host.completion.afterFlush(taken, true);
    } finally {
      end();
    }
  }

  async resyncData(r: Complete<ResyncData>, payload: readonly Buffer[]): Promise<void> {
    const host = this.host;
    const target = host.checkResyncTarget();
    checkRange(host, r.offset, r.length);
    const end = host.begin();
    try {
      await host.local.writev(r.offset, payload, { fua: true });
      const bitmap = host.meta.bitmap;
      const regionSize = bitmap.regionSize;
      // Only whole regions (the last one may be short): the source sends region-aligned chunks.
      const first = Math.ceil(r.offset / regionSize);
      const endOffset = r.offset + r.length;
      const last = endOffset === bitmap.sizeBytes ? bitmap.regionCount : Math.floor(endOffset / regionSize);
      if (last > first) bitmap.clear(first, last - first);
      target.applied(r.length);
    } finally {
      end();
    }
  }

  /** Waits out a handshake of ours whose answer the peer already acted on, then checks we take replicated writes. */
  private async ready(): Promise<void> {
    const settling = this.host.settling();
    if (settling) await settling;
    this.host.checkReplicating();
  }

  /**
   * One replicated write, zeroes or unmap: bracketed by the activity log and
   * counted in flight. The common case (no handshake settling, extents
   * already hot) starts the I/O in this turn with no promise but the I/O's
   * own; the rest waits as needed (applySlow).
   */
  private apply(offset: number, length: number, fua: boolean, io: () => Promise<void>): Promise<void> {
    const host = this.host;
    if (host.settling()) return this.applySlow(offset, length, fua, io);
    let end: (() => void) | null = null;
    try {
      host.checkReplicating();
      checkRange(host, offset, length);
      if (!host.meta.activityLog.tryBeginWrite(offset, length)) return this.applySlow(offset, length, fua, io);
      end = host.begin();
      const done = end;
      let p: Promise<void>;
      try {
        p = io();
      } catch (err) {
        host.completion.complete(offset, length, fua);
        throw err;
      }
      return p.then(
        () => {
          host.completion.complete(offset, length, fua);
          done();
        },
        (err: unknown) => {
          host.completion.complete(offset, length, fua);
          done();
          throw this.ioError(err);
        },
      );
    } catch (err) {
      end?.();
      return Promise.reject(this.ioError(err));
    }
  }

  private async applySlow(offset: number, length: number, fua: boolean, io: () => Promise<void>): Promise<void> {
    const host = this.host;
    await this.ready();
    checkRange(host, offset, length);
    const end = host.begin();
    try {
      const al = host.meta.activityLog;
      await al.beginWrite(offset, length);
      try {
        await io();
      } finally {
        host.completion.complete(offset, length, fua);
      }
    } catch (err) {
      throw this.ioError(err);
    } finally {
      end();
    }
  }

  private ioError(err: unknown): unknown {
    if (err instanceof BlockIoError || err instanceof MirrorError) return err;
    return new MirrorError('EIO', `${this.host.volumeId}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
