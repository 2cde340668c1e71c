/**
 * Helpers of the mirror engine tests: two MirrorNodes in this process over
 * loopback, each link passing through a TCP proxy the test can cut (drop the
 * connection) or block (drop it and refuse new ones: a partition); temp
 * files; a BackingStore wrapper that can hold writes back; polling waits with
 * deadlines.
 *
 * Node A only listens, node B only dials (through the proxies), so blocking
 * every proxy partitions the two completely.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { AllocationExtent, BackingStore, FileBackingStore, WriteOptions } from '../../../../src/block';
import { MirrorNode, MirrorStatus, MirrorTunables, MirroredVolume, ReplicationState, VolumeSpec } from '../../../../src/mirror';
import { VolumeMetadata, metadataPath } from '../../../../src/mirror/meta';

export const testLog = pino({ level: process.env['TWINSAN_TEST_LOG'] ?? 'silent' });

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const REGION = 64 * KiB;
export const VOLUME_SIZE = 8 * MiB;

/** Short timers for tests, with room for a loaded two-core CI machine. */
export const FAST: Partial<MirrorTunables> = {
  heartbeatMs: 50,
  deadMs: 1_500,
  handshakeTimeoutMs: 1_500,
  reconnectMinMs: 20,
  reconnectMaxMs: 100,
  unavailableAfterMs: 2_000,
  degradeAfterMs: 500,
  volumeRetryMs: 150,
  lazyFlushMs: 100,
  durableReleaseMs: 20,
  statusIntervalMs: 100,
  resyncMaxBytesPerSec: 1024 * MiB,
  resyncMinBytesPerSec: 64 * MiB,
};

