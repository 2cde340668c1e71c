/**
 * The node configuration file (docs/node-config.md): JSON, validated at
 * start-up. Every problem is reported at once, each naming the file and the
 * key: `node-a.json: peer.links[1].local: "127.0.0.1:99999" is not host:port`.
 *
 * Relative paths (dataDir, peer.secretFile, volumes[].backing) are taken
 * from the directory of the config file, so a config means the same
 * whatever directory the node is started from.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  HEARTBEAT_SCHEMA,
  HeartbeatConfig,
  RESOURCE_GROUPS_SCHEMA,
  RawHeartbeat,
  RawResourceGroup,
  ResourceGroupConfig,
  resolveHeartbeat,
  resolveResourceGroups,
  resourceGroupIssues,
} from '../config';
import { PROTOCOL_VERSIONS } from '../../mirror';
import { pairLayout } from './pair-layout';
import {
  Issue,
  array,
  hostPort,
  integerIn,
  isBoolean,
  isString,
  leaf,
  matching,
  object,
  oneOf,
  optional,
  parseHostPort,
  quote,
  required,
  validate,
} from './schema';

/** One replication link: where this node listens, where it dials the peer (both "host:port"). */
export interface LinkConfig {
  readonly local: string;
  readonly peer: string;
}

export interface VolumeConfig {
  /** UUID, lower case: the root of the LU identity on both nodes. */
  readonly id: string;
  readonly name: string;
  readonly iqn: string;
  readonly sizeBytes: number;
  readonly thin: boolean;
  readonly blockSize: 512 | 4096;
  /** Reported to initiators as an alignment hint; a power of two >= blockSize. */
  readonly physicalBlockSize: number;
  /** The node that is primary for the volume and serves its target (a volume in a resource group: the group's preferred node). */
  readonly owner: string;
  /** The resource group the volume belongs to; null: none (served on iscsi.listen, never moved). */
  readonly resourceGroup: string | null;
  /** Absolute path of the backing file or device. */
  readonly backing: string;
}

export interface NodeConfig {
  /** Absolute path of the file this came from ("" when parsed from memory). */
  readonly file: string;
  readonly nodeId: string;
  readonly clusterId: string;
  /** Absolute. */
  readonly dataDir: string;
  readonly iscsi: {
    readonly listen: readonly string[];
    readonly portalGroupTag: number;
    readonly relativeTargetPortId: number;
  };
  readonly peer: {
    readonly nodeId: string;
    readonly secret: string;
    readonly links: readonly LinkConfig[];
    /** The relative target port id the peer's iSCSI server uses (its ALUA group lists it). */
    readonly relativeTargetPortId: number;
    /**
     * How long a write waits for the peer's acknowledgement before the volume degrades (the mirror's
     * degradeAfterMs). Null: the mirror's default (5 s). With resource groups the default is 1000 ms:
     * a survivor cannot promote its copy before its volume has left the session with the dead peer.
     */
    readonly degradeAfterMs: number | null;
    /**
     * The highest replication protocol version this node offers; null: this release's highest. For
     * rolling-upgrade tests (TWINSAN_MAX_PROTOCOL_VERSION overrides it).
     */
    readonly maxProtocolVersion: number | null;
  };
  readonly volumes: readonly VolumeConfig[];
  readonly log: { readonly level: string };
  /** Loopback status endpoint (GET /status); null: none. */
  readonly status: { readonly listen: string } | null;
  /** The REST API (src/api); null: none. */
  readonly api: ApiConfig | null;
  /** Resource groups (src/resource-groups/config.ts); [] when none. */
  readonly resourceGroups: readonly ResourceGroupConfig[];
  /** The front-end heartbeat, the second failure-detection path next to the replication links. */
  readonly heartbeat: HeartbeatConfig;
  /** The resource-group witness: a Redis "host:port", or none (then takeover only after a clean shutdown, unless risky mode). */
  readonly witness: { readonly redis: string | null; readonly keyPrefix: string | null; readonly allowTakeoverWithoutWitness: boolean };
}

