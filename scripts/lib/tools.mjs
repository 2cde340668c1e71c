// The Debian tools the integration tests and the conformance script drive,
// and a check that they are installed. Types in tools.d.mts.

import { accessSync, constants as fsConstants, readdirSync } from 'node:fs';
import path from 'node:path';

/** Where the Debian packages put each tool the integration tests use. */
export const TOOL_PACKAGES = {
  'iscsi-inq': 'libiscsi-bin',
  'iscsi-ls': 'libiscsi-bin',
  'iscsi-readcapacity16': 'libiscsi-bin',
  'iscsi-test-cu': 'libiscsi-bin',
  'qemu-img': 'qemu-utils',
  'qemu-io': 'qemu-utils',
  tgtd: 'tgt',
  tgtadm: 'tgt',
  strace: 'strace',
};

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Absolute path of an executable on PATH (or in an sbin directory), else undefined. */
export function findTool(name) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SBIN_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when qemu's iSCSI block driver (package qemu-block-extra) is installed. */
export function hasQemuIscsiDriver() {
  for (const base of ['/usr/lib', '/usr/lib64']) {
    let entries;
    try {
      entries = readdirSync(base);
    } catch {
      continue;
    }
    for (const sub of ['qemu', ...entries.map((e) => path.join(e, 'qemu'))]) {
      try {
        accessSync(path.join(base, sub, 'block-iscsi.so'), fsConstants.R_OK);
        return true;
      } catch {
        // not here
      }
    }
  }
  return false;
}

export const INSTALL_HINT =
  'Run the install step of .ci/run (as root: apt-get install -y --no-install-recommends ' +
  'libiscsi-bin qemu-utils qemu-block-extra tgt strace).';

/**
 * Throw unless every named tool is installed (and, when qemu-io or qemu-img is
 * named, qemu's iSCSI driver too). The error names the missing packages.
 */
export function requireTools(names) {
  const missing = names.filter((n) => findTool(n) === undefined).map((n) => `${n} (package ${TOOL_PACKAGES[n] ?? '?'})`);
  if (names.some((n) => n.startsWith('qemu-')) && !hasQemuIscsiDriver()) {
    missing.push('block-iscsi.so (package qemu-block-extra)');
  }
  if (missing.length > 0) throw new Error(`Missing integration-test tools: ${missing.join(', ')}. ${INSTALL_HINT}`);
}
