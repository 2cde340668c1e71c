// MIRRORED PAIR section of scripts/bench.mjs: start a two-node pair with
// `twinsan node` (docs/node-config.md) on loopback, one thick volume of
// `size` bytes owned by node a, two replication links, backing files under
// `workDir` (tmpfs), and wait until both nodes report it in sync. Returns the
// iscsi:// URL of the mirrored volume and a stop().

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, LOOPBACK, waitForPort } from './ports.mjs';
import { sleep, spawnDaemon } from './proc.mjs';
import { TWINSAN_BIN } from './targets.mjs';

const VOLUME_ID = '3b0e6c7a-9d41-4f25-8a63-5c2e1f0d7b94';
const IQN = 'iqn.2026-11.io.twinsan.bench:mirrored';

async function status(port) {
  const res = await fetch(`http://${LOOPBACK}:${port}/status`);
  return res.json();
}

/** @returns {Promise<{ url: string, pids: number[], stop(): Promise<void> } | { skipped: string }>} */
export async function startMirrorBench({ workDir, size, readyTimeoutMs = 180_000 }) {
  const ports = {};
  for (const k of ['iscsiA', 'iscsiB', 'a0', 'a1', 'b0', 'b1', 'statusA', 'statusB']) ports[k] = await freePort(LOOPBACK);
  const at = (p) => `${LOOPBACK}:${p}`;
  const secret = 'twinsan-bench-pair-secret-0123456789';
  const config = (self, peer, iscsi, links, statusPort) => ({
    nodeId: `bench-${self}`,
    clusterId: 'twinsan-bench',
    dataDir: path.join(workDir, `mirror-${self}`),
    iscsi: { listen: [at(iscsi)] },
    peer: { nodeId: `bench-${peer}`, secret, links },
    volumes: [{ id: VOLUME_ID, name: 'mirrored', iqn: IQN, sizeBytes: size, thin: false, owner: 'bench-a' }],
    log: { level: 'warn' },
    status: { listen: at(statusPort) },
  });
  const files = {
    a: config('a', 'b', ports.iscsiA, [{ local: at(ports.a0), peer: at(ports.b0) }, { local: at(ports.a1), peer: at(ports.b1) }], ports.statusA),
    b: config('b', 'a', ports.iscsiB, [{ local: at(ports.b0), peer: at(ports.a0) }, { local: at(ports.b1), peer: at(ports.a1) }], ports.statusB),
  };
  const daemons = [];
  const stop = async () => {
    await Promise.all(daemons.map((d) => d.stop({ signal: 'SIGTERM', timeoutMs: 20_000 })));
  };
  try {
    for (const id of ['a', 'b']) {
      await mkdir(files[id].dataDir, { recursive: true });
      const file = path.join(workDir, `mirror-${id}.json`);
      await writeFile(file, JSON.stringify(files[id], null, 2));
      daemons.push(spawnDaemon(process.execPath, [TWINSAN_BIN, 'node', '--config', file], { label: `twinsan node ${id}` }));
    }
    await waitForPort(ports.iscsiA, { host: LOOPBACK, timeoutMs: readyTimeoutMs, check: () => daemons.forEach((d) => d.assertRunning()) });
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      daemons.forEach((d) => d.assertRunning('before the pair was in sync'));
      const st = await Promise.all([status(ports.statusA), status(ports.statusB)]).catch(() => null);
      if (st && st.every((s) => s.inSync)) break;
      if (Date.now() > deadline) throw new Error('the pair did not get in sync in time');
      await sleep(250);
    }
  } catch (err) {
    await stop();
    return { skipped: `pair did not start: ${err.message.split('\n')[0]}` };
  }
  return { url: `iscsi://${at(ports.iscsiA)}/${IQN}/0`, pids: daemons.map((d) => d.pid), stop };
}
