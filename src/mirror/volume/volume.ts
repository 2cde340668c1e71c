/**
 * MirroredVolume: one volume's replica on this node and its replication
 * with the peer's replica.
 *
 * Lifecycle, in prose first (DRBD's drbd_state.c keeps several independent
 * states; so do we): the ROLE (primary: the SCSI layer writes through
 * `store`; secondary: receives the primary's writes) changes only by
 * open/promote/demote. The CONNECTION state below changes only in
 * `transition()`, by this table:
 *
 *   detached       no session with the peer's replica. A primary writes
 *                  alone (dirty bits, onPeerLost once). Left by a handshake.
 *   in-sync        same data on both; writes are replicated.
 *   resync-source  this replica is copied to the peer; writes replicated.
 *   resync-target  the peer's replica is copied here ('consistent' is off).
 *   split-brain    both wrote while apart: nothing is replicated; an
 *                  operator picks the survivor (resolveSplitBrain).
 *   unrelated      no common generation: refused.
 *   refused        sizes differ, both primary, or the primary would be the
 *                  target: see lastError.
 *   closed
 *
 * Every decision starts from `detached`: a handshake first leaves whatever
 * session there was (aborting a resync), holds new writes back at a gate,
 * waits until no write and no request about the volume is in flight (so no
 * message of an older session can arrive in the new one, and the state it
 * describes is settled), exchanges hellos, and both sides decide
 * (handshake.ts). The handshake is bounded by degradeAfterMs; writes wait at
 * the gate at most that long.
 *
 * Handshakes, promote, demote, split-brain resolution, the target's start
 * of a resync and the source's end of one run one at a time (`control`).
 * Handlers of the peer's requests never wait for that queue (a handshake
 * waits on the peer, whose handlers would wait on us): a hello that finds it
 * busy is answered EAGAIN and sent again after a short, tie-dependent delay.
 *
 * Resync: the target marks itself not consistent (durably), sends its dirty
 * ranges (ResyncRequest), then an empty ResyncRequest to start; the source
 * copies the union (resync.ts); at the end the source sends the target its
 * new generations (GenerationUpdate 'resync-done', onSyncComplete), which
 * the target stores first, with 'consistent'; then the source stores its own.
 */
import { EventEmitter } from 'node:events';
import { Logger } from 'pino';
import { BackingStore, BlockIoError } from '../../block';
import { EMPTY_GENERATION, onPeerLost, onPromote, onSyncComplete, resolveSplitBrain } from '../generations';
import { IncomingMessage, PeerChannel, ReplySink, ReplyWithPayload, checkAck } from '../link';
import { VolumeMetadata } from '../meta';
import { Complete, GenerationUpdate, OutgoingMessage, Payload, ResyncRequest, ScsiState, VerifyRequest, VolumeHello } from '../protocol';
import { MirrorError } from '../errors';
import { MirrorTunables } from '../tunables';
import { Deferred, InFlight, SerialQueue, beforeDeadline, deferred, errorCode, errorMessage, sleep } from './async-util';
import { WriteCompletion } from './completion';
import { HelloState, VolumeDecision, decideVolume, decodeHello, encodeHello, fromWireGenerations, toWireGenerations } from './handshake';
import { IntervalLock } from './interval-lock';
import { Replica } from './replica';
import { ResyncAbortedError, ResyncSource, dirtyRanges } from './resync';
import { ScsiStateListener, ScsiStateReplication, Snapshot } from './scsi-state';
import { ResyncThrottle } from './throttle';
import {
  ByteRange,
  MirrorStatus,
  ReplicationState,
  ResyncProgress,
  VerifyAlgorithm,
  VerifyOptions,
  VerifyReport,
  VolumeRole,
  VolumeSpec,
} from './types';
import { differingRegions, isVerifyAlgorithm, regionDigests, regionsToRanges } from './verify';
import { MirroredBackingStore } from './write-path';

/** What a volume needs from its MirrorNode. */
export interface VolumeNodeContext {
  readonly channel: PeerChannel;
  readonly tunables: MirrorTunables;
  readonly log: Logger;
  /** This node wins ties (lower node id). */
  readonly localWinsTies: boolean;
  /** The channel has a link up. */
  peerReachable(): boolean;
  /** The volume closed. */
  forget(volume: MirroredVolume): void;
}

export const VolumeState = {
  DETACHED: 'detached',
  IN_SYNC: 'in-sync',
  RESYNC_SOURCE: 'resync-source',
  RESYNC_TARGET: 'resync-target',
  SPLIT_BRAIN: 'split-brain',
  UNRELATED: 'unrelated',
  REFUSED: 'refused',
  CLOSED: 'closed',
} as const;
export type VolumeState = (typeof VolumeState)[keyof typeof VolumeState];

const S = VolumeState;
const TRANSITIONS: Readonly<Record<VolumeState, readonly VolumeState[]>> = {
  [S.DETACHED]: [S.IN_SYNC, S.RESYNC_SOURCE, S.RESYNC_TARGET, S.SPLIT_BRAIN, S.UNRELATED, S.REFUSED, S.CLOSED],
  [S.IN_SYNC]: [S.DETACHED, S.CLOSED],
  [S.RESYNC_SOURCE]: [S.IN_SYNC, S.DETACHED, S.CLOSED],
  [S.RESYNC_TARGET]: [S.IN_SYNC, S.DETACHED, S.CLOSED],
  [S.SPLIT_BRAIN]: [S.DETACHED, S.CLOSED],
  [S.UNRELATED]: [S.DETACHED, S.CLOSED],
  [S.REFUSED]: [S.DETACHED, S.CLOSED],
  [S.CLOSED]: [],
};

/** States in which the two replicas exchange writes. */
const CONNECTED: readonly VolumeState[] = [S.IN_SYNC, S.RESYNC_SOURCE, S.RESYNC_TARGET];

