/**
 * The link handshake state machines (src/mirror/link/handshake.ts) and the
 * proofs (src/mirror/link/auth.ts), without sockets: the two machines talk
 * through the Envelope codec, so every message also crosses the wire format.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Envelope, OutgoingEnvelope, decodeEnvelope, encodeEnvelope } from '../../../../src/mirror/protocol';
import { computeProof, verifyProof } from '../../../../src/mirror/link/auth';
import { HandshakeError } from '../../../../src/mirror/link/errors';
import { AcceptorHandshake, DialerHandshake, HandshakeConfig, HandshakeResult } from '../../../../src/mirror/link/handshake';

const base = (nodeId: string, peerNodeId: string, over: Partial<HandshakeConfig> = {}): HandshakeConfig => ({
  nodeId,
  peerNodeId,
  clusterId: 'cluster-1',
  secret: Buffer.from('correct horse battery staple'),
  versions: { min: 1, max: 1 },
  linkIndex: 0,
  sessionId: `${nodeId}-session`,
  ...over,
});

interface Side {
  done: HandshakeResult | null;
  error: HandshakeError | null;
  received: string[];
}

/** Runs a dialer (node-a) against an acceptor (node-b) until both have ended. */
function run(dialerOver: Partial<HandshakeConfig> = {}, acceptorOver: Partial<HandshakeConfig> = {}): { dialer: Side; acceptor: Side } {
  const dialer = new DialerHandshake(base('node-a', 'node-b', dialerOver));
  const acceptor = new AcceptorHandshake(base('node-b', 'node-a', acceptorOver));
  const d: Side = { done: null, error: null, received: [] };
  const a: Side = { done: null, error: null, received: [] };
  const wire = (e: OutgoingEnvelope): Envelope => decodeEnvelope(encodeEnvelope(e));
  let toAcceptor: OutgoingEnvelope[] = [dialer.start()];
  let toDialer: OutgoingEnvelope[] = [];
  for (let round = 0; round < 10 && (toAcceptor.length > 0 || toDialer.length > 0); round++) {
    for (const e of toAcceptor) {
      if (a.done || a.error) break;
      const env = wire(e);
      a.received.push(String(env.body));
      const step = acceptor.receive(env);
      if (step.send) toDialer.push(step.send);
      a.done = step.done;
      a.error = step.error;
    }
    toAcceptor = [];
    for (const e of toDialer) {
      if (d.done || d.error) break;
      const env = wire(e);
      d.received.push(String(env.body));
      const step = dialer.receive(env);
      if (step.send) toAcceptor.push(step.send);
      d.done = step.done;
      d.error = step.error;
    }
    toDialer = [];
  }
  return { dialer: d, acceptor: a };
}

