/**
 * NodePairControl: the PairControl port (../control.ts) of a running node,
 * what the REST API drives. Changes go into the cluster document (store.ts);
 * the node acts on them here and on the peer (sync.ts, reconcile.ts), and
 * the call returns once both have (or at once, with the change applied
 * locally, when the peer is down). What only the peer knows (its sessions,
 * the groups it serves) or can do (move a group it serves, its maintenance)
 * goes over pair-rpc.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { ClusterDocument, ClusterResourceGroup, ClusterVolume } from '../cluster';
import {
  ControlError,
  type AccessInfo,
  type CreatePairRequest,
  type CreateResourceGroupRequest,
  type CreateVolumeRequest,
  type EventRecord,
  type JobInfo,
  type MetricsSnapshot,
  type MirrorInfo,
  type MirrorState,
  type NodeInfo,
  type PairControl,
  type PairInfo,
  type ResourceGroupInfo,
  type ResourceGroupState,
  type SessionInfo,
  type UpdateAccessRequest,
  type UpdateResourceGroupRequest,
  type UpdateVolumeRequest,
  type VerifyRequest,
  type VolumeInfo,
} from '../control';
import { lunUrl, type TwinsanNode } from './node';
import { PAIR_RPC_TOPIC, callPeer, servePairRpc, type PeerSnapshot } from './pair-rpc';
import { CONTROL_SINCE_VERSION } from '../../mirror';

/** How long a volume create waits for its owner to serve it before answering with what there is. */
const CREATE_SERVED_WAIT_MS = 5_000;

export interface PairControlOptions {
  /** This node's API base URL as the peer reaches it (from api.listen); null without an API. */
  readonly apiUrl: string | null;
  /** package.json version. */
  readonly release: string | null;
  /** Prefix of the IQNs of created volumes without an explicit iqn (default iqn.2026-11.io.twinsan:<clusterId>). */
  readonly iqnPrefix?: string;
}

/** How long a change waits for the peer to have applied it before the call returns anyway. */
const PEER_APPLY_WAIT_MS = 15_000;

/** The mirror's replication state to the API's mirror state. */
const MIRROR_STATE: Readonly<Record<string, MirrorState>> = {
  'in-sync': 'in-sync',
  resyncing: 'resyncing',
  degraded: 'degraded',
  'split-brain': 'split-brain',
  connecting: 'degraded',
  unrelated: 'unknown',
  stopped: 'unknown',
};

/** The group state machine's states (state.ts) to the API's. */
const RG_STATE: Readonly<Record<string, ResourceGroupState>> = {
  stopped: 'stopped',
  starting: 'starting',
  serving: 'serving',
  stopping: 'stopping',
  'moving-out': 'moving',
  'moving-in': 'moving',
  failed: 'failed',
};

interface MirrorStatusView {
  readonly replication?: string;
  readonly dirtyBytes?: number;
  readonly resync?: { readonly direction: 'to-peer' | 'from-peer'; readonly bytesDone: number; readonly bytesTotal: number };
}

export class NodePairControl implements PairControl {
  private readonly nodeId: string;
  private readonly peerId: string;
  private readonly unregister: () => void;

  constructor(
    private readonly node: TwinsanNode,
    private readonly o: PairControlOptions,
  ) {
    this.nodeId = node.config.nodeId;
    this.peerId = node.config.peer.nodeId;
    this.unregister = node.mirrorPort().onControl(
      PAIR_RPC_TOPIC,
      servePairRpc({
        snapshot: async () => this.snapshot(),
        move: async ({ rg }) => {
          await this.moveHere(rg);
          return null;
        },
        failback: async ({ rg }) => {
          await this.failbackHere(rg);
          return null;
        },
        maintenance: async ({ on }) => (on ? this.enterLocal() : this.exitLocal()),
        job: async ({ id }) => this.node.jobs.get(id),
      }),
    );
  }

  close(): void {
    this.unregister();
  }

  private get doc(): ClusterDocument {
    return this.node.cluster().document;
  }

