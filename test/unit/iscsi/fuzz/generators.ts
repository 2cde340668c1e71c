/**
 * What the fuzzer sends: valid-looking initiator PDUs of every kind with
 * random field values, then mutated. Each shot says what it does to the
 * stream:
 *   in-sync  the target's framer stays on PDU boundaries (lengths and
 *            digests consistent), so a later NOP ping must be answered
 *            unless the target closes the connection;
 *   fatal    the target must drop the connection (bad digest, data segment
 *            over MaxRecvDataSegmentLength);
 *   desync   anything goes (truncation, lying length fields, bit flips over
 *            the whole PDU, garbage bytes).
 */
import type { Negotiated } from './initiator';
import { Prng } from './prng';
import {
  BHS,
  Digests,
  IOp,
  Pdu,
  RESERVED,
  bhs,
  dataOut,
  loginRequest,
  logoutRequest,
  nopOut,
  pad4,
  scsiCommand,
  serialize,
  snackRequest,
  taskMgmt,
  textData,
  textRequest,
} from './wire';

export type Fate = 'in-sync' | 'fatal' | 'desync';

export interface Shot {
  readonly bytes: Buffer;
  /** What was generated, for the tallies and for reproducing a finding. */
  readonly kind: string;
  readonly fate: Fate;
  /** PDUs in `bytes` (a Data-Out burst holds several). */
  readonly pdus: number;
}

/** An R2T the target sent on a fuzzed connection. */
export interface SeenR2T {
  readonly itt: number;
  readonly ttt: number;
  readonly offset: number;
  readonly length: number;
  readonly lun: Buffer;
}

/** What the FFP generator knows of its connection. */
export interface FfpState {
  readonly rng: Prng;
  readonly n: Negotiated;
  readonly discovery: boolean;
  /** Blocks on the LU (for plausible LBAs). */
  readonly blocks: number;
  readonly r2ts: SeenR2T[];
  /** Text responses with a continuation TTT. */
  readonly textTtts: number[];
  /** Recently sent commands (ABORT TASK targets, unsolicited Data-Out). */
  readonly recent: Array<{ itt: number; cmdSN: number; edtl: number; write: boolean; sent: number }>;
  cmdSN: number;
  expStatSN: number;
  nextItt: number;
}

/* ---------------- SCSI CDBs ---------------- */

const READS = [0x08, 0x28, 0x88, 0xa8];
const WRITES = [0x0a, 0x2a, 0x8a, 0xaa, 0x2e, 0x8e, 0xae, 0x89];
const VERIFIES = [0x2f, 0x8f, 0xaf];
const DATA_IN_OTHERS = [0x03, 0x12, 0x1a, 0x5a, 0x25, 0x9e, 0xa0, 0xa3, 0x5e, 0x84, 0x4d, 0x37, 0xb7, 0x3c];
const DATA_OUT_OTHERS = [0x15, 0x55, 0x41, 0x93, 0x42, 0x5f, 0x83, 0x04, 0x1d, 0x48, 0xa4, 0x3b];
const NO_DATA = [0x00, 0x1b, 0x1e, 0x16, 0x17, 0x56, 0x57, 0x34, 0x90, 0x35, 0x91, 0x01, 0x07];

type Dir = 'read' | 'write' | 'none';

/** Put an LBA and a block count where the CDB of `op` keeps them. */
function placeRange(c: Buffer, op: number, lba: number, blocks: number): void {
  const group = op >> 5;
  if (group === 0) {
    c.writeUIntBE(lba & 0x1fffff, 1, 3);
    c[4] = blocks & 0xff;
  } else if (group === 1 || group === 2) {
    c.writeUInt32BE(lba >>> 0, 2);
    c.writeUInt16BE(blocks & 0xffff, 7);
  } else if (group === 4) {
    c.writeUInt32BE(Math.floor(lba / 0x1_0000_0000) >>> 0, 2);
    c.writeUInt32BE(lba >>> 0, 6);
    if (op === 0x89) c[13] = blocks & 0xff;
    else c.writeUInt32BE(blocks >>> 0, 10);
  } else if (group === 5) {
    c.writeUInt32BE(lba >>> 0, 2);
    c.writeUInt32BE(blocks >>> 0, 6);
  }
}

