/**
 * The controller carries out the witness decision table for each group:
 * takeover only with the lease (witness mode), only on a clean shutdown
 * without a witness, on death in the risky mode; fencing when the lease
 * lapsed and the peer is gone; planned moves hand the lease to the peer.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { ResourceGroupConfig } from '../../../src/resource-groups/config';
import { LeasePort, ResourceGroupController } from '../../../src/resource-groups/controller';
import { Resource, ResourceGroup } from '../../../src/resource-groups/group';
import { PeerNoAnswerError } from '../../../src/resource-groups/heartbeat';
import type { PeerState } from '../../../src/resource-groups/liveness';
import type { DataStanding } from '../../../src/resource-groups/start-rule';
import type { LeaseView, WitnessReach } from '../../../src/resource-groups/witness/decision';
import type { WitnessMode } from '../../../src/resource-groups/witness/no-witness';

class FakePeer extends EventEmitter<{ change: [PeerState, PeerState] }> {
  state: PeerState = 'alive';
  set(s: PeerState): void {
    const from = this.state;
    this.state = s;
    this.emit('change', s, from);
  }
}

class FakeLease implements LeasePort {
  lease: LeaseView = 'free';
  witness: WitnessReach = 'reachable';
  outdated = false;
  log: string[] = [];
  async acquire(rg: string): Promise<void> {
    this.log.push(`acquire ${rg}`);
    if (this.witness === 'unreachable' || this.lease === 'peer') throw new Error('no lease');
    this.lease = 'ours';
  }
  async release(rg: string): Promise<void> {
    this.log.push(`release ${rg}`);
    this.lease = 'free';
  }
  /** With lease 'peer': the remaining time the witness reports, if any. */
  peerLeaseMs: number | undefined;
  views = 0;
  async view(): Promise<{ lease: LeaseView; witness: WitnessReach; peerLeaseMs?: number }> {
    this.views++;
    return { lease: this.lease, witness: this.witness, ...(this.lease === 'peer' && this.peerLeaseMs !== undefined ? { peerLeaseMs: this.peerLeaseMs } : {}) };
  }
  async outdatedHere(): Promise<boolean> {
    if (this.witness === 'unreachable') throw new Error('witness unreachable');
    return this.outdated;
  }
  /** Set to make recording the peer's copy outdated fail (the witness went away after the acquire). */
  markFails = false;
  /** Each takeover's "peer outdated" record, before the group starts. */
  marks: string[] = [];
  async markPeerOutdatedIfAlone(rg: string): Promise<void> {
    this.marks.push(`mark peer outdated ${rg}`);
    if (this.markFails) throw new Error('witness unreachable');
  }
}

function setup(mode: WitnessMode, preferredNode: string) {
  const peer = new FakePeer();
  const lease = new FakeLease();
  const journal: string[] = [];
  const resource: Resource = { name: 'r', start: async () => void journal.push('start'), stop: async (why) => void journal.push(`stop ${why}`) };
  const group = new ResourceGroup('rg1', [resource]);
  const config: ResourceGroupConfig = { name: 'rg1', preferredNode, aliasIps: [], volumes: ['v1'], failback: 'auto' };
  const moved: string[] = [];
  const data: { standing: DataStanding } = { standing: 'current' };
  const c = new ResourceGroupController({
    nodeId: 'node-b',
    mode,
    groups: [{ config, group }],
    peer,
    lease: mode === 'witness' ? lease : null,
    peerControl: { moveIn: async (rg) => void moved.push(rg), inSync: async () => true },
    standing: () => data.standing,
  });
  return { c, peer, lease, group, journal, moved, data };
}

