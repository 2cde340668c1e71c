/**
 * ClusterConfigStore: this node's copy of the cluster document, the one
 * place it changes.
 *
 *   apply(change)   a local change (changes.ts): version + 1, persisted, 'change'.
 *   offer(remote)   the peer's document: merged by mergeDecision() below,
 *                   persisted when adopted, 'change' (and 'conflict').
 *
 * The file is <dataDir>/cluster-config.json, mode 0600 (it holds CHAP
 * secrets), replaced atomically (written beside, fsynced, renamed, the
 * directory fsynced). On first start it is seeded from the node config
 * file (document.ts seedDocument), so existing configs keep working.
 *
 * `syncedVersion` is the highest version both nodes are known to hold;
 * local changes above it have not reached the peer. When the peer's newer
 * document replaces such changes, or two documents of one version differ,
 * the losing document is kept as cluster-config.conflict-v<version>-<hash>.json
 * and a 'conflict' event says so.
 *
 * Every change is serialized (one at a time), so versions never race.
 */
import { EventEmitter } from 'node:events';
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NodeConfig } from '../node/config';
import { ControlError } from '../control';
import { applyChange, checkDocumentContent, describeChange, type ClusterChange } from './changes';
import { contentHash, seedDocument, type ClusterDocument } from './document';
import { checkDocument } from './document-schema';

export const CONFIG_FILE = 'cluster-config.json';
const FILE_MODE = 0o600;

/** What offer() did with the peer's document. */
export const MERGE_OUTCOMES = {
  /** Same version, same content: nothing to do. */
  same: 'same',
  /** The peer's is newer: adopted (ours had nothing the peer lacks). */
  adopt: 'adopt',
  /** The peer's is newer and replaced local changes it never saw: adopted, ours kept aside. */
  'adopt-over-local': 'adopt-over-local',
  /** Ours is newer: kept (the peer adopts ours when we send it). */
  keep: 'keep',
  /** Same version, different content, the peer's wins the tie-break: adopted, ours kept aside. */
  'conflict-adopt': 'conflict-adopt',
  /** Same version, different content, ours wins: kept, the peer's kept aside. */
  'conflict-keep': 'conflict-keep',
  /** Another cluster's document: refused. */
  refuse: 'refuse',
  /** A newer document that breaks the content rules (changes.ts checkDocumentContent): refused, ours kept, 'rejected'. */
  invalid: 'invalid',
} as const;
export type MergeOutcome = keyof typeof MERGE_OUTCOMES;

/**
 * The merge rule. Newer version wins. Equal versions with different content
 * are a conflict, decided the same way on both nodes: the later change
 * (updatedAt) wins, then the greater content hash.
 */
export function mergeDecision(local: ClusterDocument, remote: ClusterDocument, syncedVersion: number): MergeOutcome {
  if (remote.clusterId !== local.clusterId) return 'refuse';
  if (remote.version > local.version) return local.version > syncedVersion && contentHash(local) !== contentHash(remote) ? 'adopt-over-local' : 'adopt';
  if (remote.version < local.version) return 'keep';
  const [lh, rh] = [contentHash(local), contentHash(remote)];
  if (lh === rh) return 'same';
  const byTime = (remote.updatedAt ?? '').localeCompare(local.updatedAt ?? '');
  return byTime > 0 || (byTime === 0 && rh > lh) ? 'conflict-adopt' : 'conflict-keep';
}

const ADOPTS: ReadonlySet<MergeOutcome> = new Set(['adopt', 'adopt-over-local', 'conflict-adopt']);
/** The outcomes that set a document aside, and which one: ours ('local') or the peer's. */
const LOSER: Partial<Record<MergeOutcome, 'local' | 'remote'>> = { 'adopt-over-local': 'local', 'conflict-adopt': 'local', 'conflict-keep': 'remote' };

export interface ChangeEvent {
  readonly previous: ClusterDocument;
  readonly document: ClusterDocument;
  /** 'local': apply() here; 'peer': adopted from the peer. */
  readonly origin: 'local' | 'peer';
  /** For logs and events (no secrets). */
  readonly summary: string;
}

export interface ConflictEvent {
  readonly outcome: MergeOutcome;
  /** Where the losing document was kept. */
  readonly keptAt: string;
  readonly loser: { readonly version: number; readonly updatedBy: string | null };
  readonly winner: { readonly version: number; readonly updatedBy: string | null };
}

/** The peer's document was refused for breaking the content rules; the current one stays. */
export interface RejectedEvent {
  readonly version: number;
  readonly updatedBy: string | null;
  /** The rule broken, with the document path at fault. */
  readonly reason: string;
}

export type StoreEvents = {
  change: [ChangeEvent];
  conflict: [ConflictEvent];
  rejected: [RejectedEvent];
};

interface StoreFile {
  readonly document: ClusterDocument;
  readonly syncedVersion: number;
}

