/**
 * JSON schemas of the API: request bodies, path and query parameters, and
 * the response shapes of src/resource-groups/control.ts. Shared shapes are
 * registered with an $id (they become OpenAPI components) and referenced
 * as "<Id>#". Requests are strict (additionalProperties: false, no type
 * coercion); a `description` on a pattern or format is what a violation
 * message says the value must be.
 */

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const IFNAME_PATTERN = '^(?!\\.\\.?$)[^\\s/:]{1,15}$';
/** iqn.yyyy-mm.reversed.domain[:anything], eui.<16 hex>, naa.<16 or 32 hex>. */
const IQN_PATTERN = '^(iqn\\.[0-9]{4}-[0-9]{2}\\.[a-z0-9][a-z0-9.-]*(:[^\\s]+)?|eui\\.[0-9A-Fa-f]{16}|naa\\.([0-9A-Fa-f]{16}|[0-9A-Fa-f]{32}))$';

const name = (what: string) => ({
  type: 'string',
  pattern: NAME_PATTERN,
  description: `a ${what} name (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -)`,
});
const iqn = { type: 'string', maxLength: 223, pattern: IQN_PATTERN, description: 'an iSCSI name (iqn.yyyy-mm.domain[:id], eui.<16 hex> or naa.<hex>)' };
const nullable = (type: string) => ({ type: [type, 'null'] });
const count = { type: 'integer', minimum: 0 };
const timestamp = { type: 'string', format: 'date-time' };

/* ------------------------------ responses ------------------------------ */

export const NodeSchema = {
  $id: 'Node',
  type: 'object',
  required: ['id', 'local', 'state', 'api', 'release', 'protocol', 'maintenance', 'owns'],
  properties: {
    id: { type: 'string' },
    local: { type: 'boolean', description: 'true for the node answering' },
    state: { type: 'string', enum: ['up', 'down', 'maintenance', 'evacuating', 'unknown'] },
    api: { ...nullable('string'), description: "the node's API base URL as its peer reaches it" },
    release: nullable('string'),
    protocol: {
      type: ['object', 'null'],
      required: ['min', 'max', 'negotiated'],
      properties: { min: { type: 'integer' }, max: { type: 'integer' }, negotiated: nullable('integer') },
    },
    maintenance: { type: 'boolean' },
    owns: { type: 'array', items: { type: 'string' }, description: 'resource groups the node owns now' },
  },
} as const;

export const PairSchema = {
  $id: 'Pair',
  type: 'object',
  required: ['state', 'clusterId', 'local', 'peer', 'configVersion', 'peerConfigVersion', 'links'],
  properties: {
    state: { type: 'string', enum: ['unpaired', 'paired', 'peer-down'] },
    clusterId: { type: 'string' },
    local: { $ref: 'Node#' },
    peer: { anyOf: [{ $ref: 'Node#' }, { type: 'null' }] },
    configVersion: count,
    peerConfigVersion: nullable('integer'),
    links: {
      type: 'array',
      items: {
        type: 'object',
        required: ['local', 'peer', 'up'],
        properties: { local: { type: 'string' }, peer: { type: 'string' }, up: { type: 'boolean' } },
      },
    },
  },
} as const;

export const MirrorSchema = {
  $id: 'Mirror',
  type: 'object',
  required: ['state', 'resyncProgress', 'outOfSyncBytes', 'syncSource'],
  properties: {
    state: { type: 'string', enum: ['in-sync', 'resyncing', 'degraded', 'split-brain', 'unknown'] },
    resyncProgress: { ...nullable('number'), description: '0..1 while resyncing, else null' },
    outOfSyncBytes: count,
    syncSource: nullable('string'),
  },
} as const;

