/**
 * Generation ids: which replica holds the newer data, and what to resync.
 *
 * After DRBD's UUIDs (the ideas of drbd_uuid_compare, not its code). Each
 * replica of a volume keeps, durably in its metadata:
 *
 *   current  the id of the data it holds now. Two replicas with the same
 *            `current` hold the same data, except regions covered by either
 *            side's dirty bitmap (writes in flight at a crash, see below).
 *   bitmap   while the replica writes without its peer: the `current` the peer
 *            had when they parted. The dirty bitmap then covers every region
 *            where this replica differs from any replica whose `current` is
 *            that id. null when there is no such base.
 *   history  older ids, newest first, at most HISTORY_LENGTH.
 *
 * The invariant everything here rests on:
 *
 *   (I) when the ids relate two replicas — same `current`, or one's `bitmap`
 *       is the other's `current` — every region where their data differ is
 *       marked in one of their dirty bitmaps (for a replica that crashed: in
 *       its activity log, which VolumeMetadata.open folds into its bitmap).
 *
 * It holds because: writes acknowledged while connected are on both sides
 * (protocol C); a replica that writes without its peer gets a new `current`
 * first (`onPeerLost`/`onPromote`), durably, before it acknowledges anything;
 * a write is marked in the dirty bitmap (durably) before it is issued, and
 * writes in flight at a crash lie in the activity log, which is folded into
 * the bitmap when the metadata is opened again; a resync target adopts the
 * source's `current` only once it holds the source's data (`onSyncComplete`);
 * a replica that is a resync target (not consistent) is never promoted.
 *
 * So a bitmap-mode resync copies the UNION of both sides' dirty bitmaps from
 * source to target (the target sends its bitmap, the source merges it): that
 * union covers every region where the two differ. Once a region is copied
 * both sides may clear its bit; during a full resync bits are cleared only at
 * the end. Every id is random (64 bits), so equal ids mean a common origin.
 * `localDirty`/`peerDirty` must be taken after the activity log was folded in
 * (VolumeMetadata.open does that before it resolves).
 *
 * `decideSync` is a table of named rules, tried in order; the first that
 * matches decides. Both nodes evaluate it, each from its own side, and reach
 * mirror-image answers (the tests check this), given that they pass opposite
 * `localWinsTies`.
 */
import { randomBytes } from 'node:crypto';

export interface Generations {
  /** The id of the data this replica holds. EMPTY_GENERATION: none yet. */
  readonly current: string;
  /** The peer's `current` when this replica started writing without it, or null. */
  readonly bitmap: string | null;
  /** Earlier ids, newest first, at most HISTORY_LENGTH. */
  readonly history: readonly string[];
}

/** A freshly created volume: no data anyone vouches for yet. */
export const EMPTY_GENERATION = '0000000000000000';
/** How many earlier ids a replica remembers (the metadata has room for exactly this many). */
export const HISTORY_LENGTH = 8;

const ID_PATTERN = /^[0-9a-f]{16}$/;

/** A new random 64-bit id as 16 lowercase hex digits; never EMPTY_GENERATION. */
export function newGenerationId(): string {
  for (;;) {
    const id = randomBytes(8).toString('hex');
    if (id !== EMPTY_GENERATION) return id;
  }
}

/** The generations of a newly created volume. */
export function initialGenerations(): Generations {
  return { current: EMPTY_GENERATION, bitmap: null, history: [] };
}

export function isGenerationId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** Why `g` is not well formed, or null when it is. */
export function generationsProblem(g: Generations): string | null {
  if (!isGenerationId(g.current)) return `current ${JSON.stringify(g.current)} is not 16 hex digits`;
  if (g.bitmap !== null) {
    if (!isGenerationId(g.bitmap) || g.bitmap === EMPTY_GENERATION) return `bitmap ${JSON.stringify(g.bitmap)} is not a generation id`;
    if (g.bitmap === g.current) return 'bitmap equals current';
  }
  if (g.history.length > HISTORY_LENGTH) return `history has ${g.history.length} entries, at most ${HISTORY_LENGTH}`;
  for (const id of g.history) {
    if (!isGenerationId(id) || id === EMPTY_GENERATION) return `history entry ${JSON.stringify(id)} is not a generation id`;
    if (id === g.current) return 'history contains current';
  }
  return null;
}

