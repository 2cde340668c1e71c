/**
 * Who serves a resource group when something fails: a pure decision table.
 *
 * Inputs, per RG, as one node sees them:
 *   mode      witness | no-witness (default without a witness) | no-witness-risky
 *   serving   does this node serve the RG now (alias IPs up, taking commands)?
 *   peer      the peer's heartbeats (PEER_STATES)
 *   witness   can this node reach the witness now?
 *   lease     the RG's lease as this node knows it (LEASE_VIEWS)
 *   forced    an operator forced this node to take the RG over
 * Output: keep-serving | stop-serving (owner), take-over | wait (standby),
 * with the rule that chose it.
 *
 * 'take-over' means: acquire the lease (in witness mode), then serve; if
 * the acquire is refused, the next decision sees lease 'peer' and waits.
 *
 * The owner's rules with a lease it could not renew ('ours-lapsed') keep it
 * serving while the peer is alive: the peer cannot take over while it sees
 * us, so a witness outage alone never stops the pair. That is safe only if
 * the owner notices a silent peer ('suspect') and stops before the peer
 * declares it dead and takes over; the heartbeat timings must satisfy
 *   suspectAfterMs + heartbeatIntervalMs + stopBudgetMs < deadAfterMs
 * (README.md "Decision table").
 */
import type { WitnessMode } from './no-witness';
import { type Match, matches } from '../rule-match';

export const PEER_STATES = {
  alive: 'a heartbeat arrived recently on at least one path',
  suspect: 'silent on some path, or on every path when fewer than two paths work: not enough evidence of death',
  dead: 'silent on every one of at least two independent paths for the dead timeout',
  shutdown: 'the peer announced a clean shutdown: it stopped serving and released its leases',
} as const;
export type PeerState = keyof typeof PEER_STATES;

export const WITNESS_REACH = {
  reachable: 'the last witness call answered',
  unreachable: 'the witness did not answer (down, cut off, timed out)',
} as const;
export type WitnessReach = keyof typeof WITNESS_REACH;

export const LEASE_VIEWS = {
  ours: 'this node holds the lease and its serving deadline has not come',
  'ours-lapsed': "this node held the lease but could not renew it in time ('must-stop' was emitted)",
  free: 'the witness says nobody holds the lease',
  peer: 'the witness says the peer holds the lease (or a renewal found it taken)',
  unknown: 'this node holds no lease and cannot ask the witness',
} as const;
export type LeaseView = keyof typeof LEASE_VIEWS;

export const ACTIONS = {
  'keep-serving': 'go on serving the RG',
  'stop-serving': 'drop the alias IPs and refuse commands for the RG now',
  'take-over':
    'witness mode: acquire the lease, then bring up the alias IPs and serve (refused or unreachable: do not serve, decide again); ' +
    'forced by the operator or without a witness: serve (acquire the lease where a witness answers)',
  wait: 'do nothing; decide again when an input changes',
} as const;
export type Action = keyof typeof ACTIONS;

export const MODES: readonly WitnessMode[] = ['witness', 'no-witness', 'no-witness-risky'];

export interface DecisionInput {
  readonly mode: WitnessMode;
  readonly serving: boolean;
  readonly peer: PeerState;
  readonly witness: WitnessReach;
  readonly lease: LeaseView;
  readonly forced: boolean;
}

export interface Decision {
  readonly action: Action;
  /** The id of the rule that chose it (DECISION_TABLE). */
  readonly rule: string;
  readonly why: string;
}

export interface DecisionRule {
  readonly id: string;
  readonly mode: Match<WitnessMode>;
  readonly serving: Match<boolean>;
  readonly peer: Match<PeerState>;
  readonly witness: Match<WitnessReach>;
  readonly lease: Match<LeaseView>;
  readonly forced: Match<boolean>;
  readonly action: Action;
  readonly why: string;
}

const W: WitnessMode[] = ['witness'];
const NOT_OURS: LeaseView[] = ['ours-lapsed', 'free', 'unknown'];

/**
 * Every rule, disjoint: exactly one matches each of the possible inputs
 * (the unit test enumerates them all).
 */
