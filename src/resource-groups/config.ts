/**
 * The resource-group keys of the node config (docs/node-config.md):
 *
 *   "heartbeat": { "local": "198.18.0.1:7400", "peer": "198.18.0.2:7400", "intervalMs": 200, "deadMs": 900 },
 *   "resourceGroups": [
 *     { "name": "rg1", "preferredNode": "node-a", "failback": "auto",
 *       "aliasIps": [{ "address": "198.18.0.50", "prefix": 24, "interface": "eth1" }],
 *       "volumes": ["v1"] }
 *   ]
 *
 * A volume belongs to at most one RG; a volume in an RG takes its owner
 * from the RG's preferred node (its own `owner` may be left out, and must
 * agree when given). Volumes outside every RG keep the step-3 behaviour:
 * served by their owner on iscsi.listen, never moved.
 */
import net from 'node:net';
import type { Issue, Spec } from './node/schema';
import { array, hostPort, integerIn, leaf, matching, object, oneOf, optional, quote, required } from './node/schema';
import { DEFAULT_HEARTBEAT } from './liveness';

export const FAILBACK_MODES = ['auto', 'manual'] as const;
export type FailbackMode = (typeof FAILBACK_MODES)[number];

export interface AliasIpConfig {
  readonly address: string;
  readonly prefix: number;
  readonly interface: string;
}

export interface ResourceGroupConfig {
  readonly name: string;
  readonly preferredNode: string;
  readonly aliasIps: readonly AliasIpConfig[];
  /** Volume names, in the order their targets are started. */
  readonly volumes: readonly string[];
  readonly failback: FailbackMode;
}

export interface HeartbeatConfig {
  /** This node's front-end "host:port" the peer sends to; null: no front-end path (never declares the peer dead alone). */
  readonly local: string | null;
  readonly peer: string | null;
  readonly intervalMs: number;
  readonly deadMs: number;
}

const RG_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Linux IFNAMSIZ - 1, no '/', no whitespace, not "." or "..". */
const IFNAME = /^(?!\.\.?$)[^\s/:]{1,15}$/;

const ipAddress = leaf((v) => (typeof v === 'string' && net.isIP(v) !== 0 ? null : 'is not an IPv4 or IPv6 address'));

export const RESOURCE_GROUPS_SCHEMA: Spec = array(
  object({
    name: required(leaf(matching(RG_NAME, 'a resource group name (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -)'))),
    preferredNode: required(leaf(matching(RG_NAME, 'a node id'))),
    aliasIps: required(
      array(
        object({
          address: required(ipAddress),
          prefix: required(leaf(integerIn(0, 128))),
          interface: required(leaf(matching(IFNAME, 'an interface name (1-15 characters, no / : or space)'))),
        }),
        1,
      ),
    ),
    volumes: required(array(leaf(matching(RG_NAME, 'a volume name')), 1)),
    failback: optional(leaf(oneOf(FAILBACK_MODES))),
  }),
);

export const HEARTBEAT_SCHEMA: Spec = object({
  local: optional(leaf(hostPort())),
  peer: optional(leaf(hostPort())),
  intervalMs: optional(leaf(integerIn(10, 60_000))),
  deadMs: optional(leaf(integerIn(20, 600_000))),
});

export interface RawResourceGroup {
  name: string;
  preferredNode: string;
  aliasIps: { address: string; prefix: number; interface: string }[];
  volumes: string[];
  failback?: FailbackMode;
}

export interface RawHeartbeat {
  local?: string;
  peer?: string;
  intervalMs?: number;
  deadMs?: number;
}

