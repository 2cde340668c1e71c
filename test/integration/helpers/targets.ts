/**
 * Targets for integration tests, each on its own free loopback port (never
 * 3260), each cleaned up even when a test fails (see cleanup.ts).
 *
 *   const t = await startTarget({ size: 64 * MiB });   // twinsan, LUN 0
 *   const g = await startTgt({ size: 64 * MiB });      // Debian tgtd, LUN 1
 *   t.url  // iscsi://127.0.0.1:PORT/IQN/0
 *   await t.stop()  // SIGTERM, bounded wait, SIGKILL fallback; exit status
 */
import { launchTgt, launchTwinsan } from '../../../scripts/lib/targets.mjs';
import type { ChapCredentials, IscsiTargetHandle } from '../../../scripts/lib/targets.mjs';
import { track } from './cleanup';

export type { ChapCredentials, IscsiTargetHandle, StopOptions } from '../../../scripts/lib/targets.mjs';

export interface StartTargetOptions {
  readonly size: number;
  readonly thin?: boolean;
  /** { user, secret }, or the CLI's "USER:SECRET" form. */
  readonly chap?: ChapCredentials | string;
  readonly iqn?: string;
  /** Reuse an existing backing file (e.g. a restart); no --create unless `create`. */
  readonly backingPath?: string;
  readonly create?: boolean;
  readonly readyTimeoutMs?: number;
}

/** Spawn `node dist/cli/bin.js target ...` and wait until its port accepts connections. */
export async function startTarget(options: StartTargetOptions): Promise<IscsiTargetHandle> {
  const handle = await launchTwinsan({ ...options, chap: parseChap(options.chap) });
  return track({ ...handle, label: `twinsan target on port ${handle.port}` });
}

export interface StartTgtOptions {
  readonly size: number;
  readonly chap?: ChapCredentials | string;
  readonly iqn?: string;
  readonly backingPath?: string;
  readonly readyTimeoutMs?: number;
}

/** Start Debian's tgtd in the foreground with the backing file as LUN 1. Needs root. */
export async function startTgt(options: StartTgtOptions): Promise<IscsiTargetHandle> {
  const handle = await launchTgt({ ...options, chap: parseChap(options.chap) });
  return track({ ...handle, label: `tgtd on port ${handle.port}` });
}

function parseChap(chap: ChapCredentials | string | undefined): ChapCredentials | undefined {
  if (typeof chap !== 'string') return chap;
  const colon = chap.indexOf(':');
  if (colon <= 0) throw new Error(`CHAP must be USER:SECRET, got ${JSON.stringify(chap)}`);
  return { user: chap.slice(0, colon), secret: chap.slice(colon + 1) };
}
