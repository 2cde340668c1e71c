#!/usr/bin/env node
// npm run bench [-- --rounds N] [--size BYTES] [--only twinsan|tgt] [--sections io,latency,memory,mirror]
//                  [--workloads read-1m-qd8,...] [--out FILE] [--quick]
//
// twinsan next to tgt on the same machine, the same clients, the same run.
//
// Section "io" and "latency": `twinsan target` (dist/cli/bin.js, LUN 0) and
// Debian's tgtd (scripts/lib/targets.mjs, LUN 1), each on its own free
// loopback port, each on a thick backing file of --size bytes in /dev/shm
// (tmpfs: the block layer is out of the picture, the targets are measured).
// After one unrecorded warm-up pass, each round runs every workload against
// twinsan, then against tgt, so both see the same machine state; the table
// shows the median over the rounds and twinsan/tgt ratios. Other load on
// the machine shows as spread between rounds: look at the samples in the
// JSON before trusting a ratio.
//
//   workload         client                                        metric
//   write-4k-qd32    qemu-img bench -w -s 4K -d 32, strided offsets    IOPS
//   read-4k-qd32     qemu-img bench    -s 4K -d 32, strided offsets    IOPS
//   randread-4k-qd32 iscsi-perf -r -b 8 -m 32 (random LBAs)             IOPS
//   write-1m-qd8     qemu-img bench -w -s 1M -d 8, sequential          MiB/s
//   read-1m-qd8      qemu-img bench    -s 1M -d 8, sequential          MiB/s
//   lat-4k-qd1       qemu-img bench    -s 4K -d 1: time / count        µs (mean per op)
//   lat-4k-qd1-mini  scripts/lib/mini-initiator.mjs, one READ (10)     µs (median and p99 per op)
//                    at a time, each op timed (no libiscsi involved)
//
// qemu-img bench (7.2) has no random mode: requests go to offset, offset +
// step, ... modulo the image size. The 4 KiB runs use a step of 4 KiB x 7919
// (a prime): the offsets jump ~31 MiB apart and visit every 4 KiB slot of
// the image once per pass, never two neighbours in a row. Truly random reads
// come from iscsi-perf -r, which does reads only: there is no random-write
// client here (fio is not installed).
// qemu-img bench flags: -f raw -t none -n (cache=none, native AIO: no
// effect on the iscsi driver, given for the record), -c count, -d depth,
// -s size, -S step, -w write; "Run completed in X seconds" is parsed.
//
// Section "memory": one node with 64 logged-in sessions over 16 volumes.
// scripts/lib/bench-memory-server.mjs serves 16 targets from one process
// (the objects `twinsan target` builds, 16 times); 64 mini-initiator
// sessions (4 per volume) log in, each writes and reads 1 MiB in 64 KiB
// commands, 4 in flight; then VmRSS and VmHWM of the target process are
// read from /proc/<pid>/status. Goal: under 200 MiB.
//
// Section "mirror" (MIRRORED PAIR, runs only when `twinsan node` exists):
// 4 KiB QD32 write IOPS on a mirrored volume of a two-node pair against the
// same volume size unmirrored (twinsan target). Goal: mirrored >= 0.6x.
//
// Results: a table on stdout and JSON in bench/results/bench-<date>.json.
// Benchmarks never run in the test suite.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MiniInitiator } from './lib/mini-initiator.mjs';
import { run, sleep } from './lib/proc.mjs';
import { launchTgt, launchTwinsan, TWINSAN_BIN } from './lib/targets.mjs';
import { INSTALL_HINT, findTool, hasQemuIscsiDriver } from './lib/tools.mjs';
import { startMirrorBench } from './lib/bench-mirror.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KiB = 1024;
const MiB = 1024 * KiB;
const SECTIONS = ['io', 'latency', 'memory', 'mirror'];

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    size: { type: 'string', default: String(1024 * MiB) },
    only: { type: 'string' },
    sections: { type: 'string', default: SECTIONS.join(',') },
    workloads: { type: 'string' },
    out: { type: 'string' },
    quick: { type: 'boolean', default: false },
    dir: { type: 'string', default: '/dev/shm' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (opts.help) {
  console.log('usage: npm run bench -- [--rounds N] [--size BYTES] [--only twinsan|tgt] [--sections io,latency,memory,mirror] [--workloads ID,...] [--out FILE] [--quick] [--dir DIR]');
  process.exit(0);
}

function fail(message, code = 2) {
  console.error(`bench: ${message}`);
  process.exit(code);
}

const rounds = Number(opts.rounds);
const size = Number(opts.size);
const sections = opts.sections.split(',').filter(Boolean);
for (const s of sections) if (!SECTIONS.includes(s)) fail(`unknown section ${s} (one of ${SECTIONS.join(', ')})`);
if (!Number.isInteger(rounds) || rounds < 1) fail('--rounds must be a positive integer');
if (!Number.isSafeInteger(size) || size < 64 * MiB || size % MiB !== 0) fail('--size must be a multiple of 1 MiB, at least 64 MiB');
const targetsWanted = opts.only ? [opts.only] : ['twinsan', 'tgt'];
for (const t of targetsWanted) if (!['twinsan', 'tgt'].includes(t)) fail('--only must be twinsan or tgt');
const scale = opts.quick ? 0.25 : 1;
const workloadsWanted = opts.workloads ? opts.workloads.split(',').filter(Boolean) : null;

/* ---------------- workloads ---------------- */

const STRIDE_4K = 4 * KiB * 7919;
/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on Linux). */
const CLOCK_TICKS = 100;

