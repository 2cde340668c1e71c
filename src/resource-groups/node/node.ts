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
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  ClusterConfigStore,
  ClusterSync,
  EventRing,
  JobTable,
  planReconcile,
  type ClusterDocument,
  type ClusterResourceGroup,
  type ClusterVolume,
  type ReconcileStep,
  type ReconcileStepKind,
  type RejectedEvent,
  type SyncStatus,
  type VolumeAccessConfig,
} from '../cluster';
import { NodeGroups } from '../node-groups';
import type { DataStanding } from '../start-rule';
import { createWitness } from '../witness';
import { IscsiServer } from '../../target/iscsi';
import type { ChapSecrets, IscsiTarget } from '../../target/iscsi';
import type { LogicalUnit } from '../../target/scsi';
import type { NodeConfig, VolumeConfig } from './config';
import { IoMetrics } from './io-metrics';
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
  /** The cluster configuration's version here and its sync with the peer. */
  readonly cluster: { readonly version: number; readonly sync: SyncStatus | null } | null;
}

/** The URL an initiator uses for LUN 0 of `iqn` through the portal `listen`. */
export function lunUrl(listen: string, iqn: string): string {
  const hp = parseHostPort(listen)!;
  const host = hp.host === '0.0.0.0' ? '127.0.0.1' : hp.host === '::' ? '[::1]' : hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  return `iscsi://${host}:${hp.port}/${iqn}/0`;
}

/** How often a cluster configuration the peer has not confirmed is offered again. */
const SYNC_RETRY_MS = 2_000;

export interface OpenVolume {
  readonly config: VolumeConfig;
  readonly mirrored: MirroredVolumePort;
  readonly log: Logger;
}

/** A volume of the cluster document as this node opens it: the config file's backing path for it, else <dataDir>/<name>.img. */
export function volumeConfigOf(config: NodeConfig, v: ClusterVolume): VolumeConfig {
  const fromFile = config.volumes.find((x) => x.id === v.id);
  return {
    id: v.id,
    name: v.name,
    iqn: v.iqn,
    sizeBytes: v.sizeBytes,
    thin: v.thin,
    blockSize: v.blockSize,
    physicalBlockSize: v.physicalBlockSize,
    owner: v.owner,
    resourceGroup: v.resourceGroup,
    backing: fromFile?.backing ?? path.join(config.dataDir, `${v.name}.img`),
  };
}

/** The node config with the volumes and resource groups of the cluster document (what the node serves). */
export function effectiveConfig(config: NodeConfig, doc: ClusterDocument): NodeConfig {
  return {
    ...config,
    volumes: doc.volumes.map((v) => volumeConfigOf(config, v)),
    resourceGroups: doc.resourceGroups.map((g) => ({
      name: g.name,
      preferredNode: g.preferredNode,
      aliasIps: g.aliasIps,
      failback: g.failback,
      volumes: doc.volumes.filter((v) => v.resourceGroup === g.name).map((v) => v.name),
    })),
  };
}

/** A volume's access rules as the iSCSI target takes them. */
export function targetAccess(access: VolumeAccessConfig): { allowedInitiators: readonly string[] | null; chap: ChapSecrets | null } {
  const chap: ChapSecrets | null = access.chap
    ? { user: access.chap.user, secret: access.chap.secret, ...(access.mutualChap ? { mutualUser: access.mutualChap.user, mutualSecret: access.mutualChap.secret } : {}) }
    : null;
  return { allowedInitiators: access.allowedInitiators, chap };
}

