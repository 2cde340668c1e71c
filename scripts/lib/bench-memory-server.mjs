#!/usr/bin/env node
// The target process of the memory benchmark (scripts/bench.mjs, section
// "memory"): one in-process IscsiServer from the compiled dist/ serving N
// volumes, each a thick file in DIR as LUN 0 of its own target
// <iqn-prefix>:vol<i>, exactly the objects `twinsan target` builds for one.
// Prints "ready <port>" on stdout once listening; SIGTERM stops it.
//
//   node scripts/lib/bench-memory-server.mjs --dir DIR --volumes 16 --size BYTES --iqn-prefix IQN

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const dist = process.env.TWINSAN_DIST ?? path.join(REPO_ROOT, 'dist');
const { FileBackingStore } = require(path.join(dist, 'block'));
const { IscsiServer } = require(path.join(dist, 'target', 'iscsi'));
const { LogicalUnit, ScsiTargetDevice } = require(path.join(dist, 'target', 'scsi'));
const { createLogger } = require(path.join(dist, 'cli', 'logger'));
const { tuneRuntimeForDataPath } = require(path.join(dist, 'cli', 'runtime-tuning'));

// The V8 settings `twinsan target` runs with (src/cli/runtime-tuning.ts).
tuneRuntimeForDataPath();

const { values: opts } = parseArgs({
  options: {
    dir: { type: 'string' },
    volumes: { type: 'string', default: '16' },
    size: { type: 'string', default: String(64 * 1024 * 1024) },
    'iqn-prefix': { type: 'string', default: 'iqn.2026-11.io.twinsan.bench' },
    port: { type: 'string', default: '0' },
  },
});

const log = createLogger(process.env.TWINSAN_LOG_LEVEL ?? 'warn', { component: 'bench-memory-server' });
const server = new IscsiServer({ log });
const stores = [];
for (let i = 0; i < Number(opts.volumes); i++) {
  const name = `${opts['iqn-prefix']}:vol${i}`;
  const store = await FileBackingStore.open(path.join(opts.dir, `vol${i}.img`), { create: true, thin: false, sizeBytes: Number(opts.size) });
  stores.push(store);
  const lu = new LogicalUnit({ store, blockSize: 512, physicalBlockSize: 512, thin: false, identity: { volumeId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` } });
  const device = new ScsiTargetDevice({ name, luns: new Map([[0, lu]]) });
  server.addTarget({ name, device, allowedInitiators: null });
  device.setAbortTasksHandler((lun, keys) => server.abortTasks(name, lun, keys));
}
const port = await server.listen('127.0.0.1', Number(opts.port));
process.stdout.write(`ready ${port}\n`);

process.once('SIGTERM', () => {
  server
    .close()
    .then(() => Promise.all(stores.map((s) => s.close())))
    .finally(() => process.exit(0));
});