export function tempDir(): { dir: string; file(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'twinsan-mirror-'));
  let n = 0;
  return {
    dir,
    file: (name) => path.join(dir, `${n++}-${name}`),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A TCP relay from a local port to a target that the test can cut or block. */
export class LinkProxy {
  private target: number | null = null;
  private blocked = false;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {
    server.on('connection', (client) => this.relay(client));
  }

  static async start(): Promise<LinkProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new LinkProxy(server);
  }

  get address(): string {
    const a = this.server.address() as net.AddressInfo;
    return `127.0.0.1:${a.port}`;
  }

  setTarget(hostPort: string): void {
    this.target = Number(hostPort.split(':').pop());
  }

  /** Drops the current connections (the node redials). */
  cut(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Drops the connections and refuses new ones until unblock(). */
  block(): void {
    this.blocked = true;
    this.cut();
  }

  unblock(): void {
    this.blocked = false;
  }

  async close(): Promise<void> {
    this.block();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private relay(client: net.Socket): void {
    if (this.blocked || this.target === null) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: this.target });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** Wraps a store; `holdWrites` makes writev wait for `release()`. */
export class GatedStore implements BackingStore {
  holdWrites = false;
  /** When set, writes fail with it (after being counted). */
  failWrites: Error | null = null;
  private held: (() => void)[] = [];
  writes = 0;

  constructor(readonly inner: BackingStore) {}

  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  get thin(): boolean {
    return this.inner.thin;
  }
  get description(): string {
    return `gated:${this.inner.description}`;
  }
  get heldCount(): number {
    return this.held.length;
  }
  release(): void {
    const h = this.held;
    this.held = [];
    for (const f of h) f();
  }
  read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length);
  }
  readv(offset: number, buffers: readonly Buffer[]): Promise<void> {
    return this.inner.readv(offset, buffers);
  }
  async writev(offset: number, buffers: readonly Buffer[], options?: WriteOptions): Promise<void> {
    this.writes++;
    if (this.holdWrites) await new Promise<void>((r) => this.held.push(r));
    if (this.failWrites) throw this.failWrites;
    return this.inner.writev(offset, buffers, options);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  discard(offset: number, length: number): Promise<void> {
    return this.inner.discard(offset, length);
  }
  writeZeroes(offset: number, length: number): Promise<void> {
    return this.inner.writeZeroes(offset, length);
  }
  allocationStatus(offset: number, maxLength: number): Promise<AllocationExtent> {
    return this.inner.allocationStatus(offset, maxLength);
  }
  resize(n: number): Promise<void> {
    return this.inner.resize(n);
  }
  close(): Promise<void> {
    this.release();
    return this.inner.close();
  }
}

export interface Pair {
  a: MirrorNode;
  b: MirrorNode;
  readonly proxies: LinkProxy[];
  /** Stores opened per node, by volume id (to hold writes back). */
  readonly storesA: Map<string, GatedStore>;
  readonly storesB: Map<string, GatedStore>;
  partition(): void;
  heal(): void;
  /** Replaces node `which` by a new one (after the test closed or abandoned the old one). */
  restart(which: 'a' | 'b'): Promise<MirrorNode>;
  close(): Promise<void>;
}

function gatedOpener(stores: Map<string, GatedStore>): (spec: VolumeSpec) => Promise<BackingStore> {
  return async (spec) => {
    const inner = await FileBackingStore.open(spec.backingPath, { create: spec.create ?? false, sizeBytes: spec.sizeBytes, thin: spec.thin });
    const g = new GatedStore(inner);
    stores.set(spec.volumeId, g);
    return g;
  };
}

/** node-a (listens) and node-b (dials through one proxy per link), started. */
export async function nodePair(
  opts: { links?: number; tunables?: Partial<MirrorTunables>; startB?: boolean; maxProtocolVersion?: { a?: number; b?: number } } = {},
): Promise<Pair> {
  const links = opts.links ?? 2;
  const tunables = { ...FAST, ...opts.tunables };
  const proxies = await Promise.all(Array.from({ length: links }, () => LinkProxy.start()));
  const storesA = new Map<string, GatedStore>();
  const storesB = new Map<string, GatedStore>();
  const makeA = (): MirrorNode =>
    new MirrorNode({
      nodeId: 'node-a',
      peerNodeId: 'node-b',
      clusterId: 'test',
      secret: 'secret',
      links: proxies.map(() => ({ local: '127.0.0.1:0' })),
      log: testLog,
      tunables,
      openStore: gatedOpener(storesA),
      ...(opts.maxProtocolVersion?.a !== undefined ? { maxProtocolVersion: opts.maxProtocolVersion.a } : {}),
    });
  const makeB = (): MirrorNode =>
    new MirrorNode({
      nodeId: 'node-b',
      peerNodeId: 'node-a',
      clusterId: 'test',
      secret: 'secret',
      links: proxies.map((p) => ({ peer: p.address })),
      log: testLog,
      tunables,
      openStore: gatedOpener(storesB),
      ...(opts.maxProtocolVersion?.b !== undefined ? { maxProtocolVersion: opts.maxProtocolVersion.b } : {}),
    });
  const startA = async (node: MirrorNode): Promise<void> => {
    await node.start();
    node.listenAddresses.forEach((addr, i) => proxies[i]!.setTarget(addr!));
  };
  const a = makeA();
  await startA(a);
  const b = makeB();
  if (opts.startB ?? true) await b.start();
  const pair: Pair = {
    a,
    b,
    proxies,
    storesA,
    storesB,
    partition: () => proxies.forEach((p) => p.block()),
    heal: () => proxies.forEach((p) => p.unblock()),
    restart: async (which) => {
      if (which === 'a') {
        pair.a = makeA();
        await startA(pair.a);
        return pair.a;
      }
      pair.b = makeB();
      await pair.b.start();
      return pair.b;
    },
    close: async () => {
      await Promise.allSettled([pair.a.close(), pair.b.close()]);
      await Promise.allSettled(proxies.map((p) => p.close()));
    },
  };
  return pair;
}

export function spec(dir: ReturnType<typeof tempDir>, volumeId: string, role: 'primary' | 'secondary', over: Partial<VolumeSpec> = {}): VolumeSpec {
  return { volumeId, backingPath: dir.file(`${volumeId}-${role}.img`), sizeBytes: VOLUME_SIZE, thin: true, role, create: true, regionSize: REGION, ...over };
}

/** Polls `cond` every few milliseconds; rejects naming `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function waitReplication(v: MirroredVolume, state: ReplicationState, timeoutMs = 10_000): Promise<void> {
  return waitFor(() => v.status().replication === state, timeoutMs, () => `${v.volumeId} ${state} (is ${JSON.stringify(brief(v.status()))})`);
}

export function brief(s: MirrorStatus): object {
  return { role: s.role, replication: s.replication, peerRole: s.peerRole, dirtyBytes: s.dirtyBytes, consistent: s.consistent, lastDecision: s.lastDecision, lastError: s.lastError };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A block whose bytes name `tag` (repeated). */
export function pattern(tag: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4) b.writeUInt32LE((tag * 2654435761 + i) >>> 0, i);
  return b;
}

/** The bytes of a backing file as they are now (page cache included). */
export function fileBytes(p: string): Buffer {
  return readFileSync(p);
}

/** Copies a backing file and its metadata, as a crash would leave them (process killed: page cache kept). */
export function crashCopy(backingPath: string, to: string): void {
  copyFileSync(backingPath, to);
  copyFileSync(metadataPath(backingPath), metadataPath(to));
}

/** Opens a copy of a volume's metadata as it is on disk now. */
export async function metadataOnDisk(backingPath: string, copyTo: string, volumeId: string, sizeBytes = VOLUME_SIZE): Promise<VolumeMetadata> {
  copyFileSync(metadataPath(backingPath), metadataPath(copyTo));
  return VolumeMetadata.open(copyTo, { volumeId, sizeBytes });
}

/** Random writes of whole 4 KiB blocks through a volume's store; resolves with how many were done. */
export async function randomWrites(v: MirroredVolume, count: number, seed: number, parallel = 8, afterEach?: () => void): Promise<number> {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  const blocks = VOLUME_SIZE / 4096;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (done < count) {
      done++;
      const block = rand() % blocks;
      const n = 1 + (rand() % 8);
      const len = Math.min(n, blocks - block) * 4096;
      await v.store.writev(block * 4096, [pattern(rand(), len)]);
      afterEach?.();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return done;
}