export function randomCdb(rng: Prng, totalBlocks: number): { cdb: Buffer; dir: Dir; bytes: number; name: string } {
  const family = rng.weighted<'read' | 'write' | 'verify' | 'in' | 'out' | 'none' | 'random'>([
    ['read', 25],
    ['write', 25],
    ['verify', 5],
    ['in', 15],
    ['out', 8],
    ['none', 10],
    ['random', 12],
  ]);
  const c = Buffer.alloc(16);
  if (family === 'random') {
    rng.bytes(16).copy(c);
    return { cdb: c, dir: rng.pick<Dir>(['read', 'write', 'none']), bytes: rng.size(1 << 16), name: `random-cdb-${c[0]!.toString(16)}` };
  }
  const op = rng.pick(
    family === 'read' ? READS : family === 'write' ? WRITES : family === 'verify' ? VERIFIES : family === 'in' ? DATA_IN_OTHERS : family === 'out' ? DATA_OUT_OTHERS : NO_DATA,
  );
  c[0] = op;
  let dir: Dir = family === 'read' || family === 'in' ? 'read' : family === 'write' || family === 'out' ? 'write' : 'none';
  let bytes = 0;
  if (family === 'read' || family === 'write' || family === 'verify') {
    const blocks = rng.weighted<number>([
      [rng.range(1, 16), 60],
      [0, 5],
      [rng.size(4096), 25],
      [rng.u32() & 0xffff, 10],
    ]);
    const lba = rng.weighted<number>([
      [rng.int(Math.max(1, totalBlocks - 16)), 70],
      [Math.max(0, totalBlocks - rng.range(0, 32)), 15],
      [rng.u32(), 10],
      [rng.u32() * 0x10000 + rng.int(0x10000), 5],
    ]);
    placeRange(c, op, lba, blocks);
    if (rng.chance(0.3)) c[1] = rng.u32() & 0xff; // DPO, FUA, BYTCHK, protection...
    bytes = op === 0x89 ? blocks * 2 * 512 : blocks * 512;
    if (family === 'verify') {
      // BYTCHK set: VERIFY takes data-out.
      dir = (c[1]! & 0x06) !== 0 ? 'write' : 'none';
      if (dir === 'none') bytes = 0;
    }
  } else if (dir !== 'none') {
    bytes = rng.size(1 << 15);
    // Allocation / parameter list length where most commands keep it.
    if (op === 0x12 || op === 0x1a || op === 0x03 || op === 0x15 || op === 0x1d) c.writeUInt16BE(bytes & 0xffff, 3);
    else if (op === 0x5a || op === 0x55 || op === 0x5e || op === 0x5f || op === 0x42 || op === 0x4d) c.writeUInt16BE(bytes & 0xffff, 7);
    else c.writeUInt32BE(bytes, 10);
    if (op === 0x12 && rng.chance(0.5)) {
      c[1] = 1; // EVPD
      c[2] = rng.pick([0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2, 0xb3, rng.u32() & 0xff]);
    }
    if (op === 0x9e || op === 0xa3 || op === 0xa4 || op === 0x5e || op === 0x5f || op === 0x84 || op === 0x83) c[1] = rng.weighted([[rng.int(0x20), 8], [rng.u32() & 0xff, 2]]);
    if (op === 0x1a || op === 0x5a) c[2] = rng.u32() & 0xff; // page control and code
  } else if (op === 0x34 || op === 0x90 || op === 0x35 || op === 0x91) {
    placeRange(c, op, rng.int(totalBlocks + 8), rng.size(totalBlocks));
  } else if (op === 0x1b) {
    c[4] = rng.u32() & 0xff;
  }
  // A few random bytes anywhere in one CDB of five.
  if (rng.chance(0.2)) for (let i = rng.range(1, 3); i > 0; i--) c[rng.int(16)] = rng.u32() & 0xff;
  return { cdb: c, dir, bytes, name: `cdb-${op.toString(16)}` };
}

/* ---------------- full feature phase ---------------- */