/** Rules relating the RG keys to the rest of the config; the shape is already checked. */
export function resourceGroupIssues(
  rgs: readonly RawResourceGroup[],
  heartbeat: RawHeartbeat | undefined,
  ctx: { nodeId: string; peerNodeId: string; volumes: readonly { name: string; owner?: string }[] },
): Issue[] {
  const issues: Issue[] = [];
  const add = (key: string, problem: string): void => {
    issues.push({ key, problem });
  };
  const names = new Map<string, number>();
  const volumeRg = new Map<string, string>();
  const addresses = new Map<string, string>();
  const volumeNames = new Set(ctx.volumes.map((v) => v.name));
  rgs.forEach((rg, i) => {
    const at = `resourceGroups[${i}]`;
    const prior = names.get(rg.name);
    if (prior !== undefined) add(`${at}.name`, `${quote(rg.name)} is also the name of resourceGroups[${prior}]`);
    else names.set(rg.name, i);
    if (rg.preferredNode !== ctx.nodeId && rg.preferredNode !== ctx.peerNodeId) {
      add(`${at}.preferredNode`, `${quote(rg.preferredNode)} is neither this node (${quote(ctx.nodeId)}) nor its peer (${quote(ctx.peerNodeId)})`);
    }
    rg.aliasIps.forEach((a, j) => {
      const key = `${at}.aliasIps[${j}]`;
      const max = net.isIPv4(a.address) ? 32 : 128;
      if (a.prefix > max) add(`${key}.prefix`, `${a.prefix} is longer than ${max} bits`);
      const normalized = a.address.toLowerCase();
      const owner = addresses.get(normalized);
      if (owner !== undefined) add(`${key}.address`, `${quote(a.address)} is also ${owner}`);
      else addresses.set(normalized, `${key}.address`);
    });
    rg.volumes.forEach((name, j) => {
      const key = `${at}.volumes[${j}]`;
      if (!volumeNames.has(name)) add(key, `${quote(name)} is not the name of a volume`);
      const other = volumeRg.get(name);
      if (other !== undefined) add(key, `${quote(name)} is already in resource group ${quote(other)} (a volume belongs to one group)`);
      else volumeRg.set(name, rg.name);
    });
  });
  ctx.volumes.forEach((v, i) => {
    const rgName = volumeRg.get(v.name);
    if (rgName === undefined) {
      if (v.owner === undefined) add(`volumes[${i}].owner`, 'missing (needed when the volume is in no resource group)');
      return;
    }
    const rg = rgs.find((r) => r.name === rgName)!;
    if (v.owner !== undefined && v.owner !== rg.preferredNode) {
      add(`volumes[${i}].owner`, `${quote(v.owner)} is not the preferred node ${quote(rg.preferredNode)} of its resource group ${quote(rgName)}`);
    }
  });
  if (heartbeat) {
    if ((heartbeat.local === undefined) !== (heartbeat.peer === undefined)) add('heartbeat', 'needs both local and peer, or neither');
    const interval = heartbeat.intervalMs ?? DEFAULT_HEARTBEAT.intervalMs;
    const dead = heartbeat.deadMs ?? DEFAULT_HEARTBEAT.deadMs;
    if (dead < 3 * interval) add('heartbeat.deadMs', `${dead} is less than three heartbeat intervals (${3 * interval})`);
  }
  return issues;
}

export function resolveHeartbeat(raw: RawHeartbeat | undefined): HeartbeatConfig {
  return {
    local: raw?.local ?? null,
    peer: raw?.peer ?? null,
    intervalMs: raw?.intervalMs ?? DEFAULT_HEARTBEAT.intervalMs,
    deadMs: raw?.deadMs ?? DEFAULT_HEARTBEAT.deadMs,
  };
}

export function resolveResourceGroups(raw: readonly RawResourceGroup[] | undefined): ResourceGroupConfig[] {
  return (raw ?? []).map((rg) => ({
    name: rg.name,
    preferredNode: rg.preferredNode,
    aliasIps: rg.aliasIps.map((a) => ({ address: a.address, prefix: a.prefix, interface: a.interface })),
    volumes: [...rg.volumes],
    failback: rg.failback ?? 'auto',
  }));
}