export const DECISION_TABLE: readonly DecisionRule[] = [
  // ---- owner (serving), witness mode ----
  { id: 'W-own-taken', mode: W, serving: [true], peer: '*', witness: '*', lease: ['peer'], forced: '*', action: 'stop-serving', why: 'the peer holds a newer lease term' },
  { id: 'W-own-held', mode: W, serving: [true], peer: '*', witness: '*', lease: ['ours'], forced: '*', action: 'keep-serving', why: 'our lease is valid' },
  {
    id: 'W-own-vouched', mode: W, serving: [true], peer: ['alive', 'shutdown'], witness: '*', lease: NOT_OURS, forced: '*',
    action: 'keep-serving', why: 'no valid lease, but the peer is alive (or shut down) and cannot take over',
  },
  {
    id: 'W-own-alone', mode: W, serving: [true], peer: ['suspect', 'dead'], witness: '*', lease: NOT_OURS, forced: '*',
    action: 'stop-serving', why: 'no valid lease and no peer: the peer may take over once the lease is free',
  },
  // ---- standby, witness mode ----
  { id: 'W-sb-forced', mode: W, serving: [false], peer: '*', witness: '*', lease: '*', forced: [true], action: 'take-over', why: 'the operator forced the takeover' },
  { id: 'W-sb-peer-up', mode: W, serving: [false], peer: ['alive', 'suspect'], witness: '*', lease: '*', forced: [false], action: 'wait', why: 'the peer is (or may be) alive' },
  {
    id: 'W-sb-gone-ours', mode: W, serving: [false], peer: ['dead', 'shutdown'], witness: '*', lease: ['ours'], forced: [false],
    action: 'take-over', why: 'the peer is gone and we hold a valid lease',
  },
  {
    id: 'W-sb-gone-free', mode: W, serving: [false], peer: ['dead', 'shutdown'], witness: ['reachable'], lease: ['free'], forced: [false],
    action: 'take-over', why: 'the peer is gone and the witness says the lease is free',
  },
  {
    id: 'W-sb-gone-held', mode: W, serving: [false], peer: ['dead', 'shutdown'], witness: '*', lease: ['peer'], forced: [false],
    action: 'wait', why: 'the peer is silent (or shutting down) but still holds the lease: it may be alive behind a partition',
  },
  {
    id: 'W-sb-gone-unsure', mode: W, serving: [false], peer: ['dead', 'shutdown'], witness: ['reachable'], lease: ['ours-lapsed', 'unknown'], forced: [false],
    action: 'wait', why: 'the lease state is not known yet: ask the witness again',
  },
  {
    id: 'W-sb-gone-blind', mode: W, serving: [false], peer: ['dead', 'shutdown'], witness: ['unreachable'], lease: ['free', 'ours-lapsed', 'unknown'], forced: [false],
    action: 'wait', why: 'the peer is gone but the witness cannot be asked: never take over without the lease',
  },
  // ---- no witness, safe default ----
  { id: 'N-own', mode: ['no-witness'], serving: [true], peer: '*', witness: '*', lease: '*', forced: '*', action: 'keep-serving', why: 'without a witness the peer never takes over on a partition' },
  {
    id: 'N-sb-go', mode: ['no-witness'], serving: [false], peer: ['shutdown'], witness: '*', lease: '*', forced: '*',
    action: 'take-over', why: 'the peer shut down cleanly',
  },
  {
    id: 'N-sb-forced', mode: ['no-witness'], serving: [false], peer: ['alive', 'suspect', 'dead'], witness: '*', lease: '*', forced: [true],
    action: 'take-over', why: 'the operator forced the takeover',
  },
  {
    id: 'N-sb-wait', mode: ['no-witness'], serving: [false], peer: ['alive', 'suspect', 'dead'], witness: '*', lease: '*', forced: [false],
    action: 'wait', why: 'without a witness a silent peer may be partitioned, not dead (allowTakeoverWithoutWitness is off)',
  },
  // ---- no witness, risky opt-in ----
  { id: 'R-own', mode: ['no-witness-risky'], serving: [true], peer: '*', witness: '*', lease: '*', forced: '*', action: 'keep-serving', why: 'nothing can tell us to stop' },
  {
    id: 'R-sb-go', mode: ['no-witness-risky'], serving: [false], peer: ['dead', 'shutdown'], witness: '*', lease: '*', forced: '*',
    action: 'take-over', why: 'the peer is silent on every path (risky mode: it may be partitioned and still serving)',
  },
  {
    id: 'R-sb-forced', mode: ['no-witness-risky'], serving: [false], peer: ['alive', 'suspect'], witness: '*', lease: '*', forced: [true],
    action: 'take-over', why: 'the operator forced the takeover',
  },
  {
    id: 'R-sb-wait', mode: ['no-witness-risky'], serving: [false], peer: ['alive', 'suspect'], witness: '*', lease: '*', forced: [false],
    action: 'wait', why: 'the peer is (or may be) alive',
  },
];

export function ruleMatches(rule: DecisionRule, input: DecisionInput): boolean {
  return (
    matches(rule.mode, input.mode) &&
    matches(rule.serving, input.serving) &&
    matches(rule.peer, input.peer) &&
    matches(rule.witness, input.witness) &&
    matches(rule.lease, input.lease) &&
    matches(rule.forced, input.forced)
  );
}

/** What a node does about one RG. Pure; throws only on an input outside the table's domain. */
export function decide(input: DecisionInput): Decision {
  for (const rule of DECISION_TABLE) {
    if (ruleMatches(rule, input)) return { action: rule.action, rule: rule.id, why: rule.why };
  }
  throw new RangeError(`no decision rule matches ${JSON.stringify(input)}`);
}

/** Every possible input, for tests and documentation. */
export function allDecisionInputs(): DecisionInput[] {
  const out: DecisionInput[] = [];
  for (const mode of MODES)
    for (const serving of [true, false])
      for (const peer of Object.keys(PEER_STATES) as PeerState[])
        for (const witness of Object.keys(WITNESS_REACH) as WitnessReach[])
          for (const lease of Object.keys(LEASE_VIEWS) as LeaseView[])
            for (const forced of [false, true]) out.push({ mode, serving, peer, witness, lease, forced });
  return out;
}
