export * from './messages';
export { VersionRange, OUR_VERSIONS, negotiateVersion, isValidRange, formatRange } from './version';
export { EnvelopeType, EnvelopeDecodeError, PROTO_PACKAGE, decodeEnvelope, encodeEnvelope, schemaRoot } from './schema';
export {
  DEFAULT_FRAME_LIMITS,
  DecodedFrame,
  FRAME_PREFIX_BYTES,
  FrameDecoder,
  FrameError,
  FrameErrorKind,
  FrameLimits,
  Payload,
  encodeFrame,
  payloadLength,
} from './frame';