  private peerUp(): boolean {
    return this.node.mirrorPort().peerState === 'up';
  }

  /** The peer's snapshot, or null when it cannot be asked. */
  private async peer(): Promise<PeerSnapshot | null> {
    if (!this.peerUp() || !this.node.mirrorPort().controlAvailable) return null;
    try {
      return await callPeer(this.node.mirrorPort(), 'snapshot', {});
    } catch {
      return null;
    }
  }

  /* ------------------------------ this node ------------------------------ */

  private owns(): string[] {
    const c = this.node.groupController();
    return c ? c.status().filter((g) => g.state === 'serving').map((g) => g.name) : [];
  }

  private localSessions(): SessionInfo[] {
    const byIqn = new Map(this.doc.volumes.map((v) => [v.iqn, v.name]));
    return this.node
      .iscsiServer()
      .listSessions()
      .filter((s) => s.target !== null)
      .map((s) => ({
        node: this.nodeId,
        initiator: s.initiatorName,
        target: s.target!,
        volume: byIqn.get(s.target!) ?? '',
        portal: s.localAddress,
        remote: s.remoteAddress,
        // One connection per session (this target does not do MC/S).
        connections: 1,
        since: s.since,
      }));
  }

  private snapshot(): PeerSnapshot {
    const m = this.node.mirrorPort();
    const owns = this.owns();
    const local = this.doc.nodes.find((n) => n.id === this.nodeId);
    const serves = this.node.targets().map((t) => t.name);
    for (const v of this.doc.volumes) if (v.resourceGroup !== null && owns.includes(v.resourceGroup)) serves.push(v.name);
    return {
      id: this.nodeId,
      clusterId: this.node.config.clusterId,
      release: this.o.release,
      state: this.node.jobs.list().some((j) => j.kind === 'evacuate' && j.subject === this.nodeId && j.state === 'running') ? 'evacuating' : local?.maintenance ? 'maintenance' : 'up',
      protocol: { min: m.protocolVersions.min, max: m.protocolVersions.max, negotiated: m.negotiatedVersion },
      maintenance: local?.maintenance ?? false,
      owns,
      serves,
      portals: this.node.config.iscsi.listen,
      sessions: this.localSessions(),
      configVersion: this.doc.version,
    };
  }

  private nodeInfo(s: PeerSnapshot, local: boolean): NodeInfo {
    return { id: s.id, local, state: s.state, api: this.doc.nodes.find((n) => n.id === s.id)?.api ?? (local ? this.o.apiUrl : null), release: s.release, protocol: s.protocol, maintenance: s.maintenance, owns: s.owns };
  }

  private peerInfo(s: PeerSnapshot | null): NodeInfo {
    if (s) return this.nodeInfo(s, false);
    const n = this.doc.nodes.find((x) => x.id === this.peerId);
    return { id: this.peerId, local: false, state: this.peerUp() ? 'unknown' : 'down', api: n?.api ?? null, release: null, protocol: null, maintenance: n?.maintenance ?? false, owns: [] };
  }

  async nodes(): Promise<readonly NodeInfo[]> {
    const peer = await this.peer();
    const mine = [this.nodeInfo(this.snapshot(), true), this.peerInfo(peer)];
    return mine.sort((a, b) => a.id.localeCompare(b.id));
  }

  async pair(): Promise<PairInfo> {
    const peer = await this.peer();
    const doc = this.doc;
    const stats = this.node.mirrorPort().channelStats?.() as { links?: readonly { up?: boolean }[] } | undefined;
    return {
      state: !doc.paired ? 'unpaired' : this.peerUp() ? 'paired' : 'peer-down',
      clusterId: doc.clusterId,
      local: this.nodeInfo(this.snapshot(), true),
      peer: doc.paired || peer ? this.peerInfo(peer) : null,
      configVersion: doc.version,
      peerConfigVersion: peer?.configVersion ?? this.node.clusterSync()?.peerVersion ?? null,
      links: this.node.config.peer.links.map((l, i) => ({ local: l.local, peer: l.peer, up: stats?.links?.[i]?.up === true })),
    };
  }