function checkWellFormed(g: Generations, who: string): void {
  const problem = generationsProblem(g);
  if (problem) throw new TypeError(`${who} generations are malformed: ${problem}`);
}

// ---------------------------------------------------------------------------
// The decision.

export type Side = 'local' | 'peer';
export type ResyncMode = 'bitmap' | 'full';

export interface SyncContext {
  /** The local dirty bitmap has a bit set (after the activity log was folded in). */
  readonly localDirty: boolean;
  readonly peerDirty: boolean;
  /** The local replica was primary when it crashed and has not been resynced since. */
  readonly localCrashedPrimary?: boolean;
  readonly peerCrashedPrimary?: boolean;
  /** False for a replica that is an unfinished resync target. Default true. */
  readonly localConsistent?: boolean;
  readonly peerConsistent?: boolean;
  /**
   * Which side wins when both have an equal claim to be the source (only
   * where either choice is correct). Exactly one of the two nodes passes
   * true, e.g. the one with the lower node id.
   */
  readonly localWinsTies: boolean;
}

export type SyncDecision =
  | { readonly kind: 'in-sync'; readonly rule: SyncRuleName }
  /** Copy from `source` to the other side: every region (full) or the union of both dirty bitmaps (bitmap). */
  | { readonly kind: 'resync'; readonly source: Side; readonly mode: ResyncMode; readonly rule: SyncRuleName }
  /** Both sides wrote while apart: the operator picks a survivor (resolveSplitBrain). */
  | { readonly kind: 'split-brain'; readonly detail: string; readonly rule: SyncRuleName }
  /** No usable common origin: refuse to connect the volume. */
  | { readonly kind: 'unrelated'; readonly detail: string; readonly rule: SyncRuleName };

interface SideView {
  readonly side: Side;
  readonly g: Generations;
  readonly dirty: boolean;
  readonly crashedPrimary: boolean;
  readonly consistent: boolean;
}

interface Situation {
  readonly local: SideView;
  readonly peer: SideView;
  readonly localWinsTies: boolean;
}

type Verdict =
  | { readonly kind: 'in-sync' }
  | { readonly kind: 'resync'; readonly source: Side; readonly mode: ResyncMode }
  | { readonly kind: 'split-brain' | 'unrelated'; readonly detail: string };

const isEmpty = (v: SideView): boolean => v.g.current === EMPTY_GENERATION;
/*
 * The paired rules below hold for one side only: when a relation holds both
 * ways (contradictory lineage, which no sequence of events produces) neither
 * rule matches, so both nodes fall through to the same refusal.
 */
const baseIsCurrentOf = (me: SideView, other: SideView): boolean => me.g.bitmap !== null && me.g.bitmap === other.g.current;
/** `me` wrote without the other since the other's current: my bitmap base is its current. */
const wroteAloneFrom = (me: SideView, other: SideView): boolean => baseIsCurrentOf(me, other) && !baseIsCurrentOf(other, me);
const inHistoryOf = (me: SideView, other: SideView): boolean => me.g.history.includes(other.g.current);
/** The other's current is one of my earlier generations. */
const descendsFrom = (me: SideView, other: SideView): boolean => inHistoryOf(me, other) && !inHistoryOf(other, me);
const sameBitmapBase = (s: Situation): boolean => s.local.g.bitmap !== null && s.local.g.bitmap === s.peer.g.bitmap;
/**
 * The replica holds changes of its own: dirty bits, and consistent. An
 * unfinished resync target has nothing of its own to keep: it became a target
 * because its changes were none or were discarded, and it cannot have been
 * promoted since. Its bits still count in the union that gets copied.
 */
const changed = (v: SideView): boolean => v.dirty && v.consistent;

/**
 * The source when either side would do (the union of both bitmaps is copied
 * either way): a consistent side, then a crashed primary, then a side with
 * dirty bits, then the tie winner.
 */
function preferredSource(s: Situation): Side {
  const keys: ((v: SideView) => boolean)[] = [(v) => v.consistent, (v) => v.crashedPrimary, (v) => v.dirty];
  for (const key of keys) {
    if (key(s.local) !== key(s.peer)) return key(s.local) ? 'local' : 'peer';
  }
  return s.localWinsTies ? 'local' : 'peer';
}

function ancestry(g: Generations): Set<string> {
  const ids = new Set(g.history);
  if (g.bitmap !== null) ids.add(g.bitmap);
  return ids;
}