export interface ApiConfig {
  /** "host:port" the API listens on. */
  readonly listen: string;
  /** Absolute path of the bearer token file (created with mode 0600 on first start). */
  readonly tokenFile: string;
  /** Absolute paths of the PEM certificate and key; null: plain HTTP. */
  readonly tls: { readonly cert: string; readonly key: string } | null;
}

/** The config could not be used; `issues` holds every problem found. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: readonly Issue[],
  ) {
    super(issues.map((i) => formatIssue(file, i)).join('\n'));
  }
}

function formatIssue(file: string, issue: Issue): string {
  const where = file === '' ? 'config' : path.basename(file);
  return issue.key === '' ? `${where}: ${issue.problem}` : `${where}: ${issue.key}: ${issue.problem}`;
}

export const MIN_SECRET_BYTES = 16;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const NAME_PATTERN = NAME;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** RFC 7143 §4.2.7: iqn., eui. or naa. names (lower case iqn). */
const ISCSI_NAME = /^(?:iqn\.\d{4}-\d{2}(?:\.[a-z0-9-]+)+(?::[^\s]+)?|eui\.[0-9A-F]{16}|naa\.[0-9A-F]{16}(?:[0-9A-F]{16})?)$/;
const MAX_ISCSI_NAME_BYTES = 223;

/** An iSCSI name this release accepts for a target (RFC 7143 §4.2.7, at most 223 bytes). */
export function isIscsiName(v: unknown): v is string {
  return typeof v === 'string' && ISCSI_NAME.test(v) && Buffer.byteLength(v) <= MAX_ISCSI_NAME_BYTES;
}

/** The status endpoint has no authentication, so it may only listen on a loopback address. */
const loopbackHostPort = (v: unknown): string | null => {
  const hp = typeof v === 'string' ? parseHostPort(v) : null;
  if (!hp) return 'is not host:port';
  return /^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(hp.host) ? null : 'is not a loopback address (127.x.x.x, ::1 or localhost)';
};

const PHYSICAL_BLOCK_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

const id = leaf(matching(NAME, 'an id (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -)'));
const endpoint = leaf(hostPort());
const portId = leaf(integerIn(1, 0xffff));

/** The shape of the file: every key, what it must be, and whether it is required. */
export const NODE_CONFIG_SCHEMA = object({
  nodeId: required(id),
  clusterId: required(id),
  dataDir: required(leaf(isString)),
  iscsi: required(
    object({
      listen: required(array(endpoint, 1)),
      portalGroupTag: optional(portId),
      relativeTargetPortId: optional(portId),
    }),
  ),
  peer: required(
    object({
      nodeId: required(id),
      secret: optional(leaf(isString)),
      secretFile: optional(leaf(isString)),
      links: required(array(object({ local: required(endpoint), peer: required(endpoint) }), 2)),
      relativeTargetPortId: optional(portId),
      degradeAfterMs: optional(leaf(integerIn(10, 600_000))),
      maxProtocolVersion: optional(leaf(integerIn(PROTOCOL_VERSIONS.min, PROTOCOL_VERSIONS.max))),
    }),
  ),
  volumes: required(
    array(
      object({
        id: required(leaf(matching(UUID, 'a UUID'))),
        name: required(leaf(matching(NAME, 'a volume name (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -)'))),
        iqn: required(
          leaf((v) => (isIscsiName(v) ? null : 'is not an iSCSI name (iqn.YYYY-MM.reversed.domain[:suffix] in lower case, eui. or naa.)')),
        ),
        sizeBytes: required(leaf(integerIn(1, Number.MAX_SAFE_INTEGER))),
        thin: required(leaf(isBoolean)),
        blockSize: optional(leaf(oneOf([512, 4096]))),
        physicalBlockSize: optional(leaf(oneOf(PHYSICAL_BLOCK_SIZES))),
        owner: optional(id),
        backing: optional(leaf(isString)),
      }),
    ),
  ),
  log: optional(object({ level: optional(leaf(oneOf(LOG_LEVELS))) })),
  status: optional(object({ listen: required(leaf(loopbackHostPort)) })),
  api: optional(
    object({
      listen: required(endpoint),
      tokenFile: optional(leaf(isString)),
      tls: optional(object({ cert: required(leaf(isString)), key: required(leaf(isString)) })),
    }),
  ),
  heartbeat: optional(HEARTBEAT_SCHEMA),
  resourceGroups: optional(RESOURCE_GROUPS_SCHEMA),
  witness: optional(
    object({
      redis: optional(endpoint),
      keyPrefix: optional(leaf(isString)),
      allowTakeoverWithoutWitness: optional(leaf(isBoolean)),
    }),
  ),
});