export const VolumeSchema = {
  $id: 'Volume',
  type: 'object',
  required: ['name', 'id', 'iqn', 'sizeBytes', 'thin', 'blockSize', 'resourceGroup', 'owner', 'mirror', 'sessions', 'urls'],
  properties: {
    name: { type: 'string' },
    id: { type: 'string', description: 'UUID, the root of the LU identity (the same on both nodes)' },
    iqn: { type: 'string' },
    sizeBytes: count,
    thin: { type: 'boolean' },
    blockSize: { type: 'integer', enum: [512, 4096] },
    resourceGroup: { ...nullable('string'), description: 'null: a volume in no resource group, served by its owner on its iSCSI portals' },
    owner: { ...nullable('string'), description: 'the node serving the volume now' },
    mirror: { $ref: 'Mirror#' },
    sessions: { ...count, description: 'initiators logged in now' },
    urls: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const AliasIpSchema = {
  $id: 'AliasIp',
  type: 'object',
  additionalProperties: false,
  required: ['address', 'prefix', 'interface'],
  properties: {
    address: { type: 'string', format: 'ip-address', description: 'an IPv4 or IPv6 address' },
    prefix: { type: 'integer', minimum: 0, maximum: 128 },
    interface: { type: 'string', pattern: IFNAME_PATTERN, description: 'an interface name (1-15 characters, no / : or space)' },
  },
} as const;

export const ResourceGroupSchema = {
  $id: 'ResourceGroup',
  type: 'object',
  required: ['name', 'owner', 'preferredNode', 'aliasIps', 'volumes', 'state', 'failback'],
  properties: {
    name: { type: 'string' },
    owner: nullable('string'),
    preferredNode: { type: 'string' },
    aliasIps: { type: 'array', items: { $ref: 'AliasIp#' } },
    volumes: { type: 'array', items: { type: 'string' } },
    state: { type: 'string', enum: ['serving', 'starting', 'stopping', 'moving', 'stopped', 'failed', 'unowned'] },
    failback: { type: 'string', enum: ['auto', 'manual'] },
  },
} as const;

const chapInfo = {
  type: ['object', 'null'],
  required: ['user', 'secretSet'],
  properties: { user: { type: 'string' }, secretSet: { type: 'boolean' } },
} as const;

/** Secrets are write-only: the response shape has no place for one, so the serializer drops any. */
export const AccessSchema = {
  $id: 'Access',
  type: 'object',
  required: ['volume', 'allowedInitiators', 'chap', 'mutualChap'],
  properties: {
    volume: { type: 'string' },
    allowedInitiators: { type: ['array', 'null'], items: { type: 'string' }, description: 'null: any initiator' },
    chap: chapInfo,
    mutualChap: chapInfo,
  },
} as const;

export const SessionSchema = {
  $id: 'Session',
  type: 'object',
  required: ['node', 'initiator', 'target', 'volume', 'portal', 'remote', 'connections', 'since'],
  properties: {
    node: { type: 'string' },
    initiator: { type: 'string' },
    target: { type: 'string' },
    volume: { type: 'string' },
    portal: { type: 'string' },
    remote: { type: 'string' },
    connections: count,
    since: timestamp,
  },
} as const;

export const JobSchema = {
  $id: 'Job',
  type: 'object',
  required: ['id', 'kind', 'subject', 'state', 'progress', 'startedAt', 'finishedAt', 'error', 'result'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['verify', 'evacuate', 'failback', 'move', 'resync'] },
    subject: { type: 'string' },
    state: { type: 'string', enum: ['running', 'done', 'failed'] },
    progress: { type: 'number', minimum: 0, maximum: 1 },
    startedAt: timestamp,
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    error: nullable('string'),
    result: { type: ['object', 'null'], additionalProperties: true },
  },
} as const;

export const EventSchema = {
  $id: 'Event',
  type: 'object',
  required: ['seq', 'at', 'node', 'kind', 'message', 'subject'],
  properties: {
    seq: count,
    at: timestamp,
    node: { type: 'string' },
    kind: { type: 'string' },
    message: { type: 'string' },
    subject: nullable('string'),
  },
} as const;

export const ErrorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['statusCode', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    field: { type: 'string', description: 'the request field at fault ("sizeBytes", "aliasIps[0].address")' },
  },
} as const;

export const HealthSchema = {
  $id: 'Health',
  type: 'object',
  required: ['status', 'node'],
  properties: { status: { type: 'string', enum: ['ok'] }, node: { type: 'string' } },
} as const;

