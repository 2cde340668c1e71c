/**
 * The resource groups of one running node: the wiring of config, open
 * mirrored volumes, the iSCSI server, alias IPs, failure detection and
 * the witness into ResourceGroups and a ResourceGroupController.
 * TwinsanNode (node/node.ts) builds one after its volumes are open and closes
 * it first on shutdown.
 */
import type { Logger } from 'pino';
import { AliasIpManager, TapLocalAnchor } from '../alias-ip';
import type { MirroredVolumePort, NodeConfig, VolumeConfig } from './node';
import { volumeDevice } from './node/volume-device';
import type { AluaOptions } from '../target/scsi';
import { IscsiServer, nexusKeyThrough } from '../target/iscsi';
import type { IscsiTarget } from '../target/iscsi';
import type { LiveScsiState, LogicalUnit, ScsiTargetDevice } from '../target/scsi';
import type { ResourceGroupConfig } from './config';
import { LeasePort, PeerControl, ResourceGroupController } from './controller';
import { ResourceGroup } from './group';
import { NodeGuard } from './guard';
import { FrontEndHeartbeat } from './heartbeat';
import { LivenessPath, PeerWatch } from './liveness';
import { AliasIpPort, LiveGroupResources, PromotableVolume, ServedDevice, TargetServerPort, liveGroupResources } from './resources';
import { byeAllowed, outdatedRecordAction } from './outdated';
import { DataStanding, groupStanding } from './start-rule';
import { LeaseKeeper, Witness, WitnessMode } from './witness';

export interface OpenGroupVolume {
  readonly config: VolumeConfig;
  readonly mirrored: MirroredVolumePort;
  readonly log: Logger;
}

interface RgDevice extends ServedDevice {
  readonly device: ScsiTargetDevice;
}

/**
 * The SCSI state kind the owner replicates to the standby on every change:
 * all reservations (not only APTPL) and the pending unit attentions,
 * restored by the node that takes the group over. A reservation change is
 * on the peer before the command that made it completes (LogicalUnit
 * replicateLiveState); while the peer is away the mirror keeps the latest
 * and sends it after the next handshake, as it does for writes.
 */
export const LIVE_SCSI_STATE_KIND = 'rg-live-scsi-state';

export interface NodeGroupsOptions {
  readonly config: NodeConfig;
  readonly log: Logger;
  readonly server: IscsiServer;
  readonly volumes: readonly OpenGroupVolume[];
  readonly alua: AluaOptions;
  /** The mirror's view of the peer ('up' | 'down'), read on each poll. */
  readonly mirrorPeerState: () => unknown;
  /** When the peer closed every replication link (monotonic ms), null otherwise: the liveness "closed" rule. */
  readonly mirrorPeerClosedAt?: () => number | null;
  /** The peer is dead or gone by every path: the mirror stops waiting for it (MirrorNodePort.peerGone). */
  readonly mirrorPeerGone?: (reason: string) => void;
  readonly witness: { readonly mode: WitnessMode; readonly witness: Witness | null };
  /** Whether a volume's mirror status counts as in sync (a planned move waits for it). */
  readonly inSync: (status: unknown) => boolean;
  /** What a volume's mirror status says of this copy against the peer's (a preferred group starts on it, start-rule.ts). */
  readonly dataStanding: (status: unknown) => DataStanding;
  /** Alias IP management (tests pass a fake backend); default: iproute2 + AF_PACKET on the RGs' interfaces. */
  readonly aliases?: AliasIpManager;
  /**
   * The guard process that cleans up if this process dies (guard/): removes the alias IPs, releases
   * the leases, tells the peer. Default: one is spawned, unless `aliases` was handed in (tests), then none.
   */
  readonly guard?: NodeGuard | null;
  /** The witness's address, for the guard to release this node's leases at; null without a witness. */
  readonly witnessAddress?: { readonly host: string; readonly port: number; readonly keyPrefix: string | null } | null;
  /** Completes a group volume's target before it is served: its access rules (ACL, CHAP) and an I/O-metering device. */
  readonly decorateTarget?: (volume: VolumeConfig, target: IscsiTarget) => IscsiTarget;
  /** True while automatic failback must wait (the preferred node, the peer, is in maintenance). */
  readonly holdFailback?: () => boolean;
  /** Told of each LU built for a group volume (the node signals capacity changes to it). */
  readonly onLogicalUnit?: (volumeId: string, lu: LogicalUnit) => void;
  /** Moves a group this node serves back to its preferred node, the peer (the peer's hand-back request); default: the controller's failback. */
  readonly failback?: (rg: string) => Promise<boolean>;
}