export class ClusterConfigStore extends EventEmitter<StoreEvents> {
  private doc: ClusterDocument;
  private synced: number;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly nodeId: string,
    state: StoreFile,
    private readonly now: () => Date,
  ) {
    super();
    this.doc = state.document;
    this.synced = state.syncedVersion;
  }

  /** Loads <dataDir>/cluster-config.json, or seeds and writes it from the node config the first time. */
  static async open(config: NodeConfig, options: { readonly now?: () => Date } = {}): Promise<ClusterConfigStore> {
    const file = path.join(config.dataDir, CONFIG_FILE);
    let text: string | null = null;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const now = options.now ?? (() => new Date());
    if (text === null) {
      const store = new ClusterConfigStore(file, config.nodeId, { document: seedDocument(config), syncedVersion: 1 }, now);
      await store.persist();
      return store;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file}: is not valid JSON: ${(err as Error).message}`);
    }
    const r = raw as Partial<StoreFile> | null;
    const document = checkDocument(r?.document, `${file}: document`);
    if (document.clusterId !== config.clusterId) throw new Error(`${file}: belongs to cluster ${JSON.stringify(document.clusterId)}, this node is in ${JSON.stringify(config.clusterId)}`);
    const syncedVersion = typeof r?.syncedVersion === 'number' && Number.isSafeInteger(r.syncedVersion) ? r.syncedVersion : 0;
    return new ClusterConfigStore(file, config.nodeId, { document, syncedVersion }, now);
  }

  get document(): ClusterDocument {
    return this.doc;
  }

  /** The highest version both nodes are known to hold. */
  get syncedVersion(): number {
    return this.synced;
  }

  /** Applies a change here: version + 1, persisted, then 'change'. Throws ControlError when it does not apply. */
  apply(change: ClusterChange): Promise<ClusterDocument> {
    return this.serialized(async () => {
      const previous = this.doc;
      const content = applyChange(previous, change);
      const next: ClusterDocument = { ...content, version: previous.version + 1, updatedAt: this.now().toISOString(), updatedBy: this.nodeId };
      this.doc = next;
      await this.persist();
      this.emit('change', { previous, document: next, origin: 'local', summary: describeChange(change) });
      return next;
    });
  }

  /** Merges the peer's document (shape-checked here; content-checked before it is adopted); resolves with what was done. */
  offer(remoteValue: unknown): Promise<MergeOutcome> {
    return this.serialized(async () => {
      const remote = checkDocument(remoteValue, 'the peer\'s cluster document');
      const previous = this.doc;
      const outcome = mergeDecision(previous, remote, this.synced);
      if (outcome === 'refuse') return outcome;
      // A document about to be adopted meets the same rules as a local change, so a bad peer cannot install what this node would refuse.
      if (ADOPTS.has(outcome)) {
        try {
          checkDocumentContent(remote, previous.nodes.map((n) => n.id));
        } catch (err) {
          if (!(err instanceof ControlError)) throw err;
          this.emit('rejected', { version: remote.version, updatedBy: remote.updatedBy, reason: err.message });
          return 'invalid';
        }
      }
      const loser = LOSER[outcome];
      let keptAt: string | null = null;
      if (loser) keptAt = await this.keepAside(loser === 'local' ? previous : remote);
      if (ADOPTS.has(outcome)) this.doc = remote;
      if (outcome !== 'keep') this.synced = Math.max(this.synced, remote.version);
      if (ADOPTS.has(outcome) || outcome === 'same' || loser) await this.persist();
      if (keptAt) {
        const [l, w] = loser === 'local' ? [previous, remote] : [remote, previous];
        this.emit('conflict', { outcome, keptAt, loser: { version: l.version, updatedBy: l.updatedBy }, winner: { version: w.version, updatedBy: w.updatedBy } });
      }
      if (ADOPTS.has(outcome)) this.emit('change', { previous, document: remote, origin: 'peer', summary: `configuration version ${remote.version} from ${remote.updatedBy ?? 'the peer'}` });
      return outcome;
    });
  }

  /** The peer holds `version` (it said so): changes up to it have reached it. */
  peerHas(version: number): Promise<void> {
    return this.serialized(async () => {
      if (version <= this.synced || version > this.doc.version) return;
      this.synced = version;
      await this.persist();
    });
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async keepAside(doc: ClusterDocument): Promise<string> {
    const file = path.join(path.dirname(this.file), `cluster-config.conflict-v${doc.version}-${contentHash(doc).slice(0, 12)}.json`);
    await writeDurably(file, `${JSON.stringify(doc, null, 2)}\n`);
    return file;
  }

  private persist(): Promise<void> {
    const state: StoreFile = { document: this.doc, syncedVersion: this.synced };
    return writeDurably(this.file, `${JSON.stringify(state, null, 2)}\n`);
  }
}

/** Writes `text` to `file` atomically with mode 0600: beside it, fsync, rename, fsync the directory. */
async function writeDurably(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: FILE_MODE });
  const fh = await open(tmp, 'r+');
  try {
    await fh.chmod(FILE_MODE);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
