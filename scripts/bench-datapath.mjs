#!/usr/bin/env node
// node scripts/bench-datapath.mjs [--dist DIR] [--file PATH] [--ops N] [--depth N] [--mode write|read] [--repeat N]
//
// CPU per command of twinsan's single-target data path without sockets: an
// iSCSI Session (dist/target/iscsi), the SCSI device and a FileBackingStore
// on a file (default: a 256 MiB file it creates in /dev/shm), driven in
// process with decoded SCSI Command PDUs (READ (10) / WRITE (10) of 4 KiB
// with immediate data, strided LBAs as the bench's qemu-img runs use),
// `--depth` commands issued per round and the round awaited, responses
// counted by a sink that does no I/O. Prints process CPU (user + system) per
// command for each repeat after a warm-up.
//
// What it is for: the socket side and the scheduler make the bench's "target
// CPU per op" move by 20-30% from run to run on a shared machine; this part
// of the cost moves by a few percent, so two builds can be compared on it
// (`--dist` of another build, e.g. one compiled into a scratch directory).
// It measures only what it drives: framing, the socket and TCP are not in it.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    dist: { type: 'string', default: path.join(REPO_ROOT, 'dist') },
    file: { type: 'string' },
    ops: { type: 'string', default: '100000' },
    depth: { type: 'string', default: '32' },
    mode: { type: 'string', default: 'write' },
    repeat: { type: 'string', default: '3' },
  },
});
const OPS = Number(opts.ops);
const DEPTH = Number(opts.depth);
const REPEAT = Number(opts.repeat);
const write = opts.mode === 'write';
if (!['write', 'read'].includes(opts.mode)) throw new Error('--mode must be write or read');
if (![OPS, DEPTH, REPEAT].every((n) => Number.isInteger(n) && n > 0)) throw new Error('--ops, --depth and --repeat must be positive integers');

const require = createRequire(import.meta.url);
const dist = path.resolve(opts.dist);
const { Session } = require(path.join(dist, 'target/iscsi/session.js'));
const { makeNexus } = require(path.join(dist, 'target/iscsi/target-port.js'));
const { decodePdu } = require(path.join(dist, 'target/iscsi/pdu.js'));
const { ScsiTargetDevice, LogicalUnit } = require(path.join(dist, 'target/scsi/index.js'));
const { FileBackingStore } = require(path.join(dist, 'block/index.js'));
const pino = require('pino');

const BLOCK = 512;
const SIZE = 256 * 1024 * 1024;
const tmpDir = opts.file ? null : await mkdtemp('/dev/shm/twinsan-datapath-');
const file = opts.file ?? path.join(tmpDir, 'volume.img');
if (!opts.file) {
  // Written through, as the bench's backing files: reads hit real pages.
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(8 * 1024 * 1024, 0x5a);
  for (let at = 0; at < SIZE; at += chunk.length) await fh.write(chunk, 0, chunk.length, at);
  await fh.close();
}
const store = await FileBackingStore.open(file, {});
const blocks = Math.floor(store.sizeBytes / BLOCK);
const lu = new LogicalUnit({ store, blockSize: BLOCK, identity: { volumeId: '6f0b8a4e-2c1d-4d8e-9a3b-1c2d3e4f5a6b' } });
const name = 'iqn.2026-11.io.twinsan:datapath';
const initiatorName = 'iqn.2026-11.io.twinsan:datapath-initiator';
const device = new ScsiTargetDevice({ name, luns: new Map([[0, lu]]) });
const isid = Buffer.from([0x80, 0, 0, 0, 0, 1]);
const session = new Session({
  tsih: 1,
  isid,
  initiatorName,
  type: 'Normal',
  target: { name, device, allowedInitiators: null },
  nexus: makeNexus(initiatorName, isid, name, 1, 1),
  params: { initialR2T: true, immediateData: true, maxBurstLength: 262144, firstBurstLength: 65536, maxOutstandingR2T: 1 },
  expCmdSN: 1,
  cmdWindow: 128,
  directory: { targets: () => [] },
  group: { sessionsOf: () => [], dropSessionsOf: () => {} },
  log: pino({ level: 'silent' }),
});

const SCSI_RESPONSE = 0x21;
const DATA_IN = 0x25;
let statSN = 0;
let answered = 0;
let waiting = null;
session.attach({
  send(bhs, _data, _length, onSent) {
    const opcode = bhs[0] & 0x3f;
    // A READ is answered by its last Data-In (status piggybacked, S bit), a WRITE by a SCSI Response.
    if (opcode === SCSI_RESPONSE || (opcode === DATA_IN && bhs[1] & 0x01)) {
      answered++;
      if (waiting && answered >= waiting.until) {
        const w = waiting;
        waiting = null;
        w.resolve();
      }
    }
    onSent?.();
  },
  takeStatSN: () => statSN++,
  peekStatSN: () => statSN,
  maxSendDataSegmentLength: 262144,
  localAddress: '127.0.0.1',
  localPort: 3260,
  fail(reason) {
    throw new Error(`session failed the connection: ${reason}`);
  },
  tasksChanged() {},
  pingAnswered() {},
});

const payload = Buffer.alloc(4096, 0xa5);
let cmdSN = 1;
let itt = 1;
let lba = 0;
function command() {
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x01; // SCSI Command
  bhs[1] = 0x80 | (write ? 0x20 : 0x40) | 0x01; // F, W or R, SIMPLE
  if (write) bhs.writeUIntBE(payload.length, 5, 3); // immediate data
  bhs.writeUInt32BE(itt, 16);
  itt = (itt + 1) >>> 0;
  bhs.writeUInt32BE(payload.length, 20);
  bhs.writeUInt32BE(cmdSN++, 24);
  lba = (lba + 8 * 7919) % (blocks - 8);
  bhs[32] = write ? 0x2a : 0x28;
  bhs.writeUInt32BE(lba, 34);
  bhs.writeUInt16BE(8, 39);
  return decodePdu({ bhs, ahs: null, data: write ? [payload] : [], dataLength: write ? payload.length : 0 });
}

function round(n) {
  const done = new Promise((resolve) => (waiting = { until: answered + n, resolve }));
  for (let i = 0; i < n; i++) {
    const pdu = command();
    session.ordered(pdu.cmdSN, false, () => session.onScsiCommand(pdu));
  }
  return done;
}

try {
  for (let i = 0; i < Math.max(200, Math.ceil(20000 / DEPTH)); i++) await round(DEPTH);
  for (let r = 0; r < REPEAT; r++) {
    const cpu0 = process.cpuUsage();
    const rounds = Math.ceil(OPS / DEPTH);
    for (let i = 0; i < rounds; i++) await round(DEPTH);
    const cpu = process.cpuUsage(cpu0);
    const n = rounds * DEPTH;
    console.log(`${opts.mode} 4 KiB, ${DEPTH} per round: ${((cpu.user + cpu.system) / n).toFixed(2)} us CPU per command (user ${(cpu.user / n).toFixed(2)}, system ${(cpu.system / n).toFixed(2)})`);
  }
} finally {
  await store.close();
  if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
}
