/**
 * The link handshake as two pure state machines, one per side of a new TCP
 * connection. No I/O: the connection feeds them decoded Envelopes and sends
 * what they return.
 *
 *   dialer                                   acceptor
 *     Hello{versions, node, cluster, nonce_d, link, session}  ->
 *                                            checks cluster, node id, link index,
 *                                            that the version ranges intersect
 *     <-  Challenge{Hello{..., nonce_a, ...}}
 *   checks the same of the acceptor
 *     ChallengeResponse{proof_d}  ->
 *                                            checks proof_d
 *     <-  Welcome{version, features, proof_a}     (acceptor: done)
 *   checks proof_a and the version (dialer: done)
 *
 * proof_x = HMAC-SHA256(secret, side x, both nonces, both node ids, cluster,
 * link index) (auth.ts). The dialer proves first: a peer without the secret
 * gets no proof of ours to work on. The version is the highest both ranges
 * hold, so a node speaking [1, 1] and one speaking [1, 2] run 1.
 *
 * Any check that fails ends the handshake with a HandshakeError naming what
 * differs; the failing side also returns Ack{ok: false, code, message} to
 * send before it closes, and the other side turns that Ack into a
 * HandshakeError with `remote` set. A wrong secret is EAUTH on both sides.
 */
import { Envelope, Hello, OutgoingEnvelope } from '../protocol/messages';
import { VersionRange, formatRange, negotiateVersion } from '../protocol/version';
import { NONCE_BYTES, Transcript, computeProof, newNonce, verifyProof } from './auth';
import { HandshakeError, HandshakeErrorCode } from './errors';

export interface HandshakeConfig {
  readonly nodeId: string;
  /** The node this link must reach. */
  readonly peerNodeId: string;
  readonly clusterId: string;
  readonly secret: Buffer;
  readonly versions: VersionRange;
  readonly linkIndex: number;
  /** Our PeerChannel's random id (Hello.session_id). */
  readonly sessionId: string;
  readonly features?: readonly string[];
  /** Our nonce; random when left out (tests pin it). */
  readonly nonce?: Buffer;
}

export type HandshakeRole = 'dialer' | 'acceptor';

export interface HandshakeResult {
  readonly role: HandshakeRole;
  readonly version: number;
  readonly features: readonly string[];
  readonly peerNodeId: string;
  readonly peerSessionId: string;
  readonly peerVersions: VersionRange;
}

/** What to do after one step: send `send` (if any); then, on `error`, close. */
export interface HandshakeStep {
  readonly send: OutgoingEnvelope | null;
  readonly done: HandshakeResult | null;
  readonly error: HandshakeError | null;
}

const step = (send: OutgoingEnvelope | null, done: HandshakeResult | null = null, error: HandshakeError | null = null): HandshakeStep => ({
  send,
  done,
  error,
});

abstract class HandshakeBase {
  protected readonly nonce: Buffer;
  protected finished = false;

  constructor(protected readonly cfg: HandshakeConfig) {
    if (cfg.secret.length === 0) throw new RangeError('the shared secret is empty');
    this.nonce = cfg.nonce ?? newNonce();
  }

  protected ownHello(): Hello {
    return {
      protocolMin: this.cfg.versions.min,
      protocolMax: this.cfg.versions.max,
      nodeId: this.cfg.nodeId,
      clusterId: this.cfg.clusterId,
      nonce: this.nonce,
      linkIndex: this.cfg.linkIndex,
      sessionId: this.cfg.sessionId,
      features: this.cfg.features ?? [],
    };
  }

  /** Ends the handshake on our side: refuse the peer with an Ack, then close. */
  protected refuse(code: HandshakeErrorCode, message: string): HandshakeStep {
    this.finished = true;
    return step({ ack: { ok: false, code, message } }, null, new HandshakeError(code, message, false));
  }

  /** The checks both sides make of the other's Hello; null when it is acceptable. */
  protected checkPeerHello(h: Hello): HandshakeStep | null {
    const { cfg } = this;
    if (h.clusterId !== cfg.clusterId) {
      return this.refuse('ECLUSTER', `node "${h.nodeId}" is in cluster "${h.clusterId}", node "${cfg.nodeId}" in cluster "${cfg.clusterId}"`);
    }
    if (h.nodeId === cfg.nodeId) return this.refuse('ENODE', `the peer has our own node id "${cfg.nodeId}"`);
    if (h.nodeId !== cfg.peerNodeId) {
      return this.refuse('ENODE', `link ${cfg.linkIndex} of "${cfg.nodeId}" expects node "${cfg.peerNodeId}", node "${h.nodeId}" answered`);
    }
    if (h.linkIndex !== cfg.linkIndex) {
      return this.refuse('ELINK', `"${h.nodeId}" took this connection for its link ${h.linkIndex}; it is link ${cfg.linkIndex} of "${cfg.nodeId}"`);
    }
    if (h.nonce.length !== NONCE_BYTES) return this.refuse('EPROTO', `nonce of ${h.nonce.length} bytes, expected ${NONCE_BYTES}`);
    const theirs = { min: h.protocolMin, max: h.protocolMax };
    if (negotiateVersion(cfg.versions, theirs) === null) {
      return this.refuse(
        'EVERSION',
        `no common protocol version: "${cfg.nodeId}" speaks ${formatRange(cfg.versions)}, "${h.nodeId}" speaks ${formatRange(theirs)}`,
      );
    }
    return null;
  }

