/**
 * Every change to the cluster document, by name, and the one function that
 * applies it: a table of pure handlers from (document, change) to the next
 * document's content. A handler checks what it changes and refuses with a
 * ControlError naming the field; the store (store.ts) bumps the version,
 * persists the result and tells its listeners.
 */
import net from 'node:net';
import { ControlError } from '../control';
import { FAILBACK_MODES, type FailbackMode } from '../config';
import { NAME_PATTERN, isIscsiName } from '../node/config';
import type { ChapCredential, ClusterAliasIp, ClusterDocument, ClusterResourceGroup, ClusterVolume, VolumeAccessConfig } from './document';

/** CHAP secrets: at least 12 bytes (Windows and ESXi refuse shorter ones), at most 255. */
export const CHAP_SECRET_BYTES = { min: 12, max: 255 } as const;
const PHYSICAL_BLOCK_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const IFNAME = /^(?!\.\.?$)[^\s/:]{1,15}$/;
const INITIATOR_NAME = /^(?:iqn\.\d{4}-\d{2}\.[^\s]+|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;

export interface ChangeMap {
  'volume-create': { readonly volume: ClusterVolume };
  'volume-grow': { readonly name: string; readonly sizeBytes: number };
  'volume-delete': { readonly name: string };
  'access-update': {
    readonly name: string;
    readonly allowedInitiators?: readonly string[] | null;
    readonly chap?: ChapCredential | null;
    readonly mutualChap?: ChapCredential | null;
  };
  'rg-create': { readonly group: ClusterResourceGroup };
  'rg-update': { readonly name: string; readonly preferredNode?: string; readonly aliasIps?: readonly ClusterAliasIp[]; readonly failback?: FailbackMode };
  'rg-delete': { readonly name: string };
  'node-update': { readonly id: string; readonly api?: string | null; readonly maintenance?: boolean };
  'pair-create': { readonly apis: Readonly<Record<string, string>> };
}
export type ChangeKind = keyof ChangeMap;
export type ClusterChange = { [K in ChangeKind]: { readonly kind: K } & ChangeMap[K] }[ChangeKind];

/** What a handler produces: the next document with the version and change stamp left to the store. */
type Content = Omit<ClusterDocument, 'version' | 'updatedAt' | 'updatedBy'>;
type Handler<K extends ChangeKind> = (doc: ClusterDocument, change: ChangeMap[K]) => Content;

const invalid = (field: string, message: string): ControlError => new ControlError('invalid', message, { field });

function volumeNamed(doc: ClusterDocument, name: string): ClusterVolume {
  const v = doc.volumes.find((x) => x.name === name);
  if (!v) throw new ControlError('not-found', `no volume named ${JSON.stringify(name)}`);
  return v;
}

function groupNamed(doc: ClusterDocument, name: string): ClusterResourceGroup {
  const g = doc.resourceGroups.find((x) => x.name === name);
  if (!g) throw new ControlError('not-found', `no resource group named ${JSON.stringify(name)}`);
  return g;
}

function checkNode(doc: ClusterDocument, id: string, field: string): void {
  if (!doc.nodes.some((n) => n.id === id)) throw invalid(field, `${JSON.stringify(id)} is not a node of the pair (${doc.nodes.map((n) => n.id).join(', ')})`);
}

function checkChap(c: ChapCredential, field: string): void {
  if (typeof c.user !== 'string' || c.user.length === 0 || c.user.length > 255) throw invalid(`${field}.user`, 'must be 1..255 characters');
  const bytes = typeof c.secret === 'string' ? Buffer.byteLength(c.secret) : 0;
  if (bytes < CHAP_SECRET_BYTES.min || bytes > CHAP_SECRET_BYTES.max) {
    throw invalid(`${field}.secret`, `must be ${CHAP_SECRET_BYTES.min}..${CHAP_SECRET_BYTES.max} bytes`);
  }
}

function checkAliasIps(doc: ClusterDocument, aliasIps: readonly ClusterAliasIp[], self: string | null): void {
  if (aliasIps.length === 0) throw invalid('aliasIps', 'needs at least one alias IP');
  const seen = new Set<string>();
  aliasIps.forEach((a, i) => {
    const at = `aliasIps[${i}]`;
    const family = net.isIP(a.address);
    if (family === 0) throw invalid(`${at}.address`, `${JSON.stringify(a.address)} is not an IPv4 or IPv6 address`);
    if (!Number.isInteger(a.prefix) || a.prefix < 0 || a.prefix > (family === 4 ? 32 : 128)) throw invalid(`${at}.prefix`, `${a.prefix} is not a prefix length for ${a.address}`);
    if (typeof a.interface !== 'string' || !IFNAME.test(a.interface)) throw invalid(`${at}.interface`, 'is not an interface name (1-15 characters, no / : or space)');
    const key = a.address.toLowerCase();
    if (seen.has(key)) throw invalid(`${at}.address`, `${a.address} is listed twice`);
    seen.add(key);
    const other = doc.resourceGroups.find((g) => g.name !== self && g.aliasIps.some((b) => b.address.toLowerCase() === key));
    if (other) throw new ControlError('conflict', `${a.address} is an alias IP of resource group ${other.name}`, { field: `${at}.address` });
  });
}

function checkVolume(doc: ClusterDocument, v: ClusterVolume): void {
  if (typeof v.name !== 'string' || !NAME_PATTERN.test(v.name)) throw invalid('name', 'is not a volume name (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -)');
  if (!isIscsiName(v.iqn)) throw invalid('iqn', 'is not an iSCSI name (iqn.YYYY-MM.reversed.domain[:suffix] in lower case, eui. or naa.)');
  if (v.blockSize !== 512 && v.blockSize !== 4096) throw invalid('blockSize', 'must be 512 or 4096');
  if (!Number.isSafeInteger(v.sizeBytes) || v.sizeBytes <= 0 || v.sizeBytes % v.blockSize !== 0) {
    throw invalid('sizeBytes', `${v.sizeBytes} is not a positive multiple of the ${v.blockSize}-byte block size`);
  }
  if (!PHYSICAL_BLOCK_SIZES.includes(v.physicalBlockSize) || v.physicalBlockSize < v.blockSize) throw invalid('physicalBlockSize', 'must be a power of two from blockSize to 65536');
  for (const key of ['id', 'name', 'iqn'] as const) {
    if (doc.volumes.some((x) => x[key] === v[key])) throw new ControlError('conflict', `a volume with ${key} ${JSON.stringify(v[key])} exists`, { field: key });
  }
  if (v.resourceGroup !== null) {
    const g = doc.resourceGroups.find((x) => x.name === v.resourceGroup);
    if (!g) throw invalid('resourceGroup', `no resource group named ${JSON.stringify(v.resourceGroup)}`);
    if (v.owner !== g.preferredNode) throw invalid('owner', `a volume of ${g.name} is owned by its preferred node ${g.preferredNode}`);
  } else {
    checkNode(doc, v.owner, 'owner');
  }
}

const HANDLERS: { readonly [K in ChangeKind]: Handler<K> } = {
  'volume-create': (doc, { volume }) => {
    checkVolume(doc, volume);
    return { ...doc, volumes: [...doc.volumes, volume] };
  },
  'volume-grow': (doc, { name, sizeBytes }) => {
    const v = volumeNamed(doc, name);
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes % v.blockSize !== 0) throw invalid('sizeBytes', `${sizeBytes} is not a multiple of the ${v.blockSize}-byte block size`);
    if (sizeBytes < v.sizeBytes) throw invalid('sizeBytes', `${sizeBytes} is smaller than the volume (${v.sizeBytes} bytes); volumes only grow`);
    return { ...doc, volumes: doc.volumes.map((x) => (x === v ? { ...x, sizeBytes } : x)) };
  },
  'volume-delete': (doc, { name }) => {
    const v = volumeNamed(doc, name);
    return { ...doc, volumes: doc.volumes.filter((x) => x !== v) };
  },
  'access-update': (doc, change) => {
    const v = volumeNamed(doc, change.name);
    const next: VolumeAccessConfig = {
      allowedInitiators: change.allowedInitiators !== undefined ? (change.allowedInitiators === null ? null : [...change.allowedInitiators]) : v.access.allowedInitiators,
      chap: change.chap !== undefined ? change.chap : v.access.chap,
      // Removing CHAP removes mutual CHAP with it.
      mutualChap: change.mutualChap !== undefined ? change.mutualChap : change.chap === null ? null : v.access.mutualChap,
    };
    next.allowedInitiators?.forEach((iqn, i) => {
      if (typeof iqn !== 'string' || !INITIATOR_NAME.test(iqn)) throw invalid(`allowedInitiators[${i}]`, `${JSON.stringify(iqn)} is not an initiator name (iqn., eui. or naa.)`);
    });
    if (next.chap) checkChap(next.chap, 'chap');
    if (next.mutualChap) {
      checkChap(next.mutualChap, 'mutualChap');
      if (!next.chap) throw invalid('mutualChap', 'needs CHAP (the initiator authenticates first)');
      if (next.mutualChap.secret === next.chap.secret) throw invalid('mutualChap.secret', 'must differ from the CHAP secret');
    }
    return { ...doc, volumes: doc.volumes.map((x) => (x === v ? { ...x, access: next } : x)) };
  },
  'rg-create': (doc, { group }) => {
    if (typeof group.name !== 'string' || !NAME_PATTERN.test(group.name)) throw invalid('name', 'is not a resource group name (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -)');
    if (doc.resourceGroups.some((g) => g.name === group.name)) throw new ControlError('conflict', `a resource group named ${group.name} exists`, { field: 'name' });
    checkNode(doc, group.preferredNode, 'preferredNode');
    if (!FAILBACK_MODES.includes(group.failback)) throw invalid('failback', `must be one of ${FAILBACK_MODES.join(', ')}`);
    checkAliasIps(doc, group.aliasIps, null);
    return { ...doc, resourceGroups: [...doc.resourceGroups, group] };
  },
  'rg-update': (doc, change) => {
    const g = groupNamed(doc, change.name);
    if (change.preferredNode !== undefined) checkNode(doc, change.preferredNode, 'preferredNode');
    if (change.failback !== undefined && !FAILBACK_MODES.includes(change.failback)) throw invalid('failback', `must be one of ${FAILBACK_MODES.join(', ')}`);
    if (change.aliasIps !== undefined) checkAliasIps(doc, change.aliasIps, g.name);
    const next: ClusterResourceGroup = {
      ...g,
      ...(change.preferredNode !== undefined ? { preferredNode: change.preferredNode } : {}),
      ...(change.aliasIps !== undefined ? { aliasIps: change.aliasIps.map((a) => ({ address: a.address, prefix: a.prefix, interface: a.interface })) } : {}),
      ...(change.failback !== undefined ? { failback: change.failback } : {}),
    };
    return {
      ...doc,
      resourceGroups: doc.resourceGroups.map((x) => (x === g ? next : x)),
      // A group's volumes are owned by its preferred node.
      volumes: doc.volumes.map((v) => (v.resourceGroup === g.name ? { ...v, owner: next.preferredNode } : v)),
    };
  },
  'rg-delete': (doc, { name }) => {
    const g = groupNamed(doc, name);
    const members = doc.volumes.filter((v) => v.resourceGroup === name).map((v) => v.name);
    if (members.length > 0) throw new ControlError('precondition-failed', `resource group ${name} still has volumes (${members.join(', ')}); delete or move them first`, { field: 'volumes' });
    return { ...doc, resourceGroups: doc.resourceGroups.filter((x) => x !== g) };
  },
  'node-update': (doc, change) => {
    checkNode(doc, change.id, 'id');
    return {
      ...doc,
      nodes: doc.nodes.map((n) =>
        n.id === change.id
          ? { ...n, ...(change.api !== undefined ? { api: change.api } : {}), ...(change.maintenance !== undefined ? { maintenance: change.maintenance } : {}) }
          : n,
      ),
    };
  },
  'pair-create': (doc, { apis }) => {
    for (const n of doc.nodes) if (typeof apis[n.id] !== 'string') throw invalid('peerApi', `the API address of node ${n.id} is missing`);
    return { ...doc, paired: true, nodes: doc.nodes.map((n) => ({ ...n, api: apis[n.id]! })) };
  },
};