describe('ResourceGroupController', () => {
  it('the preferred owner takes the lease and starts its group', async () => {
    const { c, lease, group } = setup('witness', 'node-b');
    await c.start();
    expect(lease.log).toEqual(['acquire rg1']);
    expect(group.state).toBe('serving');
  });

  it('witness mode: the standby takes over a dead peer only with the lease', async () => {
    const { c, peer, lease, group } = setup('witness', 'node-a');
    lease.lease = 'peer';
    peer.set('dead');
    await c.evaluate('rg1');
    expect(group.state).toBe('stopped');
    lease.lease = 'free';
    await c.evaluate('rg1');
    expect(group.state).toBe('serving');
    expect(lease.lease).toBe('ours');
  });

  it('witness mode: a takeover records the peer\'s copy outdated before the group starts; if that cannot be recorded it does not serve and lets the lease go', async () => {
    const { c, peer, lease, group } = setup('witness', 'node-a');
    lease.markFails = true;
    peer.set('dead');
    await c.evaluate('rg1');
    expect(group.state).toBe('stopped');
    expect(lease.log).toEqual(['acquire rg1', 'release rg1']);
    expect(lease.marks).toEqual(['mark peer outdated rg1']);
    lease.markFails = false;
    await c.evaluate('rg1');
    expect(group.state).toBe('serving');
    expect(lease.log.slice(2)).toEqual(['acquire rg1']);
    expect(lease.marks).toEqual(['mark peer outdated rg1', 'mark peer outdated rg1']);
  });

  it('witness mode: waiting out a dead peer\'s lease, the standby asks again when the witness says it runs out, not at the next tick', async () => {
    const { c, peer, lease, group } = setup('witness', 'node-a');
    lease.lease = 'peer';
    lease.peerLeaseMs = 40;
    // The witness lets the peer's lease expire on its own clock.
    const expiry = setTimeout(() => (lease.lease = 'free'), 20);
    peer.set('dead'); // the only evaluation anyone asks for: this test runs no ticks
    try {
      for (let i = 0; i < 200 && group.state !== 'serving'; i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      clearTimeout(expiry);
    }
    expect(group.state).toBe('serving');
    expect(lease.log).toEqual(['acquire rg1']);
    await c.stop();
  });

  it('witness mode: no re-check is scheduled without the remaining time, nor for a lease without expiry', async () => {
    for (const ms of [undefined, -1]) {
      const { c, peer, lease, group } = setup('witness', 'node-a');
      lease.lease = 'peer';
      lease.peerLeaseMs = ms;
      peer.set('dead');
      await c.evaluate('rg1');
      const seen = lease.views;
      await new Promise((r) => setTimeout(r, 50));
      expect(lease.views).toBe(seen);
      expect(group.state).toBe('stopped');
      await c.stop();
    }
  });

  it('witness mode: a standby whose copy the witness records as outdated does not take over, even with the lease; forced, it does', async () => {
    const { c, peer, lease, group } = setup('witness', 'node-a');
    lease.outdated = true;
    peer.set('dead');
    await c.evaluate('rg1');
    expect(group.state).toBe('stopped');
    expect(lease.log).toEqual(['acquire rg1', 'release rg1']);
    await c.force('rg1');
    expect(group.state).toBe('serving');
  });

  it('witness mode: an unreachable witness means wait', async () => {
    const { c, peer, lease, group } = setup('witness', 'node-a');
    lease.witness = 'unreachable';
    peer.set('dead');
    await c.evaluate('rg1');
    expect(group.state).toBe('stopped');
  });

  it('an owner that lost both the peer and its lease fences the group', async () => {
    const { c, peer, lease, group, journal } = setup('witness', 'node-b');
    await c.start();
    lease.lease = 'ours-lapsed';
    lease.witness = 'unreachable';
    peer.set('dead');
    await c.onLeaseTrouble('rg1');
    expect(group.state).toBe('stopped');
    expect(journal).toEqual(['start', 'stop fence']);
  });

  it('no witness: waits on a dead peer, takes over after a clean shutdown', async () => {
    const { c, peer, group } = setup('no-witness', 'node-a');
    peer.set('dead');
    await c.evaluate('rg1');
    expect(group.state).toBe('stopped');
    peer.set('shutdown');
    await c.evaluate('rg1');
    expect(group.state).toBe('serving');
  });

  it('risky mode: takes over a dead peer', async () => {
    const { c, peer, group } = setup('no-witness-risky', 'node-a');
    peer.set('dead');
    await c.evaluate('rg1');
    expect(group.state).toBe('serving');
  });

  it('a planned move stops with reason move, releases the lease, and has the peer move in', async () => {
    const { c, lease, group, journal, moved } = setup('witness', 'node-b');
    await c.start();
    await c.move('rg1');
    expect(group.state).toBe('stopped');
    expect(journal).toEqual(['start', 'stop move']);
    expect(lease.log).toEqual(['acquire rg1', 'release rg1']);
    expect(moved).toEqual(['rg1']);
  });

  it('failback moves a group served for the peer back to it', async () => {
    const { c, peer, group, moved } = setup('no-witness-risky', 'node-a');
    peer.set('dead');
    await c.evaluate('rg1');
    expect(group.state).toBe('serving');
    peer.set('alive');
    await c.autoFailback();
    expect(group.state).toBe('stopped');
    expect(moved).toEqual(['rg1']);
  });

  it('a fenced owner serves again once the peer is back alive and the handshake finds its copy current (the peer waits while it sees us)', async () => {
    const { c, peer, lease, group, data, journal } = setup('witness', 'node-a');
    peer.set('dead');
    await c.evaluate('rg1');
    expect(group.state).toBe('serving'); // took over with the free lease
    lease.lease = 'ours-lapsed';
    lease.witness = 'unreachable';
    peer.set('suspect');
    await c.onLeaseTrouble('rg1');
    expect(group.state).toBe('stopped');
    expect(c.hasPendingStart()).toBe(true);
    // Both back: the links are still cut, so nothing says whose copy is newer: wait.
    lease.lease = 'free';
    lease.witness = 'reachable';
    data.standing = 'unknown';
    peer.set('alive');
    await c.evaluate('rg1');
    expect(group.state).toBe('stopped');
    data.standing = 'current';
    await c.evaluate('rg1');
    expect(group.state).toBe('serving');
    expect(journal).toEqual(['start', 'stop fence', 'start']);
  });

  describe('the preferred owner after its own start (start-rule.ts)', () => {
    it('no witness: does not serve while the peer is unseen, even once it is dead; serves once the handshake finds its copy current', async () => {
      const { c, peer, group, data } = setup('no-witness', 'node-b');
      data.standing = 'unknown';
      peer.set('suspect');
      await c.start();
      expect(group.state).toBe('stopped');
      peer.set('dead');
      await c.evaluate('rg1');
      expect(group.state).toBe('stopped');
      expect(c.hasPendingStart()).toBe(true);
      peer.set('alive');
      data.standing = 'current';
      await c.evaluate('rg1');
      expect(group.state).toBe('serving');
      expect(c.hasPendingStart()).toBe(false);
    });

    it('no witness: the operator can force the start of a group whose peer is unseen', async () => {
      const { c, peer, group, data } = setup('no-witness', 'node-b');
      data.standing = 'unknown';
      peer.set('dead');
      await c.start();
      expect(group.state).toBe('stopped');
      await c.force('rg1');
      expect(group.state).toBe('serving');
    });

    it('waits while its copy is being resynced from the peer, then serves', async () => {
      const { c, group, data } = setup('no-witness', 'node-b');
      data.standing = 'behind';
      await c.start();
      expect(group.state).toBe('stopped');
      data.standing = 'current';
      await c.evaluate('rg1');
      expect(group.state).toBe('serving');
    });

    it('stands by when the peer serves the group (it took it over while this node was down)', async () => {
      const { c, group, data, lease } = setup('witness', 'node-b');
      data.standing = 'peer-serves';
      await c.start();
      expect(group.state).toBe('stopped');
      expect(c.hasPendingStart()).toBe(false);
      expect(lease.log).toEqual([]);
      // From now on the failover table decides: with the peer alive it waits even when the copy becomes current.
      data.standing = 'current';
      await c.evaluate('rg1');
      expect(group.state).toBe('stopped');
    });

    it('witness: waits for the handshake while the peer may be up; takes the lease once the peer is dead', async () => {
      const { c, peer, group, data, lease } = setup('witness', 'node-b');
      data.standing = 'unknown';
      peer.set('suspect');
      await c.start();
      peer.set('alive');
      await c.evaluate('rg1');
      expect(group.state).toBe('stopped');
      expect(lease.log).toEqual([]);
      peer.set('dead');
      await c.evaluate('rg1');
      expect(lease.log).toEqual(['acquire rg1']);
      expect(group.state).toBe('serving');
    });

    it('witness, peer alive: a start the witness could not vouch for (outdated check unanswered) is tried again, not left stopped', async () => {
      const { c, group, data, lease } = setup('witness', 'node-b');
      data.standing = 'current';
      lease.witness = 'unreachable';
      lease.acquire = async (rg: string) => void lease.log.push(`acquire ${rg}`); // granted; the outdated check then fails
      await c.start();
      expect(group.state).toBe('stopped');
      expect(c.hasPendingStart()).toBe(true);
      lease.witness = 'reachable';
      await c.evaluate('rg1');
      expect(group.state).toBe('serving');
    });

    it('witness: a refused lease leaves the group to the failover table', async () => {
      const { c, peer, group, data, lease } = setup('witness', 'node-b');
      data.standing = 'unknown';
      lease.lease = 'peer';
      peer.set('dead');
      await c.start();
      expect(group.state).toBe('stopped');
      expect(c.hasPendingStart()).toBe(false);
    });

    it('risky mode: starts once the peer is dead, not while it may be up', async () => {
      const { c, peer, group, data } = setup('no-witness-risky', 'node-b');
      data.standing = 'unknown';
      peer.set('suspect');
      await c.start();
      expect(group.state).toBe('stopped');
      peer.set('dead');
      await c.evaluate('rg1');
      expect(group.state).toBe('serving');
    });
  });
});

describe('planned move: drain, sync and handover', () => {
  function moveSetup(o: { drainFails?: boolean; syncAfterDrain?: boolean; peerRefuses?: boolean; peerSilent?: boolean; mode?: WitnessMode; standing?: () => DataStanding } = {}) {
    const peer = new FakePeer();
    const lease = new FakeLease();
    const journal: string[] = [];
    let drained = false;
    const alua: Resource = {
      name: 'alua',
      start: async () => void journal.push('alua online'),
      stop: async (why) => {
        if (why === 'move' && o.drainFails) throw new Error('2 command(s) still running after 5000 ms');
        drained = true;
        journal.push(`alua stop ${why}`);
      },
    };
    const alias: Resource = {
      name: 'alias-ips',
      start: async () => void journal.push('alias add'),
      stop: async (why) => void journal.push(`alias stop ${why}`),
      handedOver: async () => void journal.push('alias removed after handover'),
    };
    const group = new ResourceGroup('rg1', [alias, alua]);
    const config: ResourceGroupConfig = { name: 'rg1', preferredNode: 'node-b', aliasIps: [], volumes: ['v1'], failback: 'manual' };
    const c = new ResourceGroupController({
      nodeId: 'node-b',
      mode: o.mode ?? 'witness',
      groups: [{ config, group }],
      peer,
      lease: (o.mode ?? 'witness') === 'witness' ? lease : null,
      peerControl: {
        moveIn: async () => {
          journal.push('peer move-in');
          if (o.peerRefuses) throw new Error('refused');
          if (o.peerSilent) throw new PeerNoAnswerError('the peer did not take rg1 in within 30000 ms');
        },
        // In sync before the move; after the drain as the test says.
        inSync: async () => !drained || o.syncAfterDrain !== false,
      },
      standing: o.standing ?? (() => 'current'),
    });
    return { c, group, lease, journal };
  }

  it('lets go of the alias IPs only once the peer has moved the group in', async () => {
    const { c, group, lease, journal } = moveSetup();
    await c.start();
    await c.move('rg1');
    expect(journal).toEqual(['alias add', 'alua online', 'alua stop move', 'alias stop move', 'peer move-in', 'alias removed after handover']);
    expect(lease.log).toEqual(['acquire rg1', 'release rg1']);
    expect(group.state).toBe('stopped');
  });

  it('a drain past its bound abandons the move: still serving here, lease kept, the peer never asked', async () => {
    const { c, group, lease, journal } = moveSetup({ drainFails: true });
    await c.start();
    await expect(c.move('rg1')).rejects.toThrow(/move abandoned, serving here again: 2 command\(s\) still running/);
    expect(group.state).toBe('serving');
    expect(lease.log).toEqual(['acquire rg1']);
    expect(journal).not.toContain('peer move-in');
  });

  it('a peer copy that left sync during the drain: the group serves here again and the peer is not asked', async () => {
    const { c, group, journal } = moveSetup({ syncAfterDrain: false });
    await c.start();
    await expect(c.move('rg1')).rejects.toThrow(/left sync during the move/);
    expect(group.state).toBe('serving');
    expect(journal).not.toContain('peer move-in');
    expect(journal).not.toContain('alias removed after handover');
  });

  it('a peer that does not answer but took the lease: the group cannot serve here again and lets go of its alias IPs', async () => {
    const { c, group, lease, journal } = moveSetup({ peerRefuses: true });
    await c.start();
    const release = lease.release.bind(lease);
    // The peer acquires the lease as soon as it is released, then its answer is lost.
    lease.release = async (rg: string) => {
      await release(rg);
      lease.lease = 'peer';
    };
    await expect(c.move('rg1')).rejects.toThrow(/refused/);
    expect(group.state).toBe('stopped');
    expect(journal.at(-1)).toBe('alias removed after handover');
  });

  it('without a witness, a peer that did not answer may still move the group in: not served here again, alias IPs let go, and the start table waits while the peer serves it', async () => {
    let standing: DataStanding = 'current';
    const { c, group, journal } = moveSetup({ mode: 'no-witness', peerSilent: true, standing: () => standing });
    await c.start();
    expect(group.state).toBe('serving');
    standing = 'peer-serves'; // the peer did move it in after all: its copy is primary now
    await expect(c.move('rg1')).rejects.toThrow(/did not take rg1 in within 30000 ms/);
    expect(group.state).toBe('stopped');
    expect(journal.at(-1)).toBe('alias removed after handover');
    await c.evaluate('rg1');
    expect(group.state).toBe('stopped');
  });

  it('without a witness, a silent peer that did not move the group in: the start table serves it here again once the copies say so', async () => {
    const { c, group } = moveSetup({ mode: 'no-witness', peerSilent: true });
    await c.start();
    await expect(c.move('rg1')).rejects.toThrow(/did not take rg1 in/);
    expect(group.state).toBe('stopped');
    await c.evaluate('rg1'); // our copy is current and the peer does not serve it (S-current)
    expect(group.state).toBe('serving');
  });

  it('with a witness a silent peer is settled by the lease: the group serves here again when the lease is still free', async () => {
    const { c, group } = moveSetup({ peerSilent: true });
    await c.start();
    await expect(c.move('rg1')).rejects.toThrow(/did not take rg1 in/);
    expect(group.state).toBe('serving');
  });

  it('a refusing peer: the group serves here again and keeps its alias IPs', async () => {
    const { c, group, journal } = moveSetup({ peerRefuses: true });
    await c.start();
    await expect(c.move('rg1')).rejects.toThrow(/refused/);
    expect(group.state).toBe('serving');
    expect(journal).not.toContain('alias removed after handover');
  });
});