/** Read, parse and check a config file; throws ConfigError naming the file and every bad key. */
export async function loadNodeConfig(file: string): Promise<NodeConfig> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new ConfigError(abs, [{ key: '', problem: `cannot be read: ${(err as Error).message}` }]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(abs, [{ key: '', problem: `is not valid JSON: ${(err as Error).message}` }]);
  }
  return parseNodeConfig(raw, { file: abs, readSecretFile: (p) => readFile(p, 'utf8') });
}

export interface ParseOptions {
  /** Where the config came from; relative paths are resolved from its directory ("" → the current directory). */
  readonly file?: string;
  /** Reads peer.secretFile (tests pass a fake). */
  readonly readSecretFile?: (absolutePath: string) => Promise<string>;
}

/** Check a parsed config value and resolve defaults and paths. */
export async function parseNodeConfig(raw: unknown, options: ParseOptions = {}): Promise<NodeConfig> {
  const file = options.file ?? '';
  const baseDir = file === '' ? process.cwd() : path.dirname(file);
  const fail = (issues: readonly Issue[]): never => {
    throw new ConfigError(file, issues);
  };

  const shapeIssues = validate(NODE_CONFIG_SCHEMA, raw);
  if (shapeIssues.length > 0) fail(shapeIssues);
  // The shape is right from here on; the casts below only name it.
  const doc = raw as RawConfig;
  const issues = crossChecks(doc);
  if (issues.length > 0) fail(issues);

  const secret = await resolveSecret(doc.peer, baseDir, options.readSecretFile, fail);
  const layout = pairLayout(doc.nodeId, doc.peer.nodeId);
  const dataDir = path.resolve(baseDir, doc.dataDir);
  const relativeTargetPortId = doc.iscsi.relativeTargetPortId ?? layout.local.position;
  const peerRelativeTargetPortId = doc.peer.relativeTargetPortId ?? layout.peer.position;
  if (relativeTargetPortId === peerRelativeTargetPortId) {
    fail([
      {
        key: doc.iscsi.relativeTargetPortId !== undefined ? 'iscsi.relativeTargetPortId' : 'peer.relativeTargetPortId',
        problem: `${relativeTargetPortId} is the relative target port id of both nodes (they must differ)`,
      },
    ]);
  }
  const resourceGroups = resolveResourceGroups(doc.resourceGroups);
  const rgOf = (volume: string): ResourceGroupConfig | undefined => resourceGroups.find((rg) => rg.volumes.includes(volume));
  return {
    file,
    nodeId: doc.nodeId,
    clusterId: doc.clusterId,
    dataDir,
    iscsi: {
      listen: [...doc.iscsi.listen],
      portalGroupTag: doc.iscsi.portalGroupTag ?? layout.local.position,
      relativeTargetPortId,
    },
    peer: {
      nodeId: doc.peer.nodeId,
      secret,
      links: doc.peer.links.map((l) => ({ local: l.local, peer: l.peer })),
      relativeTargetPortId: peerRelativeTargetPortId,
      degradeAfterMs: doc.peer.degradeAfterMs ?? ((doc.resourceGroups ?? []).length > 0 ? 1000 : null),
      maxProtocolVersion: doc.peer.maxProtocolVersion ?? null,
    },
    volumes: doc.volumes.map((v) => ({
      id: v.id.toLowerCase(),
      name: v.name,
      iqn: v.iqn,
      sizeBytes: v.sizeBytes,
      thin: v.thin,
      blockSize: v.blockSize ?? 512,
      physicalBlockSize: v.physicalBlockSize ?? v.blockSize ?? 512,
      owner: rgOf(v.name)?.preferredNode ?? v.owner!,
      resourceGroup: rgOf(v.name)?.name ?? null,
      backing: path.resolve(baseDir, v.backing ?? path.join(dataDir, `${v.name}.img`)),
    })),
    log: { level: doc.log?.level ?? 'info' },
    status: doc.status ? { listen: doc.status.listen } : null,
    api: doc.api
      ? {
          listen: doc.api.listen,
          tokenFile: path.resolve(baseDir, doc.api.tokenFile ?? path.join(dataDir, 'api.token')),
          tls: doc.api.tls ? { cert: path.resolve(baseDir, doc.api.tls.cert), key: path.resolve(baseDir, doc.api.tls.key) } : null,
        }
      : null,
    resourceGroups,
    heartbeat: resolveHeartbeat(doc.heartbeat),
    witness: {
      redis: doc.witness?.redis ?? null,
      keyPrefix: doc.witness?.keyPrefix ?? null,
      allowTakeoverWithoutWitness: doc.witness?.allowTakeoverWithoutWitness ?? false,
    },
  };
}