function lun(rng: Prng): Buffer {
  return rng.weighted<Buffer>([
    [Buffer.alloc(8), 85],
    [Buffer.from([0, rng.range(1, 3), 0, 0, 0, 0, 0, 0]), 5],
    [Buffer.from([0x40 | rng.int(0x40), rng.u32() & 0xff, 0, 0, 0, 0, 0, 0]), 3],
    [rng.bytes(8), 7],
  ]);
}

function newItt(s: FfpState): number {
  const v = s.nextItt;
  s.nextItt = s.nextItt >= 0x6fffffff ? 0x10000000 : s.nextItt + 1;
  return v;
}

/** CmdSN for a non-immediate PDU: usually the next one (and consume it), sometimes anything. */
function cmdSN(s: FfpState, immediate: boolean): number {
  const r = s.rng;
  if (r.chance(0.08)) return r.weighted<number>([[r.u32(), 1], [(s.cmdSN + r.range(1, 200)) >>> 0, 2], [(s.cmdSN - r.range(1, 50)) >>> 0, 1]]);
  const sn = s.cmdSN;
  if (!immediate) s.cmdSN = (s.cmdSN + 1) >>> 0;
  return sn;
}

function remember(s: FfpState, e: FfpState['recent'][number]): void {
  s.recent.push(e);
  if (s.recent.length > 64) s.recent.shift();
}

function randomAhs(rng: Prng, cdbTail: boolean): Buffer {
  const kind = rng.weighted<'ext' | 'bidi' | 'random' | 'liar'>([
    ['ext', 4],
    ['bidi', 3],
    ['random', 2],
    ['liar', 2],
  ]);
  let body: Buffer;
  if (kind === 'ext' || (kind === 'random' && cdbTail)) {
    const extra = rng.range(1, 48);
    body = Buffer.alloc(4 + extra);
    body.writeUInt16BE(extra + 1, 0);
    body[2] = 1;
    rng.bytes(extra).copy(body, 4);
  } else if (kind === 'bidi') {
    body = Buffer.alloc(8);
    body.writeUInt16BE(rng.chance(0.8) ? 5 : rng.int(16), 0);
    body[2] = 2;
    body.writeUInt32BE(rng.u32(), 4);
  } else if (kind === 'random') {
    body = rng.bytes(rng.range(1, 40));
  } else {
    body = rng.bytes(rng.range(4, 20));
    body.writeUInt16BE(rng.u32() & 0xffff, 0); // AHSLength running past the header
  }
  return Buffer.concat([body, Buffer.alloc(pad4(body.length))]).subarray(0, 1020);
}

function scsiShot(s: FfpState): { pdu: Pdu; kind: string } {
  const r = s.rng;
  const { cdb, dir, bytes, name } = randomCdb(r, s.blocks);
  const edtl = r.weighted<number>([
    [bytes, 75],
    [r.size(1 << 20), 15],
    [r.u32(), 3],
    [0, 7],
  ]);
  const read = r.chance(0.05) ? r.chance(0.5) : dir === 'read';
  const write = r.chance(0.05) ? r.chance(0.5) : dir === 'write';
  let data: Buffer = Buffer.alloc(0);
  if ((write && s.n.immediateData && r.chance(0.7)) || r.chance(0.03)) {
    const want = r.chance(0.85) ? Math.min(edtl, s.n.firstBurstLength) : r.size(s.n.firstBurstLength * 2);
    data = r.bytes(Math.min(want, s.n.targetMaxRecv));
  }
  const immediate = r.chance(0.1);
  const itt = r.chance(0.04) && s.recent.length > 0 ? r.pick(s.recent).itt : newItt(s);
  const sn = cmdSN(s, immediate);
  remember(s, { itt, cmdSN: sn, edtl, write, sent: data.length });
  const pdu = scsiCommand({
    itt,
    cdb,
    edtl,
    read,
    write,
    final: r.chance(0.9),
    attr: r.weighted<number>([[1, 80], [0, 5], [2, 5], [3, 5], [4, 3], [r.int(8), 2]]),
    lun: lun(r),
    cmdSN: sn,
    expStatSN: s.expStatSN,
    immediate,
    data,
    ...(r.chance(0.06) ? { ahs: randomAhs(r, cdb[0]! >= 0xc0) } : {}),
  });
  return { pdu, kind: `scsi:${name}` };
}

