/**
 * The lab's layout: every namespace, interface, address and port, derived
 * from the namespace prefix alone. Addresses come from 198.18.0.0/15 (RFC
 * 2544, benchmarking) and exist only inside the lab's namespaces, so two
 * labs with different prefixes use the same addresses without meeting.
 *
 *                    <prefix>-sw: br0 (the front-end switch)
 *        ┌──────────────┬──────────────┬───────────────┐
 *   eth1 198.18.0.1  eth1 198.18.0.2  eth1 198.18.0.10  eth1 198.18.0.5
 *   <prefix>-a       <prefix>-b       <prefix>-client   <prefix>-witness
 *   rep1 198.18.1.1 ══ rep1 198.18.1.2                  redis-server :6379
 *   rep2 198.18.2.1 ══ rep2 198.18.2.2
 *
 * rg-a (preferred node a) serves volume va on alias 198.18.0.101,
 * rg-b (preferred node b) serves vb on 198.18.0.102, both on eth1.
 */
import { STATION_IFNAME } from './lan';

export const LAB_NODE_IDS = ['a', 'b'] as const;
export type LabNodeId = (typeof LAB_NODE_IDS)[number];

export const isLabNodeId = (v: string): v is LabNodeId => (LAB_NODE_IDS as readonly string[]).includes(v);
export const otherNode = (id: LabNodeId): LabNodeId => (id === 'a' ? 'b' : 'a');

/** 1-40 of a-z 0-9 - (namespace names are <prefix>-<role>), starting with a letter. */
const PREFIX = /^[a-z][a-z0-9-]{0,39}$/;

export function checkPrefix(prefix: string): string | null {
  return PREFIX.test(prefix) ? null : `"${prefix}" is not a lab prefix (1-40 of a-z 0-9 -, starting with a letter)`;
}

export const FRONT_IFNAME = STATION_IFNAME;
export const FRONT_PREFIX_LENGTH = 24;

/** Fixed front-end addresses by station (role) name. */
export const FRONT_ADDRESSES = {
  a: '198.18.0.1',
  b: '198.18.0.2',
  witness: '198.18.0.5',
  client: '198.18.0.10',
} as const;
export type LabStation = keyof typeof FRONT_ADDRESSES;

/** The two replication links: a direct veth pair each, /30, one port per link. */
export const REPLICATION_LINKS = [
  { ifname: 'rep1', a: '198.18.1.1', b: '198.18.1.2', prefixLength: 30, port: 7001 },
  { ifname: 'rep2', a: '198.18.2.1', b: '198.18.2.2', prefixLength: 30, port: 7002 },
] as const;

export const PORTS = {
  iscsi: 3260,
  heartbeat: 7400,
  /** The status endpoint, inside each node's namespace, on its loopback. */
  status: 8080,
  /** The REST API, on each node's front-end address (reachable from the client and the peer). */
  restApi: 8081,
  witness: 6379,
} as const;

export interface LabGroupPlan {
  readonly name: string;
  readonly preferredNode: LabNodeId;
  readonly alias: string;
  readonly volume: string;
}

export const GROUPS: readonly LabGroupPlan[] = [
  { name: 'rg-a', preferredNode: 'a', alias: '198.18.0.101', volume: 'va' },
  { name: 'rg-b', preferredNode: 'b', alias: '198.18.0.102', volume: 'vb' },
];

export const IQN_BASE = 'iqn.2026-11.io.twinsan.lab';

export interface LabNamespaces {
  readonly switch: string;
  readonly a: string;
  readonly b: string;
  readonly client: string;
  readonly witness: string;
}

/** Every namespace of the lab with prefix `prefix`, the switch first. */
export function namespacesOf(prefix: string): LabNamespaces {
  return { switch: `${prefix}-sw`, a: `${prefix}-a`, b: `${prefix}-b`, client: `${prefix}-client`, witness: `${prefix}-witness` };
}

export const iqnOf = (volume: string): string => `${IQN_BASE}:${volume}`;
export const lunUrlOf = (address: string, volume: string): string => `iscsi://${address}:${PORTS.iscsi}/${iqnOf(volume)}/0`;
export const witnessUrl = (): string => `redis://${FRONT_ADDRESSES.witness}:${PORTS.witness}`;