interface RawConfig {
  nodeId: string;
  clusterId: string;
  dataDir: string;
  iscsi: { listen: string[]; portalGroupTag?: number; relativeTargetPortId?: number };
  peer: {
    nodeId: string;
    secret?: string;
    secretFile?: string;
    links: { local: string; peer: string }[];
    relativeTargetPortId?: number;
    degradeAfterMs?: number;
    maxProtocolVersion?: number;
  };
  volumes: {
    id: string;
    name: string;
    iqn: string;
    sizeBytes: number;
    thin: boolean;
    blockSize?: 512 | 4096;
    physicalBlockSize?: number;
    owner?: string;
    backing?: string;
  }[];
  log?: { level?: string };
  status?: { listen: string };
  api?: { listen: string; tokenFile?: string; tls?: { cert: string; key: string } };
  heartbeat?: RawHeartbeat;
  resourceGroups?: RawResourceGroup[];
  witness?: { redis?: string; keyPrefix?: string; allowTakeoverWithoutWitness?: boolean };
}

/** Rules that relate keys to each other (the schema checks each key alone). */
function crossChecks(doc: RawConfig): Issue[] {
  const issues: Issue[] = [];
  const add = (key: string, problem: string): void => {
    issues.push({ key, problem });
  };

  if (doc.peer.nodeId === doc.nodeId) add('peer.nodeId', `${quote(doc.peer.nodeId)} is this node's own id (nodeId)`);
  if ((doc.peer.secret === undefined) === (doc.peer.secretFile === undefined)) {
    add('peer', 'needs exactly one of secret and secretFile');
  } else if (doc.peer.secret !== undefined && Buffer.byteLength(doc.peer.secret) < MIN_SECRET_BYTES) {
    add('peer.secret', `is shorter than ${MIN_SECRET_BYTES} bytes`);
  }

  // Every address this node listens on must be distinct.
  const listening = new Map<string, string>();
  const listen = (key: string, value: string): void => {
    const hp = parseHostPort(value)!;
    const norm = `${hp.host}:${hp.port}`;
    const prior = listening.get(norm);
    if (prior !== undefined) add(key, `${quote(value)} is also ${prior}`);
    else listening.set(norm, key);
  };
  doc.iscsi.listen.forEach((l, i) => listen(`iscsi.listen[${i}]`, l));
  doc.peer.links.forEach((l, i) => listen(`peer.links[${i}].local`, l.local));
  if (doc.status) listen('status.listen', doc.status.listen);
  if (doc.api) listen('api.listen', doc.api.listen);
  if (doc.heartbeat?.local !== undefined) listen('heartbeat.local', doc.heartbeat.local);

  const seen = { id: new Map<string, number>(), name: new Map<string, number>(), iqn: new Map<string, number>(), backing: new Map<string, number>() };
  const unique = (kind: keyof typeof seen, value: string, i: number): void => {
    const prior = seen[kind].get(value);
    if (prior !== undefined) add(`volumes[${i}].${kind}`, `${quote(value)} is also the ${kind} of volumes[${prior}]`);
    else seen[kind].set(value, i);
  };
  doc.volumes.forEach((v, i) => {
    unique('id', v.id.toLowerCase(), i);
    unique('name', v.name, i);
    unique('iqn', v.iqn, i);
    if (v.backing !== undefined) unique('backing', v.backing, i);
    if (v.owner !== undefined && v.owner !== doc.nodeId && v.owner !== doc.peer.nodeId) {
      add(`volumes[${i}].owner`, `${quote(v.owner)} is neither this node (${quote(doc.nodeId)}) nor its peer (${quote(doc.peer.nodeId)})`);
    }
    const blockSize = v.blockSize ?? 512;
    if (v.sizeBytes % blockSize !== 0) add(`volumes[${i}].sizeBytes`, `${v.sizeBytes} is not a multiple of the ${blockSize}-byte block size`);
    if (v.physicalBlockSize !== undefined && v.physicalBlockSize < blockSize) {
      add(`volumes[${i}].physicalBlockSize`, `${v.physicalBlockSize} is smaller than the ${blockSize}-byte block size`);
    }
  });
  if (doc.witness?.redis !== undefined && doc.witness.allowTakeoverWithoutWitness === true) {
    add('witness.allowTakeoverWithoutWitness', 'applies only without a witness (remove it or witness.redis)');
  }
  issues.push(...resourceGroupIssues(doc.resourceGroups ?? [], doc.heartbeat, { nodeId: doc.nodeId, peerNodeId: doc.peer.nodeId, volumes: doc.volumes }));
  return issues;
}

