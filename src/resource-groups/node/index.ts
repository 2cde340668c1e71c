/**
 * The two-node process (`twinsan node`): composition root of mirror,
 * target, alias IPs and resource groups.
 */
export { TwinsanNode, lunUrl } from './node';
export { APTPL_STATE_KIND, ReplicatedReservationStore, keepPeerReservations, reservationFilePath } from './replicated-reservations';
export type { NodeDeps, NodeStatus, ServedTarget, VolumeStatus } from './node';
export { ConfigError, LOG_LEVELS, MAX_PROTOCOL_VERSION_ENV, applyEnvOverrides, MIN_SECRET_BYTES, NODE_CONFIG_SCHEMA, loadNodeConfig, parseNodeConfig, redactConfig } from './config';
export type { ApiConfig, LinkConfig, NodeConfig, ParseOptions, VolumeConfig } from './config';
export { ownerAluaGroups, pairLayout } from './pair-layout';
export type { PairLayout, PairMember, Position } from './pair-layout';
export type { MirrorFactory, MirrorNodeOptions, MirrorNodePort, MirroredVolumePort, OpenVolumeOptions, VerifyResult, VolumeRole } from './mirror-port';
export { createMirrorNode, mirrorDataStanding, mirrorInSync } from './mirror-factory';
export { effectiveConfig, targetAccess, volumeConfigOf } from './node';
export type { OpenVolume } from './node';
export { NodePairControl, defaultIqnPrefix } from './pair-control';
export type { PairControlOptions } from './pair-control';
export { PAIR_RPC_TOPIC, PAIR_RPC_OPS, callPeer, servePairRpc } from './pair-rpc';
export type { PeerSnapshot, PairRpcMap, PairRpcOp } from './pair-rpc';
export { IoMetrics, LATENCY_BOUNDS_S } from './io-metrics';
