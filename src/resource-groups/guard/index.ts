/**
 * The node guard: the process that outlives a node killed without a clean
 * shutdown and cleans up after it (alias IPs, witness leases, the peer's
 * death notice). protocol.ts says what it is told and does.
 */
export { NODE_GUARD_ENTRY, NodeGuard } from './node-guard';
export type { NodeGuardOptions } from './node-guard';
export { NODE_GUARD_OPS, NodeGuardMessageError, NodeGuardState, encodeNodeGuardMessage, parseNodeGuardMessage } from './protocol';
export type { DeathDuties, DeathNotice, NodeGuardMessage, NodeGuardOp, WitnessAddress } from './protocol';
export { releaseLeases, sendDeathNotice } from './duties';
