/**
 * MirrorNode: this node's side of the mirror. One PeerChannel to the peer
 * node carries every volume, both ways: a node is primary for some volumes
 * and secondary for others at once.
 *
 * The node routes the peer's messages to volumes by volume id (a table of
 * handlers, one per body kind) and tells the volumes about the peer's
 * reachability:
 *   - channel up: volumes not connected start a handshake;
 *   - no link for degradeAfterMs (channel suspended), or the channel down:
 *     volumes leave their sessions (a primary then writes alone);
 *   - the peer restarted: volumes leave their sessions and handshake again.
 * Writes in flight when the peer goes away do not wait for any of that:
 * each gives up on the peer after degradeAfterMs on its own (write-path.ts).
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { Logger } from 'pino';
import { BackingStore, FileBackingStore } from '../block';
import { MirrorError } from './errors';
import { ChannelState, LinkAddress, LinkConfig, PeerChannel, checkAck } from './link';
import { BODY_TABLE, OUR_VERSIONS, VersionRange } from './protocol';
import { VolumeMetadata, metadataPath } from './meta';
import { MirrorTunables, resolveMirrorTunables } from './tunables';
import { MirroredVolume, VolumeNodeContext } from './volume/volume';
import { VolumeSpec } from './volume/types';

export interface MirrorNodeOptions {
  readonly nodeId: string;
  readonly peerNodeId: string;
  readonly clusterId: string;
  /** Shared secret both nodes prove they know on every link. */
  readonly secret: string | Buffer;
  /** The links to the peer, in the same order on both nodes: where this node listens and where it dials ("host:port", "[v6]:port"). */
  readonly links: readonly { readonly local?: string; readonly peer?: string }[];
  readonly log: Logger;
  readonly tunables?: Partial<MirrorTunables>;
  /** Opens a volume's backing store; FileBackingStore on spec.backingPath by default. */
  readonly openStore?: (spec: VolumeSpec) => Promise<BackingStore>;
  /**
   * The highest replication protocol version to offer (default: this release's highest). For
   * rolling-upgrade tests and for running a new release next to an old one on purpose.
   */
  readonly maxProtocolVersion?: number;
}

/** The owner's answer to a control message: the reply's data (nothing: empty). */
export type ControlHandler = (data: Buffer) => Buffer | void | Promise<Buffer | void>;

/** The first protocol version that carries control messages. */
export const CONTROL_SINCE_VERSION = BODY_TABLE.control.since;

export type MirrorNodeEvents = {
  /** The peer became reachable ('up') or unreachable ('down'). */
  peer: [state: 'up' | 'down'];
};

/** "host:port" or "[v6]:port" to a LinkAddress. */
export function parseHostPort(text: string): LinkAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new MirrorError('EINVAL', `link address ${JSON.stringify(text)} is not host:port`);
  return { host: (m[1] ?? m[2])!, port };
}

export function formatHostPort(a: LinkAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return false;
    throw err;
  }
}

function checkSpec(spec: VolumeSpec): void {
  const bad = (why: string): never => {
    throw new MirrorError('EINVAL', `volume ${JSON.stringify(spec.volumeId)}: ${why}`);
  };
  if (typeof spec.volumeId !== 'string' || spec.volumeId.length === 0) bad('empty volume id');
  if (typeof spec.backingPath !== 'string' || spec.backingPath.length === 0) bad('empty backing path');
  if (!Number.isSafeInteger(spec.sizeBytes) || spec.sizeBytes <= 0) bad(`size ${spec.sizeBytes} is not a positive byte count`);
  if (spec.role !== 'primary' && spec.role !== 'secondary') bad(`role ${String(spec.role)}`);
}

export class MirrorNode extends EventEmitter<MirrorNodeEvents> {
  readonly nodeId: string;
  readonly peerNodeId: string;
  readonly tunables: MirrorTunables;
  private readonly channel: PeerChannel;
  private readonly log: Logger;
  private readonly volumes = new Map<string, MirroredVolume>();
  private readonly opening = new Set<string>();
  private readonly ctx: VolumeNodeContext;
  private readonly openStore: (spec: VolumeSpec) => Promise<BackingStore>;
  private readonly customStore: boolean;
  /** The links have peer addresses: this node dials. */
  private readonly dials: boolean;
  private suspendTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  /** The protocol versions this node offers. */
  readonly protocolVersions: VersionRange;
  private readonly controlHandlers = new Map<string, ControlHandler>();

