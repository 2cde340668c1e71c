/**
 * One node of a twinsan pair: the mirror engine with every configured
 * volume open (primary where this node is the owner, secondary elsewhere),
 * and an iSCSI target, LUN 0, for each primary volume, whose writes go
 * through the mirror's write-through-both store.
 *
 * src/resource-groups/node is the composition root of the pair: the only
 * place that imports both src/mirror and src/target (which never import
 * each other). Each resource group (../node-groups.ts) owns the wiring of
 * its volumes and moves it on failover; this file stays thin.
 *
 * start() is all or nothing: if any step fails, what was started is closed
 * again before the error is thrown. close() is idempotent and stops in
 * the reverse order: the status endpoint, the iSCSI server (in-flight
 * commands finish), the volumes, the mirror.
 */
import { mkdir, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { NodeGroups } from '../node-groups';
import type { DataStanding } from '../start-rule';
import { createWitness } from '../witness';
import { IscsiServer } from '../../target/iscsi';
import type { NodeConfig, VolumeConfig } from './config';
import type { MirrorFactory, MirrorNodePort, MirroredVolumePort } from './mirror-port';
import { ownerAluaGroups, pairLayout, PairLayout } from './pair-layout';
import { keepPeerReservations } from './replicated-reservations';
import { parseHostPort } from './schema';
import { StatusServer } from './status-server';
import { volumeDevice } from './volume-device';

export interface NodeDeps {
  readonly log: Logger;
  readonly createMirror: MirrorFactory;
  /** Whether a volume's mirror status counts as in sync (see mirror-factory.ts). */
  readonly inSync: (status: unknown) => boolean;
  /** What a volume's mirror status says of this copy against the peer's (see mirror-factory.ts). */
  readonly dataStanding: (status: unknown) => DataStanding;
}

/** A target this node serves. */
export interface ServedTarget {
  readonly volumeId: string;
  readonly name: string;
  readonly iqn: string;
  /** iscsi://host:port/iqn/0, one per portal. */
  readonly urls: readonly string[];
}

export interface VolumeStatus {
  readonly id: string;
  readonly name: string;
  readonly owner: string;
  readonly role: string;
  readonly backing: string;
  /** This node serves the volume's target. */
  readonly served: boolean;
  readonly inSync: boolean;
  /** The mirror's own status of the volume. */
  readonly mirror: unknown;
}

export interface NodeStatus {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly state: 'starting' | 'running' | 'stopping' | 'stopped';
  readonly peer: { readonly nodeId: string; readonly state: unknown; readonly channel: unknown };
  /** Every volume in sync. */
  readonly inSync: boolean;
  readonly volumes: readonly VolumeStatus[];
  readonly targets: readonly ServedTarget[];
  /** The peer's liveness and each resource group's state here; null without resource groups. */
  readonly resourceGroups: unknown;
}

/** The URL an initiator uses for LUN 0 of `iqn` through the portal `listen`. */
export function lunUrl(listen: string, iqn: string): string {
  const hp = parseHostPort(listen)!;
  const host = hp.host === '0.0.0.0' ? '127.0.0.1' : hp.host === '::' ? '[::1]' : hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  return `iscsi://${host}:${hp.port}/${iqn}/0`;
}

interface OpenVolume {
  readonly config: VolumeConfig;
  readonly mirrored: MirroredVolumePort;
  readonly log: Logger;
}

export class TwinsanNode {
  readonly layout: PairLayout;
  private readonly log: Logger;
  private state: NodeStatus['state'] = 'stopped';
  private mirror: MirrorNodePort | null = null;
  private readonly volumes: OpenVolume[] = [];
  private iscsi: IscsiServer | null = null;
  private statusServer: StatusServer | null = null;
  private readonly served: ServedTarget[] = [];
  private closing: Promise<void> | null = null;
  private groups: NodeGroups | null = null;

  constructor(
    readonly config: NodeConfig,
    private readonly deps: NodeDeps,
  ) {
    this.layout = pairLayout(config.nodeId, config.peer.nodeId);
    this.log = deps.log;
  }

  /** The targets this node serves (after start()). */
  targets(): readonly ServedTarget[] {
    return this.served;
  }

  async start(): Promise<void> {
    if (this.state !== 'stopped' || this.closing) throw new Error('a node starts once');
    this.state = 'starting';
    try {
      await this.startSteps();
    } catch (err) {
      await this.close().catch((closeErr: unknown) => this.log.error({ err: closeErr }, 'cleanup after a failed start failed'));
      throw err;
    }
    this.state = 'running';
    this.log.info({ position: this.layout.local.position, targets: this.served.length, volumes: this.volumes.length }, 'node running');
  }

  private async startSteps(): Promise<void> {
    const c = this.config;
    await mkdir(c.dataDir, { recursive: true });
    this.mirror = this.deps.createMirror({
      nodeId: c.nodeId,
      peerNodeId: c.peer.nodeId,
      clusterId: c.clusterId,
      secret: c.peer.secret,
      links: c.peer.links,
      ...(c.peer.degradeAfterMs !== null ? { tunables: this.mirrorTunables(c.peer.degradeAfterMs) } : {}),
      ...(c.peer.maxProtocolVersion !== null ? { maxProtocolVersion: c.peer.maxProtocolVersion } : {}),
      log: this.log,
    });
    await this.mirror.start();

    for (const v of c.volumes) {
      const log = this.log.child({ volume: v.name, volumeId: v.id });
      const create = !(await exists(v.backing));
      // A volume of a resource group is promoted by its group (after the lease), except when the
      // preferred node creates it: a new, empty replica cannot be promoted without force.
      const role = v.owner === c.nodeId && (v.resourceGroup === null || create) ? 'primary' : 'secondary';
      const mirrored = await this.mirror.openVolume({ volumeId: v.id, backingPath: v.backing, sizeBytes: v.sizeBytes, thin: v.thin, role, create });
      this.volumes.push({ config: v, mirrored, log });
      if (role === 'secondary') keepPeerReservations(v.backing, mirrored, log);
      log.info({ role, backing: v.backing, sizeBytes: v.sizeBytes, created: create }, 'volume open');
    }

    // Volumes of a resource group are served by the group (node-groups.ts), on its alias IPs.
    const primaries = this.volumes.filter((v) => v.config.owner === c.nodeId && v.config.resourceGroup === null);
    if (primaries.length > 0 || c.resourceGroups.length > 0) await this.serveTargets(primaries);
    if (c.resourceGroups.length > 0) await this.startGroups();

    if (c.status) {
      this.statusServer = new StatusServer(() => this.status(), {
        move: (rg) => this.move(rg),
        failback: (rg) => this.failback(rg),
        force: (rg) => this.groupsOrThrow().controller.force(rg),
      });
      const hp = parseHostPort(c.status.listen)!;
      const port = await this.statusServer.listen(hp.host, hp.port);
      this.log.info({ url: `http://${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${port}/status` }, 'status endpoint listening');
    }
  }

  private async serveTargets(primaries: readonly OpenVolume[]): Promise<void> {
    const c = this.config;
    const server = new IscsiServer({
      log: this.log.child({ component: 'iscsi' }),
      portalGroupTag: c.iscsi.portalGroupTag,
      relativeTargetPortId: c.iscsi.relativeTargetPortId,
    });
    this.iscsi = server;
    const alua = ownerAluaGroups(this.layout, { local: c.iscsi.relativeTargetPortId, peer: c.peer.relativeTargetPortId });
    for (const v of primaries) {
      const { device } = await volumeDevice(v, alua, server);
      server.addTarget({ name: v.config.iqn, device, allowedInitiators: null });
    }
    for (const listen of c.iscsi.listen) {
      const hp = parseHostPort(listen)!;
      await server.listen(hp.host, hp.port);
    }
    for (const v of primaries) {
      const target: ServedTarget = { volumeId: v.config.id, name: v.config.name, iqn: v.config.iqn, urls: c.iscsi.listen.map((l) => lunUrl(l, v.config.iqn)) };
      this.served.push(target);
      for (const url of target.urls) v.log.info({ url }, `serving ${url}`);
    }
  }

  /**
   * With resource groups the replication links detect a silent peer as fast as the front-end
   * heartbeat (the peer is dead only when every path is), and writes degrade soon after.
   */
  private mirrorTunables(degradeAfterMs: number): { degradeAfterMs: number; heartbeatMs?: number; deadMs?: number } {
    const hb = this.config.heartbeat;
    if (this.config.resourceGroups.length === 0) return { degradeAfterMs };
    return { degradeAfterMs, heartbeatMs: hb.intervalMs, deadMs: hb.deadMs };
  }

  private async startGroups(): Promise<void> {
    const c = this.config;
    const hp = c.witness.redis ? parseHostPort(c.witness.redis)! : null;
    const witness = createWitness({
      ...(hp ? { redis: { host: hp.host, port: hp.port } } : {}),
      ...(c.witness.keyPrefix ? { keyPrefix: c.witness.keyPrefix } : {}),
      allowTakeoverWithoutWitness: c.witness.allowTakeoverWithoutWitness,
    });
    this.groups = new NodeGroups({
      config: c,
      log: this.log,
      server: this.iscsi!,
      volumes: this.volumes.filter((v) => v.config.resourceGroup !== null),
      alua: ownerAluaGroups(this.layout, { local: c.iscsi.relativeTargetPortId, peer: c.peer.relativeTargetPortId }),
      mirrorPeerState: () => this.mirror?.peerState,
      inSync: this.deps.inSync,
      dataStanding: this.deps.dataStanding,
      witness,
    });
    await this.groups.start();
  }

  private groupsOrThrow(): NodeGroups {
    if (!this.groups) throw new Error('this node has no resource groups');
    return this.groups;
  }

  /** Planned switchover of a resource group to the peer (for the REST API; POST /move?rg= on the status endpoint). */
  move(rg: string): Promise<void> {
    return this.groupsOrThrow().controller.move(rg);
  }

  /** Move a resource group back to its preferred node. */
  failback(rg: string): Promise<boolean> {
    return this.groupsOrThrow().controller.failback(rg);
  }

  status(): NodeStatus {
    const volumes = this.volumes.map(({ config, mirrored }): VolumeStatus => {
      const mirror = mirrored.status();
      return {
        id: config.id,
        name: config.name,
        owner: config.owner,
        role: mirrored.role,
        backing: config.backing,
        served: this.served.some((t) => t.volumeId === config.id),
        inSync: this.deps.inSync(mirror),
        mirror,
      };
    });
    return {
      nodeId: this.config.nodeId,
      clusterId: this.config.clusterId,
      state: this.state,
      peer: { nodeId: this.config.peer.nodeId, state: this.mirror?.peerState ?? null, channel: this.mirror?.channelStats?.() ?? null },
      inSync: volumes.length === this.config.volumes.length && volumes.every((v) => v.inSync),
      volumes,
      targets: this.served,
      resourceGroups: this.groups?.status() ?? null,
    };
  }

  /** Stop everything that was started, newest first; idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeSteps();
    return this.closing;
  }

  private async closeSteps(): Promise<void> {
    this.state = 'stopping';
    const errors: unknown[] = [];
    const step = async (what: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.error({ err }, `${what} failed`);
        errors.push(err);
      }
    };
    if (this.statusServer) await step('closing the status endpoint', () => this.statusServer!.close());
    // Groups first: their alias IPs go and the peer hears 'bye' before the targets stop.
    if (this.groups) await step('stopping the resource groups', () => this.groups!.close());
    // Initiators first: in-flight commands complete on both copies before the mirror goes.
    if (this.iscsi) await step('closing the iSCSI server', () => this.iscsi!.close());
    for (const v of [...this.volumes].reverse()) await step(`closing volume ${v.config.name}`, () => v.mirrored.close());
    if (this.mirror) await step('closing the mirror', () => this.mirror!.close());
    this.state = 'stopped';
    if (errors.length > 0) throw errors[0];
    this.log.info('node stopped');
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