/** Data-Out answering a seen R2T (usually correctly), unsolicited data for a recent write, or random fields. */
function dataOutShot(s: FfpState): { pdus: Pdu[]; kind: string } {
  const r = s.rng;
  const source = r.weighted<'r2t' | 'unsolicited' | 'random'>([
    ['r2t', s.r2ts.length > 0 ? 6 : 0],
    ['unsolicited', s.recent.some((c) => c.write) ? 2 : 0],
    ['random', 2],
  ]);
  const max = s.n.targetMaxRecv;
  if (source === 'r2t') {
    const r2t = s.r2ts.splice(r.int(s.r2ts.length), 1)[0]!;
    const length = Math.min(r2t.length, 256 * 1024);
    const out: Pdu[] = [];
    let dataSN = 0;
    const broken = r.chance(0.2) ? r.int(6) : -1;
    for (let at = r2t.offset; at < r2t.offset + length; ) {
      const n = Math.min(r.chance(0.7) ? max : r.range(1, max), r2t.offset + length - at);
      let f = { itt: r2t.itt, ttt: r2t.ttt, final: at + n >= r2t.offset + length, dataSN: dataSN++, offset: at, expStatSN: s.expStatSN, data: r.bytes(n), lun: r2t.lun };
      if (broken >= 0 && r.chance(0.3)) {
        const field = broken;
        f = {
          ...f,
          ...(field === 0 ? { dataSN: r.u32() } : {}),
          ...(field === 1 ? { offset: r.u32() } : {}),
          ...(field === 2 ? { ttt: r.u32() } : {}),
          ...(field === 3 ? { final: !f.final } : {}),
          ...(field === 4 ? { itt: r.u32() } : {}),
          ...(field === 5 ? { data: r.bytes(Math.min(max, n + r.range(1, 4096))) } : {}),
        };
      }
      out.push(dataOut(f));
      at += n;
      if (out.length >= 64) break;
    }
    return { pdus: out, kind: broken >= 0 ? `data-out:r2t-broken-${broken}` : 'data-out:r2t' };
  }
  if (source === 'unsolicited') {
    const c = r.pick(s.recent.filter((x) => x.write));
    const n = Math.min(max, r.chance(0.8) ? Math.max(1, Math.min(s.n.firstBurstLength, c.edtl) - c.sent) : r.range(1, max));
    const pdu = dataOut({ itt: c.itt, ttt: RESERVED, final: r.chance(0.7), dataSN: r.chance(0.8) ? 0 : r.u32(), offset: r.chance(0.8) ? c.sent : r.u32(), expStatSN: s.expStatSN, data: r.bytes(Math.max(0, n)) });
    c.sent += n;
    return { pdus: [pdu], kind: 'data-out:unsolicited' };
  }
  const pdu = dataOut({
    itt: r.chance(0.5) && s.recent.length ? r.pick(s.recent).itt : r.u32(),
    ttt: r.chance(0.5) ? RESERVED : r.u32(),
    final: r.chance(0.5),
    dataSN: r.size(1 << 20),
    offset: r.size(1 << 24),
    expStatSN: r.u32(),
    data: r.bytes(r.size(Math.min(max, 16384))),
    lun: lun(r),
  });
  return { pdus: [pdu], kind: 'data-out:random' };
}

const TMF_FUNCS: ReadonlyArray<readonly [number, number]> = [
  [1, 30],
  [2, 10],
  [3, 4],
  [4, 5],
  [5, 8],
  [6, 2],
  [7, 0.2],
  [8, 3],
  [0, 2],
  [15, 1],
  [0x7f, 1],
];

function tmfShot(s: FfpState): { pdu: Pdu; kind: string } {
  const r = s.rng;
  const func = r.weighted(TMF_FUNCS);
  const ref = s.recent.length > 0 && r.chance(0.7) ? r.pick(s.recent) : { itt: r.u32(), cmdSN: (s.cmdSN + r.range(-5, 5)) >>> 0 };
  const immediate = r.chance(0.7);
  const pdu = taskMgmt({
    func,
    itt: newItt(s),
    refItt: func === 1 ? ref.itt : r.chance(0.8) ? RESERVED : r.u32(),
    cmdSN: cmdSN(s, immediate),
    expStatSN: s.expStatSN,
    refCmdSN: r.chance(0.8) ? ref.cmdSN : r.u32(),
    expDataSN: r.size(16),
    lun: lun(r),
    immediate,
  });
  return { pdu, kind: `tmf:${func}` };
}

