/**
 * The one-machine failover lab (`twinsan lab`), and the namespace and
 * bridge helpers it is built from, which the e2e tests use too.
 *
 *   plan.ts        names, addresses and ports, from the prefix alone
 *   netns.ts       namespaces, commands and processes inside them
 *   lan.ts         a bridge in a switch namespace with one veth port per station
 *   ns-agent.ts    HTTP and TCP probes made from inside a namespace
 *   node-api.ts    a node's state and actions through its endpoint
 *   node-config.ts the node config files of the pair
 *   lab-file.ts    lab.json and lab-state.json
 *   lab.ts         up, start-node, down
 *   command.ts     the commander commands
 */
export { labCommand, labSummary, twinsanCommand } from './command';
export { DEFAULT_VOLUME_SIZE, TWINSAN_BIN, labDown, labStartNode, labUp, startDetached, waitFor } from './lab';
export type { DetachedProcess, DownOptions, LabLog, StartNodeOptions, UpOptions } from './lab';
export { LAB_FILE, STATE_FILE, readLabFile, readState } from './lab-file';
export type { LabFile, LabGroupEntry, LabNodeEntry, LabState, LabTargetEntry, LabVolumeEntry } from './lab-file';
export { LabNodeApi, NODE_ACTIONS } from './node-api';
export type { NodeAction, NodeView } from './node-api';
export { NamespaceAgent } from './ns-agent';
export type { HttpAnswer, HttpRequest } from './ns-agent';
export * from './plan';
export * from './netns';
export * from './lan';
