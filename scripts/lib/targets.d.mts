// Types for targets.mjs.

import type { Daemon } from './proc.mjs';

/** dist/cli/bin.js of this repository, or $TWINSAN_BIN. */
export declare const TWINSAN_BIN: string;

export interface ChapCredentials {
  readonly user: string;
  readonly secret: string;
}

export interface StopOptions {
  /** twinsan only: the signal to send (default SIGTERM). */
  readonly signal?: NodeJS.Signals;
  /** How long to wait before SIGKILL. */
  readonly timeoutMs?: number;
}

export interface IscsiTargetHandle {
  readonly kind: 'twinsan' | 'tgt';
  readonly host: string;
  readonly port: number;
  readonly iqn: string;
  readonly lun: number;
  /** iscsi://127.0.0.1:PORT/IQN/LUN, no credentials. */
  readonly url: string;
  /** iscsi://127.0.0.1:PORT, for discovery (iscsi-ls). */
  readonly portalUrl: string;
  readonly backingPath: string;
  /** The temp dir this launch made and will remove, if any. */
  readonly dir: string | undefined;
  readonly pid: number | undefined;
  readonly daemon: Daemon;
  /** The LUN URL with libiscsi's iscsi://user%secret@host:port/iqn/lun form. */
  urlWithChap(user: string, secret: string): string;
  stderr(): string;
  stdout(): string;
  /** Stop and wait; resolves to the exit status. Idempotent. */
  stop(options?: StopOptions): Promise<number>;
  /** Stop if running and remove the temp dir this launch made. */
  dispose(): Promise<void>;
  /** SIGKILL and remove files synchronously (process-exit hooks). */
  disposeSync(): void;
}

export interface LaunchTwinsanOptions {
  readonly size: number;
  readonly thin?: boolean;
  readonly chap?: ChapCredentials;
  readonly iqn?: string;
  /** Reuse this backing file; otherwise a temp dir and file are made. */
  readonly backingPath?: string;
  /** Pass --create; default: true exactly when no backingPath is given. */
  readonly create?: boolean;
  readonly readyTimeoutMs?: number;
  readonly stopTimeoutMs?: number;
  readonly bin?: string;
  readonly extraArgs?: readonly string[];
}

export interface LaunchTgtOptions {
  /** Size of the backing file made when no backingPath is given. */
  readonly size: number;
  readonly chap?: ChapCredentials;
  readonly iqn?: string;
  readonly backingPath?: string;
  readonly readyTimeoutMs?: number;
  readonly stopTimeoutMs?: number;
}

export declare function launchTwinsan(options: LaunchTwinsanOptions): Promise<IscsiTargetHandle>;
export declare function launchTgt(options: LaunchTgtOptions): Promise<IscsiTargetHandle>;