const TEXT_KEYS = ['SendTargets', 'MaxRecvDataSegmentLength', 'HeaderDigest', 'TargetAlias', 'InitiatorName', 'X-com.example.fuzz', 'X#vendor', 'TaskReporting', 'MaxBurstLength'];

function randomTextPayload(r: Prng): Buffer {
  return r.weighted<() => Buffer>([
    [() => textData([['SendTargets', 'All']]), 6],
    [() => textData([['SendTargets', r.pick(['', 'iqn.2026-11.io.twinsan:fuzz', 'iqn.nope', 'x'.repeat(r.size(600))])]]), 3],
    [() => textData(Array.from({ length: r.range(1, 6) }, () => [r.pick(TEXT_KEYS), r.pick(['All', 'Yes', 'No', '1', String(r.u32()), '', 'x'.repeat(r.size(400))])] as [string, string])), 4],
    [() => Buffer.from('SendTargets=All'), 1], // no NUL
    [() => Buffer.from('=\0==\0a\0'), 1],
    [() => r.bytes(r.size(2048)), 2],
  ])();
}

function textShot(s: FfpState): { pdu: Pdu; kind: string } {
  const r = s.rng;
  const cont = s.textTtts.length > 0 && r.chance(0.5);
  const ttt = cont ? s.textTtts.shift()! : r.chance(0.85) ? RESERVED : r.u32();
  const immediate = r.chance(0.5);
  const pdu = textRequest({
    itt: newItt(s),
    ttt,
    final: r.chance(0.85),
    cont: r.chance(0.1),
    cmdSN: cmdSN(s, immediate),
    expStatSN: s.expStatSN,
    immediate,
    data: cont && r.chance(0.8) ? Buffer.alloc(0) : randomTextPayload(r).subarray(0, s.n.targetMaxRecv),
  });
  return { pdu, kind: cont ? 'text:continue' : 'text' };
}

function nopShot(s: FfpState): { pdu: Pdu; kind: string } {
  const r = s.rng;
  const itt = r.weighted<number>([[newItt(s), 6], [RESERVED, 2], [r.u32(), 2]]);
  // A NOP-Out with the reserved ITT must be immediate (the target closes otherwise); keep that rare.
  const immediate = itt === RESERVED ? r.chance(0.97) : r.chance(0.5);
  const pdu = nopOut({
    itt,
    ttt: r.chance(0.8) ? RESERVED : r.u32(),
    cmdSN: cmdSN(s, immediate || itt === RESERVED),
    expStatSN: s.expStatSN,
    immediate,
    lun: lun(r),
    data: r.bytes(r.size(Math.min(4096, s.n.targetMaxRecv))),
  });
  return { pdu, kind: itt === RESERVED ? 'nop-out:reserved-itt' : 'nop-out' };
}

function randomBhsShot(s: FfpState): { pdu: Pdu; kind: string } {
  const r = s.rng;
  const b = r.bytes(BHS);
  const known = [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x10];
  const op = r.chance(0.6) ? r.pick(known) : r.pick([...Array(64).keys()].filter((o) => !known.includes(o) && o !== 0x03));
  b[0] = (b[0]! & 0x40) | op;
  return { pdu: { bhs: b, ahs: Buffer.alloc(0), data: r.bytes(r.size(Math.min(2048, s.n.targetMaxRecv))) }, kind: `random-bhs:${op.toString(16)}` };
}

/** In-sync mutation: flip bits in the BHS outside the length fields (bytes 4-7), or in the data. */
function flipInSync(r: Prng, pdu: Pdu): Pdu {
  const b = Buffer.from(pdu.bhs);
  for (let i = r.range(1, 3); i > 0; i--) {
    let at = r.int(BHS - 4);
    if (at >= 4) at += 4;
    b[at]! ^= 1 << r.int(8);
  }
  const data = pdu.data.length > 0 && r.chance(0.3) ? Buffer.from(pdu.data) : pdu.data;
  if (data !== pdu.data) data[r.int(data.length)]! ^= 1 << r.int(8);
  // The opcode may now read as Login (a fatal protocol error in full feature phase); that is fine.
  return { bhs: b, ahs: pdu.ahs, data };
}