describe('link handshake', () => {
  it('completes with the right secret: Hello, Challenge, ChallengeResponse, Welcome', () => {
    const { dialer, acceptor } = run({ features: ['f1', 'f2'] }, { features: ['f2', 'f3'] });
    expect(acceptor.received).toEqual(['hello', 'challengeResponse']);
    expect(dialer.received).toEqual(['challenge', 'welcome']);
    expect(dialer.error).toBeNull();
    expect(acceptor.error).toBeNull();
    expect(dialer.done).toEqual({
      role: 'dialer',
      version: 1,
      features: ['f2'],
      peerNodeId: 'node-b',
      peerSessionId: 'node-b-session',
      peerVersions: { min: 1, max: 1 },
    });
    expect(acceptor.done).toEqual({
      role: 'acceptor',
      version: 1,
      features: ['f2'],
      peerNodeId: 'node-a',
      peerSessionId: 'node-a-session',
      peerVersions: { min: 1, max: 1 },
    });
  });

  it('a wrong secret is EAUTH on both sides, the acceptor refusing before it proves anything', () => {
    const { dialer, acceptor } = run({ secret: Buffer.from('wrong') });
    expect(acceptor.error?.code).toBe('EAUTH');
    expect(acceptor.error?.remote).toBe(false);
    expect(acceptor.error?.message).toMatch(/proof of "node-a" does not match our shared secret/);
    expect(dialer.error?.code).toBe('EAUTH');
    expect(dialer.error?.remote).toBe(true);
    expect(dialer.error?.message).toMatch(/"node-b" refused link 0: .*different secrets/);
    // The dialer got a refusal, never a Welcome (which would carry the acceptor's proof).
    expect(dialer.received).toEqual(['challenge', 'ack']);
    expect(dialer.done).toBeNull();
    expect(acceptor.done).toBeNull();
  });

  it('an acceptor that proves wrongly is refused by the dialer with EAUTH', () => {
    const dialer = new DialerHandshake(base('node-a', 'node-b'));
    const acceptor = new AcceptorHandshake(base('node-b', 'node-a'));
    const wire = (e: OutgoingEnvelope): Envelope => decodeEnvelope(encodeEnvelope(e));
    const challenge = acceptor.receive(wire(dialer.start())).send!;
    const response = dialer.receive(wire(challenge)).send!;
    const welcome = acceptor.receive(wire(response)).send! as { welcome: { protocolVersion: number; proof: Buffer } };
    const forged = { welcome: { ...welcome.welcome, proof: Buffer.alloc(32, 0x55) } };
    const step = dialer.receive(wire(forged));
    expect(step.error?.code).toBe('EAUTH');
    expect(step.error?.remote).toBe(false);
    expect(step.send).toMatchObject({ ack: { ok: false, code: 'EAUTH' } });
    expect(step.done).toBeNull();
  });

  const versionCases: [string, [number, number], [number, number], number][] = [
    ['release N dialling N+1', [1, 1], [1, 2], 1],
    ['release N+1 dialling N', [1, 2], [1, 1], 1],
    ['both N+1', [1, 2], [1, 2], 2],
    ['overlapping ranges', [2, 4], [1, 3], 3],
  ];
  for (const [what, dv, av, expected] of versionCases) {
    it(`negotiates the highest common version: ${what} ${JSON.stringify(dv)} x ${JSON.stringify(av)} -> ${expected}`, () => {
      const { dialer, acceptor } = run({ versions: { min: dv[0], max: dv[1] } }, { versions: { min: av[0], max: av[1] } });
      expect(dialer.done?.version).toBe(expected);
      expect(acceptor.done?.version).toBe(expected);
    });
  }

  it('disjoint version ranges are EVERSION on both sides, naming both ranges', () => {
    const { dialer, acceptor } = run({ versions: { min: 2, max: 3 } }, { versions: { min: 1, max: 1 } });
    expect(acceptor.error?.code).toBe('EVERSION');
    expect(acceptor.error?.message).toBe('no common protocol version: "node-b" speaks [1], "node-a" speaks [2, 3]');
    expect(dialer.error?.code).toBe('EVERSION');
    expect(dialer.error?.remote).toBe(true);
    expect(dialer.error?.message).toContain('no common protocol version');
  });

  it('the dialer too refuses an acceptor without a common version', () => {
    // A misbehaving acceptor that answers a Hello it should have refused.
    const dialer = new DialerHandshake(base('node-a', 'node-b', { versions: { min: 3, max: 3 } }));
    dialer.start();
    const hello = { protocolMin: 1, protocolMax: 2, nodeId: 'node-b', clusterId: 'cluster-1', nonce: Buffer.alloc(32), linkIndex: 0, sessionId: 's' };
    const step = dialer.receive(decodeEnvelope(encodeEnvelope({ challenge: { hello } })));
    expect(step.error?.code).toBe('EVERSION');
    expect(step.send).toMatchObject({ ack: { ok: false, code: 'EVERSION' } });
  });

  const refusals: [string, Partial<HandshakeConfig>, Partial<HandshakeConfig>, string, RegExp][] = [
    ['another cluster', { clusterId: 'cluster-2' }, {}, 'ECLUSTER', /node "node-a" is in cluster "cluster-2", node "node-b" in cluster "cluster-1"/],
    ['an unexpected node', {}, { peerNodeId: 'node-c' }, 'ENODE', /expects node "node-c", node "node-a" answered/],
    ['our own node id', { nodeId: 'node-b' }, {}, 'ENODE', /our own node id/],
    ['another link', { linkIndex: 1 }, {}, 'ELINK', /took this connection for its link 1; it is link 0/],
  ];
  for (const [what, dOver, aOver, code, message] of refusals) {
    it(`refuses ${what} with ${code}`, () => {
      const { dialer, acceptor } = run(dOver, aOver);
      expect(acceptor.error?.code).toBe(code);
      expect(acceptor.error?.message).toMatch(message);
      expect(dialer.error?.code).toBe(code);
      expect(dialer.error?.remote).toBe(true);
    });
  }

  it('refuses a message out of order with EPROTO', () => {
    const acceptor = new AcceptorHandshake(base('node-b', 'node-a'));
    const step = acceptor.receive(decodeEnvelope(encodeEnvelope({ challengeResponse: { proof: Buffer.alloc(32) } })));
    expect(step.error?.code).toBe('EPROTO');
    expect(step.error?.message).toMatch(/expected Hello during the handshake, got challengeResponse/);
    expect(step.send).toMatchObject({ ack: { ok: false, code: 'EPROTO' } });
    expect(acceptor.receive(decodeEnvelope(encodeEnvelope({ flush: { volumeId: 'v' } }))).error?.message).toMatch(/after the handshake ended/);
  });

  it('refuses an empty secret at construction', () => {
    expect(() => new DialerHandshake(base('node-a', 'node-b', { secret: Buffer.alloc(0) }))).toThrow(/secret is empty/);
  });
});

