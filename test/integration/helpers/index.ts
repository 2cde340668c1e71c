/** Integration-test helpers: real initiators (libiscsi, qemu) against real targets (twinsan, tgt). */
export * from './run';
export * from './tools';
export * from './targets';
export * from './libiscsi';
export * from './qemu';
export * from './disk-image';
export { track, release, releaseAll } from './cleanup';
export { canConnect as canConnectTo, freePort } from '../../../scripts/lib/ports.mjs';
export type { Disposable } from './cleanup';

export const KiB = 1024;
export const MiB = 1024 * 1024;