  constructor(o: MirrorNodeOptions) {
    super();
    this.nodeId = o.nodeId;
    this.peerNodeId = o.peerNodeId;
    this.tunables = resolveMirrorTunables(o.tunables);
    this.log = o.log.child({ component: 'mirror', node: o.nodeId });
    const links: LinkConfig[] = o.links.map((l) => ({
      ...(l.local !== undefined ? { local: parseHostPort(l.local) } : {}),
      ...(l.peer !== undefined ? { peer: parseHostPort(l.peer) } : {}),
    }));
    const dialled = links.filter((l) => l.peer !== undefined).length;
    if (dialled !== 0 && dialled !== links.length) {
      throw new MirrorError('EINVAL', 'either every link has a peer address (this node dials) or none has (the peer dials)');
    }
    this.dials = dialled > 0;
    const max = o.maxProtocolVersion ?? OUR_VERSIONS.max;
    if (!Number.isInteger(max) || max < OUR_VERSIONS.min || max > OUR_VERSIONS.max) {
      throw new MirrorError('EINVAL', `max protocol version ${String(max)} is outside the versions this release speaks (${OUR_VERSIONS.min}..${OUR_VERSIONS.max})`);
    }
    this.protocolVersions = { min: OUR_VERSIONS.min, max };
    const t = this.tunables;
    this.channel = new PeerChannel({
      nodeId: o.nodeId,
      peerNodeId: o.peerNodeId,
      clusterId: o.clusterId,
      secret: o.secret,
      links,
      log: o.log,
      heartbeatMs: t.heartbeatMs,
      deadMs: t.deadMs,
      handshakeTimeoutMs: t.handshakeTimeoutMs,
      reconnectMinMs: t.reconnectMinMs,
      reconnectMaxMs: t.reconnectMaxMs,
      unavailableAfterMs: t.unavailableAfterMs,
      requestTimeoutMs: t.requestTimeoutMs,
      maxInFlight: t.maxInFlight,
      maxInFlightBytes: t.maxInFlightBytes,
      linkHighWaterBytes: t.linkHighWaterBytes,
      replayWindow: t.replayWindow,
      versions: this.protocolVersions,
    });
    this.customStore = o.openStore !== undefined;
    this.openStore =
      o.openStore ?? ((spec) => FileBackingStore.open(spec.backingPath, { create: spec.create ?? false, sizeBytes: spec.sizeBytes, thin: spec.thin }));
    this.ctx = {
      channel: this.channel,
      tunables: this.tunables,
      log: this.log,
      localWinsTies: o.nodeId < o.peerNodeId,
      peerReachable: () => this.channel.state === ChannelState.UP,
      forget: (v) => {
        if (this.volumes.get(v.volumeId) === v) this.volumes.delete(v.volumeId);
      },
    };
    this.registerHandlers();
    this.channel.on('state', (to) => this.onChannelState(to));
    this.channel.on('peer-restart', () => {
      for (const v of this.volumes.values()) v.peerRestarted();
    });
  }

  /** 'up' while at least one link to the peer is up. */
  get peerState(): 'up' | 'down' {
    return this.channel.state === ChannelState.UP ? 'up' : 'down';
  }

  /** Monotonic ms when the peer closed every link (its process died or shut them); null otherwise (PeerChannel.peerClosedAllAt). */
  peerClosedAllAt(): number | null {
    return this.channel.peerClosedAllAt();
  }

  /** Where each link listens ("host:port"; null for a link without a local address), once started. */
  get listenAddresses(): (string | null)[] {
    const out: (string | null)[] = [];
    for (let i = 0; ; i++) {
      let link;
      try {
        link = this.channel.link(i);
      } catch {
        return out;
      }
      const a = link.localAddress;
      out.push(a ? formatHostPort(a) : null);
    }
  }