/** One row per workload: how to run it, what to report. `higher` says which way is better. */
const WORKLOADS = [
  { id: 'write-4k-qd32', section: 'io', client: 'qemu-img', write: true, bs: 4 * KiB, depth: 32, count: 40_000, step: STRIDE_4K, metric: 'iops', higher: true },
  { id: 'read-4k-qd32', section: 'io', client: 'qemu-img', write: false, bs: 4 * KiB, depth: 32, count: 40_000, step: STRIDE_4K, metric: 'iops', higher: true },
  { id: 'randread-4k-qd32', section: 'io', client: 'iscsi-perf', bs: 4 * KiB, depth: 32, seconds: 5, metric: 'iops', higher: true },
  { id: 'write-1m-qd8', section: 'io', client: 'qemu-img', write: true, bs: MiB, depth: 8, count: 2_000, step: MiB, metric: 'MiB/s', higher: true },
  { id: 'read-1m-qd8', section: 'io', client: 'qemu-img', write: false, bs: MiB, depth: 8, count: 2_000, step: MiB, metric: 'MiB/s', higher: true },
  { id: 'lat-4k-qd1', section: 'latency', client: 'qemu-img', write: false, bs: 4 * KiB, depth: 1, count: 10_000, step: STRIDE_4K, metric: 'us/op', higher: false },
  { id: 'lat-4k-qd1-mini', section: 'latency', client: 'mini', bs: 4 * KiB, count: 10_000, metric: 'us p50', higher: false },
];

for (const id of workloadsWanted ?? []) if (!WORKLOADS.some((w) => w.id === id)) fail(`unknown workload ${id} (one of ${WORKLOADS.map((w) => w.id).join(', ')})`);

