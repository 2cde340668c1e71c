/**
 * Preconditions of the integration tests: the Debian tools and root.
 * These throw (so the test fails with a way out) rather than skip.
 */
import { INSTALL_HINT, requireTools as requireToolsImpl } from '../../../scripts/lib/tools.mjs';

export { findTool, hasQemuIscsiDriver, INSTALL_HINT } from '../../../scripts/lib/tools.mjs';

/** The command-line tools each kind of integration test drives. */
export const INITIATOR_TOOLS = ['iscsi-inq', 'iscsi-ls', 'iscsi-readcapacity16', 'qemu-img', 'qemu-io'] as const;
export const TGT_TOOLS = ['tgtd', 'tgtadm'] as const;

/** Throw unless every named tool is installed; the message says what to install. */
export function requireTools(names: readonly string[]): void {
  requireToolsImpl(names);
}

/** Throw unless running as root (tgtd keeps its sockets in /var/run/tgtd). */
export function requireRoot(why: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${why} needs root (CI runs as root). ${INSTALL_HINT}`);
}
