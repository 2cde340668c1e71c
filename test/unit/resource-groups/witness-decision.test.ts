/**
 * The takeover decision table, tested exhaustively: every input matches
 * exactly one rule, the rules say what the README says, and in a partition
 * two nodes following the table never both serve one RG.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ACTIONS,
  DECISION_TABLE,
  LEASE_VIEWS,
  PEER_STATES,
  WITNESS_REACH,
  allDecisionInputs,
  decide,
  type Action,
  type DecisionInput,
  type LeaseView,
  type PeerState,
  type WitnessMode,
  type WitnessReach,
} from '../../../src/resource-groups/witness';
import { ruleMatches } from '../../../src/resource-groups/witness/decision';

const inputs = allDecisionInputs();

describe('decision table: shape', () => {
  it('enumerates every combination of the inputs', () => {
    const size = 3 * 2 * Object.keys(PEER_STATES).length * Object.keys(WITNESS_REACH).length * Object.keys(LEASE_VIEWS).length * 2;
    expect(inputs).toHaveLength(size);
    expect(new Set(inputs.map((i) => JSON.stringify(i))).size).toBe(size);
  });

  it('has exactly one matching rule for every input (the rules are disjoint and complete)', () => {
    for (const input of inputs) {
      const matching = DECISION_TABLE.filter((r) => ruleMatches(r, input)).map((r) => r.id);
      expect(matching, JSON.stringify(input)).toHaveLength(1);
    }
  });

  it('uses every rule for some input, with unique ids and documented actions', () => {
    const used = new Set(inputs.map((i) => decide(i).rule));
    expect([...used].sort()).toEqual(DECISION_TABLE.map((r) => r.id).sort());
    expect(new Set(DECISION_TABLE.map((r) => r.id)).size).toBe(DECISION_TABLE.length);
    for (const r of DECISION_TABLE) expect(Object.keys(ACTIONS)).toContain(r.action);
  });

  it('an owner only keeps or stops serving, a standby only takes over or waits', () => {
    for (const input of inputs) {
      const { action } = decide(input);
      expect(input.serving ? ['keep-serving', 'stop-serving'] : ['take-over', 'wait'], JSON.stringify(input)).toContain(action);
    }
  });

  it('README.md documents every rule with its action', () => {
    const readme = readFileSync(path.join(__dirname, '../../../src/resource-groups/witness/README.md'), 'utf8');
    const documented = new Map<string, string>();
    for (const line of readme.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      if (cells.length === 10 && /^[WNR]-/.test(cells[1]!)) documented.set(cells[1]!, cells[8]!.replace(/\*/g, ''));
    }
    expect([...documented.keys()].sort()).toEqual(DECISION_TABLE.map((r) => r.id).sort());
    for (const r of DECISION_TABLE) expect(documented.get(r.id), r.id).toBe(r.action);
  });

  it('is pure: the same input gives the same decision', () => {
    for (const input of inputs) expect(decide({ ...input })).toEqual(decide(input));
  });
});

/** Independent statement of the rules, in the README's words. */
function expected(i: DecisionInput): Action {
  const peerGone = i.peer === 'dead' || i.peer === 'shutdown';
  switch (i.mode) {
    case 'witness':
      if (i.serving) {
        if (i.lease === 'peer') return 'stop-serving';
        if (i.lease === 'ours') return 'keep-serving';
        return i.peer === 'alive' || i.peer === 'shutdown' ? 'keep-serving' : 'stop-serving';
      }
      if (i.forced) return 'take-over';
      if (!peerGone) return 'wait';
      if (i.lease === 'ours') return 'take-over';
      return i.lease === 'free' && i.witness === 'reachable' ? 'take-over' : 'wait';
    case 'no-witness':
      if (i.serving) return 'keep-serving';
      return i.forced || i.peer === 'shutdown' ? 'take-over' : 'wait';
    case 'no-witness-risky':
      if (i.serving) return 'keep-serving';
      return i.forced || peerGone ? 'take-over' : 'wait';
  }
}

describe('decision table: every input', () => {
  it.each(['witness', 'no-witness', 'no-witness-risky'] as WitnessMode[])('mode %s matches the stated rules for all inputs', (mode) => {
    for (const input of inputs.filter((i) => i.mode === mode)) {
      expect(decide(input).action, JSON.stringify(input)).toBe(expected(input));
    }
  });

  it('without a witness the default never takes over on a partition (peer dead), the risky mode does', () => {
    const dead = (mode: WitnessMode) => inputs.filter((i) => i.mode === mode && !i.serving && i.peer === 'dead' && !i.forced);
    for (const i of dead('no-witness')) expect(decide(i).action).toBe('wait');
    for (const i of dead('no-witness-risky')) expect(decide(i).action).toBe('take-over');
  });

  it('with a witness a standby takes over only holding (or about to take) a free lease, never blind', () => {
    for (const i of inputs.filter((x) => x.mode === 'witness' && !x.serving && !x.forced)) {
      if (decide(i).action !== 'take-over') continue;
      expect(i.peer === 'dead' || i.peer === 'shutdown').toBe(true);
      expect(i.lease === 'ours' || (i.lease === 'free' && i.witness === 'reachable')).toBe(true);
    }
  });
});