const resync = (source: Side, mode: ResyncMode): Verdict => ({ kind: 'resync', source, mode });

/**
 * The rules, in the order they are tried. `decide` returns null when the
 * rule does not apply. The `summary` is the documentation.
 */
const SYNC_RULES = [
  {
    name: 'both-empty',
    summary: 'Both replicas are newly created: neither holds data anyone vouches for. Refuse until an operator promotes one (onPromote), which makes it the initial full-sync source.',
    decide: (s: Situation): Verdict | null =>
      isEmpty(s.local) && isEmpty(s.peer)
        ? { kind: 'unrelated', detail: 'both replicas are newly created; promote one of them to start the initial full sync' }
        : null,
  },
  {
    name: 'local-empty',
    summary: 'The local replica is newly created (or its metadata was recreated): full resync from the peer.',
    decide: (s: Situation): Verdict | null => (isEmpty(s.local) ? resync('peer', 'full') : null),
  },
  {
    name: 'peer-empty',
    summary: 'The peer is newly created: full resync from the local replica.',
    decide: (s: Situation): Verdict | null => (isEmpty(s.peer) ? resync('local', 'full') : null),
  },
  {
    name: 'same-current-clean',
    summary: 'Same current, no dirty bits, no crashed primary, both consistent: in sync.',
    decide: (s: Situation): Verdict | null => {
      if (s.local.g.current !== s.peer.g.current) return null;
      const clean = (v: SideView): boolean => !v.dirty && !v.crashedPrimary && v.consistent;
      return clean(s.local) && clean(s.peer) ? { kind: 'in-sync' } : null;
    },
  },
  {
    name: 'same-current-unclean',
    summary:
      'Same current but dirty bits, a crashed primary or an unfinished resync: only writes that were never acknowledged can differ, ' +
      'and they lie in the dirty bitmaps; bitmap resync from the preferred side (consistent, crashed primary, dirty, tie winner).',
    decide: (s: Situation): Verdict | null => (s.local.g.current === s.peer.g.current ? resync(preferredSource(s), 'bitmap') : null),
  },
  {
    name: 'local-wrote-alone',
    summary: "The local bitmap base is the peer's current: the local side wrote without the peer, which did not write since. Bitmap resync from local.",
    decide: (s: Situation): Verdict | null => (wroteAloneFrom(s.local, s.peer) ? resync('local', 'bitmap') : null),
  },
  {
    name: 'peer-wrote-alone',
    summary: "The peer's bitmap base is the local current: bitmap resync from the peer.",
    decide: (s: Situation): Verdict | null => (wroteAloneFrom(s.peer, s.local) ? resync('peer', 'bitmap') : null),
  },
  {
    name: 'local-descends-from-peer',
    summary: "The peer's current is in the local history: the peer missed several generations. Full resync from local.",
    decide: (s: Situation): Verdict | null => (descendsFrom(s.local, s.peer) ? resync('local', 'full') : null),
  },
  {
    name: 'peer-descends-from-local',
    summary: 'The local current is in the peer history: full resync from the peer.',
    decide: (s: Situation): Verdict | null => (descendsFrom(s.peer, s.local) ? resync('peer', 'full') : null),
  },
  {
    name: 'split-brain',
    summary:
      'Both started writing alone from the same base and both have changes (dirty bits, consistent): both wrote while apart. Never resolved here.',
    decide: (s: Situation): Verdict | null =>
      sameBitmapBase(s) && changed(s.local) && changed(s.peer)
        ? { kind: 'split-brain', detail: `both replicas wrote since generation ${s.local.g.bitmap ?? ''} without each other` }
        : null,
  },
  {
    name: 'only-local-changed',
    summary:
      'Both were promoted alone from the same base but the peer has no changes (no dirty bits, or an unfinished resync target): bitmap resync from local, nothing of the peer is lost.',
    decide: (s: Situation): Verdict | null => (sameBitmapBase(s) && changed(s.local) ? resync('local', 'bitmap') : null),
  },
  {
    name: 'only-peer-changed',
    summary: 'Both were promoted alone from the same base but only the peer wrote: bitmap resync from the peer.',
    decide: (s: Situation): Verdict | null => (sameBitmapBase(s) && changed(s.peer) ? resync('peer', 'bitmap') : null),
  },
  {
    name: 'neither-changed',
    summary: 'Both were promoted alone from the same base and neither wrote: the data are equal; an (empty) bitmap resync from the preferred side unifies the ids.',
    decide: (s: Situation): Verdict | null => (sameBitmapBase(s) ? resync(preferredSource(s), 'bitmap') : null),
  },
  {
    name: 'diverged',
    summary: 'The two share an earlier generation but none of the rules above relates their present ones: both went their own way. Treated as split brain.',
    decide: (s: Situation): Verdict | null => {
      const mine = ancestry(s.local.g);
      for (const id of ancestry(s.peer.g)) {
        if (mine.has(id)) return { kind: 'split-brain', detail: `the replicas diverged after common generation ${id}` };
      }
      return null;
    },
  },
  {
    name: 'unrelated',
    summary: 'No common generation (different volumes, or a replica too many generations behind): refuse to connect.',
    decide: (s: Situation): Verdict | null => ({
      kind: 'unrelated',
      detail: `no common generation between local ${s.local.g.current} and peer ${s.peer.g.current}`,
    }),
  },
] as const;

