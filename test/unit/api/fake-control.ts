/**
 * An in-memory PairControl for the API's tests (and the dashboard test):
 * two nodes, resource groups and volumes held in maps, ControlErrors where
 * the real node refuses, every call recorded in `calls` (secrets included,
 * so tests can check they arrived and went no further).
 */
import { ControlError } from '../../../src/resource-groups';
import type {
  AccessInfo,
  CreatePairRequest,
  CreateResourceGroupRequest,
  CreateVolumeRequest,
  EventRecord,
  JobInfo,
  MetricsSnapshot,
  NodeInfo,
  PairControl,
  PairInfo,
  ResourceGroupInfo,
  SessionInfo,
  UpdateAccessRequest,
  UpdateResourceGroupRequest,
  UpdateVolumeRequest,
  VerifyRequest,
  VolumeInfo,
} from '../../../src/resource-groups';

export interface Call {
  readonly method: string;
  readonly args: readonly unknown[];
}

const T0 = '2026-11-22T05:00:00.000Z';

export class FakeControl implements PairControl {
  readonly calls: Call[] = [];
  private readonly listeners = new Set<(event: EventRecord) => void>();
  private readonly eventLog: EventRecord[] = [];
  private readonly groups = new Map<string, ResourceGroupInfo>();
  private readonly vols = new Map<string, VolumeInfo>();
  private readonly acl = new Map<string, { allowed: readonly string[] | null; chap: { user: string; secret: string } | null; mutual: { user: string; secret: string } | null }>();
  private readonly jobList = new Map<string, JobInfo>();
  private jobSeq = 0;
  private maintenanceOn = new Set<string>();
  paired = true;
  /** When set, the next call throws it (for error mapping tests). */
  failNext: unknown = null;
  sessionList: SessionInfo[] = [
    {
      node: 'node-a',
      initiator: 'iqn.1998-01.com.vmware:esx-01',
      target: 'iqn.2026-11.io.twinsan:vol1',
      volume: 'vol1',
      portal: '198.18.0.50:3260',
      remote: '198.18.0.10:51234',
      connections: 1,
      since: T0,
    },
  ];
  metricsSnapshot: MetricsSnapshot = {
    volumes: [
      {
        volume: 'vol1',
        readOps: 10,
        writeOps: 20,
        readBytes: 40960,
        writeBytes: 81920,
        latency: { bounds: [0.001, 0.01, 0.1], counts: [5, 25, 30], sum: 0.12, count: 30 },
      },
    ],
    sessions: 1,
    mirror: [
      { volume: 'vol1', outOfSyncBytes: 0, resyncProgress: null },
      { volume: 'vol2', outOfSyncBytes: 1048576, resyncProgress: 0.25 },
    ],
    failovers: 2,
    moves: 3,
  };