async function resolveSecret(
  peer: RawConfig['peer'],
  baseDir: string,
  read: ((p: string) => Promise<string>) | undefined,
  fail: (issues: readonly Issue[]) => never,
): Promise<string> {
  if (peer.secret !== undefined) return peer.secret;
  const secretPath = path.resolve(baseDir, peer.secretFile!);
  let text: string;
  try {
    text = await (read ?? ((p: string) => readFile(p, 'utf8')))(secretPath);
  } catch (err) {
    return fail([{ key: 'peer.secretFile', problem: `${quote(peer.secretFile)} cannot be read: ${(err as Error).message}` }]);
  }
  // A trailing newline (echo > file) is not part of the secret.
  const secret = text.replace(/\r?\n$/, '');
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    fail([{ key: 'peer.secretFile', problem: `${quote(peer.secretFile)} holds a secret shorter than ${MIN_SECRET_BYTES} bytes` }]);
  }
  return secret;
}

/** TWINSAN_MAX_PROTOCOL_VERSION: peer.maxProtocolVersion for one run (rolling-upgrade tests). */
export const MAX_PROTOCOL_VERSION_ENV = 'TWINSAN_MAX_PROTOCOL_VERSION';

/** The config with what the environment overrides; throws ConfigError naming a bad variable. */
export function applyEnvOverrides(config: NodeConfig, env: Readonly<Record<string, string | undefined>>): NodeConfig {
  const raw = env[MAX_PROTOCOL_VERSION_ENV];
  if (raw === undefined || raw === '') return config;
  const max = Number(raw);
  if (!/^\d+$/.test(raw) || max < PROTOCOL_VERSIONS.min || max > PROTOCOL_VERSIONS.max) {
    throw new ConfigError(config.file, [
      { key: '', problem: `${MAX_PROTOCOL_VERSION_ENV}=${JSON.stringify(raw)} is not a protocol version in ${PROTOCOL_VERSIONS.min}..${PROTOCOL_VERSIONS.max}` },
    ]);
  }
  return { ...config, peer: { ...config.peer, maxProtocolVersion: max } };
}

/** For messages and logs: the config without its secret. */
export function redactConfig(config: NodeConfig): unknown {
  return { ...config, peer: { ...config.peer, secret: '[redacted]' } };
}
