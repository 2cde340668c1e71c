/**
 * The two files of a lab directory:
 *
 * - lab.json, the lab's description for people and tests, written once the
 *   lab is up (and rewritten by start-node with the new pid);
 * - lab-state.json, what `lab up` has made so far (namespaces, files), written
 *   before each step, so that `lab down` removes exactly that, also after
 *   a partial or interrupted up.
 *
 * Both are replaced atomically (write to a temporary file, rename).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LabNodeId, checkPrefix, isLabNodeId, namespacesOf } from './plan';

export const LAB_FILE = 'lab.json';
export const STATE_FILE = 'lab-state.json';

export interface LabVolumeEntry {
  readonly name: string;
  /** Absolute path of the node's copy. */
  readonly backing: string;
}

export interface LabNodeEntry {
  readonly id: LabNodeId;
  readonly netns: string;
  /** The node process (null after start-node found it dead and could not start it). */
  readonly pid: number;
  /** Base URL of the node's REST API (/api/v1/...), on its front-end address: reachable from the client namespace and the peer. */
  readonly api: string;
  /** Bearer token for `api`; null when the API takes none. */
  readonly token: string | null;
  /** The node's api.tokenFile, holding `token` (mode 0600), for `twinsan --token-file`. */
  readonly tokenFile: string;
  /** Base URL of the node's status endpoint (GET /status, no token), reachable inside its namespace only (`ip netns exec NETNS ...`). */
  readonly status: string;
  /** MAC of the node's front-end interface (eth1), lower case. */
  readonly frontMac: string;
  readonly frontIp: string;
  readonly config: string;
  readonly log: string;
  readonly volumes: readonly LabVolumeEntry[];
}

export interface LabTargetEntry {
  readonly iqn: string;
  /** iscsi://ALIAS:3260/IQN/0 */
  readonly url: string;
}

export interface LabGroupEntry {
  readonly name: string;
  readonly preferredNode: LabNodeId;
  readonly aliasIps: readonly string[];
  readonly volumes: readonly string[];
  readonly targets: readonly LabTargetEntry[];
}

export interface LabFile {
  readonly prefix: string;
  readonly client: { readonly netns: string; readonly frontIp: string };
  readonly witness: { readonly url: string; readonly pid: number; readonly netns: string; readonly log: string };
  readonly nodes: readonly LabNodeEntry[];
  readonly resourceGroups: readonly LabGroupEntry[];
}

export interface LabState {
  readonly prefix: string;
  /** `lab up` created the directory (down removes it when empty). */
  readonly dirCreated: boolean;
  /** Namespaces made so far. */
  readonly namespaces: readonly string[];
  /** Files and directories made so far, relative to the lab directory. */
  readonly files: readonly string[];
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** Reads DIR/lab-state.json; null when there is none (no lab, or already down). */
export async function readState(dir: string): Promise<LabState | null> {
  const file = path.join(dir, STATE_FILE);
  const raw = await readJson(file, true);
  if (raw === null) return null;
  const s = raw as Partial<LabState>;
  if (
    typeof s.prefix !== 'string' ||
    typeof s.dirCreated !== 'boolean' ||
    !Array.isArray(s.namespaces) ||
    !s.namespaces.every((n) => typeof n === 'string') ||
    !Array.isArray(s.files) ||
    !s.files.every((f) => typeof f === 'string' && !path.isAbsolute(f) && !f.split(/[\\/]/).includes('..'))
  ) {
    throw new Error(`${file}: not a lab state file (prefix, dirCreated, namespaces, files)`);
  }
  // down deletes what is listed: only the namespaces a lab with this prefix makes.
  const own = Object.values(namespacesOf(s.prefix));
  const foreign = s.namespaces.filter((n) => !own.includes(n));
  if (checkPrefix(s.prefix) !== null || foreign.length > 0) {
    throw new Error(`${file}: not a lab state file (namespaces ${foreign.join(', ')} are not those of a lab with prefix "${s.prefix}")`);
  }
  return s as LabState;
}

/** Reads DIR/lab.json, checking the parts the CLI relies on. */
export async function readLabFile(dir: string): Promise<LabFile> {
  const file = path.join(dir, LAB_FILE);
  const raw = (await readJson(file, false)) as Partial<LabFile>;
  const bad = (what: string): never => {
    throw new Error(`${file}: not a lab file (${what})`);
  };
  if (typeof raw !== 'object' || raw === null) bad('not an object');
  if (typeof raw.prefix !== 'string') bad('prefix');
  if (!Array.isArray(raw.nodes)) bad('nodes');
  for (const n of raw.nodes!) {
    if (typeof n !== 'object' || n === null || typeof n.id !== 'string' || !isLabNodeId(n.id)) bad('nodes[].id');
    if (typeof n.netns !== 'string' || typeof n.config !== 'string' || typeof n.log !== 'string' || typeof n.api !== 'string' || typeof n.status !== 'string') bad(`node ${n.id}`);
  }
  return raw as LabFile;
}

async function readJson(file: string, missingIsNull: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (missingIsNull && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (is the lab up? twinsan lab up --dir DIR)' : (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
}
