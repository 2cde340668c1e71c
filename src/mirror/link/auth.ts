/**
 * Challenge-response proofs of the shared secret. Each side of a new
 * connection sends a random nonce; each proves it knows the secret with
 * HMAC-SHA256(secret, transcript), where the transcript binds both nonces,
 * both node ids, the cluster id, the link index and which side is proving
 * (so one side's proof can never be replayed as the other's). Strings are
 * length-prefixed so no two transcripts share bytes.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;

const DOMAIN = 'twinsan replication link proof v1';

export type ProvingSide = 'dialer' | 'acceptor';

export interface Transcript {
  readonly dialerNodeId: string;
  readonly acceptorNodeId: string;
  readonly dialerNonce: Buffer;
  readonly acceptorNonce: Buffer;
  readonly clusterId: string;
  readonly linkIndex: number;
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

function field(h: ReturnType<typeof createHmac>, bytes: Buffer): void {
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(bytes.length, 0);
  h.update(len);
  h.update(bytes);
}

export function computeProof(secret: Buffer, side: ProvingSide, t: Transcript): Buffer {
  const h = createHmac('sha256', secret);
  field(h, Buffer.from(DOMAIN));
  field(h, Buffer.from(side));
  field(h, Buffer.from(t.clusterId, 'utf8'));
  field(h, Buffer.from(t.dialerNodeId, 'utf8'));
  field(h, Buffer.from(t.acceptorNodeId, 'utf8'));
  field(h, t.dialerNonce);
  field(h, t.acceptorNonce);
  const idx = Buffer.allocUnsafe(4);
  idx.writeUInt32BE(t.linkIndex, 0);
  field(h, idx);
  return h.digest();
}

/** Constant-time check of a proof received from `side`. */
export function verifyProof(secret: Buffer, side: ProvingSide, t: Transcript, proof: Buffer): boolean {
  const expected = computeProof(secret, side, t);
  return proof.length === expected.length && timingSafeEqual(proof, expected);
}