type Escalation = 'none' | 'bad-header-digest' | 'bad-data-digest' | 'over-mrdsl' | 'truncate' | 'length-lie' | 'bit-flips' | 'garbage';

/**
 * Serialize with the connection's digests, maybe escalating to a fatal or
 * desynchronising change. `escalate` is the probability of any escalation.
 */
export function finishShot(r: Prng, pdus: Pdu[], kind: string, digests: Digests, maxRecv: number, escalate: number): Shot {
  let esc: Escalation = 'none';
  if (r.chance(escalate)) {
    esc = r.weighted<Escalation>([
      ['bad-header-digest', digests.header ? 3 : 0],
      ['bad-data-digest', digests.data && pdus.some((p) => p.data.length > 0) ? 3 : 0],
      ['over-mrdsl', 3],
      ['truncate', 2],
      ['length-lie', 2],
      ['bit-flips', 2],
      ['garbage', 1],
    ]);
  }
  const last = pdus.length - 1;
  if (esc === 'over-mrdsl') {
    const p = pdus[last]!;
    pdus[last] = { ...p, data: r.bytes(maxRecv + 1 + r.size(8192)) };
  }
  let lastWithData = -1;
  pdus.forEach((p, i) => {
    if (p.data.length > 0) lastWithData = i;
  });
  const parts = pdus.map((p, i) =>
    serialize(p, digests, {
      header: esc === 'bad-header-digest' && i === last,
      data: esc === 'bad-data-digest' && i === lastWithData,
    }),
  );
  let bytes = Buffer.concat(parts);
  switch (esc) {
    case 'truncate':
      bytes = bytes.subarray(0, r.int(bytes.length));
      break;
    case 'length-lie': {
      const at = bytes.length - parts[last]!.length;
      bytes = Buffer.from(bytes);
      if (r.chance(0.5)) bytes[at + 4] = r.u32() & 0xff;
      else bytes.writeUIntBE(r.size(Math.max(1, maxRecv)), at + 5, 3);
      break;
    }
    case 'bit-flips':
      bytes = Buffer.from(bytes);
      for (let i = r.range(1, 8); i > 0; i--) bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
      break;
    case 'garbage':
      bytes = Buffer.concat([bytes, r.bytes(r.range(1, 300))]);
      break;
    default:
      break;
  }
  const fate: Fate = esc === 'none' ? 'in-sync' : esc === 'bad-header-digest' || esc === 'bad-data-digest' || esc === 'over-mrdsl' ? 'fatal' : 'desync';
  return { bytes, kind: esc === 'none' ? kind : `${kind}+${esc}`, fate, pdus: pdus.length };
}

/** One full-feature-phase shot. */
export function ffpShot(s: FfpState, escalate: number): Shot {
  const r = s.rng;
  const which = r.weighted<string>([
    ['scsi', s.discovery ? 5 : 36],
    ['data-out', s.discovery ? 2 : 18],
    ['nop', 9],
    ['tmf', 8],
    ['text', s.discovery ? 20 : 7],
    ['snack', 3],
    ['random-bhs', 5],
    ['logout', 0.15],
    ['login', 0.1],
  ]);
  let pdus: Pdu[];
  let kind: string;
  switch (which) {
    case 'scsi':
      ({ pdu: pdus, kind } = wrap(scsiShot(s)));
      break;
    case 'data-out':
      ({ pdus, kind } = dataOutShot(s));
      break;
    case 'nop':
      ({ pdu: pdus, kind } = wrap(nopShot(s)));
      break;
    case 'tmf':
      ({ pdu: pdus, kind } = wrap(tmfShot(s)));
      break;
    case 'text':
      ({ pdu: pdus, kind } = wrap(textShot(s)));
      break;
    case 'snack':
      pdus = [snackRequest({ type: r.int(16), itt: r.u32(), ttt: r.u32(), expStatSN: s.expStatSN, begRun: r.size(64), runLength: r.size(64) })];
      kind = 'snack';
      break;
    case 'random-bhs':
      ({ pdu: pdus, kind } = wrap(randomBhsShot(s)));
      break;
    case 'logout':
      pdus = [logoutRequest({ reason: r.weighted<number>([[0, 3], [1, 3], [2, 2], [r.int(128), 1]]), itt: newItt(s), cid: r.chance(0.7) ? 0 : r.int(0x10000), cmdSN: s.cmdSN, expStatSN: s.expStatSN, immediate: r.chance(0.5) })];
      kind = 'logout';
      break;
    default:
      pdus = [loginRequest({ transit: true, csg: 1, nsg: 3, isid: r.bytes(6), itt: newItt(s), cmdSN: s.cmdSN, expStatSN: s.expStatSN, data: textData([['InitiatorName', 'iqn.2026-01.fuzz:late']]) })];
      kind = 'login-in-ffp';
  }
  if (r.chance(0.25)) {
    const i = r.int(pdus.length);
    pdus[i] = flipInSync(r, pdus[i]!);
    kind += '~flip';
  }
  return finishShot(r, pdus, kind, s.n.digests, s.n.targetMaxRecv, escalate);
}

