/**
 * PairControl: everything the REST API (src/api) can read or change on the
 * pair, as plain data. The running node implements it (with the pair-wide,
 * versioned cluster configuration); unit tests of the API use a fake. The
 * API translates HTTP to these calls and ControlError codes to status
 * codes; nothing here knows about HTTP.
 *
 * Secrets (CHAP) go in through this port and never come out: every *Info
 * shape says only whether a secret is set.
 */

/* ------------------------------ errors ------------------------------ */

/** Why a control call was refused; the API maps each code to one HTTP status (400, 404, 409, 412, 503). */
export const CONTROL_ERROR_CODES = [
  /** A field is missing or wrong beyond what the JSON schema checks (details.field names it). */
  'invalid',
  /** No such volume, resource group, node, job. */
  'not-found',
  /** Exists already (a name, an IQN, an alias IP in use). */
  'conflict',
  /** Refused in the current state: volume in use by logged-in initiators, pair not formed, peer down, RG moving. */
  'precondition-failed',
  /** The peer could not be reached to apply a pair-wide change that needs it now. */
  'peer-unavailable',
] as const;
export type ControlErrorCode = (typeof CONTROL_ERROR_CODES)[number];

export function isControlErrorCode(code: unknown): code is ControlErrorCode {
  return typeof code === 'string' && (CONTROL_ERROR_CODES as readonly string[]).includes(code);
}

export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
    /** field: the request field at fault ("sizeBytes", "aliasIps[0].address"). */
    readonly details: { readonly field?: string } & Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

/* ------------------------------ nodes and pair ------------------------------ */

export type NodeState = 'up' | 'down' | 'maintenance' | 'evacuating' | 'unknown';

export interface NodeInfo {
  readonly id: string;
  /** This node (the one answering) or its peer. */
  readonly local: boolean;
  readonly state: NodeState;
  /** The node's API base URL as its peer reaches it; null while unknown. */
  readonly api: string | null;
  /** Software release (package.json version). */
  readonly release: string | null;
  /** Replication protocol version range the node speaks, and the one in use with its peer. */
  readonly protocol: { readonly min: number; readonly max: number; readonly negotiated: number | null } | null;
  readonly maintenance: boolean;
  /** Resource groups this node owns now. */
  readonly owns: readonly string[];
}

export type PairState = 'unpaired' | 'paired' | 'peer-down';

export interface PairInfo {
  readonly state: PairState;
  readonly clusterId: string;
  readonly local: NodeInfo;
  readonly peer: NodeInfo | null;
  /** The pair-wide configuration version here, and the peer's as last seen (null: unknown). */
  readonly configVersion: number;
  readonly peerConfigVersion: number | null;
  /** The replication links: this node's end, the peer's end, whether it is up. */
  readonly links: readonly { readonly local: string; readonly peer: string; readonly up: boolean }[];
}

/** POST /api/v1/pair: point this node at its peer's API (the replication links come from the node config). */
export interface CreatePairRequest {
  /** The peer's API base URL, e.g. "https://198.18.0.2:8443". */
  readonly peerApi: string;
}

/* ------------------------------ volumes ------------------------------ */

export type MirrorState = 'in-sync' | 'resyncing' | 'degraded' | 'split-brain' | 'unknown';

export interface MirrorInfo {
  readonly state: MirrorState;
  /** 0..1 while resyncing, else null. */
  readonly resyncProgress: number | null;
  /** Bytes known to differ from the peer's copy (dirty bitmap). */
  readonly outOfSyncBytes: number;
  /** Which direction data flows when resyncing: the node that is the sync source. */
  readonly syncSource: string | null;
}