  /** The channel's counters (links, requests in flight, resends), for diagnostics. */
  channelStats(): ReturnType<PeerChannel['stats']> {
    return this.channel.stats();
  }

  /** The protocol version the links to the peer run; null while none is up. */
  get negotiatedVersion(): number | null {
    return this.channel.negotiatedVersion;
  }

  /** Control messages reach the peer: a link is up and runs a version that carries them. */
  get controlAvailable(): boolean {
    const v = this.channel.negotiatedVersion;
    return this.channel.state === ChannelState.UP && v !== null && v >= CONTROL_SINCE_VERSION;
  }

  /**
   * Sends an opaque control message to the peer's handler of `topic` and resolves with its
   * reply's data. Fails with UnsupportedByPeerError when the link runs a version without
   * control messages, with RemoteError when the peer has no handler or its handler failed,
   * and as any channel request fails (peer unavailable, timeout).
   */
  async sendControl(topic: string, data: Buffer): Promise<Buffer> {
    if (this.closing) throw new MirrorError('EBADF', 'the mirror node is closed');
    const reply = checkAck(await this.channel.request({ control: { topic, data } }));
    const env = reply.envelope;
    if (env.body !== 'control' || env.control.topic !== topic) throw new MirrorError('EPROTO', `the peer answered a ${topic} control message with ${String(env.body)}`);
    return env.control.data;
  }

  /** Registers the handler of the peer's control messages of `topic` (one per topic); returns its removal. */
  onControl(topic: string, handler: ControlHandler): () => void {
    if (this.controlHandlers.has(topic)) throw new Error(`a control handler for ${topic} is already registered`);
    this.controlHandlers.set(topic, handler);
    return () => {
      if (this.controlHandlers.get(topic) === handler) this.controlHandlers.delete(topic);
    };
  }

  /**
   * Starts listening on the links' local addresses and dialling the peer's.
   * A node whose links have no peer address only listens (the peer dials).
   */
  async start(): Promise<void> {
    await this.channel.listen();
    if (this.dials) this.channel.connect();
  }

  /**
   * Opens (with `create`, creates) a volume's replica and starts replicating
   * it as soon as the peer has it open too. A newly created primary is the
   * source of the initial full sync; a secondary must not be exported.
   */
  async openVolume(spec: VolumeSpec): Promise<MirroredVolume> {
    if (this.closing) throw new MirrorError('EBADF', 'the mirror node is closed');
    checkSpec(spec);
    const id = spec.volumeId;
    if (this.volumes.has(id) || this.opening.has(id)) throw new MirrorError('EEXIST', `volume ${id} is already open`);
    this.opening.add(id);
    try {
      const metaExisted = await exists(metadataPath(spec.backingPath));
      if (metaExisted && !this.customStore && !(await exists(spec.backingPath))) {
        throw new MirrorError('EINVAL', `volume ${id}: metadata exists but the backing file ${spec.backingPath} does not (refusing to create it empty)`);
      }
      const store = await this.openStore(spec);
      let volume: MirroredVolume;
      try {
        if (store.sizeBytes !== spec.sizeBytes) {
          throw new MirrorError('EMISMATCH', `volume ${id}: backing store is ${store.sizeBytes} bytes, the spec says ${spec.sizeBytes}`);
        }
        const meta = await VolumeMetadata.open(spec.backingPath, {
          volumeId: id,
          sizeBytes: spec.sizeBytes,
          create: spec.create ?? false,
          ...(spec.regionSize !== undefined ? { regionSize: spec.regionSize } : {}),
        });
        try {
          volume = await MirroredVolume.attach(this.ctx, spec, store, meta, !metaExisted);
        } catch (err) {
          await meta.close().catch(() => undefined);
          throw err;
        }
      } catch (err) {
        await store.close().catch(() => undefined);
        throw err;
      }
      this.volumes.set(id, volume);
      if (this.peerState === 'up') volume.peerUp();
      return volume;
    } finally {
      this.opening.delete(id);
    }
  }

  volume(volumeId: string): MirroredVolume | undefined {
    return this.volumes.get(volumeId);
  }