function wrap(x: { pdu: Pdu; kind: string }): { pdu: Pdu[]; kind: string } {
  return { pdu: [x.pdu], kind: x.kind };
}

/* ---------------- login phase ---------------- */

const LOGIN_KEYS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['HeaderDigest', ['None', 'CRC32C', 'CRC32C,None', 'None,CRC32C', 'MD5', '']],
  ['DataDigest', ['None', 'CRC32C', 'CRC32C,None', 'bogus']],
  ['MaxRecvDataSegmentLength', ['512', '8192', '262144', '16777215', '16777216', '0', '-1', '0x1000', 'abc']],
  ['MaxBurstLength', ['512', '65536', '262144', '16777215', '0', '99999999999']],
  ['FirstBurstLength', ['512', '65536', '262144', '16777216']],
  ['InitialR2T', ['Yes', 'No', 'Maybe']],
  ['ImmediateData', ['Yes', 'No', '']],
  ['MaxConnections', ['1', '2', '65535', '0']],
  ['MaxOutstandingR2T', ['1', '4', '65535', '0']],
  ['DataPDUInOrder', ['Yes', 'No']],
  ['DataSequenceInOrder', ['Yes', 'No']],
  ['ErrorRecoveryLevel', ['0', '1', '2', '3']],
  ['DefaultTime2Wait', ['0', '2', '3600', '3601']],
  ['DefaultTime2Retain', ['0', '20', '3600']],
  ['IFMarker', ['No', 'Yes']],
  ['OFMarkInt', ['1~65535', '2048']],
  ['TaskReporting', ['RFC3720', 'FastAbort', 'x']],
  ['AuthMethod', ['None', 'CHAP', 'CHAP,None', 'KRB5', 'SRP']],
  ['CHAP_A', ['5', '7', '5,7']],
  ['CHAP_N', ['user', '']],
  ['CHAP_R', ['0x00', '0x' + 'ab'.repeat(16), '0b123']],
  ['CHAP_I', ['0', '300']],
  ['CHAP_C', ['0x' + '01'.repeat(16)]],
  ['TargetAlias', ['x']],
  ['TargetPortalGroupTag', ['1']],
  ['SendTargets', ['All']],
  ['X-org.fuzz', ['1']],
  ['X#fuzz', ['2']],
  ['Unknown', ['3']],
];

export interface LoginFuzzState {
  readonly rng: Prng;
  readonly targetName: string;
  readonly isid: Buffer;
  readonly itt: number;
  csg: number;
  step: number;
}