describe('proofs', () => {
  const t = {
    dialerNodeId: 'node-a',
    acceptorNodeId: 'node-b',
    dialerNonce: Buffer.alloc(32, 1),
    acceptorNonce: Buffer.alloc(32, 2),
    clusterId: 'c',
    linkIndex: 0,
  };
  const secret = Buffer.from('s');

  it('is HMAC-SHA256 over the length-prefixed transcript', () => {
    const lp = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const expected = createHmac('sha256', secret)
      .update(
        Buffer.concat([
          lp(Buffer.from('twinsan replication link proof v1')),
          lp(Buffer.from('dialer')),
          lp(Buffer.from('c')),
          lp(Buffer.from('node-a')),
          lp(Buffer.from('node-b')),
          lp(t.dialerNonce),
          lp(t.acceptorNonce),
          lp(Buffer.from([0, 0, 0, 0])),
        ]),
      )
      .digest();
    expect(computeProof(secret, 'dialer', t)).toEqual(expected);
  });

  it('binds the side, both nonces, both node ids, the cluster and the link', () => {
    const proof = computeProof(secret, 'dialer', t);
    expect(verifyProof(secret, 'dialer', t, proof)).toBe(true);
    expect(verifyProof(secret, 'acceptor', t, proof)).toBe(false);
    expect(verifyProof(secret, 'dialer', { ...t, dialerNonce: Buffer.alloc(32, 3) }, proof)).toBe(false);
    expect(verifyProof(secret, 'dialer', { ...t, acceptorNonce: Buffer.alloc(32, 3) }, proof)).toBe(false);
    expect(verifyProof(secret, 'dialer', { ...t, dialerNodeId: 'node-x' }, proof)).toBe(false);
    expect(verifyProof(secret, 'dialer', { ...t, clusterId: 'd' }, proof)).toBe(false);
    expect(verifyProof(secret, 'dialer', { ...t, linkIndex: 1 }, proof)).toBe(false);
    expect(verifyProof(Buffer.from('t'), 'dialer', t, proof)).toBe(false);
    expect(verifyProof(secret, 'dialer', t, proof.subarray(0, 16))).toBe(false);
  });
});
