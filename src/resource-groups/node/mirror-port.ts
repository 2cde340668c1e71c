/**
 * What the node uses of the mirror engine (src/mirror), as interfaces: the
 * node is written against these, the CLI hands it the real MirrorNode
 * (mirror-factory.ts), and the node's unit tests hand it a fake.
 */
import type { Logger } from 'pino';
import type { BackingStore } from '../../block';

export type VolumeRole = 'primary' | 'secondary';

export interface MirrorNodeOptions {
  readonly nodeId: string;
  readonly peerNodeId: string;
  readonly clusterId: string;
  readonly secret: string;
  /** One entry per replication link, "host:port" each. */
  readonly links: readonly { readonly local?: string; readonly peer?: string }[];
  readonly log: Logger;
  /** Mirror tunables the node config sets (the rest keep the mirror's defaults). */
  readonly tunables?: { readonly degradeAfterMs?: number; readonly heartbeatMs?: number; readonly deadMs?: number };
  /** The highest replication protocol version to offer (rolling-upgrade tests); default: the release's highest. */
  readonly maxProtocolVersion?: number;
}

export interface OpenVolumeOptions {
  readonly volumeId: string;
  readonly backingPath: string;
  readonly sizeBytes: number;
  readonly thin: boolean;
  readonly role: VolumeRole;
  /** Create the backing file (and its metadata) when it does not exist. */
  readonly create?: boolean;
}

export interface MirrorNodePort {
  start(): void | Promise<void>;
  close(): Promise<void>;
  openVolume(options: OpenVolumeOptions): Promise<MirroredVolumePort>;
  /** The peer's reachability as the mirror reports it (passed through to status). */
  readonly peerState: unknown;
  /** Monotonic ms when the peer closed every replication link (FIN/reset: its process died); null otherwise. */
  peerClosedAllAt?(): number | null;
  /** The node's liveness says the peer is gone: with no link up, secondary volumes leave their sessions now (MirrorNode.peerGone). */
  peerGone?(reason: string): number;
  /** Counters of the replication links (passed through to status). */
  channelStats?(): unknown;
  /** The replication protocol versions offered, and the one the links run (null: none up). */
  readonly protocolVersions: { readonly min: number; readonly max: number };
  readonly negotiatedVersion: number | null;
  /** Control messages reach the peer (a link is up and runs a version that has them). */
  readonly controlAvailable: boolean;
  /** An opaque message to the peer's handler of `topic`; resolves with its reply. */
  sendControl(topic: string, data: Buffer): Promise<Buffer>;
  /** Handles the peer's control messages of `topic`; returns the removal. */
  onControl(topic: string, handler: (data: Buffer) => Buffer | void | Promise<Buffer | void>): () => void;
  /** Calls `cb` whenever the peer becomes reachable or unreachable; returns the removal. */
  onPeer(cb: (state: 'up' | 'down') => void): () => void;
}

export interface MirroredVolumePort {
  readonly volumeId: string;
  readonly role: VolumeRole;
  /** On the primary: the store whose writes are durable on both nodes before they complete. */
  readonly store: BackingStore;
  /** The mirror's status of the volume (passed through to status; see inSync()). */
  status(): unknown;
  /** Send a SCSI state snapshot of `kind` to the peer (resolves at once while disconnected; resent after each handshake). */
  replicateScsiState(kind: string, json: Buffer): Promise<void>;
  /** Calls `cb` with each snapshot the peer sends; returns an unsubscribe function. */
  onScsiState(cb: (kind: string, json: Buffer) => void): () => void;
  /** Grows this node's replica online (backing store and metadata); the node grows the peer's first. */
  grow(sizeBytes: number): Promise<void>;
  /** Online verify against the peer's copy (needs the volume in sync); with resyncDifferences the differing regions are resynced. */
  verify(options: { readonly algorithm?: 'sha256' | 'crc32c'; readonly resyncDifferences?: boolean }): Promise<VerifyResult>;
  close(): Promise<void>;
}

export interface VerifyResult {
  readonly regionsChecked: number;
  readonly differing: readonly { readonly offset: number; readonly length: number }[];
  readonly resynced: boolean;
}

export type MirrorFactory = (options: MirrorNodeOptions) => MirrorNodePort;