function loginKeys(r: Prng, first: boolean, targetName: string): Buffer {
  const pairs: Array<[string, string]> = [];
  if (first) {
    if (r.chance(0.95)) pairs.push(['InitiatorName', r.chance(0.9) ? `iqn.2026-01.fuzz:i${r.int(50)}` : r.pick(['', 'x'.repeat(300), 'iqn.ok'])]);
    const type = r.weighted<string>([['Normal', 7], ['Discovery', 2], ['Bogus', 1]]);
    if (r.chance(0.9)) pairs.push(['SessionType', type]);
    if (type !== 'Discovery' && r.chance(0.9)) pairs.push(['TargetName', r.chance(0.85) ? targetName : r.pick(['iqn.2026-11.io.twinsan:none', '', 'x'.repeat(r.size(400))])]);
    if (r.chance(0.8)) pairs.push(['AuthMethod', r.weighted<string>([['None', 7], ['CHAP', 1], ['CHAP,None', 1], ['', 1]])]);
  }
  for (let i = r.size(8); i > 0; i--) {
    const [k, vs] = r.pick(LOGIN_KEYS);
    pairs.push([k, r.chance(0.85) ? r.pick(vs) : r.pick([String(r.u32()), 'x'.repeat(r.size(300)), '', 'NotUnderstood'])]);
  }
  let data = textData(pairs);
  if (r.chance(0.05)) data = data.subarray(0, Math.max(0, data.length - 1)); // no final NUL
  if (r.chance(0.05)) data = Buffer.concat([data, r.bytes(r.size(512))]);
  if (r.chance(0.03)) data = Buffer.concat([data, data, data]); // repeated keys
  return data.subarray(0, 8192);
}

/** One login-phase shot: a plausible next Login Request, mutated. Pre-login the target's limit is 8192 bytes. */
export function loginShot(s: LoginFuzzState, lastResponse: { transit: boolean; nsg: number; cont: boolean } | null, escalate: number): Shot {
  const r = s.rng;
  if (lastResponse?.transit) s.csg = lastResponse.nsg;
  const plausible = r.chance(0.75);
  const csg = plausible ? s.csg : r.weighted<number>([[0, 3], [1, 3], [2, 1], [3, 1]]);
  const transit = plausible ? r.chance(0.85) : r.chance(0.5);
  const nsg = plausible ? (csg === 0 ? r.weighted<number>([[1, 6], [3, 3], [0, 1]]) : r.weighted<number>([[3, 9], [1, 1]])) : r.int(4);
  const first = s.step === 0;
  const data = lastResponse?.cont && r.chance(0.7) ? Buffer.alloc(0) : loginKeys(r, first, s.targetName);
  const pdu = loginRequest({
    transit,
    cont: r.chance(0.06),
    csg,
    nsg,
    isid: r.chance(0.95) ? s.isid : r.bytes(6),
    tsih: r.chance(0.93) ? 0 : r.weighted<number>([[1, 3], [r.int(0x10000), 1]]),
    itt: r.chance(0.95) ? s.itt : r.u32(),
    cid: r.chance(0.9) ? 0 : r.int(0x10000),
    cmdSN: r.chance(0.9) ? 1 : r.u32(),
    expStatSN: r.u32(),
    data,
  });
  if (!plausible || r.chance(0.1)) {
    pdu.bhs[2] = r.chance(0.8) ? 0 : r.u32() & 0xff; // version-max
    pdu.bhs[3] = r.chance(0.8) ? 0 : r.u32() & 0xff; // version-min
  }
  s.step++;
  let pdus: Pdu[] = [pdu];
  let kind = plausible ? `login:csg${csg}` : 'login:wild';
  if (r.chance(0.2)) {
    pdus = [flipInSync(r, pdu)];
    kind += '~flip';
  }
  if (r.chance(0.05)) {
    // Not a login at all before the login completed.
    const op = r.pick([IOp.NOP_OUT, IOp.SCSI_COMMAND, IOp.TMF, IOp.TEXT, IOp.DATA_OUT, IOp.LOGOUT, IOp.SNACK, 0x1c]);
    const b = bhs(op, r.u32() & 0xff, r.chance(0.5));
    r.bytes(40).copy(b, 8);
    pdus = [{ bhs: b, ahs: Buffer.alloc(0), data: r.bytes(r.size(1024)) }];
    kind = `pre-login:${op.toString(16)}`;
  }
  if (r.chance(0.04)) {
    const p = pdus[0]!;
    pdus = [{ ...p, ahs: r.bytes(4 * r.range(1, 20)) }];
    kind += '+ahs';
  }
  return finishShot(r, pdus, kind, { header: false, data: false }, 8192, escalate);
}
