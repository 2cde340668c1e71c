/**
 * The e2e tests' side of the namespace helpers (src/cli/lab/netns.ts holds
 * the helpers themselves, shared with `twinsan lab`): test namespaces are
 * named `tsan-<run id>-<role>`, the run id embedding the creating process's
 * pid, so removeStaleNamespaces() deletes the leftovers of crashed runs
 * (pid no longer alive) and never a namespace of a run still going.
 */
import { randomBytes } from 'node:crypto';
import { Namespace as LabNamespace, deleteNamespace, listNamespaces, processAlive } from '../../../src/cli/lab/netns';

export {
  deleteNamespace,
  exec,
  labEnv,
  listNamespaces,
  namespacePids,
  processAlive,
  requireRoot,
  toolExists,
} from '../../../src/cli/lab/netns';
export type { ExecOptions, ExecResult, LabProcess } from '../../../src/cli/lab/netns';

export const LAB_PREFIX = 'tsan-';
const NAME_PATTERN = /^tsan-(\d+)x[0-9a-f]+-/;

export type Namespace = LabNamespace;
/** Namespace.create for tests: only names with the test prefix (so stale cleanup can find them), deleted at exit. */
export const Namespace = {
  async create(name: string): Promise<LabNamespace> {
    if (!name.startsWith(LAB_PREFIX)) throw new Error(`lab namespace names start with ${LAB_PREFIX}: ${name}`);
    return LabNamespace.create(name);
  },
};

/** A fresh id for one test run: the pid (for stale detection) and random bits. */
export function newRunId(): string {
  return `${process.pid}x${randomBytes(2).toString('hex')}`;
}

/**
 * Deletes test namespaces whose creating process is gone (crashed runs),
 * and nothing else. Resolves with the names deleted.
 */
export async function removeStaleNamespaces(): Promise<string[]> {
  const stale: string[] = [];
  for (const name of await listNamespaces()) {
    const match = NAME_PATTERN.exec(name);
    if (!match || processAlive(Number(match[1]))) continue;
    await deleteNamespace(name);
    stale.push(name);
  }
  return stale;
}