/** The document's content after `change`; throws ControlError when the change does not apply. */
export function applyChange(doc: ClusterDocument, change: ClusterChange): Content {
  const handler = HANDLERS[change.kind] as Handler<ChangeKind>;
  return handler(doc, change as never);
}

/**
 * Checks a whole document against the rules the changes enforce, by replaying its content through
 * them: the nodes must be exactly `pairNodes`, then every resource group is created, every volume
 * created and its access set, each checked as a local change would be. Throws a ControlError
 * 'invalid' whose field is the document path at fault (volumes[2].owner).
 */
export function checkDocumentContent(doc: ClusterDocument, pairNodes: readonly string[]): void {
  const ids = doc.nodes.map((n) => n.id);
  if (ids.length !== pairNodes.length || ids.some((id, i) => id !== pairNodes[i])) {
    throw invalid('nodes', `nodes ${ids.join(', ')} are not the pair's nodes (${pairNodes.join(', ')})`);
  }
  let built: ClusterDocument = { ...doc, volumes: [], resourceGroups: [] };
  const replay = (at: string, change: ClusterChange): void => {
    try {
      built = { ...built, ...applyChange(built, change) };
    } catch (err) {
      if (!(err instanceof ControlError)) throw err;
      const field = err.details.field === undefined ? at : `${at}.${err.details.field}`;
      throw invalid(field, `${field}: ${err.message}`);
    }
  };
  doc.resourceGroups.forEach((group, i) => replay(`resourceGroups[${i}]`, { kind: 'rg-create', group }));
  doc.volumes.forEach((volume, i) => {
    replay(`volumes[${i}]`, { kind: 'volume-create', volume });
    replay(`volumes[${i}]`, { kind: 'access-update', name: volume.name, ...volume.access });
  });
}

/** For logs and events: the change without secrets. */
export function describeChange(change: ClusterChange): string {
  switch (change.kind) {
    case 'volume-create':
      return `volume ${change.volume.name} created (${change.volume.sizeBytes} bytes)`;
    case 'volume-grow':
      return `volume ${change.name} grown to ${change.sizeBytes} bytes`;
    case 'volume-delete':
      return `volume ${change.name} deleted`;
    case 'access-update':
      return `access to volume ${change.name} changed`;
    case 'rg-create':
      return `resource group ${change.group.name} created`;
    case 'rg-update':
      return `resource group ${change.name} changed`;
    case 'rg-delete':
      return `resource group ${change.name} deleted`;
    case 'node-update':
      return `node ${change.id} changed${change.maintenance !== undefined ? ` (maintenance ${change.maintenance ? 'on' : 'off'})` : ''}`;
    case 'pair-create':
      return 'pair formed';
  }
}