export class TwinsanNode {
  readonly layout: PairLayout;
  /** This node's events (bounded; the API pages and streams them). */
  readonly events: EventRing;
  readonly jobs = new JobTable();
  /** Per-volume I/O counters of the targets this node serves. */
  readonly io = new IoMetrics();
  /** Failovers (groups taken over without the peer's consent) and planned moves done here. */
  readonly counters = { failovers: 0, moves: 0 };
  private readonly log: Logger;
  private state: NodeStatus['state'] = 'stopped';
  private mirror: MirrorNodePort | null = null;
  private readonly volumes: OpenVolume[] = [];
  private store: ClusterConfigStore | null = null;
  private sync: ClusterSync | null = null;
  /** The config with the cluster document's volumes and groups as of start(). */
  private effective: NodeConfig;
  /** Reconcile runs one at a time, in document order. */
  private reconciling: Promise<void> = Promise.resolve();
  private readonly unsubscribe: (() => void)[] = [];
  /** The latest LU built for each volume served here (capacity changes are signalled to it). */
  private readonly lus = new Map<string, LogicalUnit>();
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
    this.effective = config;
    this.events = new EventRing(config.nodeId);
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
    await mkdir(this.config.dataDir, { recursive: true });
    // The cluster document says what the pair serves; the config file seeds it the first time.
    this.store = await ClusterConfigStore.open(this.config);
    this.effective = effectiveConfig(this.config, this.store.document);
    const c = this.effective;
    this.log.info({ configVersion: this.store.document.version, volumes: c.volumes.length, resourceGroups: c.resourceGroups.length }, 'cluster configuration loaded');
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

    for (const v of c.volumes) await this.openVolume(v);