  constructor() {
    this.groups.set('rg-a', {
      name: 'rg-a',
      owner: 'node-a',
      preferredNode: 'node-a',
      aliasIps: [{ address: '198.18.0.50', prefix: 24, interface: 'eth1' }],
      volumes: ['vol1'],
      state: 'serving',
      failback: 'auto',
    });
    this.groups.set('rg-b', {
      name: 'rg-b',
      owner: 'node-b',
      preferredNode: 'node-b',
      aliasIps: [{ address: '198.18.0.51', prefix: 24, interface: 'eth1' }],
      volumes: ['vol2'],
      state: 'serving',
      failback: 'manual',
    });
    this.vols.set('vol1', this.makeVolume({ name: 'vol1', sizeBytes: 1 << 30, thin: true, resourceGroup: 'rg-a' }, 'in-sync', null));
    this.vols.set('vol2', this.makeVolume({ name: 'vol2', sizeBytes: 2 * 2 ** 30, thin: false, resourceGroup: 'rg-b' }, 'resyncing', 0.25));
  }

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failNext !== null) {
      const err = this.failNext;
      this.failNext = null;
      throw err;
    }
  }

  callsTo(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  emit(kind: string, message: string, subject: string | null = null): EventRecord {
    const event: EventRecord = { seq: this.eventLog.length + 1, at: new Date(Date.parse(T0) + this.eventLog.length * 1000).toISOString(), node: 'node-a', kind, message, subject };
    this.eventLog.push(event);
    for (const l of this.listeners) l(event);
    return event;
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  private node(id: string): NodeInfo {
    return {
      id,
      local: id === 'node-a',
      state: this.maintenanceOn.has(id) ? 'maintenance' : 'up',
      api: id === 'node-a' ? 'https://198.18.0.1:8443' : 'https://198.18.0.2:8443',
      release: '0.1.0',
      protocol: { min: 1, max: 2, negotiated: 2 },
      maintenance: this.maintenanceOn.has(id),
      owns: [...this.groups.values()].filter((g) => g.owner === id).map((g) => g.name),
    };
  }

  private makeVolume(req: CreateVolumeRequest, state: VolumeInfo['mirror']['state'], progress: number | null): VolumeInfo {
    const rg = req.resourceGroup == null ? undefined : this.groups.get(req.resourceGroup);
    return {
      name: req.name,
      id: `00000000-0000-4000-8000-${String(this.vols.size + 1).padStart(12, '0')}`,
      iqn: req.iqn ?? `iqn.2026-11.io.twinsan:${req.name}`,
      sizeBytes: req.sizeBytes,
      thin: req.thin,
      blockSize: req.blockSize ?? 512,
      resourceGroup: req.resourceGroup ?? null,
      owner: rg === undefined ? (req.owner ?? null) : rg.owner,
      mirror: { state, resyncProgress: progress, outOfSyncBytes: progress === null ? 0 : 1048576, syncSource: progress === null ? null : 'node-b' },
      sessions: req.name === 'vol1' ? 1 : 0,
      urls: (rg?.aliasIps ?? []).map((ip) => `iscsi://${ip.address}:3260/${req.iqn ?? `iqn.2026-11.io.twinsan:${req.name}`}/0`),
    };
  }

  private startJob(kind: JobInfo['kind'], subject: string, result: JobInfo['result']): JobInfo {
    this.jobSeq += 1;
    const job: JobInfo = { id: `job-${this.jobSeq}`, kind, subject, state: 'running', progress: 0, startedAt: T0, finishedAt: null, error: null, result };
    this.jobList.set(job.id, job);
    return job;
  }

  private getGroup(name: string): ResourceGroupInfo {
    const rg = this.groups.get(name);
    if (rg === undefined) throw new ControlError('not-found', `no resource group ${name}`);
    return rg;
  }

  private getVolume(name: string): VolumeInfo {
    const v = this.vols.get(name);
    if (v === undefined) throw new ControlError('not-found', `no volume ${name}`);
    return v;
  }

  private checkNode(id: string): void {
    if (id !== 'node-a' && id !== 'node-b') throw new ControlError('not-found', `no node ${id}`);
  }

  async nodes(): Promise<readonly NodeInfo[]> {
    this.record('nodes');
    return [this.node('node-a'), this.node('node-b')];
  }

  async pair(): Promise<PairInfo> {
    this.record('pair');
    return {
      state: this.paired ? 'paired' : 'unpaired',
      clusterId: 'c0ffee00-0000-4000-8000-000000000001',
      local: this.node('node-a'),
      peer: this.paired ? this.node('node-b') : null,
      configVersion: 7,
      peerConfigVersion: this.paired ? 7 : null,
      links: [{ local: '198.18.1.1:7001', peer: '198.18.1.2:7001', up: true }],
    };
  }

  async createPair(req: CreatePairRequest): Promise<PairInfo> {
    this.record('createPair', req);
    if (this.paired) throw new ControlError('conflict', 'this node is already paired');
    this.paired = true;
    return this.pair();
  }

  async volumes(): Promise<readonly VolumeInfo[]> {
    this.record('volumes');
    return [...this.vols.values()];
  }

  async volume(name: string): Promise<VolumeInfo> {
    this.record('volume', name);
    return this.getVolume(name);
  }

  async createVolume(req: CreateVolumeRequest): Promise<VolumeInfo> {
    this.record('createVolume', req);
    if (this.vols.has(req.name)) throw new ControlError('conflict', `volume ${req.name} exists`, { field: 'name' });
    if (req.resourceGroup == null) {
      if (req.owner === undefined) throw new ControlError('invalid', 'a volume without a resource group needs an owner', { field: 'owner' });
      this.checkNode(req.owner);
    } else {
      if (req.owner !== undefined) throw new ControlError('invalid', 'a volume in a resource group is served by the group\'s owner; leave owner out', { field: 'owner' });
      if (!this.groups.has(req.resourceGroup)) throw new ControlError('invalid', `no resource group ${req.resourceGroup}`, { field: 'resourceGroup' });
    }
    const v = this.makeVolume(req, 'in-sync', null);
    this.vols.set(v.name, v);
    this.emit('volume-created', `volume ${v.name} created`, v.name);
    return v;
  }

  async updateVolume(name: string, req: UpdateVolumeRequest): Promise<VolumeInfo> {
    this.record('updateVolume', name, req);
    const v = this.getVolume(name);
    if (req.sizeBytes !== undefined && req.sizeBytes < v.sizeBytes) throw new ControlError('invalid', 'volumes only grow', { field: 'sizeBytes' });
    const next = { ...v, sizeBytes: req.sizeBytes ?? v.sizeBytes };
    this.vols.set(name, next);
    return next;
  }

  async deleteVolume(name: string, options: { readonly force: boolean }): Promise<void> {
    this.record('deleteVolume', name, options);
    const v = this.getVolume(name);
    if (v.sessions > 0 && !options.force) throw new ControlError('precondition-failed', `volume ${name} has ${v.sessions} initiator(s) logged in; use force`);
    this.vols.delete(name);
  }

  async resourceGroups(): Promise<readonly ResourceGroupInfo[]> {
    this.record('resourceGroups');
    return [...this.groups.values()];
  }

  async resourceGroup(name: string): Promise<ResourceGroupInfo> {
    this.record('resourceGroup', name);
    return this.getGroup(name);
  }

  async createResourceGroup(req: CreateResourceGroupRequest): Promise<ResourceGroupInfo> {
    this.record('createResourceGroup', req);
    if (this.groups.has(req.name)) throw new ControlError('conflict', `resource group ${req.name} exists`, { field: 'name' });
    const rg: ResourceGroupInfo = { name: req.name, owner: req.preferredNode, preferredNode: req.preferredNode, aliasIps: req.aliasIps, volumes: [], state: 'serving', failback: req.failback ?? 'auto' };
    this.groups.set(rg.name, rg);
    return rg;
  }

  async updateResourceGroup(name: string, req: UpdateResourceGroupRequest): Promise<ResourceGroupInfo> {
    this.record('updateResourceGroup', name, req);
    const rg = this.getGroup(name);
    const next = { ...rg, ...req };
    this.groups.set(name, next);
    return next;
  }

  async deleteResourceGroup(name: string): Promise<void> {
    this.record('deleteResourceGroup', name);
    const rg = this.getGroup(name);
    if (rg.volumes.length > 0) throw new ControlError('precondition-failed', `resource group ${name} still holds volumes`);
    this.groups.delete(name);
  }

  async moveResourceGroup(name: string): Promise<ResourceGroupInfo> {
    this.record('moveResourceGroup', name);
    const rg = this.getGroup(name);
    const next = { ...rg, owner: rg.owner === 'node-a' ? 'node-b' : 'node-a' };
    this.groups.set(name, next);
    this.emit('move', `${name} moved to ${next.owner}`, name);
    return next;
  }

  async failbackResourceGroup(name: string): Promise<ResourceGroupInfo> {
    this.record('failbackResourceGroup', name);
    const rg = this.getGroup(name);
    const next = { ...rg, owner: rg.preferredNode };
    this.groups.set(name, next);
    return next;
  }

  async enterMaintenance(nodeId: string): Promise<JobInfo> {
    this.record('enterMaintenance', nodeId);
    this.checkNode(nodeId);
    this.maintenanceOn.add(nodeId);
    return this.startJob('evacuate', nodeId, { moved: [] });
  }

  async exitMaintenance(nodeId: string): Promise<JobInfo> {
    this.record('exitMaintenance', nodeId);
    this.checkNode(nodeId);
    if (!this.maintenanceOn.delete(nodeId)) throw new ControlError('precondition-failed', `node ${nodeId} is not in maintenance`);
    return this.startJob('failback', nodeId, null);
  }

  async access(volume: string): Promise<AccessInfo> {
    this.record('access', volume);
    this.getVolume(volume);
    return this.accessInfo(volume);
  }

  private accessInfo(volume: string): AccessInfo {
    const a = this.acl.get(volume);
    return {
      volume,
      allowedInitiators: a?.allowed ?? null,
      chap: a?.chap ? { user: a.chap.user, secretSet: true } : null,
      mutualChap: a?.mutual ? { user: a.mutual.user, secretSet: true } : null,
    };
  }

  async updateAccess(volume: string, req: UpdateAccessRequest): Promise<AccessInfo> {
    this.record('updateAccess', volume, req);
    this.getVolume(volume);
    const prior = this.acl.get(volume) ?? { allowed: null, chap: null, mutual: null };
    const chap = req.chap === undefined ? prior.chap : req.chap === null ? null : { ...req.chap };
    const next = {
      allowed: req.allowedInitiators === undefined ? prior.allowed : req.allowedInitiators,
      chap,
      mutual: chap === null ? null : req.mutualChap === undefined ? prior.mutual : req.mutualChap === null ? null : { ...req.mutualChap },
    };
    this.acl.set(volume, next);
    return this.accessInfo(volume);
  }

  async sessions(): Promise<readonly SessionInfo[]> {
    this.record('sessions');
    return this.sessionList;
  }

  async verify(volume: string, req: VerifyRequest): Promise<JobInfo> {
    this.record('verify', volume, req);
    this.getVolume(volume);
    return this.startJob('verify', volume, null);
  }

  async jobs(): Promise<readonly JobInfo[]> {
    this.record('jobs');
    return [...this.jobList.values()];
  }

  async job(id: string): Promise<JobInfo> {
    this.record('job', id);
    const job = this.jobList.get(id);
    if (job === undefined) throw new ControlError('not-found', `no job ${id}`);
    return job;
  }

  async events(after: number, limit: number): Promise<readonly EventRecord[]> {
    this.record('events', after, limit);
    return this.eventLog.filter((e) => e.seq > after).slice(0, limit);
  }

  subscribe(listener: (event: EventRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  metrics(): MetricsSnapshot {
    this.record('metrics');
    return this.metricsSnapshot;
  }
}
