/**
 * The start table (src/resource-groups/start-rule.ts): every input matches
 * exactly one rule; no mode starts a group on a copy known to be older or
 * refused, nor (without a witness) on a copy nobody compared with the
 * peer's; a group's standing is its most telling volume's.
 */
import { describe, expect, it } from 'vitest';
import { PEER_STATES } from '../../../src/resource-groups/witness/decision';
import type { PeerState } from '../../../src/resource-groups/witness/decision';
import { MODES } from '../../../src/resource-groups/witness/decision';
import { byeAllowed, outdatedRecordAction } from '../../../src/resource-groups/outdated';
import { mirrorDataStanding } from '../../../src/resource-groups/node/mirror-factory';
import { DATA_STANDINGS, DataStanding, START_TABLE, StartInput, decideStart, groupStanding, startRuleMatches } from '../../../src/resource-groups/start-rule';

function allInputs(): StartInput[] {
  const out: StartInput[] = [];
  for (const mode of MODES)
    for (const standing of Object.keys(DATA_STANDINGS) as DataStanding[])
      for (const peer of Object.keys(PEER_STATES) as PeerState[]) out.push({ mode, standing, peer });
  return out;
}

describe('decideStart', () => {
  it('every one of the 60 inputs matches exactly one rule', () => {
    const inputs = allInputs();
    expect(inputs).toHaveLength(3 * 5 * 4);
    for (const input of inputs) {
      const matching = START_TABLE.filter((r) => startRuleMatches(r, input)).map((r) => r.id);
      expect(matching, JSON.stringify(input)).toHaveLength(1);
    }
  });

  it('never starts on a copy that is behind, refused, or that the peer serves', () => {
    for (const input of allInputs().filter((i) => i.standing === 'behind' || i.standing === 'blocked' || i.standing === 'peer-serves')) {
      expect(decideStart(input).action, JSON.stringify(input)).not.toBe('start');
    }
  });

  it('without a witness, starts only on a copy the handshake found current', () => {
    for (const input of allInputs().filter((i) => i.mode === 'no-witness')) {
      expect(decideStart(input).action === 'start', JSON.stringify(input)).toBe(input.standing === 'current');
    }
  });

  it('with the peer possibly up, an unknown copy waits for the handshake in every mode', () => {
    for (const input of allInputs().filter((i) => i.standing === 'unknown' && (i.peer === 'alive' || i.peer === 'suspect'))) {
      expect(decideStart(input)).toMatchObject({ action: 'wait', rule: 'S-unknown-peer-up' });
    }
  });

  it.each([
    ['witness', 'unknown', 'dead', 'start', 'S-W-unknown-gone'],
    ['no-witness', 'unknown', 'dead', 'wait', 'S-N-unknown-gone'],
    ['no-witness-risky', 'unknown', 'dead', 'start', 'S-R-unknown-gone'],
    ['no-witness', 'peer-serves', 'alive', 'stand-by', 'S-peer-serves'],
    ['witness', 'current', 'alive', 'start', 'S-current'],
  ] as const)('%s, %s, peer %s: %s (%s)', (mode, standing, peer, action, rule) => {
    expect(decideStart({ mode, standing, peer })).toMatchObject({ action, rule });
  });
});

describe('groupStanding', () => {
  it.each([
    [['current', 'current'], 'current'],
    [['current', 'unknown'], 'unknown'],
    [['current', 'behind', 'unknown'], 'behind'],
    [['behind', 'blocked'], 'blocked'],
    [['current', 'peer-serves', 'blocked'], 'peer-serves'],
    [[], 'unknown'],
  ] as const)('%j -> %s', (volumes, expected) => {
    expect(groupStanding(volumes)).toBe(expected);
  });
});

describe('mirrorDataStanding: the mirror status of one volume', () => {
  const base = { volumeId: 'v', role: 'secondary', generations: { current: '1111111111111111', bitmap: null, history: [] }, dirtyBytes: 0, consistent: true };
  it.each([
    ['in sync, peer secondary', { replication: 'in-sync', peerRole: 'secondary' }, 'current'],
    ['in sync, peer primary', { replication: 'in-sync', peerRole: 'primary' }, 'peer-serves'],
    ['resync source', { replication: 'resyncing', peerRole: 'secondary', resync: { direction: 'to-peer' } }, 'current'],
    ['resync target', { replication: 'resyncing', peerRole: 'secondary', consistent: false, resync: { direction: 'from-peer' } }, 'behind'],
    ['resync target of a primary peer', { replication: 'resyncing', peerRole: 'primary', consistent: false }, 'peer-serves'],
    ['connecting, last seen peer primary (stale)', { replication: 'connecting', peerRole: 'primary' }, 'unknown'],
    ['connecting, an interrupted resync target', { replication: 'connecting', peerRole: 'unknown', consistent: false }, 'behind'],
    ['split brain', { replication: 'split-brain', peerRole: 'secondary' }, 'blocked'],
    ['unrelated', { replication: 'unrelated', peerRole: 'unknown' }, 'blocked'],
  ] as const)('%s -> %s', (_name, fields, expected) => {
    expect(mirrorDataStanding({ ...base, ...fields })).toBe(expected);
  });

  it('anything that is not a status is unknown', () => {
    expect(mirrorDataStanding(null)).toBe('unknown');
    expect(mirrorDataStanding('in-sync')).toBe('unknown');
  });
});

describe('outdated copies (outdated.ts)', () => {
  it('the owner marks the peer outdated while out of sync and clears it in sync; a standby in sync clears a record naming it; out of sync it leaves the record', () => {
    expect(outdatedRecordAction(true, false)).toBe('mark-peer');
    expect(outdatedRecordAction(true, true)).toBe('clear-peer');
    expect(outdatedRecordAction(false, true)).toBe('clear-self');
    expect(outdatedRecordAction(false, false)).toBe('leave');
  });

  it("a clean shutdown says 'bye' only when every group served here is in sync", () => {
    expect(byeAllowed([])).toBe(true);
    expect(byeAllowed([{ serving: true, inSync: true }, { serving: false, inSync: false }])).toBe(true);
    expect(byeAllowed([{ serving: true, inSync: true }, { serving: true, inSync: false }])).toBe(false);
  });
});
