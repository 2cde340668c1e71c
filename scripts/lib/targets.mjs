// Launch an iSCSI target for a test or a benchmark: twinsan's own CLI
// (`twinsan target`, LUN 0) or Debian's tgtd (LUN 1), each on a free
// loopback port with a temp backing file, each with a bounded start and a
// bounded stop. Types in targets.d.mts.

import { promises as fsp, rmSync, accessSync, constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOOPBACK, freePort, waitForPort } from './ports.mjs';
import { describeRun, run, sleep, spawnDaemon } from './proc.mjs';
import { findTool, requireTools } from './tools.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TWINSAN_BIN = process.env.TWINSAN_BIN ?? path.join(REPO_ROOT, 'dist', 'cli', 'bin.js');

async function makeTempDir(prefix) {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

function removeDirSync(dir) {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** An IQN unique to this process and port. */
function defaultIqn(kind, port) {
  return `iqn.2025-01.org.twinsan.test:${kind}-${process.pid}-${port}`;
}

function lunUrl({ host, port, iqn, lun, chap }) {
  const auth = chap ? `${chap.user}%${chap.secret}@` : '';
  return `iscsi://${auth}${host}:${port}/${iqn}/${lun}`;
}

/** libiscsi splits user%secret at '%' and the authority at '@' / '/'. */
function assertUrlSafeChap(chap) {
  if (!chap) return;
  for (const [k, v] of Object.entries(chap)) {
    if (!v || /[%@/:\s]/.test(v)) throw new Error(`CHAP ${k} ${JSON.stringify(v)} cannot go in a libiscsi URL (no % @ / : or spaces)`);
  }
}

function makeHandle({ kind, host, port, iqn, lun, backingPath, dir, daemon, stopImpl, killSyncImpl, cleanupSyncExtra }) {
  let stopping;
  const handle = {
    kind,
    host,
    port,
    iqn,
    lun,
    url: lunUrl({ host, port, iqn, lun }),
    portalUrl: `iscsi://${host}:${port}`,
    backingPath,
    dir,
    pid: daemon.pid,
    daemon,
    urlWithChap: (user, secret) => lunUrl({ host, port, iqn, lun, chap: { user, secret } }),
    stderr: () => daemon.stderr(),
    stdout: () => daemon.stdout(),
    stop(options) {
      stopping ??= stopImpl(options);
      return stopping;
    },
    /** Stop (if still running) and remove the temp dir this launch created. */
    async dispose() {
      await handle.stop();
      cleanupSyncExtra?.();
      removeDirSync(dir);
    },
    /** For process-exit hooks: SIGKILL and remove files, synchronously. */
    disposeSync() {
      killSyncImpl();
      cleanupSyncExtra?.();
      removeDirSync(dir);
    },
  };
  return handle;
}

/**
 * Launch `twinsan target` on a free loopback port and wait until it accepts
 * connections. Without `backingPath` a temp dir is made and the backing file
 * is created there (--create); with it, the file is reused (no --create
 * unless `create` says so) and no dir is owned.
 */
export async function launchTwinsan(options) {
  const { size, thin = false, chap, readyTimeoutMs = 20_000, stopTimeoutMs = 10_000, bin = TWINSAN_BIN, extraArgs = [] } = options;
  if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`size must be a positive integer, got ${size}`);
  assertUrlSafeChap(chap);
  try {
    accessSync(bin, fsConstants.R_OK);
  } catch {
    throw new Error(`twinsan CLI not found at ${bin}: build it first (npm run build:ts, or npm test which runs tsc)`);
  }
  const dir = options.backingPath ? undefined : await makeTempDir('twinsan-target-');
  const backingPath = options.backingPath ?? path.join(dir, 'volume.img');
  const create = options.create ?? options.backingPath === undefined;
  const host = LOOPBACK;

  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort(host);
    const iqn = options.iqn ?? defaultIqn('twinsan', port);
    const args = [bin, 'target', '--listen', `${host}:${port}`, '--iqn', iqn, '--backing', backingPath, '--size', String(size)];
    if (create) args.push('--create');
    if (thin) args.push('--thin');
    if (chap) args.push('--chap', `${chap.user}:${chap.secret}`);
    args.push(...extraArgs);
    const daemon = spawnDaemon(process.execPath, args, { label: 'twinsan target' });
    try {
      await waitForPort(port, { host, timeoutMs: readyTimeoutMs, check: () => daemon.assertRunning(`before listening on ${host}:${port}`) });
    } catch (e) {
      // assertRunning's message already carries stderr; a timeout's does not.
      const exitedEarly = daemon.status() !== undefined;
      await daemon.stop({ signal: 'SIGKILL', timeoutMs: 1_000 });
      lastError = exitedEarly ? e : new Error(`${e.message}\n--- twinsan stderr ---\n${daemon.stderr().slice(-8000)}`);
      if (/EADDRINUSE|address already in use/i.test(daemon.stderr())) continue; // lost the port race: try another
      break;
    }
    return makeHandle({
      kind: 'twinsan',
      host,
      port,
      iqn,
      lun: 0,
      backingPath,
      dir,
      daemon,
      stopImpl: (o) => daemon.stop({ signal: o?.signal ?? 'SIGTERM', timeoutMs: o?.timeoutMs ?? stopTimeoutMs }),
      killSyncImpl: () => daemon.killSync(),
    });
  }
  removeDirSync(dir);
  throw lastError;
}

