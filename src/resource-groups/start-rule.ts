/**
 * When the preferred owner of a resource group may start serving it after
 * its own (re)start: a pure table, the start-time companion of the witness
 * decision table (witness/decision.ts), which covers failover.
 *
 * The danger at start is the peer's newer data. While this node was down
 * the peer may have served the RG (after our clean shutdown, on our death
 * with the lease, or forced by the operator) and written to it. A node
 * that then starts serving its own copy serves stale data, and if the peer
 * is alive behind a partition, both serve. What the node knows of its copy
 * comes from its volumes' handshake with the peer (DataStanding): only the
 * handshake compares the two copies' generations. So:
 *
 * - the handshake said which copy is newer: serve if ours is (or both are
 *   equal) and the peer does not serve the group; wait while ours is being
 *   resynced from the peer; stand by if the peer serves it;
 * - no handshake yet and the peer may be up (heard, or not silent for the
 *   dead time yet): wait for the handshake;
 * - no handshake and the peer is dead: only the witness lease can vouch. In
 *   witness mode take the lease (the peer could have written only under a
 *   lease it no longer holds; README.md "Restart" names the remaining hole).
 *   Without a witness, wait: nothing tells a dead peer from a partitioned
 *   one, nor whether it served the group since. An operator who knows may
 *   force it. The risky mode starts, as it takes over.
 */
import type { PeerState } from './liveness';
import type { WitnessMode } from './witness/no-witness';
import { type Match, matches } from './rule-match';

export const DATA_STANDINGS = {
  current: "the handshake with the peer found this node's copies of the group's volumes as new as the peer's (in sync, or the resync source)",
  'peer-serves': "the peer's copies are primary: the peer serves the group",
  behind: "this node's copy is being resynced from the peer (an unfinished resync target): the peer's data is newer",
  blocked: 'the handshake refused the copies (split brain, unrelated): an operator must decide',
  unknown: 'no handshake with the peer since this node started (peer down, partitioned, or not connected yet)',
} as const;
export type DataStanding = keyof typeof DATA_STANDINGS;

export const START_ACTIONS = {
  start: 'start serving the group (witness mode: lease first)',
  wait: 'do not serve yet; decide again on the next tick',
  'stand-by': 'the peer serves the group: this node is its standby (failback may move it back)',
} as const;
export type StartAction = keyof typeof START_ACTIONS;

export interface StartInput {
  readonly mode: WitnessMode;
  readonly standing: DataStanding;
  readonly peer: PeerState;
}

export interface StartRule {
  readonly id: string;
  readonly mode: Match<WitnessMode>;
  readonly standing: Match<DataStanding>;
  readonly peer: Match<PeerState>;
  readonly action: StartAction;
  readonly why: string;
}

const GONE: PeerState[] = ['dead', 'shutdown'];
const MAYBE_UP: PeerState[] = ['alive', 'suspect'];

/** Disjoint: exactly one rule matches each input (the unit test enumerates them). */
export const START_TABLE: readonly StartRule[] = [
  { id: 'S-current', mode: '*', standing: ['current'], peer: '*', action: 'start', why: 'our copy is as new as the peer\'s and the peer does not serve the group' },
  { id: 'S-peer-serves', mode: '*', standing: ['peer-serves'], peer: '*', action: 'stand-by', why: 'the peer serves the group' },
  { id: 'S-behind', mode: '*', standing: ['behind'], peer: '*', action: 'wait', why: "the peer's copy is newer: wait until the resync from it is done" },
  { id: 'S-blocked', mode: '*', standing: ['blocked'], peer: '*', action: 'wait', why: 'the copies were refused (split brain or unrelated): an operator decides' },
  { id: 'S-unknown-peer-up', mode: '*', standing: ['unknown'], peer: MAYBE_UP, action: 'wait', why: 'the peer is (or may be) up: the handshake will tell whose copy is newer' },
  {
    id: 'S-W-unknown-gone', mode: ['witness'], standing: ['unknown'], peer: GONE, action: 'start',
    why: 'the peer is gone: the witness lease decides (the peer could write only under a lease it no longer holds)',
  },
  {
    id: 'S-N-unknown-gone', mode: ['no-witness'], standing: ['unknown'], peer: GONE, action: 'wait',
    why: 'without a witness nothing says whether the peer served the group since: wait for it, or an operator forces the start',
  },
  {
    id: 'S-R-unknown-gone', mode: ['no-witness-risky'], standing: ['unknown'], peer: GONE, action: 'start',
    why: 'risky mode: the peer is silent on every path (it may be partitioned, and its copy newer)',
  },
];

export function startRuleMatches(rule: StartRule, input: StartInput): boolean {
  return matches(rule.mode, input.mode) && matches(rule.standing, input.standing) && matches(rule.peer, input.peer);
}

/** What the preferred owner does about a group it does not serve yet after its start. Pure. */
export function decideStart(input: StartInput): { action: StartAction; rule: string; why: string } {
  for (const rule of START_TABLE) {
    if (startRuleMatches(rule, input)) return { action: rule.action, rule: rule.id, why: rule.why };
  }
  throw new RangeError(`no start rule matches ${JSON.stringify(input)}`);
}

/** Most telling first: one volume the peer serves, refused or behind decides for the whole group. */
const STANDING_PRECEDENCE: readonly DataStanding[] = ['peer-serves', 'blocked', 'behind', 'unknown', 'current'];

/** The standing of a group from its volumes' standings (no volumes: unknown). */
export function groupStanding(volumes: readonly DataStanding[]): DataStanding {
  if (volumes.length === 0) return 'unknown';
  return STANDING_PRECEDENCE.find((s) => volumes.includes(s)) ?? 'unknown';
}
