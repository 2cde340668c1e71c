/**
 * The cluster configuration: one versioned document per pair, the same on
 * both nodes. It says which volumes and resource groups the pair has, who
 * may log in to each volume (initiator ACL, CHAP, mutual CHAP with their
 * secrets), the nodes' API addresses and maintenance flags. Node-local
 * facts (listen addresses, backing paths, the peer secret) stay in the node
 * config file.
 *
 * `version` increases with every change (store.ts); the content hash covers
 * everything but the version and who changed it when, so two nodes seeded
 * from matching config files hold equal documents.
 */
import { createHash } from 'node:crypto';
import type { FailbackMode } from '../config';
import type { NodeConfig } from '../node/config';

export const DOCUMENT_FORMAT = 1;

export interface ChapCredential {
  readonly user: string;
  readonly secret: string;
}

export interface VolumeAccessConfig {
  /** Initiator IQNs allowed to log in; null: any. */
  readonly allowedInitiators: readonly string[] | null;
  readonly chap: ChapCredential | null;
  /** Credentials the target presents to the initiator; only with chap. */
  readonly mutualChap: ChapCredential | null;
}

export interface ClusterVolume {
  /** UUID, lower case: the root of the LU identity on both nodes. */
  readonly id: string;
  readonly name: string;
  readonly iqn: string;
  readonly sizeBytes: number;
  readonly thin: boolean;
  readonly blockSize: 512 | 4096;
  readonly physicalBlockSize: number;
  /** The resource group that serves it; null: served by `owner` on its iscsi.listen portals, never moved. */
  readonly resourceGroup: string | null;
  /** Without a resource group: the node that is primary and serves it. With one: the group's preferred node. */
  readonly owner: string;
  readonly access: VolumeAccessConfig;
}

export interface ClusterAliasIp {
  readonly address: string;
  readonly prefix: number;
  readonly interface: string;
}

export interface ClusterResourceGroup {
  readonly name: string;
  readonly preferredNode: string;
  readonly aliasIps: readonly ClusterAliasIp[];
  readonly failback: FailbackMode;
}

export interface ClusterNode {
  readonly id: string;
  /** The node's API base URL as its peer reaches it; null: not recorded. */
  readonly api: string | null;
  readonly maintenance: boolean;
}

export interface ClusterDocument {
  readonly format: typeof DOCUMENT_FORMAT;
  readonly clusterId: string;
  /** Monotonic: every change adds one. */
  readonly version: number;
  /** ISO time and node of the last change (null for a seeded document). */
  readonly updatedAt: string | null;
  readonly updatedBy: string | null;
  /** The pair was formed (POST /pair): both nodes' API addresses are recorded. */
  readonly paired: boolean;
  /** Both nodes, in pair order (the one whose id sorts first first). */
  readonly nodes: readonly ClusterNode[];
  readonly volumes: readonly ClusterVolume[];
  readonly resourceGroups: readonly ClusterResourceGroup[];
}

export const OPEN_ACCESS: VolumeAccessConfig = { allowedInitiators: null, chap: null, mutualChap: null };

/** The document a node starts from the first time: its config file's volumes and resource groups, version 1. */
export function seedDocument(config: NodeConfig): ClusterDocument {
  const ids = [config.nodeId, config.peer.nodeId].sort();
  return {
    format: DOCUMENT_FORMAT,
    clusterId: config.clusterId,
    version: 1,
    updatedAt: null,
    updatedBy: null,
    paired: false,
    nodes: ids.map((id) => ({ id, api: null, maintenance: false })),
    volumes: config.volumes.map((v) => ({
      id: v.id,
      name: v.name,
      iqn: v.iqn,
      sizeBytes: v.sizeBytes,
      thin: v.thin,
      blockSize: v.blockSize,
      physicalBlockSize: v.physicalBlockSize,
      resourceGroup: v.resourceGroup,
      owner: v.owner,
      access: OPEN_ACCESS,
    })),
    resourceGroups: config.resourceGroups.map((rg) => ({
      name: rg.name,
      preferredNode: rg.preferredNode,
      aliasIps: rg.aliasIps.map((a) => ({ address: a.address, prefix: a.prefix, interface: a.interface })),
      failback: rg.failback,
    })),
  };
}

/** JSON with object keys sorted, so equal content gives equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  });
}

/** sha256 of the content: everything but version, updatedAt and updatedBy. */
export function contentHash(doc: ClusterDocument): string {
  const { version: _v, updatedAt: _at, updatedBy: _by, ...content } = doc;
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/** The volumes of a resource group, in document order (the order their targets start). */
export function groupVolumes(doc: ClusterDocument, rg: string): ClusterVolume[] {
  return doc.volumes.filter((v) => v.resourceGroup === rg);
}