describe('decision table: key rows', () => {
  const row = (
    mode: WitnessMode,
    serving: boolean,
    peer: PeerState,
    witness: WitnessReach,
    lease: LeaseView,
    forced: boolean,
    action: Action,
    rule: string,
  ) => ({ input: { mode, serving, peer, witness, lease, forced }, action, rule });
  const rows = [
    row('witness', false, 'dead', 'reachable', 'free', false, 'take-over', 'W-sb-gone-free'), // peer died, its lease expired
    row('witness', false, 'dead', 'reachable', 'peer', false, 'wait', 'W-sb-gone-held'), // partition: peer still renews
    row('witness', false, 'dead', 'unreachable', 'unknown', false, 'wait', 'W-sb-gone-blind'), // lost peer and witness
    row('witness', true, 'dead', 'unreachable', 'ours', false, 'keep-serving', 'W-own-held'), // until must-stop
    row('witness', true, 'dead', 'unreachable', 'ours-lapsed', false, 'stop-serving', 'W-own-alone'), // lost both: fence itself
    row('witness', true, 'alive', 'unreachable', 'ours-lapsed', false, 'keep-serving', 'W-own-vouched'), // witness outage only
    row('witness', true, 'suspect', 'unreachable', 'ours-lapsed', false, 'stop-serving', 'W-own-alone'),
    row('witness', true, 'alive', 'reachable', 'peer', false, 'stop-serving', 'W-own-taken'),
    row('witness', false, 'shutdown', 'reachable', 'free', false, 'take-over', 'W-sb-gone-free'),
    row('witness', false, 'shutdown', 'reachable', 'peer', false, 'wait', 'W-sb-gone-held'),
    row('witness', false, 'alive', 'reachable', 'free', true, 'take-over', 'W-sb-forced'),
    row('witness', false, 'suspect', 'reachable', 'free', false, 'wait', 'W-sb-peer-up'),
    row('no-witness', false, 'dead', 'unreachable', 'unknown', false, 'wait', 'N-sb-wait'),
    row('no-witness', false, 'shutdown', 'unreachable', 'unknown', false, 'take-over', 'N-sb-go'),
    row('no-witness', false, 'dead', 'unreachable', 'unknown', true, 'take-over', 'N-sb-forced'),
    row('no-witness', true, 'dead', 'unreachable', 'unknown', false, 'keep-serving', 'N-own'),
    row('no-witness-risky', false, 'dead', 'unreachable', 'unknown', false, 'take-over', 'R-sb-go'),
    row('no-witness-risky', false, 'suspect', 'unreachable', 'unknown', false, 'wait', 'R-sb-wait'),
  ];
  it.each(rows)('$input.mode serving=$input.serving peer=$input.peer witness=$input.witness lease=$input.lease forced=$input.forced -> $action', ({ input, action, rule }) => {
    expect(decide(input)).toMatchObject({ action, rule });
    expect(decide(input).why.length).toBeGreaterThan(10);
  });
});

describe('decision table: a partition never makes two servers (witness mode)', () => {
  type Node = 'A' | 'B';

  /**
   * The world: who holds the lease at the witness, who serves, who reaches
   * the witness, and each node's (partitioned) view of its peer. A node
   * that does not reach the witness knows only what it holds itself.
   */
  function leaseView(self: Node, holder: Node | null, reach: boolean, serving: boolean, ownLeaseValid: boolean): LeaseView {
    if (reach) return holder === self ? 'ours' : holder === null ? 'free' : 'peer';
    if (holder === self) return ownLeaseValid ? 'ours' : 'ours-lapsed';
    return serving ? 'ours-lapsed' : 'unknown';
  }

  it('in every consistent world at most one node serves after one round of decisions', () => {
    let worlds = 0;
    for (const holder of ['A', 'B', null] as (Node | null)[])
      for (const servingNode of ['A', 'B', null] as (Node | null)[])
        for (const reachA of [true, false])
          for (const reachB of [true, false])
            for (const peerA of ['suspect', 'dead'] as PeerState[])
              for (const peerB of ['suspect', 'dead'] as PeerState[])
                for (const validA of [true, false])
                  for (const validB of [true, false]) {
                    // A node that holds the lease at the witness and reaches it renews it: its lease is valid.
                    if (holder === 'A' && reachA && !validA) continue;
                    if (holder === 'B' && reachB && !validB) continue;
                    // Only one node serves before the round (the invariant we keep); the holder, if any, is the server.
                    if (holder !== null && servingNode !== holder) continue;
                    worlds++;
                    const reach = { A: reachA, B: reachB };
                    const peer = { A: peerA, B: peerB };
                    const valid = { A: validA, B: validB };
                    const acts = {} as Record<Node, Action>;
                    for (const n of ['A', 'B'] as Node[]) {
                      acts[n] = decide({
                        mode: 'witness',
                        serving: servingNode === n,
                        peer: peer[n],
                        witness: reach[n] ? 'reachable' : 'unreachable',
                        lease: leaseView(n, holder, reach[n], servingNode === n, valid[n]),
                        forced: false,
                      }).action;
                    }
                    // A take-over serves only if the acquire succeeds: free (first comer wins) or already ours.
                    let free = holder === null;
                    const servesAfter = (n: Node): boolean => {
                      if (acts[n] === 'keep-serving') return true;
                      if (acts[n] !== 'take-over') return false;
                      if (holder === n && valid[n]) return true;
                      if (reach[n] && free) {
                        free = false;
                        return true;
                      }
                      return false;
                    };
                    const a = servesAfter('A');
                    const b = servesAfter('B');
                    expect(a && b, JSON.stringify({ holder, servingNode, reach, peer, valid, acts })).toBe(false);
                    // And the one that keeps serving without a valid lease does so only on the peer's word, never here.
                    for (const n of ['A', 'B'] as Node[]) {
                      if (acts[n] === 'keep-serving') expect(holder === n && valid[n], `${n} serves without a lease: ${JSON.stringify(acts)}`).toBe(true);
                    }
                  }
    expect(worlds).toBeGreaterThan(50);
  });
});