/** The mirror's PeerChannel as a liveness path: heard "now" while it reports 'up'. */
class MirrorPath implements LivenessPath {
  readonly name = 'mirror';
  private lastUp = Number.NEGATIVE_INFINITY;
  constructor(
    private readonly state: () => unknown,
    private readonly closedAt: () => number | null,
  ) {}
  closedByPeerAt(): number | null {
    return this.closedAt();
  }
  heardAt(): number {
    if (this.state() === 'up') this.lastUp = performance.now();
    return this.lastUp;
  }
  saidBye(): boolean {
    return false;
  }
}

function promotable(v: OpenGroupVolume): PromotableVolume {
  const m = v.mirrored as MirroredVolumePort & Partial<Pick<PromotableVolume, 'promote' | 'demote'>>;
  if (typeof m.promote !== 'function' || typeof m.demote !== 'function') throw new Error(`volume ${v.config.name}: the mirror cannot promote or demote it`);
  return {
    volumeId: m.volumeId,
    get role() {
      return m.role;
    },
    promote: (o) => m.promote!(o),
    demote: () => m.demote!(),
  };
}

export class NodeGroups {
  readonly controller: ResourceGroupController;
  private readonly heartbeat: FrontEndHeartbeat | null;
  /** Hand-back requests from the peer being carried out (or just answered), by group. */
  private readonly handBacks = new Map<string, Promise<boolean>>();
  private readonly watch: PeerWatch;
  private readonly keeper: LeaseKeeper | null;
  private aliases: AliasIpManager | null;
  private readonly guard: NodeGuard | null;
  private retry: NodeJS.Timeout | null = null;
  /** The groups, read live by the controller: groups are added and removed at run time (cluster configuration). */
  private readonly entries: { config: ResourceGroupConfig; group: ResourceGroup; live: LiveGroupResources<RgDevice>; buildDevice: (v: OpenGroupVolume) => Promise<RgDevice>; vols: OpenGroupVolume[] }[] = [];
  /** The open volumes of every group (those added at run time too). */
  private readonly volumes: OpenGroupVolume[] = [];
  private readonly iscsiPort: number;
  /** A round of outdated-record updates is on its way to the witness. */
  private recording = false;
  /** Per group, what this node last wrote to the witness's outdated record: 'peer' marked, 'none' cleared. */
  private readonly outdatedRecorded = new Map<string, 'peer' | 'none'>();
  /**
   * The newest live SCSI state of each volume (by id): what the peer sent
   * while it served the volume, or what this node replicated while it did
   * (so a group taken back here after a refused move keeps its state).
   */
  private readonly liveStates = new Map<string, Buffer>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly o: NodeGroupsOptions) {
    const c = o.config;
    for (const v of o.volumes) this.watchVolume(v);
    const interfaces = [...new Set(c.resourceGroups.flatMap((rg) => rg.aliasIps.map((a) => a.interface)))];
    this.guard = o.guard !== undefined ? o.guard : o.aliases ? null : new NodeGuard({ interfaces, log: o.log.child({ component: 'node-guard' }) });
    this.aliases = o.aliases ?? (interfaces.length > 0 ? this.newAliasManager(interfaces) : null);
    const hb = c.heartbeat;
    this.heartbeat =
      hb.local && hb.peer
        ? new FrontEndHeartbeat({
            nodeId: c.nodeId,
            peerNodeId: c.peer.nodeId,
            clusterId: c.clusterId,
            secret: c.peer.secret,
            local: hostPort(hb.local),
            peer: hostPort(hb.peer),
            intervalMs: hb.intervalMs,
          })
        : null;
    const paths: LivenessPath[] = [new MirrorPath(o.mirrorPeerState, o.mirrorPeerClosedAt ?? (() => null)), ...(this.heartbeat ? [this.heartbeat] : [])];
    this.watch = new PeerWatch(paths, {
      suspectAfterMs: Math.max(2 * hb.intervalMs, hb.deadMs / 2),
      deadMs: hb.deadMs,
      // A dead peer process closes every replication link at once: dead after two silent heartbeat intervals, not deadMs (liveness.ts).
      closedSilentMs: 2 * hb.intervalMs,
      closedSkewMs: hb.intervalMs,
      noticeRule: o.witness.mode === 'witness',
      pollMs: Math.max(10, Math.floor(hb.intervalMs / 4)),
    });
    // Before the controller subscribes: a takeover that follows promotes volumes that already left the dead peer's session.
    this.watch.on('change', (to) => {
      if (to === 'dead' || to === 'shutdown') o.mirrorPeerGone?.(`peer ${c.peer.nodeId} is ${to} by every path`);
    });
    this.keeper = o.witness.witness ? new LeaseKeeper({ witness: o.witness.witness, nodeId: c.nodeId }) : null;
    this.iscsiPort = hostPort(c.iscsi.listen[0]!).port;
    for (const rg of c.resourceGroups) this.entries.push({ config: rg, ...this.buildGroup(rg, this.iscsiPort) });
    this.controller = new ResourceGroupController({
      nodeId: c.nodeId,
      mode: o.witness.mode,
      groups: this.entries,
      peer: this.watch,
      lease: this.keeper ? this.leasePort(this.keeper, o.witness.witness!) : null,
      standing: (rg) => this.standing(rg),
      ...(this.heartbeat ? { peerControl: this.peerControl(this.heartbeat) } : {}),
      log: o.log.child({ component: 'resource-groups' }),
    });
    this.watch.on('change', (to, from) => o.log.info({ from, to }, `peer ${c.peer.nodeId}: ${from} → ${to}`));
    this.keeper?.on('must-stop', (m) => void this.controller.onLeaseTrouble(m.rg));
    this.keeper?.on('lost', (rg) => void this.controller.onLeaseTrouble(rg));
  }

  /** With the guard process, which deletes the aliases if this process dies without a clean shutdown (guard/). */
  private newAliasManager(interfaces: readonly string[]): AliasIpManager {
    const logger = this.o.log.child({ component: 'alias-ip' });
    // A killed node's IPv4 aliases stop being local at once (alias-ip/anchor.ts): initiators' reconnects are dropped, not refused.
    return new AliasIpManager({ interfaces, logger, anchor: new TapLocalAnchor(), ...(this.guard ? { guard: this.guard } : {}) });
  }

  /** The guard learns every lease term this node takes or gives up, the witness, and the death notice to send. */
  private briefGuard(guard: NodeGuard): void {
    const c = this.o.config;
    if (this.o.witnessAddress) void guard.witness({ node: c.nodeId, ...this.o.witnessAddress });
    if (this.heartbeat) void guard.notice(this.heartbeat.deathNotice());
    const k = this.keeper;
    if (!k) return;
    const held = (grant: { rg: string; epoch: number }): void => void guard.lease(grant.rg, grant.epoch);
    const gone = (rg: string): void => void guard.unlease(rg);
    k.on('acquired', held);
    k.on('regained', held);
    k.on('lost', gone);
    this.unsubscribe.push(() => {
      k.off('acquired', held);
      k.off('regained', held);
      k.off('lost', gone);
    });
  }

  /** Keeps the live SCSI state the peer replicates for a group volume. */
  private watchVolume(v: OpenGroupVolume): void {
    this.volumes.push(v);
    this.unsubscribe.push(
      v.mirrored.onScsiState((kind, json) => {
        if (kind === LIVE_SCSI_STATE_KIND) this.liveStates.set(v.config.id, Buffer.from(json));
      }),
    );
  }

  private groupConfig(rg: string): ResourceGroupConfig | undefined {
    return this.entries.find((e) => e.config.name === rg)?.config;
  }

  /**
   * A group added at run time, with its volumes open here: decided from now on (the preferred node
   * starts it once the start table allows). Its interfaces join those the alias manager may touch.
   */
  async addGroup(rg: ResourceGroupConfig, volumes: readonly OpenGroupVolume[]): Promise<void> {
    if (this.groupConfig(rg.name)) throw new Error(`resource group ${rg.name} exists`);
    for (const v of volumes) if (!this.volumes.includes(v)) this.watchVolume(v);
    this.allowInterfaces(rg);
    this.entries.push({ config: rg, ...this.buildGroup(rg, this.iscsiPort) });
    await this.controller.groupAdded(rg.name);
  }

  /** The alias manager may touch the group's interfaces (created with the first group that has any). */
  private allowInterfaces(rg: ResourceGroupConfig): void {
    const interfaces = [...new Set(rg.aliasIps.map((a) => a.interface))];
    if (interfaces.length === 0) return;
    this.aliases ??= this.newAliasManager(interfaces);
    for (const i of interfaces) this.aliases.allow(i);
  }

  /**
   * A group's preferred node, failback mode or alias IPs changed at run time (same volumes). Where it
   * is served the alias IPs change in place (new ones added and announced, the targets listed and
   * listening there, old ones removed) without stopping its targets; elsewhere the next start uses
   * them. The preferred node and failback mode are read from the config at each decision.
   */
  async updateGroup(rg: ResourceGroupConfig): Promise<void> {
    const entry = this.entries.find((e) => e.config.name === rg.name);
    if (!entry) throw new Error(`no resource group ${rg.name}`);
    if (!sameVolumes(entry.config.volumes, rg.volumes)) throw new Error(`resource group ${rg.name}: a change of its volumes rebuilds it (removeGroup, addGroup)`);
    this.allowInterfaces(rg);
    await this.controller.reconfigure(rg.name, async () => {
      const aliasesChanged = JSON.stringify(entry.config.aliasIps) !== JSON.stringify(rg.aliasIps);
      entry.config = rg;
      if (aliasesChanged) await entry.group.whileIdle((serving) => entry.live.changeAliases(rg.aliasIps, serving));
    });
  }

  /** A group removed at run time (or about to be replaced): stopped here if served, then forgotten. */
  async removeGroup(name: string): Promise<void> {
    if (!this.groupConfig(name)) return;
    await this.controller.retire(name);
    const i = this.entries.findIndex((e) => e.config.name === name);
    if (i >= 0) this.entries.splice(i, 1);
  }

  /**
   * A volume created in a running group, open here: it joins the group in place where that is safe
   * (served here and primary here, or not served here and secondary here): its target is added
   * beside the others, which are not touched. Resolves false when it cannot (the volume's primary is
   * on the node not serving the group): the caller rebuilds the group then.
   */
  async addVolume(name: string, v: OpenGroupVolume): Promise<boolean> {
    const entry = this.entries.find((e) => e.config.name === name);
    if (!entry) throw new Error(`no resource group ${name}`);
    let joined = false;
    await this.controller.reconfigure(name, () =>
      entry.group.whileIdle(async (serving) => {
        if (serving !== (v.mirrored.role === 'primary')) return;
        if (!this.volumes.includes(v)) this.watchVolume(v);
        entry.config = { ...entry.config, volumes: [...entry.config.volumes.filter((n) => n !== v.config.name), v.config.name] };
        entry.vols.push(v);
        await entry.live.addVolume(promotable(v), () => entry.buildDevice(v), serving);
        joined = true;
      }),
    );
    return joined;
  }

  /** A volume of a running group about to be deleted: its target goes where the group is served, the others stay. */
  async removeVolume(name: string, volumeId: string): Promise<void> {
    const entry = this.entries.find((e) => e.config.name === name);
    if (!entry) return;
    await this.controller.reconfigure(name, () =>
      entry.group.whileIdle(async (serving) => {
        const i = entry.vols.findIndex((x) => x.config.id === volumeId);
        if (i < 0) return;
        const [v] = entry.vols.splice(i, 1);
        entry.config = { ...entry.config, volumes: entry.config.volumes.filter((n) => n !== v!.config.name) };
        await entry.live.removeVolume(volumeId, v!.config.iqn, serving);
      }),
    );
  }

  /** Forgets a volume closed at run time (no group lists it any more). */
  forgetVolume(volumeId: string): void {
    const i = this.volumes.findIndex((v) => v.config.id === volumeId);
    if (i >= 0) this.volumes.splice(i, 1);
    this.liveStates.delete(volumeId);
  }

  private buildGroup(rg: ResourceGroupConfig, iscsiPort: number): { group: ResourceGroup; live: LiveGroupResources<RgDevice>; buildDevice: (v: OpenGroupVolume) => Promise<RgDevice>; vols: OpenGroupVolume[] } {
    const o = this.o;
    // Volumes join and leave at run time (addVolume, removeVolume): the closures below read this list.
    const vols = rg.volumes.map((name) => this.volumes.find((v) => v.config.name === name)!);
    const server = o.server;
    const wildcard = (p: number): boolean => o.config.iscsi.listen.some((l) => { const hp = hostPort(l); return hp.port === p && (hp.host === '0.0.0.0' || hp.host === '::'); });
    const port: TargetServerPort<RgDevice> = {
      addTarget: (d, portals) => {
        const target: IscsiTarget = { name: d.iqn, device: d.device, allowedInitiators: null, portals };
        const v = vols.find((x) => x.config.iqn === d.iqn);
        server.addTarget(v && o.decorateTarget ? o.decorateTarget(v.config, target) : target);
      },
      removeTarget: (iqn) => server.removeTarget(iqn),
      setPortals: (iqn, portals) => server.updateTargetPortals(iqn, portals),
      hasTarget: (iqn) => server.listTargets().some((t) => t.name === iqn),
      // A wildcard iscsi.listen on the same port reaches the alias already (and binding it would fail).
      listen: (h, p) => (wildcard(p) ? Promise.resolve(p) : server.listen(h, p)),
      unlisten: (h, p) => (wildcard(p) ? Promise.resolve(false) : server.unlisten(h, p)),
    };
    const buildDevice = async (v: OpenGroupVolume): Promise<RgDevice> => {
      {
        // Loads the reservations the previous owner replicated to this node's file.
        const { lu, device } = await volumeDevice(v, o.alua, server);
        this.restoreLiveState(v, lu);
        o.onLogicalUnit?.(v.config.id, lu);
        // From here on every change goes to the peer (attaching sends the restored state; not awaited:
        // the peer may be the dead node, and the mirror resends the latest state after each handshake).
        void lu.replicateLiveState({
          replicate: (state) => {
            const json = Buffer.from(JSON.stringify(state));
            this.liveStates.set(v.config.id, json);
            return v.mirrored.replicateScsiState(LIVE_SCSI_STATE_KIND, json);
          },
          onError: (err) => v.log.error({ err }, 'live SCSI state not replicated'),
        });
        return {
          iqn: v.config.iqn,
          device,
          setAvailability: (lun, a) => device.setAvailability(lun, a),
          quiesce: (timeoutMs) => device.quiesce({ timeoutMs }),
          resume: () => device.resume(),
          // The last push before the peer takes over; nexus losses as the sessions drop here must not follow it.
          handOver: async () => {
            await lu.pushLiveState();
            await lu.replicateLiveState(null);
          },
          // The group stops here (lease trouble, shutdown, a rebuild): the sessions it drops are not the
          // initiators' nexus losses, so the releases they make here reach neither the peer nor the state
          // this node restores from.
          detachState: () => void lu.replicateLiveState(null),
        };
      }
    };
    const buildDevices = async (): Promise<RgDevice[]> => {
      const out: RgDevice[] = [];
      for (const v of vols) out.push(await buildDevice(v));
      return out;
    };
    const live = liveGroupResources({
      volumes: vols.map(promotable),
      buildDevices,
      aliases: this.aliasPort(),
      aliasIps: rg.aliasIps,
      server: port,
      iscsiPort,
    });
    return { group: new ResourceGroup(rg.name, live.resources, o.log.child({ rg: rg.name })), live, buildDevice, vols };
  }

  /** The alias manager as the groups see it, looked up on each call: a group without alias IPs may gain some at run time. */
  private aliasPort(): AliasIpPort {
    return {
      add: async (spec) => this.aliases?.add(spec),
      remove: async (spec) => this.aliases?.remove(spec),
      announce: async (spec) => this.aliases?.announce(spec),
    };
  }

  /** The group's standing from its volumes' mirror status. */
  private standing(rg: string): DataStanding {
    const names = this.groupConfig(rg)?.volumes ?? [];
    return groupStanding(names.map((n) => {
      const v = this.volumes.find((x) => x.config.name === n);
      return v ? this.o.dataStanding(v.mirrored.status()) : 'unknown';
    }));
  }

  /** Install the reservations and unit attentions the previous owner replicated (newer than the APTPL file). */
  private restoreLiveState(v: OpenGroupVolume, lu: LogicalUnit): void {
    const json = this.liveStates.get(v.config.id);
    if (!json) return;
    try {
      lu.restoreLiveState(JSON.parse(json.toString('utf8')) as LiveScsiState);
      const peerPort = this.o.config.peer.relativeTargetPortId;
      // The initiators' paths moved here with the alias IPs: their registrations and SCSI-2 reservations
      // follow them to this node's port (a failover is no nexus loss of theirs: SPC-2 7.21 releases on
      // RELEASE, reset and power on), and their pending unit attentions to their nexuses through it.
      lu.reservations.targetPortMoved(peerPort, this.o.config.iscsi.relativeTargetPortId);
      lu.unitAttentions.rekey((key) => nexusKeyThrough(key, v.config.iqn, this.o.config.iscsi.portalGroupTag));
      v.log.info({ registrations: lu.reservations.persistent.registrations.length }, 'live SCSI state restored (replicated by the previous owner, or by this node before a move)');
    } catch (err) {
      // restoreLiveState is all or nothing, so the LU still holds what volumeDevice loaded, as after a restart.
      v.log.error({ err }, 'the live SCSI state from the peer does not restore: the logical unit keeps only the persistent reservations its reservation file holds if saved with APTPL (otherwise none), at the ports they were made through; the SCSI-2 reservation, non-APTPL registrations and pending unit attentions of the previous owner are lost');
    }
  }

  /** Planned moves over the front-end heartbeat socket. */
  private peerControl(hb: FrontEndHeartbeat): PeerControl {
    hb.on('move-in', (rg) => {
      this.controller.moveIn(rg).then(
        () => hb.reply(rg, true),
        (err: unknown) => {
          this.o.log.error({ rg, err }, `cannot take ${rg} in from the peer`);
          hb.reply(rg, false);
        },
      );
    });
    hb.on('hand-back', (rg) => {
      // The request is resent until answered: one failback per group at a time, and its answer
      // kept for a few intervals so that a resend arriving after it is answered the same way.
      let pending = this.handBacks.get(rg);
      if (!pending) {
        const failback = this.o.failback ?? ((name: string) => this.controller.failback(name));
        pending = failback(rg).catch((err: unknown) => {
          this.o.log.error({ rg, err }, `cannot hand ${rg} back to the peer`);
          return false;
        });
        const entry = pending;
        this.handBacks.set(rg, entry);
        void entry.then(() => setTimeout(() => this.handBacks.get(rg) === entry && this.handBacks.delete(rg), 5 * this.o.config.heartbeat.intervalMs).unref());
      }
      void pending.then((ok) => hb.replyHandBack(rg, ok));
    });
    return {
      moveIn: (rg) => hb.requestMoveIn(rg, 30_000),
      inSync: async (rg) => this.groupInSync(rg),
    };
  }

  /**
   * Asks the peer to move `rg` back to this node over the front-end heartbeat
   * socket (works whatever protocol version the mirror link runs).
   */
  async requestHandBack(rg: string, timeoutMs: number): Promise<void> {
    if (!this.heartbeat) throw new Error('no front-end heartbeat is configured to ask the peer over');
    await this.heartbeat.requestHandBack(rg, timeoutMs);
  }

  /** Every volume of the group in sync with the peer's copy. */
  private groupInSync(rg: string): boolean {
    const names = this.groupConfig(rg)?.volumes ?? [];
    return names.every((n) => {
      const v = this.volumes.find((x) => x.config.name === n);
      return v !== undefined && this.o.inSync(v.mirrored.status());
    });
  }

  private leasePort(keeper: LeaseKeeper, witness: Witness): LeasePort {
    const nodeId = this.o.config.nodeId;
    return {
      acquire: (rg) => keeper.acquire(rg),
      acquireWait: (rg, timeoutMs) => keeper.waitAndAcquire(rg, { timeoutMs }),
      release: async (rg) => {
        try {
          return await keeper.release(rg);
        } finally {
          void this.guard?.unlease(rg);
        }
      },
      outdatedHere: async (rg) => (await withTimeout(witness.outdated(rg), 500)) === nodeId,
      markPeerOutdatedIfAlone: async (rg) => {
        if (this.groupInSync(rg)) return;
        const peer = this.o.config.peer.nodeId;
        await withTimeout(witness.markOutdated(rg, peer), 500);
        this.outdatedRecorded.set(rg, 'peer');
        this.o.log.info({ rg, outdated: peer }, `${rg}: the peer's copy is recorded outdated on the witness before the takeover`);
      },
      view: async (rg) => {
        const st = keeper.status(rg);
        if (st?.state === 'held' && keeper.canServe(rg)) return { lease: 'ours', witness: st.failures === 0 ? 'reachable' : 'unreachable' };
        try {
          const h = await withTimeout(witness.holder(rg), 500);
          if (st?.state === 'lapsed') return { lease: h && h.node !== nodeId ? 'peer' : 'ours-lapsed', witness: 'reachable' };
          if (h !== null && h.node !== nodeId) return { lease: 'peer', witness: 'reachable', peerLeaseMs: h.ttlMs };
          return { lease: 'free', witness: 'reachable' };
        } catch {
          return { lease: st?.state === 'lapsed' ? 'ours-lapsed' : 'unknown', witness: 'unreachable' };
        }
      },
    };
  }

  async start(): Promise<void> {
    await this.removeLeftoverAliases();
    await this.heartbeat?.start();
    if (this.guard) this.briefGuard(this.guard);
    // The peer's guard says it died: decide now, not at the next poll.
    const onDied = (): void => void this.watch.poll();
    this.heartbeat?.on('died', onDied);
    this.unsubscribe.push(() => this.heartbeat?.off('died', onDied));
    this.watch.start();
    await this.controller.start();
    // Standby groups are decided on every peer change, and again every heartbeat interval while the
    // peer is not alive (the lease it held expires, the witness comes back) or a preferred group waits
    // for the start table (the volumes' handshake with the peer).
    // With the peer alive, groups with failback 'auto' served here for the peer go back once it is in sync.
    let ticks = 0;
    const failbackEvery = Math.max(1, Math.round(1000 / this.o.config.heartbeat.intervalMs));
    this.retry = setInterval(() => {
      this.recordOutdated();
      if (this.watch.state !== 'alive' || this.controller.hasPendingStart()) void this.controller.evaluateAll();
      else if (++ticks % failbackEvery === 0 && !this.o.holdFailback?.()) void this.controller.autoFailback();
    }, this.o.config.heartbeat.intervalMs);
    this.retry.unref();
  }

  /**
   * Keep the witness's outdated record (witness/README.md "Outdated copies")
   * true, every heartbeat interval, writing only changes: the owner of a
   * group marks the peer's copy outdated as soon as one of the group's
   * volumes is not in sync (the links dropped: writes are held for
   * peer.degradeAfterMs before the first is acknowledged alone, so the record
   * normally lands first), and clears it once they all are again; a standby
   * whose copies are all in sync clears a record that still names it (the
   * owner may have died before clearing it).
   */
  private recordOutdated(): void {
    const witness = this.o.witness.witness;
    if (!witness || this.o.witness.mode !== 'witness' || this.recording) return;
    const me = this.o.config.nodeId;
    const peer = this.o.config.peer.nodeId;
    const work: Promise<void>[] = [];
    for (const g of this.controller.status()) {
      const action = outdatedRecordAction(g.state === 'serving', this.groupInSync(g.name));
      if (action === 'leave') continue;
      const want = action === 'mark-peer' ? 'peer' : 'none';
      if (this.outdatedRecorded.get(g.name) === want) continue;
      const op = action === 'mark-peer' ? witness.markOutdated(g.name, peer) : witness.clearOutdated(g.name, action === 'clear-peer' ? peer : me);
      work.push(
        op.then(
          () => {
            this.outdatedRecorded.set(g.name, want);
            this.o.log.info(
              { rg: g.name, outdated: want === 'peer' ? peer : null },
              want === 'peer' ? `${g.name}: the peer's copy is recorded outdated on the witness` : `${g.name}: no copy recorded outdated on the witness`,
            );
          },
          (err: unknown) => this.o.log.error({ rg: g.name, err }, `${g.name}: cannot update the outdated record on the witness; retrying`),
        ),
      );
    }
    if (work.length === 0) return;
    this.recording = true;
    void Promise.all(work).finally(() => {
      this.recording = false;
    });
  }

  /**
   * A node process killed while serving leaves its alias IPs configured (the kernel keeps them), and
   * its interface would go on answering ARP for addresses the peer has taken over. This node serves
   * nothing yet, so they go before anything is decided; a group served here adds them again.
   */
  private async removeLeftoverAliases(): Promise<void> {
    if (!this.aliases) return;
    for (const rg of this.o.config.resourceGroups) {
      for (const alias of rg.aliasIps) {
        try {
          if ((await this.aliases.remove(alias)).changed) this.o.log.warn({ rg: rg.name, alias }, `removed alias ${alias.address} left behind by an earlier run`);
        } catch (err) {
          this.o.log.warn({ rg: rg.name, alias, err }, `cannot check for a leftover alias ${alias.address}`);
        }
      }
    }
  }

  status(): unknown {
    return { peer: this.watch.state, groups: this.controller.status() };
  }

  /** Clean shutdown: stop every group, release the leases, tell the peer 'bye'. */
  async close(): Promise<void> {
    if (this.retry) clearInterval(this.retry);
    for (const u of this.unsubscribe.splice(0)) u();
    this.watch.stop();
    // 'bye' lets the peer take the groups served here over at once (without a witness: at all). Not while
    // one of them is out of sync: the peer's copy lacks writes acknowledged here, it must not serve it.
    const byeSafe = byeAllowed(this.controller.status().map((g) => ({ serving: g.state === 'serving', inSync: this.groupInSync(g.name) })));
    if (!byeSafe) this.o.log.warn("stopping without telling the peer: a group served here is out of sync, the peer's copy must not take it over");
    try {
      await this.controller.stop();
    } finally {
      await this.heartbeat?.stop(byeSafe);
      this.keeper?.close();
      await this.aliases?.removeAll().catch(() => undefined);
      await (this.aliases ? this.aliases.releaseGuard() : this.guard?.release());
      await this.o.witness.witness?.close().catch(() => undefined);
    }
  }
}

function sameVolumes(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\0') === [...b].sort().join('\0');
}

function hostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[(.+)\]|(.+)):(\d+)$/.exec(s)!;
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}
