/**
 * ClusterSync: keeps the two nodes' cluster documents equal over the
 * mirror's authenticated channel (control messages, topic
 * "cluster-config"; protocol version 2 and later).
 *
 * Either node sends its whole document (it is small) when the channel
 * comes up and after each local change. The receiver merges it
 * (store.offer) and, once its own node has acted on the result
 * (`settled`), answers with its version, and with its document when that is
 * the one to keep, which the sender then merges. One round trip converges.
 *
 * With a peer that speaks only version 1 nothing is sent: data replication
 * works, config sync is 'unavailable' (status), and changes stay local until
 * the peer is upgraded.
 */
import type { Logger } from 'pino';
import type { ClusterDocument } from './document';
import type { ClusterConfigStore, MergeOutcome } from './store';

export const CLUSTER_CONFIG_TOPIC = 'cluster-config';
/** How long one offer may wait for the peer's answer (it answers once it has acted on the document). */
export const OFFER_TIMEOUT_MS = 30_000;
/** How long the receiver waits for its node to act on a document before it answers anyway. */
export const SETTLE_TIMEOUT_MS = 20_000;

/** `p`, or a rejection after `ms` (the timer does not keep the process up). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result in ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** What sync needs of the mirror node (MirrorNode has it). */
export interface ControlPort {
  readonly controlAvailable: boolean;
  readonly peerState: unknown;
  sendControl(topic: string, data: Buffer): Promise<Buffer>;
  onControl(topic: string, handler: (data: Buffer) => Buffer | void | Promise<Buffer | void>): () => void;
}

interface OfferMessage {
  readonly document: ClusterDocument;
}

interface OfferReply {
  readonly outcome: MergeOutcome;
  readonly version: number;
  /** Present when the receiver kept its own document: the sender should take it. */
  readonly document?: ClusterDocument;
}

export type SyncState = 'in-sync' | 'pending' | 'unavailable' | 'peer-down';

export interface SyncStatus {
  readonly state: SyncState;
  /** The peer's version as last heard; null: not heard yet. */
  readonly peerVersion: number | null;
  readonly lastError: string | null;
}

const KEEPS: ReadonlySet<MergeOutcome> = new Set(['keep', 'conflict-keep']);

export class ClusterSync {
  private peerVersion: number | null = null;
  private lastError: string | null = null;
  private unregister: (() => void) | null = null;
  private pushing: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly store: ClusterConfigStore,
    private readonly port: ControlPort,
    private readonly log: Logger,
    /** Resolves once this node has acted on the document it holds (the reconciler is idle). */
    private readonly settled: () => Promise<void>,
  ) {}

  start(): void {
    this.unregister = this.port.onControl(CLUSTER_CONFIG_TOPIC, (data) => this.receive(data));
    this.store.on('change', (e) => {
      if (e.origin === 'local') void this.push();
    });
  }

  stop(): void {
    this.unregister?.();
    this.unregister = null;
  }

  status(): SyncStatus {
    const local = this.store.document.version;
    const state: SyncState =
      this.port.peerState !== 'up' ? 'peer-down' : !this.port.controlAvailable ? 'unavailable' : this.peerVersion === local && this.store.syncedVersion === local ? 'in-sync' : 'pending';
    return { state, peerVersion: this.peerVersion, lastError: this.lastError };
  }

  /**
   * Sends our document to the peer and merges its answer. Resolves when done (or failed: logged,
   * retried on the next channel up or change). Calls while one runs coalesce into one more.
   */
  push(): Promise<void> {
    if (this.pushing) {
      this.again = true;
      return this.pushing;
    }
    this.pushing = (async () => {
      do {
        this.again = false;
        await this.pushOnce();
      } while (this.again);
    })().finally(() => {
      this.pushing = null;
    });
    return this.pushing;
  }

  private async pushOnce(): Promise<void> {
    if (!this.port.controlAvailable) return;
    const doc = this.store.document;
    try {
      const raw = await within(this.port.sendControl(CLUSTER_CONFIG_TOPIC, Buffer.from(JSON.stringify({ document: doc } satisfies OfferMessage))), OFFER_TIMEOUT_MS, 'the peer\'s answer to our configuration');
      const reply = JSON.parse(raw.toString('utf8')) as Partial<OfferReply> | null;
      if (typeof reply !== 'object' || reply === null) throw new Error('the peer answered with something that is not an object');
      if (typeof reply.version !== 'number') throw new Error('the peer answered without its version');
      this.peerVersion = reply.version;
      this.lastError = null;
      if (reply.document !== undefined) {
        const outcome = await this.store.offer(reply.document);
        this.log.info({ outcome, peerVersion: reply.version }, 'cluster configuration: merged the peer\'s');
        this.peerVersion = reply.version;
      } else if (reply.version === doc.version) {
        await this.store.peerHas(doc.version);
      }
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn({ err: this.lastError }, 'cluster configuration not sent to the peer');
    }
  }

  private async receive(data: Buffer): Promise<Buffer> {
    let msg: Partial<OfferMessage>;
    try {
      msg = JSON.parse(data.toString('utf8')) as Partial<OfferMessage>;
    } catch (err) {
      throw Object.assign(new Error(`cluster configuration is not JSON: ${(err as Error).message}`), { code: 'EPROTO' });
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw Object.assign(new Error('cluster configuration is not a JSON object'), { code: 'EPROTO' });
    const outcome = await this.store.offer(msg.document).catch((err: unknown) => {
      throw Object.assign(new Error((err as Error).message), { code: 'EINVAL' });
    });
    if (outcome === 'refuse') throw Object.assign(new Error('the cluster document belongs to another cluster'), { code: 'EINVAL' });
    if (outcome === 'invalid') throw Object.assign(new Error(`cluster document version ${msg.document?.version ?? '?'} breaks the configuration rules; kept version ${this.store.document.version}`), { code: 'EINVAL' });
    // Answer once this node has acted on it, so a change made on the peer is in effect on both when it returns.
    await within(this.settled(), SETTLE_TIMEOUT_MS, 'acting on the peer\'s configuration').catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message }, 'answering the peer before this node has acted on its configuration');
    });
    const doc = this.store.document;
    this.peerVersion = msg.document?.version ?? this.peerVersion;
    this.log.info({ outcome, version: doc.version }, 'cluster configuration: received the peer\'s');
    const reply: OfferReply = KEEPS.has(outcome) ? { outcome, version: doc.version, document: doc } : { outcome, version: doc.version };
    return Buffer.from(JSON.stringify(reply));
  }
}
