export { PeerChannel, ChannelState, checkAck } from './peer-channel';
export type { ReplySink } from './peer-channel';
export type {
  PeerChannelOptions,
  PeerChannelEvents,
  ChannelStats,
  Handler,
  HandlerResult,
  IncomingMessage,
  LinkConfig,
  LinkUpInfo,
  ReplyWithPayload,
} from './peer-channel';
export { PeerLink, endedByPeer } from './peer-link';
export type { PeerLinkEvents, PeerLinkOptions, PeerLinkTimers, LinkAddress, LinkStats } from './peer-link';
export { LinkConnection } from './link-connection';
export type { LinkConnectionState, LinkConnectionEvents, LinkTimers } from './link-connection';
export { AcceptorHandshake, DialerHandshake } from './handshake';
export type { HandshakeConfig, HandshakeResult, HandshakeRole, HandshakeStep } from './handshake';
export { NONCE_BYTES, PROOF_BYTES, computeProof, verifyProof, newNonce } from './auth';
export type { Transcript, ProvingSide } from './auth';
export { ReplayWindow } from './replay-window';
export type { ReplayCheck } from './replay-window';
export { Backoff } from './backoff';
export { CHANNEL_TUNABLES, resolveTunables } from './tunables';
export type { ChannelTunables, Tunable } from './tunables';
export {
  LINK_ERROR_CODES,
  isLinkErrorCode,
  HandshakeError,
  LinkFailure,
  PeerUnavailableError,
  RequestTimeoutError,
  ChannelClosedError,
  UnsupportedByPeerError,
  RemoteError,
} from './errors';
export type { LinkErrorCode, HandshakeErrorCode } from './errors';