export const TokenSchema = {
  $id: 'Token',
  type: 'object',
  required: ['token'],
  properties: { token: { type: 'string', description: 'the new bearer token, shown this once' } },
} as const;

/** Registered on the app in this order (a schema's references come before it). */
export const SHARED_SCHEMAS = [
  NodeSchema,
  PairSchema,
  MirrorSchema,
  VolumeSchema,
  AliasIpSchema,
  ResourceGroupSchema,
  AccessSchema,
  SessionSchema,
  JobSchema,
  EventSchema,
  ErrorSchema,
  HealthSchema,
  TokenSchema,
] as const;

export const ref = (id: (typeof SHARED_SCHEMAS)[number]['$id']) => ({ $ref: `${id}#` });
export const listOf = (id: (typeof SHARED_SCHEMAS)[number]['$id']) => ({ type: 'array', items: ref(id) });

/* ------------------------------ requests ------------------------------ */

export const nameParams = (what: string) => ({
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: name(what) },
});

export const idParams = (what: string) => ({
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$', description: `a ${what} id` } },
});

export const createPairBody = {
  type: 'object',
  additionalProperties: false,
  required: ['peerApi'],
  properties: {
    peerApi: { type: 'string', maxLength: 2048, pattern: '^https?://[^\\s/?#]+(/[^\\s]*)?$', description: "the peer's API base URL (http(s)://host:port)" },
  },
} as const;

const sizeBytes = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER };

export const createVolumeBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'sizeBytes', 'thin'],
  properties: {
    name: name('volume'),
    sizeBytes,
    thin: { type: 'boolean' },
    resourceGroup: { ...name('resource group'), description: 'the group that serves the volume on its alias IPs; leave out for a volume served by `owner`' },
    owner: { ...name('node id'), description: 'without resourceGroup: the node that serves the volume on its iSCSI portals' },
    blockSize: { type: 'integer', enum: [512, 4096] },
    iqn,
  },
} as const;

export const updateVolumeBody = {
  type: 'object',
  additionalProperties: false,
  required: ['sizeBytes'],
  properties: { sizeBytes: { ...sizeBytes, description: 'the new size (grow only); initiators get CAPACITY DATA HAS CHANGED' } },
} as const;

export const deleteVolumeQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { force: { type: 'string', enum: ['true', 'false'], description: 'delete even while initiators are logged in' } },
} as const;

const chapCredentials = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['user', 'secret'],
  properties: {
    user: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^\\s]+$', description: 'a CHAP user name (no spaces)' },
    secret: { type: 'string', minLength: 12, maxLength: 255, writeOnly: true, description: 'write-only; 12-16 characters for Windows and ESXi initiators' },
  },
} as const;

export const updateAccessBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    allowedInitiators: { type: ['array', 'null'], maxItems: 256, uniqueItems: true, items: iqn, description: 'null: any initiator' },
    chap: { ...chapCredentials, description: 'null removes CHAP (and mutual CHAP)' },
    mutualChap: chapCredentials,
  },
} as const;

/** Actions that take no parameters: no body, or an empty JSON object. */
export const emptyBody = {
  type: 'object',
  additionalProperties: false,
  description: 'no body, or {}',
} as const;

export const verifyBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    repair: { type: 'boolean', description: "copy the owner's blocks over differing ones" },
    algorithm: { type: 'string', enum: ['sha256', 'crc32c'] },
  },
} as const;

const aliasIps = { type: 'array', minItems: 1, maxItems: 16, items: ref('AliasIp') };
const failback = { type: 'string', enum: ['auto', 'manual'] };

export const createResourceGroupBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'preferredNode', 'aliasIps'],
  properties: { name: name('resource group'), preferredNode: name('node'), aliasIps, failback },
} as const;

export const updateResourceGroupBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { preferredNode: name('node'), aliasIps, failback },
} as const;

export const eventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'a sequence number (events after it are answered)' },
    limit: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$', description: 'a count from 1 to 1000' },
  },
} as const;

export const streamQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { after: eventsQuery.properties.after },
} as const;