export interface VolumeInfo {
  readonly name: string;
  /** UUID: the root of the LU identity, the same on both nodes. */
  readonly id: string;
  readonly iqn: string;
  readonly sizeBytes: number;
  readonly thin: boolean;
  readonly blockSize: 512 | 4096;
  /** null: a volume in no resource group, served by its owner on that node's iSCSI portals and never moved. */
  readonly resourceGroup: string | null;
  /** The node serving the volume now (its RG's owner); null when nobody serves it. */
  readonly owner: string | null;
  readonly mirror: MirrorInfo;
  /** Initiators logged in to the volume's target now. */
  readonly sessions: number;
  /** iscsi://alias:3260/iqn/0 for each alias IP of the volume's RG. */
  readonly urls: readonly string[];
}

export interface CreateVolumeRequest {
  readonly name: string;
  readonly sizeBytes: number;
  readonly thin: boolean;
  /** The group that serves it on its alias IPs; leave it out (or null) for a volume served by `owner` on its iSCSI portals. */
  readonly resourceGroup?: string | null;
  /** Without a resource group: the node that serves the volume (required then; refused with one). */
  readonly owner?: string;
  /** Defaults: 512; iqn derived from the cluster's IQN prefix and the name. */
  readonly blockSize?: 512 | 4096;
  readonly iqn?: string;
}

export interface UpdateVolumeRequest {
  /** Online resize; grow only. Initiators get CAPACITY DATA HAS CHANGED. */
  readonly sizeBytes?: number;
}

/* ------------------------------ resource groups ------------------------------ */

export interface AliasIp {
  readonly address: string;
  readonly prefix: number;
  readonly interface: string;
}

export type ResourceGroupState = 'serving' | 'starting' | 'stopping' | 'moving' | 'stopped' | 'failed' | 'unowned';

export interface ResourceGroupInfo {
  readonly name: string;
  readonly owner: string | null;
  readonly preferredNode: string;
  readonly aliasIps: readonly AliasIp[];
  readonly volumes: readonly string[];
  readonly state: ResourceGroupState;
  readonly failback: 'auto' | 'manual';
}

export interface CreateResourceGroupRequest {
  readonly name: string;
  readonly preferredNode: string;
  readonly aliasIps: readonly AliasIp[];
  readonly failback?: 'auto' | 'manual';
}

export interface UpdateResourceGroupRequest {
  readonly preferredNode?: string;
  readonly aliasIps?: readonly AliasIp[];
  readonly failback?: 'auto' | 'manual';
}

/* ------------------------------ access ------------------------------ */

export interface AccessInfo {
  readonly volume: string;
  /** Initiator IQNs allowed to log in; null: any. */
  readonly allowedInitiators: readonly string[] | null;
  /** CHAP user name when CHAP is required; the secret is never shown. */
  readonly chap: { readonly user: string; readonly secretSet: true } | null;
  readonly mutualChap: { readonly user: string; readonly secretSet: true } | null;
}

export interface UpdateAccessRequest {
  readonly allowedInitiators?: readonly string[] | null;
  /** null removes CHAP (and mutual CHAP). Secrets: 12..16 bytes for interop with Windows/ESXi, at most 255. */
  readonly chap?: { readonly user: string; readonly secret: string } | null;
  readonly mutualChap?: { readonly user: string; readonly secret: string } | null;
}

/* ------------------------------ sessions, jobs, events ------------------------------ */

export interface SessionInfo {
  readonly node: string;
  readonly initiator: string;
  readonly target: string;
  readonly volume: string;
  /** The portal (alias IP:port) the initiator logged in through. */
  readonly portal: string;
  readonly remote: string;
  readonly connections: number;
  readonly since: string;
}

export type JobKind = 'verify' | 'evacuate' | 'failback' | 'move' | 'resync';
export type JobState = 'running' | 'done' | 'failed';

/** A long-running action; the CLI polls it for its progress bar. */
export interface JobInfo {
  readonly id: string;
  readonly kind: JobKind;
  /** What it acts on: a volume, an RG or a node. */
  readonly subject: string;
  readonly state: JobState;
  /** 0..1 */
  readonly progress: number;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly error: string | null;
  /** verify: { differences, repaired }; evacuate: { moved: [...] } ... */
  readonly result: Readonly<Record<string, unknown>> | null;
}

