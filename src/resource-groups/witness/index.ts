/**
 * The resource-group witness (README.md beside this file): per-RG leases
 * with fencing epochs in Redis (or a Sentinel set), the per-node
 * LeaseKeeper that renews them and says when to stop serving, the
 * no-witness modes, and the decision table that turns heartbeats, witness
 * and lease into keep-serving / stop-serving / take-over / wait.
 */
export type { AcquireOptions, LeaseGrant, LeaseHolder, Witness } from './witness';
export { FORGOTTEN_HOLDER, MAX_EPOCH, monotonicNow } from './witness';
export { RedisWitness, DEFAULT_KEY_PREFIX, isSentinelConnection } from './redis-witness';
export type {
  RedisAddress,
  RedisSentinelConnection,
  RedisStandaloneConnection,
  RedisWitnessConnection,
  RedisWitnessOptions,
} from './redis-witness';
export { MemoryWitness, MemoryWitnessServer } from './memory-witness';
export { NoWitness, WITNESS_MODES, createWitness } from './no-witness';
export type { WitnessConfig, WitnessMode } from './no-witness';
export { LeaseKeeper } from './lease-keeper';
export type { KeptLeaseState, LeaseKeeperEvents, LeaseKeeperOptions, LeaseStatus, MustStop } from './lease-keeper';
export { ACTIONS, DECISION_TABLE, LEASE_VIEWS, PEER_STATES, WITNESS_REACH, allDecisionInputs, decide } from './decision';
export type { Action, Decision, DecisionInput, DecisionRule, LeaseView, PeerState, WitnessReach } from './decision';
export {
  LEASE_TUNABLES,
  REDIS_WITNESS_TUNABLES,
  resolveLeaseTunables,
  resolveRedisWitnessTunables,
} from './tunables';
export type { LeaseTunables, RedisWitnessTunables, WitnessTunable } from './tunables';
export {
  WITNESS_ERROR_CODES,
  LeaseHeldByOtherError,
  LeaseLostError,
  WitnessClosedError,
  WitnessConfigError,
  WitnessError,
  WitnessReplyError,
  WitnessUnavailableError,
} from './errors';
export type { WitnessErrorCode } from './errors';