  /**
   * The caller knows the peer is gone (the node's liveness, from evidence the
   * channel does not have: the peer's front-end heartbeat silent too, or its
   * guard's notice that the process died). With no link up, every secondary
   * volume leaves its session now instead of after degradeAfterMs, so it can
   * be promoted without waiting for the peer's last hello to go stale.
   * Primaries keep their degradeAfterMs wait: it is what lets the node record
   * the peer's copy as outdated on the witness before the first write is
   * acknowledged without the peer. The suspend timer stays armed as the
   * backstop for a handshake that completes after this call. Returns how many
   * volumes left (0 while a link is up: the channel knows better).
   */
  peerGone(reason: string): number {
    if (this.channel.state === ChannelState.UP || this.channel.state === ChannelState.CLOSED) return 0;
    const secondaries = [...this.volumes.values()].filter((v) => v.role === 'secondary');
    if (secondaries.length > 0) this.log.warn({ reason, volumes: secondaries.length }, 'peer gone: secondary volumes leave their sessions now');
    for (const v of secondaries) v.peerLost(reason);
    return secondaries.length;
  }

  /** Closes every volume (flushed, metadata clean when nothing was in flight), then the channel. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    const results = await Promise.allSettled([...this.volumes.values()].map((v) => v.close()));
    if (this.suspendTimer) clearTimeout(this.suspendTimer);
    this.suspendTimer = null;
    await this.channel.close();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The volume a message names; ENOENT (answered to the peer) when it is not open here. */
  private target(volumeId: string): MirroredVolume {
    const v = this.volumes.get(volumeId);
    if (!v) throw new MirrorError('ENOENT', `volume ${volumeId} is not open on ${this.nodeId}`);
    return v;
  }

  /** One handler per body kind, each routed by volume id. */
  private registerHandlers(): void {
    const ch = this.channel;
    ch.handle('volumeHello', (b, p) => this.target(b.volumeId).handleHello(b, p));
    ch.handle('write', (b, p) => this.target(b.volumeId).inbound.write(b, p));
    ch.handle('writeZeroes', (b) => this.target(b.volumeId).inbound.writeZeroes(b));
    ch.handle('unmap', (b) => this.target(b.volumeId).inbound.unmap(b));
    ch.handle('flush', (b) => this.target(b.volumeId).inbound.flush());
    ch.handle('resyncRequest', (b) => this.target(b.volumeId).handleResyncRequest(b));
    ch.handle('resyncData', (b, p) => this.target(b.volumeId).inbound.resyncData(b, p));
    ch.handle('verifyRequest', (b) => this.target(b.volumeId).handleVerifyRequest(b));
    ch.handle('scsiState', (b) => this.target(b.volumeId).handleScsiState(b));
    ch.handle('generationUpdate', (b) => this.target(b.volumeId).handleGenerationUpdate(b));
    ch.handle('control', async (b) => {
      const handler = this.controlHandlers.get(b.topic);
      if (!handler) throw new MirrorError('ENOTSUP', `${this.nodeId} has no handler for ${JSON.stringify(b.topic)} control messages`);
      const data = await handler(b.data);
      return { control: { topic: b.topic, data: data ?? Buffer.alloc(0) } };
    });
  }

  private onChannelState(to: ChannelState): void {
    if (to !== ChannelState.SUSPENDED && this.suspendTimer) {
      clearTimeout(this.suspendTimer);
      this.suspendTimer = null;
    }
    switch (to) {
      case ChannelState.UP:
        this.emit('peer', 'up');
        for (const v of this.volumes.values()) v.peerUp();
        break;
      case ChannelState.SUSPENDED:
        this.emit('peer', 'down');
        this.suspendTimer ??= setTimeout(() => {
          this.suspendTimer = null;
          for (const v of this.volumes.values()) v.peerLost(`no link to the peer for ${this.tunables.degradeAfterMs} ms`);
        }, this.tunables.degradeAfterMs);
        break;
      case ChannelState.DOWN:
      case ChannelState.CLOSED:
        for (const v of this.volumes.values()) v.peerLost('the peer is unavailable');
        break;
      default:
        break;
    }
  }
}
