/** The public shapes of a mirrored volume: spec, status, progress, verify report. */
import { Generations } from '../generations';

export type VolumeRole = 'primary' | 'secondary';

export const REPLICATION_STATES = ['connecting', 'in-sync', 'resyncing', 'degraded', 'split-brain', 'unrelated', 'stopped'] as const;
/**
 * What a volume's replication is doing:
 * - connecting: not replicating, and this replica holds nothing the peer lacks (peer unreachable, or handshake under way);
 * - in-sync: both replicas hold the same data; writes are replicated;
 * - resyncing: one replica is being brought up to date; writes are replicated meanwhile;
 * - degraded: the primary writes without its peer, marking what it writes in the dirty bitmap;
 * - split-brain: both wrote while apart; nothing is replicated until an operator resolves it;
 * - unrelated: the replicas share no generation (or both are new); refused;
 * - stopped: refused for another reason (see lastError), or the volume is closed.
 */
export type ReplicationState = (typeof REPLICATION_STATES)[number];

export interface VolumeSpec {
  readonly volumeId: string;
  /** The backing file (data only); the metadata lives beside it (`<backingPath>.twinsan-meta`). */
  readonly backingPath: string;
  readonly sizeBytes: number;
  readonly thin: boolean;
  readonly role: VolumeRole;
  /** Create the backing file and metadata when missing. A newly created primary is the initial-sync source. */
  readonly create?: boolean;
  /** Bytes per dirty-bitmap bit, at creation (META_TUNABLES.regionSize); an existing volume must match if given. */
  readonly regionSize?: number;
}

export interface ResyncProgress {
  /** 'to-peer': this replica is the source. */
  readonly direction: 'to-peer' | 'from-peer';
  readonly mode: 'bitmap' | 'full';
  readonly bytesDone: number;
  /** Exact on the source; on the target an estimate from both sides' dirty counts. */
  readonly bytesTotal: number;
  readonly rateBytesPerSec: number;
  /** null until a rate is measured. */
  readonly etaSeconds: number | null;
}

export interface MirrorStatus {
  readonly volumeId: string;
  readonly role: VolumeRole;
  readonly replication: ReplicationState;
  /** The peer's role for the volume as of the last handshake. */
  readonly peerRole: VolumeRole | 'unknown';
  readonly generations: Generations;
  /** Bytes marked out of sync in this replica's dirty bitmap. */
  readonly dirtyBytes: number;
  /** False while this replica is an unfinished resync target (or newly created). */
  readonly consistent: boolean;
  readonly resync?: ResyncProgress;
  /** The sync rule of the last handshake (generations.ts), for the logs. */
  readonly lastDecision?: string;
  readonly lastError?: string;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export const VERIFY_ALGORITHMS = {
  sha256: { digestBytes: 32 },
  crc32c: { digestBytes: 4 },
} as const;
export type VerifyAlgorithm = keyof typeof VERIFY_ALGORITHMS;

export interface VerifyOptions {
  /** Mark the differing regions dirty and resync them (from the primary); resolves when the resync is done. */
  readonly resyncDifferences?: boolean;
  /** Default sha256. */
  readonly algorithm?: VerifyAlgorithm;
  /** Part of the volume to check (whole regions); the whole volume by default. */
  readonly offset?: number;
  readonly length?: number;
}

export interface VerifyReport {
  readonly algorithm: VerifyAlgorithm;
  readonly regionSize: number;
  readonly regionsChecked: number;
  /** Differing regions, merged into runs. */
  readonly differing: ByteRange[];
  /** True when the differences were resynced (resyncDifferences). */
  readonly resynced: boolean;
}