    // Volumes of a resource group are served by the group (node-groups.ts), on its alias IPs.
    const primaries = this.volumes.filter((v) => v.config.owner === c.nodeId && v.config.resourceGroup === null);
    await this.serveTargets(primaries);
    if (c.resourceGroups.length > 0) await this.startGroups();
    this.startClusterSync(this.store, this.mirror);

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
    for (const v of primaries) await this.serveVolume(v);
    for (const listen of c.iscsi.listen) {
      const hp = parseHostPort(listen)!;
      await server.listen(hp.host, hp.port);
    }
  }

  /** Opens a volume's replica: primary on its owner (a group's volume: only when created here), else secondary. */
  private async openVolume(v: VolumeConfig): Promise<OpenVolume> {
    const log = this.log.child({ volume: v.name, volumeId: v.id });
    const create = !(await exists(v.backing));
    // A volume of a resource group is promoted by its group (after the lease), except when the
    // preferred node creates it: a new, empty replica cannot be promoted without force.
    const role = v.owner === this.config.nodeId && (v.resourceGroup === null || create) ? 'primary' : 'secondary';
    const mirrored = await this.mirror!.openVolume({ volumeId: v.id, backingPath: v.backing, sizeBytes: v.sizeBytes, thin: v.thin, role, create });
    const open: OpenVolume = { config: v, mirrored, log };
    this.volumes.push(open);
    if (role === 'secondary') keepPeerReservations(v.backing, mirrored, log);
    log.info({ role, backing: v.backing, sizeBytes: v.sizeBytes, created: create }, 'volume open');
    return open;
  }

  /** The access rules of a volume in the cluster document (open when unknown). */
  private accessOf(volumeId: string): { allowedInitiators: readonly string[] | null; chap: ChapSecrets | null } {
    const v = this.store?.document.volumes.find((x) => x.id === volumeId);
    return v ? targetAccess(v.access) : { allowedInitiators: null, chap: null };
  }

  /** A target with the volume's access rules and an I/O-metered device. */
  private decorate(volume: VolumeConfig, target: IscsiTarget): IscsiTarget {
    const { chap: _none, ...rest } = target;
    const access = this.accessOf(volume.id);
    return { ...rest, device: this.io.meter(volume.name, target.device), allowedInitiators: access.allowedInitiators, ...(access.chap ? { chap: access.chap } : {}) };
  }

  /** Serves an RG-less primary on iscsi.listen. */
  private async serveVolume(v: OpenVolume): Promise<void> {
    const c = this.config;
    const server = this.iscsi!;
    const alua = ownerAluaGroups(this.layout, { local: c.iscsi.relativeTargetPortId, peer: c.peer.relativeTargetPortId });
    const { lu, device } = await volumeDevice(v, alua, server);
    this.lus.set(v.config.id, lu);
    server.addTarget(this.decorate(v.config, { name: v.config.iqn, device, allowedInitiators: null }));
    const target: ServedTarget = { volumeId: v.config.id, name: v.config.name, iqn: v.config.iqn, urls: c.iscsi.listen.map((l) => lunUrl(l, v.config.iqn)) };
    this.served.push(target);
    for (const url of target.urls) v.log.info({ url }, `serving ${url}`);
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
    const c = this.effective;
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
      decorateTarget: (v, t) => this.decorate(v, t),
      onLogicalUnit: (id, lu) => this.lus.set(id, lu),
      // A peer in maintenance was evacuated on purpose: its groups go back when it leaves maintenance.
      holdFailback: () => this.store?.document.nodes.find((n) => n.id === this.config.peer.nodeId)?.maintenance === true,
      failback: (rg) => this.failback(rg),
      mirrorPeerState: () => this.mirror?.peerState,
      mirrorPeerClosedAt: () => this.mirror?.peerClosedAllAt?.() ?? null,
      mirrorPeerGone: (reason) => void this.mirror?.peerGone?.(reason),
      inSync: this.deps.inSync,
      dataStanding: this.deps.dataStanding,
      witness,
      witnessAddress: hp ? { host: hp.host, port: hp.port, keyPrefix: c.witness.keyPrefix } : null,
    });
    this.groups.controller.on('decision', (rg, d) => {
      if (d.action !== 'take-over') return;
      this.counters.failovers++;
      this.events.record('failover', `taking ${rg} over: ${d.why}`, rg);
    });
    await this.groups.start();
  }

  private groupsOrThrow(): NodeGroups {
    if (!this.groups) throw new Error('this node has no resource groups');
    return this.groups;
  }

  /** Planned switchover of a resource group to the peer (for the REST API; POST /move?rg= on the status endpoint). */
  async move(rg: string): Promise<void> {
    await this.groupsOrThrow().controller.move(rg);
    this.counters.moves++;
    this.events.record('move', `${rg} moved to ${this.config.peer.nodeId}`, rg);
  }

  /** Move a resource group back to its preferred node. */
  async failback(rg: string): Promise<boolean> {
    const moved = await this.groupsOrThrow().controller.failback(rg);
    if (moved) {
      this.counters.moves++;
      this.events.record('failback', `${rg} failed back`, rg);
    }
    return moved;
  }

  /** Ask the peer to move `rg`, which it serves, back to this node over the front-end heartbeat (any protocol version). */
  async requestHandBack(rg: string, timeoutMs: number): Promise<void> {
    await this.groupsOrThrow().requestHandBack(rg, timeoutMs);
  }

  /* ---------------- the cluster configuration at run time ---------------- */

  /** This node's copy of the cluster document (after start()). */
  cluster(): ClusterConfigStore {
    if (!this.store) throw new Error('the node is not started');
    return this.store;
  }

  /** Whether the cluster document reaches the peer, and the peer's version. */
  clusterSync(): SyncStatus | null {
    return this.sync?.status() ?? null;
  }

  /** The mirror's port (after start()). */
  mirrorPort(): MirrorNodePort {
    if (!this.mirror) throw new Error('the node is not started');
    return this.mirror;
  }

  /** The iSCSI server (after start()). */
  iscsiServer(): IscsiServer {
    if (!this.iscsi) throw new Error('the node is not started');
    return this.iscsi;
  }

  openVolumes(): readonly OpenVolume[] {
    return this.volumes;
  }

  /** The resource groups' controller, null without groups. */
  groupController(): NodeGroups['controller'] | null {
    return this.groups?.controller ?? null;
  }

  /** Resolves once every change received so far has been acted on here. */
  reconciled(): Promise<void> {
    return this.reconciling;
  }

  /** Sends the document to the peer now and merges its answer (after a local change, to have it applied on both). */
  pushConfig(): Promise<void> {
    return this.sync?.push() ?? Promise.resolve();
  }

  private startClusterSync(store: ClusterConfigStore, mirror: MirrorNodePort): void {
    this.sync = new ClusterSync(store, mirror, this.log.child({ component: 'cluster-config' }), () => this.reconciled());
    this.sync.start();
    const onChange = (e: { previous: ClusterDocument; document: ClusterDocument; origin: string; summary: string }): void => {
      this.events.record(e.origin === 'local' ? 'config-changed' : 'config-replicated', `${e.summary} (configuration version ${e.document.version})`, null);
      this.reconciling = this.reconciling
        .then(() => this.reconcile(e.previous, e.document))
        .catch((err: unknown) => this.log.error({ err }, 'reconcile failed'));
    };
    store.on('change', onChange);
    const onConflict = (e: { outcome: string; keptAt: string; loser: { version: number } }): void => {
      this.log.warn(e, 'cluster configuration conflict');
      this.events.record('config-conflict', `configuration conflict (${e.outcome}): version ${e.loser.version} kept at ${e.keptAt}`, null);
    };
    store.on('conflict', onConflict);
    const onRejected = (e: RejectedEvent): void => {
      this.log.error(e, 'cluster configuration from the peer refused: it breaks the configuration rules; keeping the current one');
      this.events.record('config-rejected', `configuration version ${e.version} from ${e.updatedBy ?? 'the peer'} refused (${e.reason}); keeping version ${store.document.version}`, null);
    };
    store.on('rejected', onRejected);
    this.unsubscribe.push(
      () => store.off('change', onChange),
      () => store.off('conflict', onConflict),
      () => store.off('rejected', onRejected),
      () => this.sync?.stop(),
      mirror.onPeer((state) => {
        if (state === 'up') void this.sync?.push();
      }),
    );
    if (mirror.peerState === 'up') void this.sync.push();
    // A push that failed (the peer restarted mid-request, a timeout) is tried again until both hold the same version.
    const retry = setInterval(() => {
      if (this.sync?.status().state === 'pending') void this.sync.push();
    }, SYNC_RETRY_MS);
    retry.unref();
    this.unsubscribe.push(() => clearInterval(retry));
  }

  /** One function per reconcile step (planReconcile says which and in what order). */
  private readonly stepHandlers: { readonly [K in ReconcileStepKind]: (step: Extract<ReconcileStep, { kind: K }>) => Promise<void> } = {
    'volume-remove': (s) => this.removeVolume(s.volume),
    'rg-remove': async (s) => {
      await this.groups?.removeGroup(s.group.name);
      this.events.record('rg-deleted', `resource group ${s.group.name} removed`, s.group.name);
    },
    'rg-add': async (s) => {
      if (this.groups) await this.regroup(s.group.name);
      else await this.startGroups();
      this.events.record('rg-created', `resource group ${s.group.name} added`, s.group.name);
    },
    'rg-update': async (s) => {
      const config = this.effective.resourceGroups.find((g) => g.name === s.group.name);
      if (this.groups && config) await this.groups.updateGroup(config);
      this.events.record('rg-changed', `resource group ${s.group.name} changed: ${describeGroupChange(s.previous, s.group)}`, s.group.name);
    },
    'volume-add': (s) => this.addVolume(s.volume),
    'volume-grow': (s) => this.growVolume(s.volume),
    'access-apply': async (s) => this.applyAccess(s.volume),
    'maintenance': async (s) => {
      this.events.record('maintenance', `node ${s.node} ${s.on ? 'enters' : 'leaves'} maintenance`, s.node);
    },
  };

  private async reconcile(previous: ClusterDocument, next: ClusterDocument): Promise<void> {
    if (this.state !== 'running' && this.state !== 'starting') return;
    this.effective = effectiveConfig(this.config, next);
    for (const step of planReconcile(previous, next)) {
      const handler = this.stepHandlers[step.kind] as (s: ReconcileStep) => Promise<void>;
      try {
        await handler(step);
      } catch (err) {
        const subject = 'volume' in step ? step.volume.name : 'group' in step ? step.group.name : null;
        this.log.error({ err, step: step.kind, subject }, 'reconcile step failed');
        this.events.record('reconcile-failed', `${step.kind}${subject ? ` ${subject}` : ''}: ${(err as Error).message}`, subject);
      }
    }
  }

  /**
   * Rebuilds a group from the current configuration: stopped here (if served) and added again with
   * its volumes, so the node that should serve it starts it again (its initiators reconnect).
   */
  private async regroup(name: string): Promise<void> {
    const groups = this.groups;
    if (!groups) return;
    await groups.removeGroup(name);
    const config = this.effective.resourceGroups.find((g) => g.name === name);
    if (config) await groups.addGroup(config, this.volumes.filter((v) => v.config.resourceGroup === name));
  }

  private async addVolume(v: ClusterVolume): Promise<void> {
    if (this.volumes.some((x) => x.config.id === v.id)) return;
    const config = volumeConfigOf(this.config, v);
    const open = await this.openVolume(config);
    if (v.resourceGroup !== null) await this.joinGroup(v.resourceGroup, open);
    else if (v.owner === this.config.nodeId) await this.serveVolume(open);
    this.events.record('volume-created', `volume ${v.name} open (${open.mirrored.role})`, v.name);
  }

  /**
   * A new volume joins its running group in place (its target added beside the others'); where that
   * is not safe (its primary copy is on the node not serving the group) the group is rebuilt.
   */
  private async joinGroup(name: string, open: OpenVolume): Promise<void> {
    const groups = this.groups;
    if (!groups || !groups.controller.status().some((g) => g.name === name)) return this.regroup(name);
    if (!(await groups.addVolume(name, open))) await this.regroup(name);
  }

  private async removeVolume(v: ClusterVolume): Promise<void> {
    const i = this.volumes.findIndex((x) => x.config.id === v.id);
    if (i < 0) return;
    const open = this.volumes[i]!;
    const served = this.served.findIndex((t) => t.volumeId === v.id);
    if (served >= 0) {
      await this.iscsi!.removeTarget(v.iqn);
      this.served.splice(served, 1);
    }
    this.lus.delete(v.id);
    this.volumes.splice(i, 1);
    if (v.resourceGroup !== null) {
      await this.groups?.removeVolume(v.resourceGroup, v.id);
      this.groups?.forgetVolume(v.id);
    }
    await open.mirrored.close();
    this.io.forget(v.name);
    const backing = open.config.backing;
    // Only files this node created for the volume go (a block device named in the config file stays).
    const fromFile = this.config.volumes.some((x) => x.id === v.id && x.backing === backing);
    for (const f of [fromFile ? null : backing, `${backing}.twinsan-meta`, `${backing}.twinsan-pr.json`]) if (f) await rm(f, { force: true });
    this.events.record('volume-deleted', `volume ${v.name} closed and its files removed`, v.name);
  }

  private async growVolume(v: ClusterVolume): Promise<void> {
    const open = this.volumes.find((x) => x.config.id === v.id);
    if (!open) return;
    // The primary grows after the peer: it must never write past the secondary's end.
    if (open.mirrored.role === 'primary' && this.mirror?.controlAvailable) await this.sync?.push();
    await open.mirrored.grow(v.sizeBytes);
    const i = this.volumes.indexOf(open);
    this.volumes[i] = { ...open, config: { ...open.config, sizeBytes: v.sizeBytes } };
    // The LU reads the store's size on every command; its initiators get CAPACITY DATA HAS CHANGED.
    this.lus.get(v.id)?.notifyCapacityChanged();
    this.events.record('volume-grown', `volume ${v.name} is now ${v.sizeBytes} bytes`, v.name);
  }

  private applyAccess(v: ClusterVolume): void {
    const server = this.iscsi;
    if (!server || !server.listTargets().some((t) => t.name === v.iqn)) return;
    server.updateTargetAccess(v.iqn, targetAccess(v.access));
    this.events.record('access-changed', `access rules of volume ${v.name} applied`, v.name);
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
      inSync: volumes.every((v) => v.inSync),
      volumes,
      targets: this.served,
      resourceGroups: this.groups?.status() ?? null,
      cluster: this.store ? { version: this.store.document.version, sync: this.sync?.status() ?? null } : null,
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
    for (const u of this.unsubscribe.splice(0)) u();
    await this.reconciling;
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

/** What an rg-update changed, for its event. */
function describeGroupChange(before: ClusterResourceGroup, after: ClusterResourceGroup): string {
  const addresses = (g: ClusterResourceGroup): string => g.aliasIps.map((a) => `${a.address}/${a.prefix}@${a.interface}`).join(', ') || 'none';
  const changes = [
    before.preferredNode !== after.preferredNode ? `preferred node ${before.preferredNode} → ${after.preferredNode}` : null,
    before.failback !== after.failback ? `failback ${before.failback} → ${after.failback}` : null,
    addresses(before) !== addresses(after) ? `alias IPs ${addresses(before)} → ${addresses(after)}` : null,
  ].filter((c): c is string => c !== null);
  return changes.length > 0 ? changes.join('; ') : 'no effective change';
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