/** Dirty ranges per ResyncRequest (each ~10 bytes on the wire; the header limit is 1 MiB). */
const RANGES_PER_REQUEST = 8192;
/** Largest verify request this node answers. */
const MAX_VERIFY_BYTES = 64 * 1024 * 1024;

interface TargetProgress {
  readonly mode: 'bitmap' | 'full';
  readonly estimate: number;
  done: number;
  readonly started: number;
}

/** One agreement with the peer's replica, from a handshake to the next. */
interface Session {
  readonly id: number;
  readonly peer: HelloState;
  readonly decision: VolumeDecision;
  source: ResyncSource | null;
  throttle: ResyncThrottle | null;
  target: TargetProgress | null;
  beginTimer: NodeJS.Timeout | null;
}

export type MirroredVolumeEvents = {
  status: [status: MirrorStatus];
};

export class MirroredVolume extends EventEmitter<MirroredVolumeEvents> {
  readonly volumeId: string;
  /** The BackingStore the SCSI layer uses (primary); writes fail with EROFS while secondary. */
  readonly store: BackingStore;

  private roleValue: VolumeRole;
  private state: VolumeState = S.DETACHED;
  private session: Session | null = null;
  private sessions = 0;
  private peerHello: HelloState | null = null;
  private lastDecision: string | undefined;
  private lastError: string | undefined;
  private closing: Promise<void> | null = null;
  private closed = false;
  private diskFailure: unknown = null;

  private readonly log: Logger;
  private readonly t: MirrorTunables;
  private readonly lock = new IntervalLock();
  private readonly inflight = new InFlight();
  private readonly control = new SerialQueue();
  private readonly completion: WriteCompletion;
  private readonly replica: Replica;
  private gateOpen: Deferred | null = null;
  private helloInFlight = false;
  /** While a handshake we started waits for the peer's answer and acts on it: the peer may already replicate to us. */
  private settling: Deferred | null = null;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private forceHandshake = false;
  private lazyTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;

  /** onPeerLost was applied since the last session (or is being applied). */
  private peerLostApplied = false;
  private peerLostPending: Promise<void> | null = null;

  private readonly scsi: ScsiStateReplication;

  private constructor(
    private readonly ctx: VolumeNodeContext,
    spec: VolumeSpec,
    private readonly local: BackingStore,
    private readonly meta: VolumeMetadata,
  ) {
    super();
    this.volumeId = spec.volumeId;
    this.roleValue = spec.role;
    this.t = ctx.tunables;
    this.log = ctx.log.child({ volume: spec.volumeId });
    this.completion = new WriteCompletion(local, meta.activityLog, this.t.durableReleaseMs, (err) => {
      this.diskFailure = err;
      this.lastError = `backing store flush failed: ${errorMessage(err)}`;
      this.log.error({ err: errorMessage(err) }, 'backing store flush failed: the volume takes no more writes');
      this.emitStatus();
    });
    this.store = new MirroredBackingStore({
      volumeId: this.volumeId,
      local,
      meta,
      lock: this.lock,
      completion: this.completion,
      degradeAfterMs: this.t.degradeAfterMs,
      checkWritable: () => this.checkWritable(),
      checkOpen: () => this.checkOpen(),
      gate: () => this.gateOpen?.promise ?? null,
      begin: () => this.inflight.begin(),
      replicating: () => this.roleValue === 'primary' && (this.state === S.IN_SYNC || this.state === S.RESYNC_SOURCE),
      request: (m, p) => this.request(m, p),
      requestWith: (m, p, sink) => this.requestWith(m, p, sink),
      replicationFailed: (reason) => this.replicationFailed(reason),
      ensurePeerLost: () => this.ensurePeerLost(),
      noteWriteLatency: (ms) => this.session?.throttle?.noteWriteLatency(ms),
      internalError: (err) => this.log.error({ err: errorMessage(err) }, 'write bookkeeping failed'),
    });
    this.scsi = new ScsiStateReplication(
      (kind, snapshot) => this.sendScsiState(kind, snapshot),
      (kind, err) => this.log.error({ err: errorMessage(err), kind }, 'SCSI state listener failed'),
    );
    this.replica = new Replica({
      volumeId: this.volumeId,
      local,
      meta,
      completion: this.completion,
      settling: () => this.settling?.promise ?? null,
      checkReplicating: () => this.checkReplicating(),
      checkResyncTarget: () => this.checkResyncTarget(),
      begin: () => this.inflight.begin(),
    });
  }

  /**
   * Wraps an opened store and metadata (MirrorNode.openVolume). A primary
   * must be consistent; a newly created primary gets its first generation
   * (onPromote): it is the initial-sync source.
   */
  static async attach(ctx: VolumeNodeContext, spec: VolumeSpec, local: BackingStore, meta: VolumeMetadata, createdNow: boolean): Promise<MirroredVolume> {
    const v = new MirroredVolume(ctx, spec, local, meta);
    if (spec.role === 'primary') {
      const g = meta.generations;
      if (g.current === EMPTY_GENERATION) {
        if (!createdNow) {
          throw new MirrorError('EINCONSISTENT', `${spec.volumeId}: the replica holds no data yet; open it as secondary to receive the initial sync`);
        }
        await meta.setGenerations(onPromote(g, false));
        await meta.setFlags({ consistent: true });
      } else if (!meta.flags.consistent) {
        throw new MirrorError('EINCONSISTENT', `${spec.volumeId}: the replica is an unfinished resync target; open it as secondary`);
      }
      await meta.setFlags({ primary: true });
    } else {
      await meta.setFlags({ primary: false });
    }
    v.log.info({ role: spec.role, generations: meta.generations, dirtyBytes: meta.bitmap.dirtyBytes(), clean: meta.wasCleanShutdown }, 'volume opened');
    return v;
  }

  /* ================================ public API ================================ */

  get role(): VolumeRole {
    return this.roleValue;
  }

