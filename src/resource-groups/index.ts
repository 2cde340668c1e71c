/**
 * Resource groups: ownership of volumes and alias IPs by one node of the
 * pair at a time, failure detection, witness leases, failover and planned
 * moves. node/ is the composition root of a running node (mirror, target,
 * alias IPs and groups wired together); the REST API drives it.
 */
export * from './node';
export { ResourceGroupController } from './controller';
export type { ControllerEvents, ControllerOptions, LeasePort, PeerControl, PeerPort } from './controller';
export { ResourceGroup, ResourceGroupError } from './group';
export type { Resource, StopReason } from './group';
export { NodeGroups, LIVE_SCSI_STATE_KIND } from './node-groups';
export type { NodeGroupsOptions, OpenGroupVolume } from './node-groups';
export { RG_STATES, RG_EVENTS } from './state';
export type { RgState, RgEvent } from './state';
export { FAILBACK_MODES } from './config';
export type { AliasIpConfig, FailbackMode, HeartbeatConfig, ResourceGroupConfig } from './config';
export { DEFAULT_HEARTBEAT } from './liveness';
export type { PeerState as PeerLiveness } from './liveness';
export * as witness from './witness';
export * from './control';