/** Checked after a rule chose a resync source: a source that is not consistent is refused. */
const GUARD_RULES = [
  {
    name: 'inconsistent-source',
    summary: 'The chosen source is an unfinished resync target. Cannot happen when such replicas are never promoted; refused if it does.',
  },
] as const;

export type SyncRuleName = (typeof SYNC_RULES)[number]['name'] | (typeof GUARD_RULES)[number]['name'];

/** Every rule with its summary, in evaluation order (documentation and tests). */
export const SYNC_RULE_SUMMARIES: readonly { readonly name: SyncRuleName; readonly summary: string }[] = [
  ...SYNC_RULES.map(({ name, summary }) => ({ name, summary })),
  ...GUARD_RULES,
];

/**
 * Compares the two replicas' generations when they connect. Pure.
 * Throws TypeError for malformed generations (corrupt input, not a failure case).
 */
export function decideSync(local: Generations, peer: Generations, context: SyncContext): SyncDecision {
  checkWellFormed(local, 'local');
  checkWellFormed(peer, 'peer');
  const view = (side: Side, g: Generations, dirty: boolean, crashed?: boolean, consistent?: boolean): SideView => ({
    side,
    g,
    dirty,
    crashedPrimary: crashed ?? false,
    consistent: consistent ?? true,
  });
  const s: Situation = {
    local: view('local', local, context.localDirty, context.localCrashedPrimary, context.localConsistent),
    peer: view('peer', peer, context.peerDirty, context.peerCrashedPrimary, context.peerConsistent),
    localWinsTies: context.localWinsTies,
  };
  for (const rule of SYNC_RULES) {
    const verdict = rule.decide(s);
    if (!verdict) continue;
    if (verdict.kind === 'resync' && !s[verdict.source].consistent) {
      return {
        kind: 'unrelated',
        rule: 'inconsistent-source',
        detail: `rule ${rule.name} picks the ${verdict.source} replica as source, but it is an unfinished resync target`,
      };
    }
    return { ...verdict, rule: rule.name };
  }
  throw new Error('unreachable: the last sync rule always matches');
}

/** Rules that come in local/peer pairs: the other node matches the partner rule. */
const RULE_PARTNERS: Partial<Record<SyncRuleName, SyncRuleName>> = {
  'local-empty': 'peer-empty',
  'peer-empty': 'local-empty',
  'local-wrote-alone': 'peer-wrote-alone',
  'peer-wrote-alone': 'local-wrote-alone',
  'local-descends-from-peer': 'peer-descends-from-local',
  'peer-descends-from-local': 'local-descends-from-peer',
  'only-local-changed': 'only-peer-changed',
  'only-peer-changed': 'only-local-changed',
};

/** The same decision as the other node reaches it (sides swapped, paired rules swapped). */
export function mirrorDecision(d: SyncDecision): SyncDecision {
  const rule = RULE_PARTNERS[d.rule] ?? d.rule;
  if (d.kind !== 'resync') return { ...d, rule };
  return { ...d, rule, source: d.source === 'local' ? 'peer' : 'local' };
}

// ---------------------------------------------------------------------------
// Transitions. Each returns new generations; the caller stores them durably
// (VolumeMetadata.setGenerations) before acting on them.