  /** The peer refused us (Ack{ok: false}) or sent what this phase does not expect. */
  protected unexpected(env: Envelope, expecting: string): HandshakeStep {
    if (env.body === 'ack' && !env.ack.ok) {
      this.finished = true;
      const code = (HANDSHAKE_CODES as readonly string[]).includes(env.ack.code) ? (env.ack.code as HandshakeErrorCode) : 'EPROTO';
      return step(null, null, new HandshakeError(code, `"${this.cfg.peerNodeId}" refused link ${this.cfg.linkIndex}: ${env.ack.message || env.ack.code}`, true));
    }
    return this.refuse('EPROTO', `expected ${expecting} during the handshake, got ${env.body ?? 'an unknown message'}`);
  }

  protected afterEnd(): HandshakeStep {
    return step(null, null, new HandshakeError('EPROTO', 'message after the handshake ended', false));
  }

  protected intersectFeatures(theirs: readonly string[]): string[] {
    return (this.cfg.features ?? []).filter((f) => theirs.includes(f));
  }
}

const HANDSHAKE_CODES: readonly HandshakeErrorCode[] = ['EAUTH', 'EVERSION', 'ECLUSTER', 'ENODE', 'ELINK', 'EPROTO', 'ETIMEDOUT'];

export class DialerHandshake extends HandshakeBase {
  private phase: 'idle' | 'hello-sent' | 'response-sent' = 'idle';
  private peer: Hello | null = null;

  /** The first frame: our Hello. */
  start(): OutgoingEnvelope {
    if (this.phase !== 'idle') throw new Error('handshake already started');
    this.phase = 'hello-sent';
    return { hello: this.ownHello() };
  }

  receive(env: Envelope): HandshakeStep {
    if (this.finished) return this.afterEnd();
    if (this.phase === 'hello-sent' && env.body === 'challenge') {
      const peer = env.challenge.hello;
      const refused = this.checkPeerHello(peer);
      if (refused) return refused;
      this.peer = peer;
      this.phase = 'response-sent';
      return step({ challengeResponse: { proof: computeProof(this.cfg.secret, 'dialer', this.transcript(peer)) } });
    }
    if (this.phase === 'response-sent' && env.body === 'welcome') {
      const peer = this.peer!;
      const w = env.welcome;
      if (!verifyProof(this.cfg.secret, 'acceptor', this.transcript(peer), w.proof)) {
        return this.refuse('EAUTH', `the proof of "${peer.nodeId}" does not match our shared secret (the nodes have different secrets)`);
      }
      const theirs = { min: peer.protocolMin, max: peer.protocolMax };
      const expected = negotiateVersion(this.cfg.versions, theirs);
      if (w.protocolVersion !== expected) {
        return this.refuse('EPROTO', `"${peer.nodeId}" chose protocol version ${w.protocolVersion}, the highest common one is ${expected}`);
      }
      this.finished = true;
      return step(null, {
        role: 'dialer',
        version: w.protocolVersion,
        features: this.intersectFeatures(w.features),
        peerNodeId: peer.nodeId,
        peerSessionId: peer.sessionId,
        peerVersions: theirs,
      });
    }
    return this.unexpected(env, this.phase === 'hello-sent' ? 'Challenge' : 'Welcome');
  }

  private transcript(peer: Hello): Transcript {
    return {
      dialerNodeId: this.cfg.nodeId,
      acceptorNodeId: peer.nodeId,
      dialerNonce: this.nonce,
      acceptorNonce: peer.nonce,
      clusterId: this.cfg.clusterId,
      linkIndex: this.cfg.linkIndex,
    };
  }
}

export class AcceptorHandshake extends HandshakeBase {
  private phase: 'wait-hello' | 'challenge-sent' = 'wait-hello';
  private peer: Hello | null = null;

  receive(env: Envelope): HandshakeStep {
    if (this.finished) return this.afterEnd();
    if (this.phase === 'wait-hello' && env.body === 'hello') {
      const refused = this.checkPeerHello(env.hello);
      if (refused) return refused;
      this.peer = env.hello;
      this.phase = 'challenge-sent';
      return step({ challenge: { hello: this.ownHello() } });
    }
    if (this.phase === 'challenge-sent' && env.body === 'challengeResponse') {
      const peer = this.peer!;
      const t = this.transcript(peer);
      if (!verifyProof(this.cfg.secret, 'dialer', t, env.challengeResponse.proof)) {
        return this.refuse('EAUTH', `the proof of "${peer.nodeId}" does not match our shared secret (the nodes have different secrets)`);
      }
      const theirs = { min: peer.protocolMin, max: peer.protocolMax };
      const version = negotiateVersion(this.cfg.versions, theirs)!;
      const features = this.intersectFeatures(peer.features ?? []);
      this.finished = true;
      return step(
        { welcome: { protocolVersion: version, features, proof: computeProof(this.cfg.secret, 'acceptor', t) } },
        { role: 'acceptor', version, features, peerNodeId: peer.nodeId, peerSessionId: peer.sessionId, peerVersions: theirs },
      );
    }
    return this.unexpected(env, this.phase === 'wait-hello' ? 'Hello' : 'ChallengeResponse');
  }

  private transcript(peer: Hello): Transcript {
    return {
      dialerNodeId: peer.nodeId,
      acceptorNodeId: this.cfg.nodeId,
      dialerNonce: peer.nonce,
      acceptorNonce: this.nonce,
      clusterId: this.cfg.clusterId,
      linkIndex: this.cfg.linkIndex,
    };
  }
}
