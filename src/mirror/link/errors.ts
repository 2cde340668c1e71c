/**
 * Errors of the peer links and channel: one registry of codes (each with
 * what it means), one class per kind of failure. The codes also travel in
 * Ack.code when a handshake is refused or a request fails on the peer.
 */

export const LINK_ERROR_CODES = {
  EAUTH: 'a proof of the shared secret did not match: the two nodes are configured with different secrets',
  EVERSION: 'the two nodes have no protocol version in common',
  ECLUSTER: 'the peer belongs to another cluster (cluster ids differ)',
  ENODE: 'the peer is not the node this link is configured for (or has our own node id)',
  ELINK: 'the connection reached another link of the peer than the one it was dialled for (link index differs)',
  EPROTO: 'the peer broke the protocol (unexpected message, bad frame, missing payload)',
  ETIMEDOUT: 'the handshake did not complete in time',
  EDEAD: 'no traffic from the peer on the link for the dead interval',
  ESOCKET: 'the connection failed at the socket (reset, refused, unreachable)',
  EREPLACED: 'the connection was closed in favour of another one of the same link (both nodes dialled)',
  ENOTSUP: 'the receiver does not know or does not handle the message',
  EPEERUNAVAILABLE: 'no link to the peer has been up for the unavailable interval',
  EPEERRESTART: 'the peer restarted while the request was outstanding: whether it was applied is unknown',
  ETIMEOUT: 'the peer did not answer the request within the request timeout',
  ECLOSED: 'the channel was closed',
  EIO: 'a request handler failed without an errno-style code',
} as const;
export type LinkErrorCode = keyof typeof LINK_ERROR_CODES;

/** Codes that may name a handshake failure. */
export type HandshakeErrorCode = Extract<LinkErrorCode, 'EAUTH' | 'EVERSION' | 'ECLUSTER' | 'ENODE' | 'ELINK' | 'EPROTO' | 'ETIMEDOUT'>;

export function isLinkErrorCode(code: string): code is LinkErrorCode {
  return Object.prototype.hasOwnProperty.call(LINK_ERROR_CODES, code);
}

/** A link's handshake failed, on our side (`remote` false) or the peer refused us (`remote` true). */
export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
  constructor(
    readonly code: HandshakeErrorCode,
    message: string,
    readonly remote: boolean,
  ) {
    super(message);
  }
}

/** A link was closed for a protocol violation, silence or a socket failure. */
export class LinkFailure extends Error {
  override readonly name = 'LinkFailure';
  constructor(
    readonly code: Extract<LinkErrorCode, 'EPROTO' | 'EDEAD' | 'ESOCKET' | 'ECLOSED' | 'EREPLACED'>,
    message: string,
    /** ESOCKET: the socket's errno name ('ECONNRESET', 'ETIMEDOUT'...), when it had one. */
    readonly sysCode?: string,
  ) {
    super(message);
  }
}

/**
 * No link to the peer has been up for `unavailableAfterMs` (or the peer
 * restarted under an outstanding request): the request may or may not have
 * been applied. The write path goes degraded on it.
 */
export class PeerUnavailableError extends Error {
  override readonly name = 'PeerUnavailableError';
  constructor(
    readonly code: 'EPEERUNAVAILABLE' | 'EPEERRESTART',
    message: string,
  ) {
    super(message);
  }
}

export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  readonly code = 'ETIMEOUT';
}

export class ChannelClosedError extends Error {
  override readonly name = 'ChannelClosedError';
  readonly code = 'ECLOSED';
}

/** The negotiated protocol version of the link lacks the message kind. */
export class UnsupportedByPeerError extends Error {
  override readonly name = 'UnsupportedByPeerError';
  readonly code = 'ENOTSUP';
}

/** The peer answered a request Ack{ok: false} (see checkAck); `code` is its errno-style name. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