/** Prepends ids to a history, dropping nulls, EMPTY, duplicates and `exclude`, keeping HISTORY_LENGTH. */
function pushHistory(history: readonly string[], ids: readonly (string | null)[], exclude: string): string[] {
  const out: string[] = [];
  for (const id of [...ids, ...history]) {
    if (id === null || id === EMPTY_GENERATION || id === exclude || out.includes(id)) continue;
    out.push(id);
  }
  return out.slice(0, HISTORY_LENGTH);
}

/**
 * A primary goes on writing without its peer (peer crashed, link lost):
 * new current, old current into history, and the bitmap base is the old
 * current — unless a base is already set (the peer has not caught up since an
 * earlier separation, or a resync to it is unfinished), which is kept: the
 * dirty bitmap still covers every change since that base, so the peer, still
 * at that base, gets a bitmap resync rather than a full one.
 * Store the result durably before the first write acknowledged without the peer.
 */
export function onPeerLost(g: Generations): Generations {
  checkWellFormed(g, 'local');
  if (g.current === EMPTY_GENERATION) throw new RangeError('a newly created replica cannot write: promote it first');
  const current = newGenerationId();
  return { current, bitmap: g.bitmap ?? g.current, history: pushHistory(g.history, [g.current], current) };
}

/**
 * The replica becomes primary. `peerConnected`: the peer is connected and
 * receives every write (in sync, or our resync target). Then nothing changes;
 * otherwise this is onPeerLost. A newly created replica being promoted is the
 * operator's declaration that its data are authoritative: it gets its first
 * real id (no bitmap base), and the peer gets a full sync from it.
 * Only a consistent replica may be promoted (the caller checks the flag).
 */
export function onPromote(g: Generations, peerConnected: boolean): Generations {
  checkWellFormed(g, 'local');
  if (g.current === EMPTY_GENERATION) return { current: newGenerationId(), bitmap: null, history: [...g.history] };
  return peerConnected ? g : onPeerLost(g);
}

/**
 * A resync finished: the target holds the source's data. The target adopts
 * the source's current; the source drops its bitmap base. Store the TARGET's
 * new generations first, then the source's: a crash between leaves equal
 * currents with a leftover base on the source, which decideSync treats as in
 * sync (or as a cheap bitmap resync if bits are left), never as a false
 * "newer" side. Also used after an in-sync decision (both sides then drop
 * their bases).
 */
export function onSyncComplete(source: Generations, target: Generations): { source: Generations; target: Generations } {
  checkWellFormed(source, 'source');
  checkWellFormed(target, 'target');
  if (source.current === EMPTY_GENERATION) throw new RangeError('an empty replica cannot be a resync source');
  return {
    source: { current: source.current, bitmap: null, history: pushHistory(source.history, [source.bitmap], source.current) },
    target: {
      current: source.current,
      bitmap: null,
      history: pushHistory(target.history, [target.current, target.bitmap], source.current),
    },
  };
}

/**
 * Manual split-brain resolution: the operator keeps `survivor`'s data and
 * the `victim` discards its changes since the split.
 *
 * When both started from the same base (the survivor's bitmap base is the
 * victim's base or current), the victim rolls its current back to that base
 * and KEEPS its dirty bits: they mark exactly the regions it changed since.
 * The survivor is then the bitmap-resync source (rule peer/local-wrote-alone)
 * and the resync copies the union of both bitmaps, which covers the
 * survivor's changes and the victim's discarded ones alike. Otherwise (they
 * share only older history) the victim forgets its lineage (EMPTY current)
 * and gets a full resync.
 *
 * The victim must be marked not consistent (so it is never promoted) until
 * the resync completes. The survivor's generations do not change.
 */
export function resolveSplitBrain(
  survivor: Generations,
  victim: Generations,
): { survivor: Generations; victim: Generations; mode: ResyncMode } {
  checkWellFormed(survivor, 'survivor');
  checkWellFormed(victim, 'victim');
  if (survivor.current === EMPTY_GENERATION) throw new RangeError('an empty replica cannot survive a split brain');
  const base = survivor.bitmap;
  if (base !== null && (base === victim.bitmap || base === victim.current)) {
    return {
      survivor,
      victim: { current: base, bitmap: null, history: pushHistory(victim.history, [victim.current, victim.bitmap], base) },
      mode: 'bitmap',
    };
  }
  return {
    survivor,
    victim: {
      current: EMPTY_GENERATION,
      bitmap: null,
      history: pushHistory(victim.history, [victim.current, victim.bitmap], EMPTY_GENERATION),
    },
    mode: 'full',
  };
}