  async createPair(req: CreatePairRequest): Promise<PairInfo> {
    let url: URL;
    try {
      url = new URL(req.peerApi);
    } catch {
      throw new ControlError('invalid', `${JSON.stringify(req.peerApi)} is not a URL`, { field: 'peerApi' });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ControlError('invalid', 'must be an http:// or https:// URL', { field: 'peerApi' });
    if (this.o.apiUrl === null) throw new ControlError('precondition-failed', `${this.nodeId} has no api.listen in its node config`);
    if (!this.peerUp()) throw new ControlError('peer-unavailable', `${this.peerId} is not reachable over the replication links`);
    // The links are authenticated with the pair secret; the peer's own word on who it is confirms the configured pair.
    const peer = await callPeer(this.node.mirrorPort(), 'snapshot', {});
    if (peer.id !== this.peerId) throw new ControlError('conflict', `the node on the replication links is ${peer.id}, not the configured peer ${this.peerId}`, { field: 'peerApi' });
    if (peer.clusterId !== this.node.config.clusterId) throw new ControlError('conflict', `the peer is in cluster ${peer.clusterId}, not ${this.node.config.clusterId}`, { field: 'peerApi' });
    await this.change({ kind: 'pair-create', apis: { [this.nodeId]: this.o.apiUrl, [this.peerId]: url.toString().replace(/\/$/, '') } });
    return this.pair();
  }

  /**
   * Applies a change here, waits until this node acted on it, then has the peer apply it (when
   * reachable; bounded: past the bound the change stands here and reaches the peer by the retries).
   */
  private async change(change: Parameters<ReturnType<TwinsanNode['cluster']>['apply']>[0]): Promise<void> {
    await this.node.cluster().apply(change);
    await this.node.reconciled();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.node.events.record('config-pending', `the peer has not confirmed configuration version ${this.doc.version} within ${PEER_APPLY_WAIT_MS} ms; it is sent again`, null);
        resolve();
      }, PEER_APPLY_WAIT_MS);
    });
    await Promise.race([this.node.pushConfig(), bound]).finally(() => clearTimeout(timer));
  }

  /* ------------------------------ volumes ------------------------------ */

  private mirrorInfo(v: ClusterVolume): MirrorInfo {
    const open = this.node.openVolumes().find((x) => x.config.id === v.id);
    if (!open) return { state: 'unknown', resyncProgress: null, outOfSyncBytes: 0, syncSource: null };
    const s = open.mirrored.status() as MirrorStatusView;
    const state = MIRROR_STATE[s.replication ?? ''] ?? 'unknown';
    const r = s.resync;
    const progress = state !== 'resyncing' || !r ? null : r.bytesTotal > 0 ? Math.min(1, r.bytesDone / r.bytesTotal) : 0;
    return {
      state,
      resyncProgress: progress,
      outOfSyncBytes: s.dirtyBytes ?? 0,
      syncSource: state === 'resyncing' && r ? (r.direction === 'to-peer' ? this.nodeId : this.peerId) : null,
    };
  }

  private volumeInfo(v: ClusterVolume, peer: PeerSnapshot | null, sessions: readonly SessionInfo[]): VolumeInfo {
    const servedHere = this.node.targets().some((t) => t.volumeId === v.id) || (v.resourceGroup !== null && this.owns().includes(v.resourceGroup));
    const owner = servedHere ? this.nodeId : peer?.serves.includes(v.name) ? this.peerId : null;
    const rg = v.resourceGroup !== null ? this.doc.resourceGroups.find((g) => g.name === v.resourceGroup) : undefined;
    const portals = rg ? rg.aliasIps.map((a) => `${a.address.includes(':') ? `[${a.address}]` : a.address}:${portOf(this.node.config.iscsi.listen[0]!)}`) : owner === this.nodeId ? this.node.config.iscsi.listen : owner === this.peerId ? (peer?.portals ?? []) : [];
    return {
      name: v.name,
      id: v.id,
      iqn: v.iqn,
      sizeBytes: v.sizeBytes,
      thin: v.thin,
      blockSize: v.blockSize,
      resourceGroup: v.resourceGroup,
      owner,
      mirror: this.mirrorInfo(v),
      sessions: sessions.filter((s) => s.target === v.iqn).length,
      urls: portals.map((p) => lunUrl(p, v.iqn)),
    };
  }

  private async allSessions(peer: PeerSnapshot | null): Promise<SessionInfo[]> {
    return [...this.localSessions(), ...(peer?.sessions ?? [])];
  }

  private volumeNamed(name: string): ClusterVolume {
    const v = this.doc.volumes.find((x) => x.name === name);
    if (!v) throw new ControlError('not-found', `no volume named ${JSON.stringify(name)}`);
    return v;
  }

  async volumes(): Promise<readonly VolumeInfo[]> {
    const peer = await this.peer();
    const sessions = await this.allSessions(peer);
    return this.doc.volumes.map((v) => this.volumeInfo(v, peer, sessions));
  }

  async volume(name: string): Promise<VolumeInfo> {
    const v = this.volumeNamed(name);
    const peer = await this.peer();
    return this.volumeInfo(v, peer, await this.allSessions(peer));
  }

  async createVolume(req: CreateVolumeRequest): Promise<VolumeInfo> {
    const rgName = req.resourceGroup ?? null;
    const rg = rgName !== null ? this.doc.resourceGroups.find((g) => g.name === rgName) : undefined;
    if (rgName !== null && !rg) throw new ControlError('invalid', `no resource group named ${JSON.stringify(rgName)}`, { field: 'resourceGroup' });
    if (rg && req.owner !== undefined && req.owner !== rg.preferredNode) {
      throw new ControlError('invalid', `a volume of ${rg.name} is served by the group (its preferred node is ${rg.preferredNode})`, { field: 'owner' });
    }
    if (!rg && req.owner === undefined) throw new ControlError('invalid', 'a volume in no resource group needs the node that serves it', { field: 'owner' });
    const blockSize = req.blockSize ?? 512;
    const volume: ClusterVolume = {
      id: randomUUID(),
      name: req.name,
      iqn: req.iqn ?? `${this.o.iqnPrefix ?? defaultIqnPrefix(this.doc.clusterId)}.${req.name.toLowerCase()}`,
      sizeBytes: req.sizeBytes,
      thin: req.thin,
      blockSize,
      physicalBlockSize: blockSize,
      resourceGroup: rgName,
      owner: rg ? rg.preferredNode : req.owner!,
      access: { allowedInitiators: null, chap: null, mutualChap: null },
    };
    await this.change({ kind: 'volume-create', volume });
    // The owner opens and serves the new volume right after it applies the change; answer once it does (bounded),
    // so the reply names the node serving it and its URL, not an owner still starting.
    const deadline = Date.now() + CREATE_SERVED_WAIT_MS;
    for (;;) {
      const info = await this.volume(req.name);
      if (info.owner !== null || Date.now() >= deadline) return info;
      await delay(50);
    }
  }

  async updateVolume(name: string, req: UpdateVolumeRequest): Promise<VolumeInfo> {
    const v = this.volumeNamed(name);
    if (req.sizeBytes !== undefined && req.sizeBytes !== v.sizeBytes) await this.change({ kind: 'volume-grow', name, sizeBytes: req.sizeBytes });
    return this.volume(name);
  }

  async deleteVolume(name: string, options: { readonly force: boolean }): Promise<void> {
    const v = this.volumeNamed(name);
    const peer = await this.peer();
    const inUse = (await this.allSessions(peer)).filter((s) => s.target === v.iqn);
    if (inUse.length > 0 && !options.force) {
      throw new ControlError('precondition-failed', `volume ${name} has ${inUse.length} initiator session(s) logged in (${[...new Set(inUse.map((s) => s.initiator))].join(', ')}); log them out or force`);
    }
    await this.change({ kind: 'volume-delete', name });
  }

  /* ------------------------------ resource groups ------------------------------ */

  private groupInfo(g: ClusterResourceGroup, peer: PeerSnapshot | null): ResourceGroupInfo {
    const local = this.node.groupController()?.status().find((x) => x.name === g.name);
    const servingHere = local?.state === 'serving';
    const owner = servingHere ? this.nodeId : peer?.owns.includes(g.name) ? this.peerId : null;
    const state: ResourceGroupState = local && local.state !== 'stopped' ? (RG_STATE[local.state] ?? 'failed') : owner === this.peerId ? 'serving' : local ? 'stopped' : 'unowned';
    return {
      name: g.name,
      owner,
      preferredNode: g.preferredNode,
      aliasIps: g.aliasIps,
      volumes: this.doc.volumes.filter((v) => v.resourceGroup === g.name).map((v) => v.name),
      state,
      failback: g.failback,
    };
  }

  private groupNamed(name: string): ClusterResourceGroup {
    const g = this.doc.resourceGroups.find((x) => x.name === name);
    if (!g) throw new ControlError('not-found', `no resource group named ${JSON.stringify(name)}`);
    return g;
  }

  async resourceGroups(): Promise<readonly ResourceGroupInfo[]> {
    const peer = await this.peer();
    return this.doc.resourceGroups.map((g) => this.groupInfo(g, peer));
  }

  async resourceGroup(name: string): Promise<ResourceGroupInfo> {
    return this.groupInfo(this.groupNamed(name), await this.peer());
  }

  async createResourceGroup(req: CreateResourceGroupRequest): Promise<ResourceGroupInfo> {
    await this.change({ kind: 'rg-create', group: { name: req.name, preferredNode: req.preferredNode, aliasIps: req.aliasIps, failback: req.failback ?? 'auto' } });
    return this.resourceGroup(req.name);
  }

  async updateResourceGroup(name: string, req: UpdateResourceGroupRequest): Promise<ResourceGroupInfo> {
    this.groupNamed(name);
    await this.change({
      kind: 'rg-update',
      name,
      ...(req.preferredNode !== undefined ? { preferredNode: req.preferredNode } : {}),
      ...(req.aliasIps !== undefined ? { aliasIps: req.aliasIps } : {}),
      ...(req.failback !== undefined ? { failback: req.failback } : {}),
    });
    return this.resourceGroup(name);
  }

  async deleteResourceGroup(name: string): Promise<void> {
    this.groupNamed(name);
    // Refused while it has volumes (changes.ts); its alias IPs go with it on the node serving it.
    await this.change({ kind: 'rg-delete', name });
  }

  private servingHere(rg: string): boolean {
    return this.node.groupController()?.status().find((g) => g.name === rg)?.state === 'serving';
  }

  private async moveHere(rg: string): Promise<void> {
    this.groupNamed(rg);
    if (!this.servingHere(rg)) throw new ControlError('precondition-failed', `${rg} is not served by ${this.nodeId}`);
    await this.node.move(rg).catch((err: unknown) => {
      throw new ControlError('precondition-failed', `move of ${rg} refused: ${(err as Error).message}`);
    });
  }

  private async failbackHere(rg: string): Promise<void> {
    const g = this.groupNamed(rg);
    if (!this.servingHere(rg)) throw new ControlError('precondition-failed', `${rg} is not served by ${this.nodeId}`);
    if (g.preferredNode === this.nodeId) throw new ControlError('precondition-failed', `${rg} is already on its preferred node ${this.nodeId}`);
    const moved = await this.node.failback(rg).catch((err: unknown) => {
      throw new ControlError('precondition-failed', `failback of ${rg} refused: ${(err as Error).message}`);
    });
    if (!moved) throw new ControlError('precondition-failed', `${rg} was not moved back`);
  }

  async moveResourceGroup(name: string): Promise<ResourceGroupInfo> {
    this.groupNamed(name);
    if (this.servingHere(name)) await this.moveHere(name);
    else await callPeer(this.node.mirrorPort(), 'move', { rg: name }, 60_000);
    return this.resourceGroup(name);
  }

  async failbackResourceGroup(name: string): Promise<ResourceGroupInfo> {
    this.groupNamed(name);
    if (this.servingHere(name)) await this.failbackHere(name);
    else await callPeer(this.node.mirrorPort(), 'failback', { rg: name }, 60_000);
    return this.resourceGroup(name);
  }

  /* ------------------------------ maintenance ------------------------------ */

  private checkNodeId(nodeId: string): void {
    if (nodeId !== this.nodeId && nodeId !== this.peerId) throw new ControlError('not-found', `no node ${JSON.stringify(nodeId)} in the pair`);
  }

  /** Maintenance of this node: flag it, then move every group it serves to the peer, one by one. */
  private async enterLocal(): Promise<JobInfo> {
    await this.change({ kind: 'node-update', id: this.nodeId, maintenance: true });
    return this.node.jobs.start('evacuate', this.nodeId, async (ctx) => {
      const groups = this.owns();
      const moved: string[] = [];
      for (const rg of groups) {
        await this.moveHere(rg);
        moved.push(rg);
        ctx.progress(moved.length / groups.length);
      }
      return { moved };
    });
  }

  /** End of maintenance: clear the flag; the peer moves this node's preferred groups back once they are in sync. */
  private async exitLocal(): Promise<JobInfo> {
    await this.change({ kind: 'node-update', id: this.nodeId, maintenance: false });
    return this.node.jobs.start('failback', this.nodeId, async (ctx) => {
      const mine = this.doc.resourceGroups.filter((g) => g.preferredNode === this.nodeId).map((g) => g.name);
      const back: string[] = [];
      for (const rg of mine) {
        if (!this.servingHere(rg)) {
          await this.waitInSync(rg);
          await this.askPeerToFailBack(rg);
        }
        back.push(rg);
        ctx.progress(back.length / Math.max(1, mine.length));
      }
      return { failedBack: back };
    });
  }

  /**
   * The peer moves `rg` back here: through pair-rpc on a link that carries
   * control messages, else (a peer of an older release, protocol 1) through
   * the front-end heartbeat's hand-back request, which every version has.
   */
  private async askPeerToFailBack(rg: string): Promise<void> {
    const negotiated = this.node.mirrorPort().negotiatedVersion;
    if (negotiated === null || negotiated >= CONTROL_SINCE_VERSION) {
      await callPeer(this.node.mirrorPort(), 'failback', { rg }, 60_000);
      return;
    }
    await this.node.requestHandBack(rg, 60_000).catch((err: unknown) => {
      throw new ControlError('peer-unavailable', `failback of ${rg} over the front-end heartbeat (the link runs protocol ${negotiated}): ${(err as Error).message}`);
    });
  }

  /** Waits (bounded) until every volume of the group is in sync here. */
  private async waitInSync(rg: string, timeoutMs = 10 * 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ids = new Set(this.doc.volumes.filter((v) => v.resourceGroup === rg).map((v) => v.id));
      const vols = this.node.status().volumes.filter((v) => ids.has(v.id));
      if (vols.every((v) => v.inSync)) return;
      if (Date.now() > deadline) throw new Error(`${rg} was not in sync within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** A job here that follows one running on the peer. */
  private followPeerJob(remote: JobInfo): JobInfo {
    return this.node.jobs.start(remote.kind, remote.subject, async (ctx) => {
      for (;;) {
        const j = await callPeer(this.node.mirrorPort(), 'job', { id: remote.id });
        ctx.progress(j.progress);
        if (j.state === 'done') return j.result;
        if (j.state === 'failed') throw new Error(j.error ?? 'failed on the peer');
        await new Promise((r) => setTimeout(r, 500));
      }
    });
  }

  async enterMaintenance(nodeId: string): Promise<JobInfo> {
    this.checkNodeId(nodeId);
    if (nodeId === this.nodeId) return this.enterLocal();
    return this.followPeerJob(await callPeer(this.node.mirrorPort(), 'maintenance', { on: true }));
  }

  async exitMaintenance(nodeId: string): Promise<JobInfo> {
    this.checkNodeId(nodeId);
    if (nodeId === this.nodeId) return this.exitLocal();
    return this.followPeerJob(await callPeer(this.node.mirrorPort(), 'maintenance', { on: false }));
  }

  /* ------------------------------ access ------------------------------ */

  private accessInfo(v: ClusterVolume): AccessInfo {
    return {
      volume: v.name,
      allowedInitiators: v.access.allowedInitiators,
      chap: v.access.chap ? { user: v.access.chap.user, secretSet: true } : null,
      mutualChap: v.access.mutualChap ? { user: v.access.mutualChap.user, secretSet: true } : null,
    };
  }

  async access(volume: string): Promise<AccessInfo> {
    return this.accessInfo(this.volumeNamed(volume));
  }

  async updateAccess(volume: string, req: UpdateAccessRequest): Promise<AccessInfo> {
    this.volumeNamed(volume);
    await this.change({
      kind: 'access-update',
      name: volume,
      ...(req.allowedInitiators !== undefined ? { allowedInitiators: req.allowedInitiators } : {}),
      ...(req.chap !== undefined ? { chap: req.chap } : {}),
      ...(req.mutualChap !== undefined ? { mutualChap: req.mutualChap } : {}),
    });
    return this.access(volume);
  }

  /* ------------------------------ sessions, jobs, events, metrics ------------------------------ */

  async sessions(): Promise<readonly SessionInfo[]> {
    return this.allSessions(await this.peer());
  }

  async verify(volume: string, req: VerifyRequest): Promise<JobInfo> {
    const v = this.volumeNamed(volume);
    const open = this.node.openVolumes().find((x) => x.config.id === v.id);
    if (!open) throw new ControlError('precondition-failed', `volume ${volume} is not open on ${this.nodeId}`);
    if (this.mirrorInfo(v).state !== 'in-sync') throw new ControlError('precondition-failed', `volume ${volume} is not in sync (verify compares two in-sync copies)`);
    return this.node.jobs.start('verify', volume, async () => {
      const report = await open.mirrored.verify({ ...(req.algorithm ? { algorithm: req.algorithm } : {}), resyncDifferences: req.repair ?? false });
      const differences = report.differing.reduce((n, r) => n + r.length, 0);
      this.node.events.record('verify', `verify of ${volume}: ${report.regionsChecked} regions, ${differences} bytes differ${report.resynced ? ' (repaired)' : ''}`, volume);
      return { regionsChecked: report.regionsChecked, differences, differingRanges: report.differing, repaired: report.resynced };
    });
  }

  async jobs(): Promise<readonly JobInfo[]> {
    return this.node.jobs.list();
  }

  async job(id: string): Promise<JobInfo> {
    return this.node.jobs.get(id);
  }

  async events(after: number, limit: number): Promise<readonly EventRecord[]> {
    return this.node.events.after(after, limit);
  }

  subscribe(listener: (event: EventRecord) => void): () => void {
    return this.node.events.subscribe(listener);
  }

  metrics(): MetricsSnapshot {
    const mirror = this.node.openVolumes().map((v) => {
      const info = this.mirrorInfo({ id: v.config.id } as ClusterVolume);
      return { volume: v.config.name, outOfSyncBytes: info.outOfSyncBytes, resyncProgress: info.resyncProgress };
    });
    return {
      volumes: this.node.io.snapshot(),
      sessions: this.node.iscsiServer().listSessions().filter((s) => s.target !== null).length,
      mirror,
      failovers: this.node.counters.failovers,
      moves: this.node.counters.moves,
    };
  }
}

function portOf(listen: string): number {
  return Number(/:(\d+)$/.exec(listen)?.[1] ?? 3260);
}

/** iqn.2026-11.io.twinsan:<cluster id in lower case, other characters as '-'>. */
export function defaultIqnPrefix(clusterId: string): string {
  return `iqn.2026-11.io.twinsan:${clusterId.toLowerCase().replace(/[^a-z0-9.-]/g, '-')}`;
}