  status(): MirrorStatus {
    const progress = this.progress();
    return {
      volumeId: this.volumeId,
      role: this.roleValue,
      replication: this.replication(),
      peerRole: this.peerHello?.role ?? 'unknown',
      generations: this.meta.generations,
      dirtyBytes: this.meta.bitmap.dirtyBytes(),
      consistent: this.meta.flags.consistent,
      ...(progress ? { resync: progress } : {}),
      ...(this.lastDecision !== undefined ? { lastDecision: this.lastDecision } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /**
   * Online verify (verify.ts): both sides digest each region of the range;
   * the differing regions are reported and, with resyncDifferences, marked
   * dirty here and resynced (from the primary) before this resolves. Needs
   * the volume in sync. Runs on either node; on the primary each chunk is
   * checked holding its range, so in-flight writes cannot show up as
   * differences; on a secondary a difference is confirmed by a second look.
   */
  async verify(o: VerifyOptions = {}): Promise<VerifyReport> {
    this.checkOpenMirror();
    const algorithm: VerifyAlgorithm = o.algorithm ?? 'sha256';
    if (!isVerifyAlgorithm(algorithm)) throw new MirrorError('EINVAL', `unknown verify algorithm ${String(algorithm)}`);
    const rs = this.meta.regionSize;
    const size = this.meta.sizeBytes;
    const offset = o.offset ?? 0;
    const length = o.length ?? size - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size || offset % rs !== 0) {
      throw new MirrorError('EINVAL', `verify range ${offset}+${length}: must lie in 0..${size} and start on a region (${rs} bytes)`);
    }
    const chunk = Math.max(1, Math.floor(this.t.verifyChunkBytes / rs)) * rs;
    const differing: number[] = [];
    let checked = 0;
    for (let at = offset; at < offset + length; at += chunk) {
      const len = Math.min(chunk, offset + length - at);
      let diffs = await this.verifyChunk(at, len, algorithm);
      if (diffs.length > 0 && this.roleValue !== 'primary') {
        const again = new Set(await this.verifyChunk(at, len, algorithm));
        diffs = diffs.filter((r) => again.has(r));
      }
      differing.push(...diffs);
      checked += Math.ceil(len / rs);
    }
    const report = { algorithm, regionSize: rs, regionsChecked: checked, differing: regionsToRanges(differing, rs, size) };
    this.log.info({ regionsChecked: checked, differing: differing.length }, 'verify done');
    if (!o.resyncDifferences || differing.length === 0) return { ...report, resynced: false };
    await Promise.all(differing.map((r) => this.meta.bitmap.markRegions(r)));
    const after = this.sessions;
    this.scheduleHandshake(0, true);
    await this.untilInSyncAfter(after);
    return { ...report, resynced: true };
  }

  /**
   * The documented manual split-brain resolution (docs/mirror.md). On the
   * victim (discardLocalData: true, which must be secondary: demote it
   * first): its generations roll back (generations.ts resolveSplitBrain), it
   * is marked not consistent, and a handshake starts the resync from the
   * survivor; resolves once that handshake ran. On the survivor
   * (discardLocalData: false) it only starts a handshake.
   */
  resolveSplitBrain(o: { discardLocalData: boolean }): Promise<void> {
    return this.control.run(async () => {
      this.checkOpenMirror();
      const peer = this.peerHello;
      if (this.state !== S.SPLIT_BRAIN || !peer) {
        throw new MirrorError('EINVAL', `${this.volumeId} is not in split brain (replication: ${this.replication()})`);
      }
      if (o.discardLocalData) {
        if (this.roleValue === 'primary') throw new MirrorError('EINVAL', `${this.volumeId}: demote the victim before discarding its data`);
        const { victim, mode } = resolveSplitBrain(peer.generations, this.meta.generations);
        await this.meta.setFlags({ consistent: false });
        await this.meta.setGenerations(victim);
        this.peerLostApplied = false;
        this.log.warn({ generations: victim, mode }, 'split brain: discarding local changes, resync from the peer follows');
      }
      this.leaveSession('split brain resolved');
      await this.rehandshake();
    });
  }

  /**
   * Makes this replica primary (failover). It must be consistent (an
   * unfinished resync target is refused; `force` accepts a newly created
   * replica as authoritative) and the peer not primary. Connected: the
   * generations stay (onPromote); not connected: they move on (onPeerLost),
   * durably, before anything is written.
   */
  promote(o: { force?: boolean } = {}): Promise<void> {
    return this.control.run(async () => {
      this.checkOpenMirror();
      if (this.roleValue === 'primary') return;
      const g = this.meta.generations;
      const empty = g.current === EMPTY_GENERATION;
      if ((empty || !this.meta.flags.consistent || this.state === S.RESYNC_TARGET) && !o.force) {
        throw new MirrorError('EINCONSISTENT', `${this.volumeId}: the replica is ${empty ? 'newly created' : 'an unfinished resync target'}; not promoted`);
      }
      if (this.state === S.RESYNC_TARGET) throw new MirrorError('EINCONSISTENT', `${this.volumeId}: a resync into this replica is running`);
      // What we know of the peer's role may be stale (it may just have demoted): ask again.
      if (CONNECTED.includes(this.state) && this.peerHello?.role === 'primary') await this.rehandshake();
      const connected = CONNECTED.includes(this.state);
      if (connected && this.peerHello?.role === 'primary') throw new MirrorError('EDUALPRIMARY', `${this.volumeId}: the peer is primary; demote it first`);
      // Replicated writes the peer sent before it went may still be on their way to the disk: they
      // land before this replica takes writes of its own, or an old write could overtake a new one.
      if (!connected && !(await this.inflight.whenIdle(Date.now() + this.t.degradeAfterMs, true))) {
        throw new MirrorError('EAGAIN', `${this.volumeId}: replicated writes from the peer are still in flight; not promoted yet`);
      }
      const next = onPromote(g, connected);
      if (next !== g) {
        await this.meta.setGenerations(next);
        if (!connected && !empty) this.peerLostApplied = true;
      }
      await this.meta.setFlags({ primary: true, ...(empty || o.force ? { consistent: true } : {}) });
      this.roleValue = 'primary';
      this.log.info({ generations: next, connected }, 'promoted');
      this.emitStatus();
      await this.rehandshake();
    });
  }

  /**
   * Makes this replica secondary: new writes fail with EROFS, those in flight
   * finish, the store is flushed, and (peer reachable) a handshake tells the
   * peer before this resolves, so the peer's promote() that follows is not
   * refused as dual primary.
   */
  demote(): Promise<void> {
    return this.control.run(async () => {
      this.checkOpenMirror();
      if (this.roleValue === 'secondary') return;
      this.roleValue = 'secondary';
      await this.inflight.whenIdle(Date.now() + 2 * this.t.degradeAfterMs, true);
      await this.completion.flushNow();
      await this.meta.setFlags({ primary: false });
      this.log.info('demoted');
      this.emitStatus();
      await this.rehandshake();
    });
  }

  /**
   * Sends a SCSI state snapshot (reservations, unit attentions ...) of `kind`
   * to the peer; resolves when the peer has it, or at once when the volume is
   * not connected. The latest snapshot of each kind is sent again after
   * every handshake, so the peer catches up after a disconnection.
   */
  async replicateScsiState(kind: string, json: Buffer): Promise<void> {
    this.checkOpenMirror();
    await this.scsi.publish(kind, json, CONNECTED.includes(this.state));
  }

  /**
   * Grows this replica, backing store and metadata, to `sizeBytes` (online; the new space reads
   * as zeroes on both nodes, so it starts clean). Each node grows its own replica; the node
   * process grows the peer's first, so a primary never writes past the secondary's end. While
   * the sizes differ the replicas do not handshake (EMISMATCH); growing the second one starts a
   * handshake. Refused while a resync runs (its bitmaps have the old size).
   */
  grow(sizeBytes: number): Promise<void> {
    return this.control.run(async () => {
      this.checkOpen();
      const from = this.meta.sizeBytes;
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes < from) throw new MirrorError('EINVAL', `volume ${this.volumeId}: ${sizeBytes} bytes is not at least its size (${from})`);
      if (this.state === S.RESYNC_SOURCE || this.state === S.RESYNC_TARGET) throw new MirrorError('EAGAIN', `volume ${this.volumeId}: cannot grow while resyncing`);
      if (sizeBytes === from) return;
      await this.local.resize(sizeBytes);
      await this.meta.resize(sizeBytes);
      this.log.info({ from, to: sizeBytes }, 'replica grown');
      if (!CONNECTED.includes(this.state)) this.scheduleHandshake(0, true);
      this.emitStatus();
    });
  }

  /** Calls `cb` with every SCSI state snapshot the peer sends (newest per kind); returns an unsubscribe function. */
  onScsiState(cb: ScsiStateListener): () => void {
    return this.scsi.subscribe(cb);
  }

  /** Flushes, marks the metadata clean (when nothing is in flight), closes the backing store. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  /* ============================ MirrorNode's side ============================ */

  /** @internal The channel came up (or the volume opened with it up). */
  peerUp(): void {
    if (this.state === S.DETACHED) this.scheduleHandshake(this.ctx.localWinsTies ? 0 : 100);
  }

  /** @internal The peer has been unreachable for degradeAfterMs, or restarted. */
  peerLost(reason: string): void {
    if (this.state === S.CLOSED || this.state === S.DETACHED) return;
    this.log.warn({ reason }, 'peer lost');
    this.leaveSession(reason);
  }

  /** @internal The peer restarted: its sessions are gone. */
  peerRestarted(): void {
    this.peerLost('the peer restarted');
    if (this.state === S.DETACHED && this.ctx.peerReachable()) this.scheduleHandshake(this.ctx.localWinsTies ? 0 : 100);
  }

  /** @internal Replicated I/O from the peer. */
  get inbound(): Replica {
    return this.replica;
  }

  /** @internal The peer's VolumeHello: decide, answer with ours. */
  handleHello(body: Complete<VolumeHello>, payload: Buffer[]): Promise<ReplyWithPayload> {
    if (this.closed) throw new MirrorError('ENOENT', `${this.volumeId} is closing`);
    if (this.helloInFlight && this.ctx.localWinsTies) throw new MirrorError('EAGAIN', `${this.volumeId}: our own hello is in flight`);
    if (this.control.busy) throw new MirrorError('EAGAIN', `${this.volumeId}: busy`);
    const peer = decodeHello(body, payload);
    return this.control.run(async () => {
      this.checkOpenMirror();
      const deadline = Date.now() + this.t.degradeAfterMs;
      this.closeGate();
      try {
        this.leaveSession('handshake from the peer');
        if (!(await this.inflight.whenIdle(deadline))) throw new MirrorError('EAGAIN', `${this.volumeId}: I/O still in flight`);
        const mine = this.helloState();
        await this.adopt(mine, peer);
        const { hello, payload: ext } = encodeHello(mine);
        return { reply: { volumeHello: hello }, payload: ext };
      } finally {
        this.openGate();
      }
    });
  }

  /** @internal Target -> source: its dirty ranges, then (empty) the start signal. */
  handleResyncRequest(body: Complete<ResyncRequest>): void {
    const s = this.session;
    if (!s || this.state !== S.RESYNC_SOURCE || !s.source) {
      if (this.control.busy) throw new MirrorError('EAGAIN', `${this.volumeId}: handshake not finished here yet`);
      throw new MirrorError('ENOTCONN', `${this.volumeId} is not a resync source (${this.state})`);
    }
    const source = s.source;
    if (source.isStarted) throw new MirrorError('EINVAL', `${this.volumeId}: resync already started`);
    this.armBeginTimer(s);
    if (body.ranges.length > 0) {
      try {
        source.addRanges(body.ranges);
      } catch (err) {
        throw new MirrorError('EINVAL', errorMessage(err));
      }
      return;
    }
    if (s.beginTimer) clearTimeout(s.beginTimer);
    s.beginTimer = null;
    this.log.info({ mode: source.mode, bytes: source.progress().bytesTotal }, 'resync to the peer starts');
    const run = this.inflight.track(source.start());
    this.startProgressTimer();
    run.then(
      () => void this.control.run(() => this.finishAsSource(s)).catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'finishing the resync failed')),
      (err: unknown) => {
        if (err instanceof ResyncAbortedError || this.session !== s) return;
        this.replicationFailed(err);
      },
    );
  }

  /** @internal Source -> target 'resync-done': store the new generations, consistent. */
  async handleGenerationUpdate(body: Complete<GenerationUpdate>): Promise<void> {
    if (body.reason !== 'resync-done') {
      this.log.info({ reason: body.reason }, 'generation update from the peer ignored');
      return;
    }
    const s = this.session;
    if (!s || this.state !== S.RESYNC_TARGET) throw new MirrorError('ENOTCONN', `${this.volumeId} is not a resync target (${this.state})`);
    const g = fromWireGenerations(body.generations);
    const end = this.inflight.begin();
    try {
      await this.local.flush();
      const bitmap = this.meta.bitmap;
      if (bitmap.dirtyRegions() > 0) bitmap.clear(0, bitmap.regionCount);
      await bitmap.flushLazy();
      await this.meta.setGenerations(g);
      await this.meta.setFlags({ consistent: true, primaryCrashed: false });
      this.log.info({ generations: g }, 'resync from the peer done');
      if (this.session === s && this.state === S.RESYNC_TARGET) {
        s.target = null;
        this.transition(S.IN_SYNC, 'resync done');
      }
    } finally {
      end();
    }
  }

  /** @internal The peer's verify request: our digests of the range. */
  async handleVerifyRequest(body: Complete<VerifyRequest>): Promise<OutgoingMessage> {
    this.checkOpenMirror();
    const { offset, length, regionSize, algorithm } = body;
    if (!isVerifyAlgorithm(algorithm)) throw new MirrorError('EINVAL', `unknown verify algorithm ${algorithm}`);
    const size = this.meta.sizeBytes;
    if (regionSize < 512 || regionSize > 16 * 1024 * 1024 || length > MAX_VERIFY_BYTES || offset < 0 || length < 0 || offset + length > size) {
      throw new MirrorError('EINVAL', `verify request ${offset}+${length} in ${regionSize}-byte regions refused`);
    }
    const digests = await this.inflight.track(regionDigests(this.local, offset, length, regionSize, algorithm));
    return { verifyDigests: { volumeId: this.volumeId, offset, regionSize, algorithm, digests } };
  }

  /** @internal A SCSI state snapshot from the peer. */
  handleScsiState(body: Complete<ScsiState>): void {
    this.scsi.received(body);
  }

  /* ================================ internals ================================ */

  /** The single place the connection state changes. */
  private transition(to: VolumeState, why: string): void {
    const from = this.state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`volume ${this.volumeId}: no transition ${from} -> ${to}`);
    this.state = to;
    const inResync = to === S.RESYNC_SOURCE || to === S.RESYNC_TARGET;
    if (inResync) this.startLazyFlush();
    else this.stopLazyFlush();
    if (!inResync) this.stopProgressTimer();
    this.log.info({ from, to, why }, 'volume state');
    this.emitStatus();
  }

  private replication(): ReplicationState {
    switch (this.state) {
      case S.DETACHED: {
        const aloneData = this.peerLostApplied || this.meta.generations.bitmap !== null || this.meta.bitmap.dirtyBytes() > 0;
        return this.roleValue === 'primary' && aloneData ? 'degraded' : 'connecting';
      }
      case S.IN_SYNC:
        return 'in-sync';
      case S.RESYNC_SOURCE:
      case S.RESYNC_TARGET:
        return 'resyncing';
      case S.SPLIT_BRAIN:
        return 'split-brain';
      case S.UNRELATED:
        return 'unrelated';
      case S.REFUSED:
      case S.CLOSED:
        return 'stopped';
    }
  }

  private progress(): ResyncProgress | undefined {
    const s = this.session;
    if (!s) return undefined;
    if (this.state === S.RESYNC_SOURCE && s.source) return s.source.progress();
    if (this.state === S.RESYNC_TARGET && s.target) {
      const t = s.target;
      const total = Math.max(t.estimate, t.done);
      const secs = (Date.now() - t.started) / 1000;
      const rate = secs > 0 ? t.done / secs : 0;
      return {
        direction: 'from-peer',
        mode: t.mode,
        bytesDone: t.done,
        bytesTotal: total,
        rateBytesPerSec: Math.round(rate),
        etaSeconds: total === t.done ? 0 : rate > 0 ? Math.ceil((total - t.done) / rate) : null,
      };
    }
    return undefined;
  }

  private emitStatus(): void {
    this.emit('status', this.status());
  }

  private helloState(): HelloState {
    const flags = this.meta.flags;
    return {
      volumeId: this.volumeId,
      sizeBytes: this.meta.sizeBytes,
      regionSize: this.meta.regionSize,
      role: this.roleValue,
      generations: this.meta.generations,
      dirtyBytes: this.meta.bitmap.dirtyBytes(),
      consistent: flags.consistent,
      primaryCrashed: flags.primaryCrashed,
    };
  }

  private checkOpen(): void {
    if (this.closed) throw new BlockIoError('EBADF', `${this.volumeId}: volume is closed`);
  }

  private checkOpenMirror(): void {
    if (this.closed) throw new MirrorError('EBADF', `${this.volumeId}: volume is closed`);
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.roleValue !== 'primary') throw new BlockIoError('EROFS', `${this.volumeId} is secondary on this node`);
    if (this.diskFailure !== null) throw new BlockIoError('EIO', `${this.volumeId}: backing store failed: ${errorMessage(this.diskFailure)}`);
  }

  private checkReplicating(): void {
    if (this.closed) throw new MirrorError('ENOENT', `${this.volumeId} is closing`);
    if (this.roleValue === 'primary') throw new MirrorError('EROFS', `${this.volumeId} is primary on this node: replicated writes refused`);
    if (this.state !== S.IN_SYNC && this.state !== S.RESYNC_TARGET) {
      throw new MirrorError('ENOTCONN', `${this.volumeId} is not connected here (${this.state})`);
    }
  }

  private checkResyncTarget(): { applied(bytes: number): void } {
    const target = this.session?.target;
    if (this.closed || this.state !== S.RESYNC_TARGET || !target) {
      throw new MirrorError('ENOTCONN', `${this.volumeId} is not a resync target (${this.state})`);
    }
    return { applied: (bytes) => void (target.done += bytes) };
  }

  /** A request about this volume, tracked until it settles (handshakes wait for them). */
  private request(message: OutgoingMessage, payload?: Payload): Promise<IncomingMessage> {
    return this.inflight.track(this.ctx.channel.request(message, payload));
  }

  /** request() with a sink instead of a promise (the write path's), tracked the same way. */
  private requestWith(message: OutgoingMessage, payload: Payload | undefined, sink: ReplySink): void {
    this.inflight.requestStarted();
    this.ctx.channel.requestWith(message, payload, new TrackedReply(this.inflight, sink));
  }

  private closeGate(): void {
    this.gateOpen ??= deferred();
  }

  private openGate(): void {
    const g = this.gateOpen;
    this.gateOpen = null;
    g?.resolve();
  }

  /** Ends the current session, aborting a resync (its requests settle on their own; handshakes wait for them). */
  private leaveSession(why: string): void {
    const s = this.session;
    this.session = null;
    if (s) {
      s.source?.abort();
      if (s.beginTimer) clearTimeout(s.beginTimer);
      s.beginTimer = null;
    }
    if (this.state !== S.DETACHED && this.state !== S.CLOSED) this.transition(S.DETACHED, why);
  }

  /** The peer did not take a write, a flush or resync data: stop replicating; try again later. */
  private replicationFailed(reason: unknown): void {
    if (!CONNECTED.includes(this.state)) return;
    this.lastError = `replication failed: ${errorMessage(reason)}`;
    this.log.warn({ err: errorMessage(reason), code: errorCode(reason) }, 'replication failed: going degraded');
    this.leaveSession('replication failed');
    if (this.ctx.peerReachable()) this.scheduleHandshake(this.t.volumeRetryMs);
  }

  /** onPeerLost once per disconnection, durably; every write without the peer waits for it. */
  private ensurePeerLost(): Promise<void> {
    if (this.peerLostApplied) return Promise.resolve();
    this.peerLostPending ??= (async () => {
      try {
        const next = onPeerLost(this.meta.generations);
        await this.meta.setGenerations(next);
        this.peerLostApplied = true;
        this.log.warn({ generations: next }, 'writing without the peer: new generation');
        this.emitStatus();
      } finally {
        this.peerLostPending = null;
      }
    })();
    return this.peerLostPending;
  }

  /* ------------------------------- handshake ------------------------------- */

  private scheduleHandshake(delayMs: number, force = false): void {
    if (this.closed) return;
    if (force) this.forceHandshake = true;
    if (this.handshakeTimer) {
      if (!force) return;
      clearTimeout(this.handshakeTimer);
    }
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null;
      void this.control.run(() => this.initiate()).catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'handshake failed'));
    }, delayMs);
  }

  /** A handshake now, whatever the state, so the peer learns of a change (runs in `control`; gives up quietly when the peer is unreachable). */
  private async rehandshake(): Promise<void> {
    this.forceHandshake = true;
    await this.initiate();
  }

  /** Our side of a handshake we start (runs in `control`). */
  private async initiate(): Promise<void> {
    const force = this.forceHandshake;
    this.forceHandshake = false;
    if (this.closed || !this.ctx.peerReachable()) return;
    if (!force && this.state !== S.DETACHED) return;
    const deadline = Date.now() + this.t.degradeAfterMs;
    let retryIn: number | null = null;
    this.closeGate();
    try {
      this.leaveSession('handshake');
      if (!(await this.inflight.whenIdle(deadline))) throw new MirrorError('ETIMEDOUT', 'I/O about the volume still in flight');
      const mine = this.helloState();
      const { hello, payload } = encodeHello(mine);
      let reply: IncomingMessage;
      this.helloInFlight = true;
      this.settling = deferred();
      try {
        reply = await beforeDeadline(this.request({ volumeHello: hello }, payload), deadline, `hello for ${this.volumeId}`);
      } finally {
        this.helloInFlight = false;
      }
      checkAck(reply);
      const env = reply.envelope;
      if (env.body !== 'volumeHello') throw new MirrorError('EPROTO', `the peer answered a volume hello with ${String(env.body)}`);
      await this.adopt(mine, decodeHello(env.volumeHello, reply.payload));
    } catch (err) {
      const code = errorCode(err);
      if (code === 'EAGAIN') {
        retryIn = this.ctx.localWinsTies ? 20 + Math.random() * 40 : 150 + Math.random() * 150;
      } else {
        retryIn = this.t.volumeRetryMs;
        if (code === 'ENOENT') this.log.debug('the peer has not opened the volume');
        else {
          this.lastError = `handshake: ${errorMessage(err)}`;
          this.log.warn({ err: errorMessage(err), code }, 'volume handshake failed');
        }
      }
    } finally {
      this.openGate();
      this.settling?.resolve();
      this.settling = null;
    }
    if (retryIn !== null && this.state === S.DETACHED) this.scheduleHandshake(retryIn, force);
    this.emitStatus();
  }

  /**
   * Acts on a handshake: both sides run this with their own hello (`mine`,
   * taken with writes held back and nothing in flight) and the peer's.
   */
  private async adopt(mine: HelloState, peer: HelloState): Promise<void> {
    const decision = decideVolume(mine, peer, this.ctx.localWinsTies);
    this.peerHello = peer;
    this.lastDecision = decision.kind === 'refused' ? decision.code : decision.rule;
    const session: Session = { id: ++this.sessions, peer, decision, source: null, throttle: null, target: null, beginTimer: null };
    this.log.info({ decision, local: mine.generations, peer: peer.generations, peerRole: peer.role }, 'volume handshake');
    switch (decision.kind) {
      case 'in-sync': {
        if (mine.generations.bitmap !== null) await this.meta.setGenerations(onSyncComplete(mine.generations, peer.generations).source);
        this.session = session;
        this.peerLostApplied = false;
        this.lastError = undefined;
        this.transition(S.IN_SYNC, decision.rule);
        break;
      }
      case 'resync': {
        if (decision.source === 'local') {
          const throttle = new ResyncThrottle({
            minBytesPerSec: this.t.resyncMinBytesPerSec,
            maxBytesPerSec: this.t.resyncMaxBytesPerSec,
            latencyTargetMs: this.t.resyncLatencyTargetMs,
          });
          session.throttle = throttle;
          session.source = new ResyncSource(
            {
              local: this.local,
              lock: this.lock,
              throttle,
              chunkBytes: this.t.resyncChunkBytes,
              window: this.t.resyncWindow,
              send: (offset, data) => this.sendResyncData(offset, data),
              sendHole: (offset, length) => this.sendResyncHole(offset, length),
              copied: (first, count) => this.meta.bitmap.clear(first, count),
            },
            this.meta.sizeBytes,
            this.meta.regionSize,
            decision.mode,
            this.meta.bitmap.toBytes(),
          );
          this.session = session;
          this.peerLostApplied = false;
          this.lastError = undefined;
          this.armBeginTimer(session);
          this.transition(S.RESYNC_SOURCE, decision.rule);
        } else {
          await this.meta.setFlags({ consistent: false });
          const estimate =
            decision.mode === 'full' ? this.meta.sizeBytes : Math.min(this.meta.sizeBytes, mine.dirtyBytes + peer.dirtyBytes);
          session.target = { mode: decision.mode, estimate, done: 0, started: Date.now() };
          this.session = session;
          this.peerLostApplied = false;
          this.lastError = undefined;
          this.transition(S.RESYNC_TARGET, decision.rule);
          void this.control.run(() => this.startAsTarget(session)).catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'resync start failed'));
        }
        break;
      }
      case 'split-brain':
        this.lastError = `split brain: ${decision.detail}`;
        this.log.error({ detail: decision.detail }, 'SPLIT BRAIN: both replicas wrote while apart; resolve manually (docs/mirror.md)');
        this.transition(S.SPLIT_BRAIN, decision.rule);
        break;
      case 'unrelated':
        this.lastError = `unrelated: ${decision.detail}`;
        this.log.error({ detail: decision.detail }, 'replicas unrelated: refused');
        this.transition(S.UNRELATED, decision.rule);
        break;
      case 'refused':
        this.lastError = `${decision.code}: ${decision.detail}`;
        this.log.error({ code: decision.code, detail: decision.detail }, 'volume connection refused');
        this.transition(S.REFUSED, decision.code);
        break;
    }
    this.scsi.sessionStarted(CONNECTED.includes(this.state));
  }

  /* -------------------------------- resync -------------------------------- */

  /** The source waits this long for the target's next ResyncRequest before giving the session up. */
  private armBeginTimer(s: Session): void {
    if (s.beginTimer) clearTimeout(s.beginTimer);
    s.beginTimer = setTimeout(() => {
      s.beginTimer = null;
      if (this.session === s && s.source && !s.source.isStarted) this.replicationFailed(new Error('the resync target did not start the resync'));
    }, 3 * this.t.degradeAfterMs);
  }

  /** Target: send our dirty ranges, then the start signal (runs in `control`). */
  private async startAsTarget(s: Session): Promise<void> {
    if (this.session !== s) return;
    try {
      const d = s.decision;
      if (d.kind === 'resync' && d.mode === 'bitmap') {
        const ranges = dirtyRanges(this.meta.bitmap, 2 ** 30);
        for (let i = 0; i < ranges.length; i += RANGES_PER_REQUEST) {
          await this.resyncRequest(s, ranges.slice(i, i + RANGES_PER_REQUEST));
        }
      }
      await this.resyncRequest(s, []);
      this.startProgressTimer();
    } catch (err) {
      if (this.session === s) this.replicationFailed(err);
    }
  }

  /** One ResyncRequest, sent again while the source answers EAGAIN (its handshake not finished yet). */
  private async resyncRequest(s: Session, ranges: ByteRange[]): Promise<void> {
    const deadline = Date.now() + this.t.degradeAfterMs;
    for (;;) {
      if (this.session !== s) throw new MirrorError('ENOTCONN', 'session ended');
      try {
        checkAck(await beforeDeadline(this.request({ resyncRequest: { volumeId: this.volumeId, ranges } }), deadline, 'resync request'));
        return;
      } catch (err) {
        if (errorCode(err) !== 'EAGAIN' || Date.now() > deadline) throw err;
        await sleep(20);
      }
    }
  }

  private async sendResyncData(offset: number, data: Buffer): Promise<void> {
    const reply = await beforeDeadline(
      this.request({ resyncData: { volumeId: this.volumeId, offset, length: data.length } }, data),
      Date.now() + this.t.degradeAfterMs,
      'resync data',
    );
    checkAck(reply);
  }

  private async sendResyncHole(offset: number, length: number): Promise<void> {
    const reply = await beforeDeadline(
      this.request({ unmap: { volumeId: this.volumeId, offset, length } }),
      Date.now() + this.t.degradeAfterMs,
      'resync hole',
    );
    checkAck(reply);
  }

  /** Source: everything is copied; the target stores its new generations first, then we do (runs in `control`). */
  private async finishAsSource(s: Session): Promise<void> {
    if (this.session !== s || this.state !== S.RESYNC_SOURCE) return;
    try {
      const { source, target } = onSyncComplete(this.meta.generations, s.peer.generations);
      const reply = await beforeDeadline(
        this.request({ generationUpdate: { volumeId: this.volumeId, generations: toWireGenerations(target), reason: 'resync-done' } }),
        Date.now() + this.t.degradeAfterMs,
        'resync done',
      );
      checkAck(reply);
      await this.meta.setGenerations(source);
      await this.meta.setFlags({ primaryCrashed: false });
      await this.meta.bitmap.flushLazy();
      this.log.info({ generations: source, bytes: s.source?.progress().bytesDone }, 'resync to the peer done');
      if (this.session === s && this.state === S.RESYNC_SOURCE) {
        s.source = null;
        this.transition(S.IN_SYNC, 'resync done');
      }
    } catch (err) {
      if (this.session === s) this.replicationFailed(err);
    }
  }

  private startLazyFlush(): void {
    if (this.lazyTimer) return;
    this.lazyTimer = setInterval(() => {
      void this.meta.bitmap.flushLazy().catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'flushing cleared bits failed'));
    }, this.t.lazyFlushMs);
  }

  private stopLazyFlush(): void {
    if (!this.lazyTimer) return;
    clearInterval(this.lazyTimer);
    this.lazyTimer = null;
    if (!this.closed) void this.meta.bitmap.flushLazy().catch(() => undefined);
  }

  private startProgressTimer(): void {
    if (this.statusTimer) return;
    this.statusTimer = setInterval(() => this.emitStatus(), this.t.statusIntervalMs);
  }

  private stopProgressTimer(): void {
    if (!this.statusTimer) return;
    clearInterval(this.statusTimer);
    this.statusTimer = null;
  }

  /* ------------------------------ verify, SCSI ------------------------------ */

  private async verifyChunk(offset: number, length: number, algorithm: VerifyAlgorithm): Promise<number[]> {
    if (this.state !== S.IN_SYNC) throw new MirrorError('ENOTCONN', `${this.volumeId}: verify needs the volume in sync (${this.replication()})`);
    const rs = this.meta.regionSize;
    const unlock = await this.lock.acquire(offset, length);
    try {
      const [mine, reply] = await Promise.all([
        regionDigests(this.local, offset, length, rs, algorithm),
        beforeDeadline(
          this.request({ verifyRequest: { volumeId: this.volumeId, offset, length, regionSize: rs, algorithm } }),
          Date.now() + Math.max(this.t.degradeAfterMs, 30_000),
          'verify',
        ),
      ]);
      checkAck(reply);
      const env = reply.envelope;
      if (env.body !== 'verifyDigests') throw new MirrorError('EPROTO', `the peer answered a verify request with ${String(env.body)}`);
      return differingRegions(mine, env.verifyDigests.digests, algorithm).map((i) => offset / rs + i);
    } finally {
      unlock();
    }
  }

  /** Resolves once a session newer than `after` is in sync; rejects when the volume ends up refused. */
  private untilInSyncAfter(after: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.state === S.IN_SYNC && this.sessions > after) done(null);
        else if (this.state === S.SPLIT_BRAIN || this.state === S.UNRELATED || this.state === S.REFUSED || this.state === S.CLOSED) {
          done(new MirrorError('ENOTCONN', `${this.volumeId}: resync of the differences did not happen (${this.replication()}: ${this.lastError ?? ''})`));
        }
      };
      const done = (err: Error | null): void => {
        this.off('status', check);
        if (err) reject(err);
        else resolve();
      };
      this.on('status', check);
    });
  }

  private async sendScsiState(kind: string, entry: Snapshot): Promise<void> {
    try {
      const reply = await beforeDeadline(
        this.request({ scsiState: { volumeId: this.volumeId, kind, json: entry.json, version: entry.version } }),
        Date.now() + this.t.degradeAfterMs,
        'SCSI state',
      );
      checkAck(reply);
    } catch (err) {
      this.log.warn({ kind, err: errorMessage(err) }, 'SCSI state not replicated; sent again after the next handshake');
    }
  }

  /* --------------------------------- close --------------------------------- */

  private async closeOnce(): Promise<void> {
    await this.control.run(async () => {
      this.closed = true;
      if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
      this.leaveSession('closing');
      this.openGate();
      const idle = await this.inflight.whenIdle(Date.now() + this.t.degradeAfterMs);
      if (!idle) this.log.warn('closing with I/O still in flight: the metadata stays unclean');
      let error: unknown = null;
      await this.completion.flushNow().catch((err: unknown) => void (error ??= err));
      this.completion.stop();
      await this.meta.bitmap.flushLazy().catch((err: unknown) => void (error ??= err));
      this.transition(S.CLOSED, 'closed');
      await this.meta.close().catch((err: unknown) => void (error ??= err));
      await this.local.close().catch((err: unknown) => void (error ??= err));
      this.log.info('volume closed');
      if (error !== null) throw error;
    }).finally(() => this.ctx.forget(this));
  }
}

/** Passes a request's end on to `sink` after counting it out of the volume's requests in flight. */
class TrackedReply implements ReplySink {
  constructor(
    private readonly inflight: InFlight,
    private readonly sink: ReplySink,
  ) {}

  replied(reply: IncomingMessage): void {
    this.inflight.requestEnded();
    this.sink.replied(reply);
  }

  failed(err: Error): void {
    this.inflight.requestEnded();
    this.sink.failed(err);
  }
}