export interface VerifyRequest {
  readonly repair?: boolean;
  readonly algorithm?: 'sha256' | 'crc32c';
}

export interface EventRecord {
  /** Increasing per node; GET /events?after=seq pages. */
  readonly seq: number;
  readonly at: string;
  readonly node: string;
  /** 'failover', 'move', 'failback', 'volume-created', 'config-replicated', 'split-brain', ... */
  readonly kind: string;
  readonly message: string;
  readonly subject: string | null;
}

/* ------------------------------ metrics ------------------------------ */

/** Counters the /metrics route turns into Prometheus series; cumulative since start. */
export interface VolumeIoCounters {
  readonly volume: string;
  readonly readOps: number;
  readonly writeOps: number;
  readonly readBytes: number;
  readonly writeBytes: number;
  /** Latency histogram of completed commands: upper bounds in seconds and cumulative counts. */
  readonly latency: { readonly bounds: readonly number[]; readonly counts: readonly number[]; readonly sum: number; readonly count: number };
}

export interface MetricsSnapshot {
  readonly volumes: readonly VolumeIoCounters[];
  readonly sessions: number;
  /** Per volume: bytes not yet on the peer (mirror lag) and resync progress 0..1. */
  readonly mirror: readonly { readonly volume: string; readonly outOfSyncBytes: number; readonly resyncProgress: number | null }[];
  readonly failovers: number;
  readonly moves: number;
}

/* ------------------------------ the port ------------------------------ */

export interface PairControl {
  nodes(): Promise<readonly NodeInfo[]>;
  pair(): Promise<PairInfo>;
  createPair(req: CreatePairRequest): Promise<PairInfo>;

  volumes(): Promise<readonly VolumeInfo[]>;
  volume(name: string): Promise<VolumeInfo>;
  createVolume(req: CreateVolumeRequest): Promise<VolumeInfo>;
  updateVolume(name: string, req: UpdateVolumeRequest): Promise<VolumeInfo>;
  /** Refused ('precondition-failed') while initiators are logged in, unless force. */
  deleteVolume(name: string, options: { readonly force: boolean }): Promise<void>;

  resourceGroups(): Promise<readonly ResourceGroupInfo[]>;
  resourceGroup(name: string): Promise<ResourceGroupInfo>;
  createResourceGroup(req: CreateResourceGroupRequest): Promise<ResourceGroupInfo>;
  updateResourceGroup(name: string, req: UpdateResourceGroupRequest): Promise<ResourceGroupInfo>;
  deleteResourceGroup(name: string): Promise<void>;
  /** Planned switchover to the other node; resolves when the peer serves it. */
  moveResourceGroup(name: string): Promise<ResourceGroupInfo>;
  /** Move back to the preferred node (once it is in sync). */
  failbackResourceGroup(name: string): Promise<ResourceGroupInfo>;

  /** Evacuate every RG from the node (planned moves); returns the job. */
  enterMaintenance(nodeId: string): Promise<JobInfo>;
  /** End maintenance; its RGs fail back once resynced; returns the job. */
  exitMaintenance(nodeId: string): Promise<JobInfo>;

  access(volume: string): Promise<AccessInfo>;
  updateAccess(volume: string, req: UpdateAccessRequest): Promise<AccessInfo>;

  sessions(): Promise<readonly SessionInfo[]>;

  verify(volume: string, req: VerifyRequest): Promise<JobInfo>;
  jobs(): Promise<readonly JobInfo[]>;
  job(id: string): Promise<JobInfo>;

  /** Events with seq > after, oldest first, at most limit. */
  events(after: number, limit: number): Promise<readonly EventRecord[]>;
  /** Called for each new event until the returned function is called (for the SSE stream). */
  subscribe(listener: (event: EventRecord) => void): () => void;

  metrics(): MetricsSnapshot;
}
