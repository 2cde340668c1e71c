#!/usr/bin/env node
// npm start [-- --mode auto|lab|loopback] [--prefix P] [--base-port N] [--size BYTES]
//
// The first five minutes: a working mirrored pair on this machine until
// Ctrl-C. As root, the failover lab in network namespaces; without root,
// two nodes on 127.0.0.1 (`twinsan quickstart`, src/cli/quickstart).
// TWINSAN_QUICKSTART_MODE=loopback picks the loopback pair even as root.
//
// `npm ci` builds everything (install: node-gyp; prepare: tsc). This script
// builds the TypeScript again only when dist/ is missing or older than src/.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const bin = path.join(repo, 'dist', 'cli', 'bin.js');
const addon = path.join(repo, 'native', 'build', 'Release', 'twinsan_native.node');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

if (!existsSync(addon)) {
  process.stderr.write('npm start: the native addon is not built (native/build/Release/twinsan_native.node): run `npm ci` first\n');
  process.exit(1);
}
if (!existsSync(bin) || statSync(bin).mtimeMs < newestMtime(path.join(repo, 'src'))) {
  process.stderr.write('npm start: compiling the TypeScript (dist/ is missing or older than src/)\n');
  // What `npm run build:ts` does: tsc, then the dashboard's static files next to the compiled API.
  for (const step of [[require.resolve('typescript/bin/tsc'), '-p', path.join(repo, 'tsconfig.json')], [path.join(repo, 'scripts', 'copy-assets.mjs')]]) {
    const r = spawnSync(process.execPath, step, { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}

// Run in this process (no extra child to pass signals to): `twinsan quickstart ARGS...`.
process.argv.splice(2, 0, 'quickstart');
require(bin);