/**
 * tgtd's management channel is a unix socket /var/run/tgtd/socket.N chosen
 * with -C N, where N must be 0..32767 (0 is the default, used by a tgt
 * service). Derive N from the iSCSI port: ports that are free at the same
 * time are distinct and the ephemeral range (32768..60999) is narrower than
 * 31744, so instances of ours never share N.
 */
function tgtControlPort(port) {
  return 1024 + (port % 31744);
}

/**
 * Launch Debian's tgtd in the foreground on a free loopback port, with its
 * own management socket (see tgtControlPort), then create target tid 1 with
 * the backing file as LUN 1 (LUN 0 is tgt's controller) and bind all
 * initiators. Needs root (tgtd keeps its socket in /var/run/tgtd).
 */
export async function launchTgt(options) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launchTgtOnce(options);
    } catch (e) {
      lastError = e;
      // Retry only when tgtd died at start (port or control socket taken).
      if (!/tgtd exited/.test(e.message)) break;
    }
  }
  throw lastError;
}

async function launchTgtOnce(options) {
  const { size, chap, readyTimeoutMs = 15_000, stopTimeoutMs = 10_000 } = options;
  if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`size must be a positive integer, got ${size}`);
  assertUrlSafeChap(chap);
  requireTools(['tgtd', 'tgtadm']);
  const tgtd = findTool('tgtd');
  const tgtadm = findTool('tgtadm');
  const dir = options.backingPath ? undefined : await makeTempDir('twinsan-tgt-');
  const backingPath = options.backingPath ?? path.join(dir, 'volume.img');
  if (!options.backingPath) {
    const fh = await fsp.open(backingPath, 'wx');
    await fh.truncate(size);
    await fh.close();
  }
  const host = LOOPBACK;
  const port = await freePort(host);
  const controlPort = tgtControlPort(port);
  const iqn = options.iqn ?? defaultIqn('tgt', port);
  const socketFiles = [`/var/run/tgtd/socket.${controlPort}`, `/var/run/tgtd/socket.${controlPort}.lock`];
  // Only once our tgtd has answered on the socket is it ours to remove.
  let ownsSocket = false;
  const removeSocketFiles = () => ownsSocket && socketFiles.forEach((f) => rmSync(f, { force: true }));

  const daemon = spawnDaemon(tgtd, ['-f', '-C', String(controlPort), '--iscsi', `portal=${host}:${port}`], { label: 'tgtd' });
  const adm = async (args, timeoutMs = 10_000) => {
    const r = await run(tgtadm, ['-C', String(controlPort), ...args], { timeoutMs });
    if (r.code !== 0) throw new Error(describeRun(`tgtadm ${args.join(' ')}`, r));
    return r;
  };
  const stopTgt = async ({ timeoutMs = stopTimeoutMs } = {}) => {
    if (daemon.status() === undefined) {
      // tgtd ignores SIGTERM while it has targets; the documented shutdown is
      // offline, remove targets, then delete the system.
      const quiet = async (args) => run(tgtadm, ['-C', String(controlPort), ...args], { timeoutMs: 5_000 }).catch(() => undefined);
      await quiet(['--op', 'update', '--mode', 'sys', '--name', 'State', '-v', 'offline']);
      await quiet(['--lld', 'iscsi', '--op', 'delete', '--mode', 'target', '--tid', '1', '--force']);
      await quiet(['--op', 'delete', '--mode', 'system']);
      await Promise.race([daemon.exited, sleep(timeoutMs)]);
    }
    const status = await daemon.stop({ signal: 'SIGTERM', timeoutMs: 2_000 });
    removeSocketFiles();
    return status;
  };

  try {
    // The management socket appears shortly after start.
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      daemon.assertRunning('while starting');
      const r = await run(tgtadm, ['-C', String(controlPort), '--op', 'show', '--mode', 'sys'], { timeoutMs: 5_000 });
      if (r.code === 0) {
        ownsSocket = true;
        break;
      }
      if (Date.now() >= deadline) throw new Error(describeRun(`tgtd management socket ${controlPort} not ready within ${readyTimeoutMs} ms`, r));
      await sleep(50);
    }
    await adm(['--lld', 'iscsi', '--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn]);
    await adm(['--lld', 'iscsi', '--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', backingPath]);
    await adm(['--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL']);
    if (chap) {
      await adm(['--lld', 'iscsi', '--op', 'new', '--mode', 'account', '--user', chap.user, '--password', chap.secret]);
      await adm(['--lld', 'iscsi', '--op', 'bind', '--mode', 'account', '--tid', '1', '--user', chap.user]);
    }
    await waitForPort(port, { host, timeoutMs: readyTimeoutMs, check: () => daemon.assertRunning(`before listening on ${host}:${port}`) });
  } catch (e) {
    await stopTgt({ timeoutMs: 2_000 });
    removeDirSync(dir);
    throw new Error(`${e.message}\n--- tgtd stderr ---\n${daemon.stderr().slice(-8000)}`);
  }
  return makeHandle({
    kind: 'tgt',
    host,
    port,
    iqn,
    lun: 1,
    backingPath,
    dir,
    daemon,
    stopImpl: (o) => stopTgt(o),
    killSyncImpl: () => daemon.killSync(),
    cleanupSyncExtra: removeSocketFiles,
  });
}
