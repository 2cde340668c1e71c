/**
 * The node config files of a lab pair (docs/node-config.md): the same
 * volumes and resource groups on both, each node's own addresses from the
 * plan, the witness in the witness namespace, failback manual so that a
 * node restarted after a failover stays standby until told otherwise.
 */
import path from 'node:path';
import { FRONT_ADDRESSES, FRONT_IFNAME, FRONT_PREFIX_LENGTH, GROUPS, LabNodeId, PORTS, REPLICATION_LINKS, iqnOf, otherNode } from './plan';

export interface LabVolumeIdentity {
  readonly name: string;
  /** UUID: the LU identity, the same on both nodes. */
  readonly id: string;
}

export interface LabConfigInput {
  readonly dir: string;
  readonly clusterId: string;
  readonly secretFile: string;
  readonly volumes: readonly LabVolumeIdentity[];
  readonly sizeBytes: number;
}

export const nodeDataDir = (dir: string, id: LabNodeId): string => path.join(dir, `node-${id}`);
export const nodeConfigFile = (dir: string, id: LabNodeId): string => path.join(dir, `node-${id}.json`);
export const nodeLogFile = (dir: string, id: LabNodeId): string => path.join(dir, `node-${id}.log`);
export const nodeTokenFile = (dir: string, id: LabNodeId): string => path.join(dir, `node-${id}.token`);
/** The status endpoint (no token, loopback of the node's namespace). */
export const statusUrl = (): string => `http://127.0.0.1:${PORTS.status}`;
/** The REST API of node `id` (bearer token from its token file). */
export const restApiUrl = (id: LabNodeId): string => `http://${FRONT_ADDRESSES[id]}:${PORTS.restApi}`;

/** The node config of lab node `id`, as written to its file. */
export function labNodeConfig(id: LabNodeId, input: LabConfigInput): Record<string, unknown> {
  const peer = otherNode(id);
  const me = FRONT_ADDRESSES[id];
  return {
    nodeId: id,
    clusterId: input.clusterId,
    dataDir: nodeDataDir(input.dir, id),
    iscsi: { listen: [`${me}:${PORTS.iscsi}`] },
    peer: {
      nodeId: peer,
      secretFile: input.secretFile,
      links: REPLICATION_LINKS.map((l) => ({ local: `${l[id]}:${l.port}`, peer: `${l[peer]}:${l.port}` })),
    },
    heartbeat: { local: `${me}:${PORTS.heartbeat}`, peer: `${FRONT_ADDRESSES[peer]}:${PORTS.heartbeat}` },
    witness: { redis: `${FRONT_ADDRESSES.witness}:${PORTS.witness}` },
    volumes: input.volumes.map((v) => ({ id: v.id, name: v.name, iqn: iqnOf(v.name), sizeBytes: input.sizeBytes, thin: true })),
    resourceGroups: GROUPS.map((g) => ({
      name: g.name,
      preferredNode: g.preferredNode,
      aliasIps: [{ address: g.alias, prefix: FRONT_PREFIX_LENGTH, interface: FRONT_IFNAME }],
      volumes: [g.volume],
      failback: 'manual',
    })),
    status: { listen: `127.0.0.1:${PORTS.status}` },
    api: { listen: `${me}:${PORTS.restApi}`, tokenFile: nodeTokenFile(input.dir, id) },
    log: { level: 'info' },
  };
}