async function qemuBench(url, w) {
  const count = Math.max(w.depth * 10, Math.round(w.count * scale));
  const args = ['bench', '-f', 'raw', '-t', 'none', '-n', '-c', String(count), '-d', String(w.depth), '-s', String(w.bs), '-S', String(w.step)];
  if (w.write) args.push('-w');
  args.push(url);
  const r = await run('qemu-img', args, { timeoutMs: 300_000 });
  const m = /Run completed in ([\d.]+) seconds/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`qemu-img ${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const seconds = Number(m[1]);
  if (w.metric === 'iops') return { value: count / seconds, seconds, count };
  if (w.metric === 'MiB/s') return { value: (count * w.bs) / MiB / seconds, seconds, count };
  return { value: (seconds / count) * 1e6, seconds, count };
}

async function iscsiPerf(url, w) {
  const seconds = Math.max(2, Math.round(w.seconds * scale));
  const args = ['-r', '-m', String(w.depth), '-b', String(w.bs / 512), '-t', String(seconds), url];
  const r = await run('iscsi-perf', args, { timeoutMs: (seconds + 30) * 1000 });
  const all = [...r.stdout.matchAll(/iops average (\d+)/g)];
  if (all.length === 0) throw new Error(`iscsi-perf ${args.join(' ')}: exit ${r.code}\n${r.stdout.slice(-2000)}\n${r.stderr}`);
  return { value: Number(all[all.length - 1][1]), seconds };
}

/** QD1 latency from a JS initiator: every READ (10) timed on its own. */
async function miniLatency(t, w) {
  const init = new MiniInitiator({ host: t.host, port: t.port, targetName: t.iqn, initiatorName: 'iqn.2026-11.io.twinsan:bench-mini', isid: Buffer.from([0x80, 0, 0, 0, 0x42, 1]) });
  await init.connect();
  try {
    await init.login();
    init.lun = t.lun;
    await init.ready();
    const blocks = w.bs / 512;
    const slots = size / w.bs;
    const count = Math.max(500, Math.round(w.count * scale));
    const samples = new Float64Array(count);
    for (let i = -200; i < count; i++) {
      const lba = (((i + 200) * 7919) % slots) * blocks;
      const t0 = process.hrtime.bigint();
      await init.read10(lba, blocks);
      if (i >= 0) samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    samples.sort();
    return { value: samples[Math.floor(count / 2)], p99: samples[Math.floor(count * 0.99)], count };
  } finally {
    await init.logout();
  }
}

function runClient(t, w) {
  if (w.client === 'qemu-img') return qemuBench(t.url, w);
  if (w.client === 'iscsi-perf') return iscsiPerf(t.url, w);
  return miniLatency(t, w);
}

/** CPU time (user + system, every thread) the process has used, in µs; null when it cannot be read. */
async function cpuMicros(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * One client run, with the target's CPU time per operation: on a shared
 * machine the throughput of a run depends on what else ran, its CPU cost
 * per operation much less.
 */
async function runWorkload(t, w) {
  const before = await cpuMicros(t.pid);
  const r = await runClient(t, w);
  const after = await cpuMicros(t.pid);
  const ops = r.count ?? (r.seconds && w.metric === 'iops' ? r.value * r.seconds : null);
  if (before !== null && after !== null && ops) r.targetCpuUsPerOp = (after - before) / ops;
  return r;
}

/* ---------------- helpers ---------------- */

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function fmt(n) {
  if (!Number.isFinite(n)) return '-';
  return n >= 100 ? String(Math.round(n)) : n.toFixed(1);
}

async function makeBacking(dir, name) {
  const file = path.join(dir, name);
  const fh = await open(file, 'w');
  // Written through, not sparse: reads must hit real tmpfs pages on both targets.
  const chunk = Buffer.alloc(8 * MiB, 0x5a);
  for (let at = 0; at < size; at += chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, size - at), at);
  await fh.close();
  return file;
}

async function rssOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

/* ---------------- section io + latency ---------------- */

async function ioSections(workDir, results) {
  const wanted = WORKLOADS.filter((w) => sections.includes(w.section) && (!workloadsWanted || workloadsWanted.includes(w.id)));
  if (wanted.length === 0) return;
  if (!findTool('qemu-img') || !hasQemuIscsiDriver() || !findTool('iscsi-perf')) fail(`qemu-img with its iSCSI driver and iscsi-perf are needed. ${INSTALL_HINT}`);
  if (targetsWanted.includes('tgt') && process.getuid?.() !== 0) fail('tgtd needs root');

  const targets = {};
  try {
    process.env.TWINSAN_LOG_LEVEL ??= 'warn';
    if (targetsWanted.includes('twinsan')) {
      const backingPath = await makeBacking(workDir, 'twinsan.img');
      targets.twinsan = await launchTwinsan({ size, backingPath, create: false, bin: TWINSAN_BIN });
      console.log(`twinsan: pid ${targets.twinsan.pid}, ${targets.twinsan.url}`);
    }
    if (targetsWanted.includes('tgt')) {
      const backingPath = await makeBacking(workDir, 'tgt.img');
      targets.tgt = await launchTgt({ size, backingPath });
      console.log(`tgt:     pid ${targets.tgt.pid}, ${targets.tgt.url}`);
    }
    // One unrecorded pass first: JIT warm-up for twinsan, page cache and sessions for both.
    for (const w of wanted) for (const name of targetsWanted) await runWorkload(targets[name], { ...w, count: w.count / 4, seconds: 2 });
    const samples = {};
    for (let round = 1; round <= rounds; round++) {
      for (const w of wanted) {
        for (const name of targetsWanted) {
          const r = await runWorkload(targets[name], w);
          ((samples[w.id] ??= {})[name] ??= []).push(r);
          const cpu = r.targetCpuUsPerOp !== undefined ? `, target CPU ${fmt(r.targetCpuUsPerOp)} us/op` : '';
          process.stdout.write(`round ${round}/${rounds} ${w.id.padEnd(17)} ${name.padEnd(8)} ${fmt(r.value).padStart(8)} ${w.metric}${r.p99 !== undefined ? ` (p99 ${fmt(r.p99)})` : ''}${cpu}\n`);
        }
      }
    }
    for (const name of targetsWanted) results.rss[name] = await rssOf(targets[name].pid).catch(() => null);
    for (const w of wanted) {
      const row = { workload: w.id, metric: w.metric, higherIsBetter: w.higher, median: {}, samples: {} };
      for (const name of targetsWanted) {
        const s = samples[w.id][name];
        row.median[name] = median(s.map((x) => x.value));
        row.samples[name] = s;
        if (s[0].p99 !== undefined) (row.p99Median ??= {})[name] = median(s.map((x) => x.p99));
        if (s.every((x) => x.targetCpuUsPerOp !== undefined)) (row.cpuUsPerOpMedian ??= {})[name] = median(s.map((x) => x.targetCpuUsPerOp));
      }
      if (row.median.twinsan && row.median.tgt) row.ratio = row.median.twinsan / row.median.tgt;
      results.workloads.push(row);
    }
  } finally {
    for (const t of Object.values(targets)) await t.stop().catch(() => undefined);
  }
}

/* ---------------- section memory ---------------- */

async function memorySection(workDir, results) {
  const volumes = 16;
  const sessionsPerVolume = 4;
  const dir = await mkdtemp(path.join(workDir, 'mem-'));
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts', 'lib', 'bench-memory-server.mjs'), '--dir', dir, '--volumes', String(volumes), '--size', String(64 * MiB)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    // The same build as TWINSAN_BIN (<dist>/cli/bin.js).
    env: { ...process.env, TWINSAN_DIST: path.dirname(path.dirname(TWINSAN_BIN)) },
  });
  const inits = [];
  try {
    const port = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c) => {
        out += c;
        const m = /ready (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`memory server exited with ${code}`)));
    });
    await sleep(500);
    const idle = await rssOf(child.pid);
    for (let v = 0; v < volumes; v++) {
      for (let s = 0; s < sessionsPerVolume; s++) {
        const init = new MiniInitiator({
          host: '127.0.0.1',
          port,
          targetName: `iqn.2026-11.io.twinsan.bench:vol${v}`,
          initiatorName: `iqn.2026-11.io.twinsan:bench-mem-${v}-${s}`,
          isid: Buffer.from([0x80, 0, 0, 0, v, s]),
        });
        await init.connect();
        await init.login();
        await init.ready();
        inits.push(init);
      }
    }
    const loggedIn = await rssOf(child.pid);
    // Every session writes and reads 1 MiB in 64 KiB commands, 4 in flight, all sessions at once.
    const data = Buffer.alloc(64 * KiB, 0xa5);
    await Promise.all(
      inits.map(async (init, i) => {
        for (let k = 0; k < 16; k += 4) {
          const base = (i % sessionsPerVolume) * 2048 + k * 128;
          await Promise.all([0, 1, 2, 3].map((j) => init.write10(base + j * 128, data)));
          await Promise.all([0, 1, 2, 3].map((j) => init.read10(base + j * 128, 128)));
        }
      }),
    );
    await sleep(500);
    const afterIo = await rssOf(child.pid);
    results.memory = { volumes, sessions: inits.length, idleRssMiB: idle.rssMiB, loggedInRssMiB: loggedIn.rssMiB, afterIoRssMiB: afterIo.rssMiB, peakRssMiB: afterIo.hwmMiB, goalMiB: 200, met: afterIo.hwmMiB < 200 };
  } finally {
    await Promise.all(inits.map((i) => i.logout().catch(() => undefined)));
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    await rm(dir, { recursive: true, force: true });
  }
}

/* ---------------- section mirror (MIRRORED PAIR) ---------------- */

async function mirrorSection(workDir, results) {
  const help = await run(process.execPath, [TWINSAN_BIN, 'node', '--help'], { timeoutMs: 10_000 });
  if (help.code !== 0) {
    results.mirror = { skipped: '`twinsan node` does not exist yet' };
    return;
  }
  const w = WORKLOADS.find((x) => x.id === 'write-4k-qd32');
  const mirror = await startMirrorBench({ workDir, size });
  if (mirror.skipped) {
    results.mirror = { skipped: mirror.skipped };
    return;
  }
  const unmirroredTarget = await launchTwinsan({ size, backingPath: await makeBacking(workDir, 'unmirrored.img'), create: false, bin: TWINSAN_BIN });
  const samples = { mirrored: [], unmirrored: [] };
  // CPU per write of both nodes together (mirrored) and of the one target (unmirrored).
  const cpu = { mirrored: [], unmirrored: [] };
  const cpuOf = async (pids) => {
    let sum = 0;
    for (const pid of pids) {
      const us = await cpuMicros(pid);
      if (us === null) return null;
      sum += us;
    }
    return sum;
  };
  try {
    for (const url of [mirror.url, unmirroredTarget.url]) await qemuBench(url, { ...w, count: w.count / 4 });
    for (let round = 1; round <= rounds; round++) {
      for (const [name, url, pids] of [['mirrored', mirror.url, mirror.pids], ['unmirrored', unmirroredTarget.url, [unmirroredTarget.pid]]]) {
        const before = await cpuOf(pids);
        const r = await qemuBench(url, w);
        const after = await cpuOf(pids);
        samples[name].push(r.value);
        const perOp = before !== null && after !== null ? (after - before) / r.count : null;
        cpu[name].push(perOp);
        process.stdout.write(`round ${round}/${rounds} mirror-write-4k-qd32 ${name.padEnd(10)} ${fmt(r.value).padStart(8)} iops${perOp !== null ? `, CPU ${fmt(perOp)} us/op` : ''}\n`);
      }
    }
  } finally {
    await unmirroredTarget.stop().catch(() => undefined);
    await mirror.stop().catch(() => undefined);
  }
  const m = median(samples.mirrored);
  const u = median(samples.unmirrored);
  const roundRatios = samples.mirrored.map((x, i) => x / samples.unmirrored[i]);
  const cpuMedian = (xs) => (xs.every((x) => x !== null) ? median(xs) : null);
  results.mirror = {
    workload: 'write-4k-qd32',
    mirroredIops: m,
    unmirroredIops: u,
    ratio: m / u,
    medianRoundRatio: median(roundRatios),
    goal: 0.6,
    met: m / u >= 0.6,
    samples,
    cpuUsPerOp: { mirrored: cpu.mirrored, unmirrored: cpu.unmirrored },
    cpuUsPerOpMedian: { mirrored: cpuMedian(cpu.mirrored), unmirrored: cpuMedian(cpu.unmirrored) },
  };
}

/* ---------------- main ---------------- */

function printTable(results) {
  const lines = [''];
  if (results.workloads.length > 0) lines.push(`${'workload'.padEnd(18)}${'metric'.padEnd(8)}${'twinsan'.padStart(10)}${'tgt'.padStart(10)}${'twinsan/tgt'.padStart(13)}  goal`);
  const goals = { 'write-4k-qd32': '>= 1.5', 'read-4k-qd32': '>= 1.5', 'randread-4k-qd32': '>= 1.5', 'write-1m-qd8': '>= 1.2', 'read-1m-qd8': '>= 1.2', 'lat-4k-qd1': '<= 1.0', 'lat-4k-qd1-mini': '<= 1.0' };
  for (const r of results.workloads) {
    lines.push(`${r.workload.padEnd(18)}${r.metric.padEnd(8)}${fmt(r.median.twinsan).padStart(10)}${fmt(r.median.tgt).padStart(10)}${(r.ratio ? r.ratio.toFixed(2) : '-').padStart(13)}  ${goals[r.workload] ?? ''}`);
    if (r.p99Median) lines.push(`${''.padEnd(18)}${'us p99'.padEnd(8)}${fmt(r.p99Median.twinsan).padStart(10)}${fmt(r.p99Median.tgt).padStart(10)}`);
    if (r.cpuUsPerOpMedian) lines.push(`${''.padEnd(18)}${'cpu us'.padEnd(8)}${fmt(r.cpuUsPerOpMedian.twinsan).padStart(10)}${fmt(r.cpuUsPerOpMedian.tgt).padStart(10)}  (target CPU per op)`);
  }
  for (const [name, m] of Object.entries(results.rss)) if (m) lines.push(`${name} RSS after the io rounds: ${fmt(m.rssMiB)} MiB (peak ${fmt(m.hwmMiB)} MiB)`);
  if (results.memory) {
    const m = results.memory;
    lines.push(`memory: ${m.sessions} sessions over ${m.volumes} volumes: idle ${fmt(m.idleRssMiB)} MiB, logged in ${fmt(m.loggedInRssMiB)} MiB, after I/O ${fmt(m.afterIoRssMiB)} MiB, peak ${fmt(m.peakRssMiB)} MiB (goal < 200: ${m.met ? 'met' : 'NOT met'})`);
  }
  if (results.mirror) {
    const m = results.mirror;
    lines.push(
      m.skipped
        ? `mirror: skipped (${m.skipped})`
        : `mirror: 4K QD32 write ${fmt(m.mirroredIops)} IOPS mirrored vs ${fmt(m.unmirroredIops)} unmirrored = ${m.ratio.toFixed(2)} (median of per-round ratios ${m.medianRoundRatio.toFixed(2)}; goal >= 0.6: ${m.met ? 'met' : 'NOT met'})` +
            (m.cpuUsPerOpMedian.mirrored !== null ? `\n        CPU per write: ${fmt(m.cpuUsPerOpMedian.mirrored)} us both nodes mirrored, ${fmt(m.cpuUsPerOpMedian.unmirrored)} us unmirrored` : ''),
    );
  }
  console.log(lines.join('\n'));
}

const results = {
  date: new Date().toISOString(),
  host: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release(), node: process.version },
  options: { rounds, size, sections, only: opts.only ?? null, quick: opts.quick, dir: opts.dir, uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? null },
  workloads: [],
  rss: {},
};
const workDir = await mkdtemp(path.join(opts.dir, 'twinsan-bench-'));
try {
  if (sections.includes('io') || sections.includes('latency')) await ioSections(workDir, results);
  if (sections.includes('memory')) await memorySection(workDir, results);
  if (sections.includes('mirror')) await mirrorSection(workDir, results);
} finally {
  await rm(workDir, { recursive: true, force: true });
}
printTable(results);
const out = opts.out ?? path.join(REPO_ROOT, 'bench', 'results', `bench-${results.date.slice(0, 10)}.json`);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nresults: ${path.relative(process.cwd(), out)}`);
