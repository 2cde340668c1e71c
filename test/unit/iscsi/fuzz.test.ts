/**
 * Fuzzing the iSCSI target in process: an IscsiServer on a loopback port
 * serving two targets, each a real ScsiTargetDevice / LogicalUnit over a
 * MemoryBackingStore, sprayed by many connections at once with
 *   (a) random bytes,
 *   (b) mutated Login Requests (and other PDUs before login),
 *   (c) after a real login, with and without header and data digests, PDUs
 *       of every kind with random fields, bit flips, bad digests, data
 *       segments over MaxRecvDataSegmentLength, random AHS, truncation and
 *       lying length fields (see fuzz/generators.ts for what "in-sync",
 *       "fatal" and "desync" mean).
 * One well-behaved session on the other target is pinged throughout and
 * does WRITE + READ round trips; it must never fail. Afterwards a fresh
 * session must log in and round-trip data, the server's sessions and
 * connections must return to their baseline, the heap must not have grown
 * past a ceiling, no exception may have escaped, and every connection the
 * server closed must have been logged with its reason.
 *
 * Reproduce with TWINSAN_FUZZ_SEED=<seed> (printed); TWINSAN_FUZZ_PDUS sets
 * the PDU budget and TWINSAN_FUZZ_SECONDS the time limit (50 s) for longer
 * runs. Interleavings between connections are not deterministic,
 * each connection's own sequence is (its seed is in any finding).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackingStore } from '../../../src/block';
import { IscsiServer } from '../../../src/target/iscsi';
import { LogicalUnit, ScsiTargetDevice } from '../../../src/target/scsi';
import { FfpState, LoginFuzzState, ffpShot, loginShot } from './fuzz/generators';
import { InitiatorError, TestInitiator, rw10 } from './fuzz/initiator';
import { Prng } from './fuzz/prng';
import { RESERVED, TOp, nopOut } from './fuzz/wire';

const SEED = process.env['TWINSAN_FUZZ_SEED'] ? Number(process.env['TWINSAN_FUZZ_SEED']) >>> 0 : 0x5eed_1e55;
const PDU_BUDGET = Number(process.env['TWINSAN_FUZZ_PDUS'] ?? 110_000);
/** The storm stops at the budget or after this long, whichever comes first. */
const TIME_LIMIT_MS = Number(process.env['TWINSAN_FUZZ_SECONDS'] ?? 50) * 1000;
const WORKERS = 8;
/** Probability that a full-feature-phase shot is made fatal or desynchronising. */
const ESCALATE_FFP = 0.012;
const ESCALATE_LOGIN = 0.05;

const FUZZ_TARGET = 'iqn.2026-11.io.twinsan:fuzz';
const QUIET_TARGET = 'iqn.2026-11.io.twinsan:quiet';
const FUZZ_BLOCKS = 32_768; // 16 MiB of 512-byte blocks
const QUIET_BLOCKS = 8_192; // 4 MiB
const KEEPER_NAME = 'iqn.2026-01.io.twinsan.test:keeper';

/** Heap growth allowed between the baseline and the end, both measured after GC. */
const HEAP_GROWTH_CEILING = 48 * 1024 * 1024;
/** Peak RSS allowed during the storm (the two LUs are 20 MiB). */
const RSS_CEILING = 1024 * 1024 * 1024;

/** Pino output parsed line by line as it is written; only what the assertions need is kept. */
class LogCapture {
  lines = 0;
  readonly byMsg = new Map<string, number>();
  /** conn id → the reason of its "connection closed" line. */
  readonly closes = new Map<number, unknown>();
  readonly closeReasons = new Map<string, number>();
  readonly errors: string[] = [];

  write(line: string): void {
    this.lines++;
    const rec = JSON.parse(line) as { level: number; msg?: string; conn?: number; reason?: unknown };
    const msg = rec.msg ?? '';
    this.byMsg.set(msg, (this.byMsg.get(msg) ?? 0) + 1);
    if (msg === 'connection closed' && rec.conn !== undefined) {
      this.closes.set(rec.conn, rec.reason);
      const short = String(rec.reason).replace(/\d+/g, 'N').slice(0, 70);
      this.closeReasons.set(short, (this.closeReasons.get(short) ?? 0) + 1);
    }
    if (rec.level >= 50 && this.errors.length < 50) this.errors.push(line.trim());
  }
}

interface Finding {
  readonly seed: number;
  readonly mode: string;
  readonly what: string;
  readonly recent: readonly string[];
}

interface Stats {
  pdusSent: number;
  /** PDUs the target is known to have consumed: a later ping on the same connection was answered. */
  pdusConfirmed: number;
  connections: number;
  readonly byMode: Record<'random' | 'login' | 'ffp', { connections: number; pdus: number }>;
  ffpLogins: number;
  digestCombos: Map<string, number>;
  fatal: number;
  desync: number;
  targetClosed: number;
  readonly kinds: Map<string, number>;
  /** What the target sent back on full-feature connections: opcodes, SCSI statuses, Reject reasons. */
  readonly answers: Map<string, number>;
}

function newStats(): Stats {
  return {
    pdusSent: 0,
    pdusConfirmed: 0,
    connections: 0,
    byMode: { random: { connections: 0, pdus: 0 }, login: { connections: 0, pdus: 0 }, ffp: { connections: 0, pdus: 0 } },
    ffpLogins: 0,
    digestCombos: new Map(),
    fatal: 0,
    desync: 0,
    targetClosed: 0,
    kinds: new Map(),
    answers: new Map(),
  };
}

function tally(items: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}

function makeLu(blocks: number, volumeId: string): LogicalUnit {
  return new LogicalUnit({ store: new MemoryBackingStore(blocks * 512, { thin: true }), blockSize: 512, identity: { volumeId } });
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** WRITE(10) a random pattern and READ(10) it back; throws on any difference. */
async function roundTrip(ini: TestInitiator, rng: Prng, blocks: number, lbaLimit: number): Promise<void> {
  const lba = rng.int(lbaLimit - blocks);
  const data = rng.bytes(blocks * 512);
  const w = await ini.scsi(rw10(0x2a, lba, blocks), { write: data });
  if (w.response !== 0 || w.status !== 0) throw new InitiatorError(`WRITE(10) at ${lba}: response ${w.response} status 0x${w.status.toString(16)}`);
  const r = await ini.scsi(rw10(0x28, lba, blocks), { read: data.length });
  if (r.response !== 0 || r.status !== 0) throw new InitiatorError(`READ(10) at ${lba}: response ${r.response} status 0x${r.status.toString(16)}`);
  if (!r.dataIn.equals(data)) throw new InitiatorError(`READ(10) at ${lba} returned other data than written`);
}

/** TEST UNIT READY until GOOD, clearing the power-on unit attention. */
async function ready(ini: TestInitiator): Promise<number> {
  let status = -1;
  for (let i = 0; i < 8 && status !== 0; i++) status = (await ini.scsi(Buffer.alloc(16))).status;
  return status;
}

describe('iSCSI target under a PDU fuzz storm', () => {
  const capture = new LogCapture();
  const escaped: unknown[] = [];
  const onEscape = (err: unknown): void => void escaped.push(err);
  const stats = newStats();
  const findings: Finding[] = [];
  const keeperFailures: string[] = [];
  const keeper = { pings: 0, roundTrips: 0, maxPingMs: 0 };
  let server: IscsiServer;
  let port: number;
  let baseline: { heap: number; sessions: number; connections: number };
  let after: { heap: number; rss: number; peakRss: number; durationMs: number } = { heap: 0, rss: 0, peakRss: 0, durationMs: 0 };
  let keeperIni: TestInitiator;
  let fuzzLu: LogicalUnit;
  let clientConnections = 0;

  const connect = async (): Promise<TestInitiator> => {
    const ini = await TestInitiator.connect(port);
    clientConnections++;
    return ini;
  };

  /** Tally shots by what was generated, without the mutations ("scsi:cdb-28~flip+truncate" counts as "scsi:cdb-28"). */
  const countKind = (kind: string): void => {
    const k = kind.split(/[~+]/)[0]!;
    stats.kinds.set(k, (stats.kinds.get(k) ?? 0) + 1);
  };

  /* ---------------- the three kinds of fuzz connection ---------------- */

  async function randomBytes(rng: Prng, seed: number): Promise<void> {
    const ini = await connect();
    const n = rng.range(1, 12);
    for (let i = 0; i < n && !ini.isClosed; i++) {
      ini.writeRaw(rng.bytes(rng.chance(0.2) ? rng.range(1, 47) : rng.range(48, 1500)));
      stats.pdusSent++;
      stats.byMode.random.pdus++;
    }
    await ini.waitClosed(rng.range(5, 150));
    if (ini.protocolErrors.length) findings.push({ seed, mode: 'random', what: ini.protocolErrors.join('; '), recent: [] });
    ini.close();
  }

  async function loginPhase(rng: Prng, seed: number): Promise<void> {
    const ini = await connect();
    const st: LoginFuzzState = { rng, targetName: FUZZ_TARGET, isid: rng.bytes(6), itt: rng.u32(), csg: rng.chance(0.8) ? 0 : 1, step: 0 };
    const recent: string[] = [];
    let last: { transit: boolean; nsg: number; cont: boolean } | null = null;
    const steps = rng.range(1, 8);
    for (let i = 0; i < steps && !ini.isClosed; i++) {
      const shot = loginShot(st, last, ESCALATE_LOGIN);
      ini.writeRaw(shot.bytes);
      recent.push(shot.kind);
      stats.pdusSent += shot.pdus;
      stats.byMode.login.pdus += shot.pdus;
      countKind(shot.kind);
      if (shot.fate === 'desync') {
        stats.desync++;
        break;
      }
      if (shot.fate === 'fatal') {
        stats.fatal++;
        if (!(await ini.waitClosed(3000))) findings.push({ seed, mode: 'login', what: `target kept the connection after ${shot.kind}`, recent });
        break;
      }
      const resp = await ini.waitFor(() => true, 300);
      if (!resp) break;
      if (resp.opcode !== TOp.LOGIN_RESPONSE) {
        findings.push({ seed, mode: 'login', what: `target answered a login-phase PDU with opcode 0x${resp.opcode.toString(16)}`, recent });
        break;
      }
      const status = (resp.bhs[36]! << 8) | resp.bhs[37]!;
      if (status !== 0) {
        // A failed login must end the connection.
        if (!(await ini.waitClosed(6000))) findings.push({ seed, mode: 'login', what: `connection left open after login status 0x${status.toString(16)}`, recent });
        break;
      }
      last = { transit: (resp.flags & 0x80) !== 0, nsg: resp.flags & 3, cont: (resp.flags & 0x40) !== 0 };
      if (last.transit && last.nsg === 3) break; // a fuzzed login that got all the way in
    }
    if (ini.protocolErrors.length) findings.push({ seed, mode: 'login', what: ini.protocolErrors.join('; '), recent });
    ini.close();
  }

  async function fullFeature(rng: Prng, seed: number, stop: () => boolean): Promise<void> {
    const ini = await connect();
    const discovery = rng.chance(0.1);
    const hd = rng.chance(0.5);
    const dd = rng.chance(0.5);
    const isid = rng.bytes(6);
    isid[0] = 0x80 | (isid[0]! & 0x3f);
    try {
      await ini.login({
        initiatorName: `iqn.2026-01.io.twinsan.fuzz:ffp${rng.int(64)}`,
        ...(discovery ? {} : { targetName: FUZZ_TARGET }),
        isid,
        headerDigest: hd,
        dataDigest: dd,
        initialR2T: rng.chance(0.5),
        immediateData: rng.chance(0.8),
        maxRecvDataSegmentLength: rng.pick([512, 4096, 8192, 65536, 262144]),
        firstBurstLength: rng.pick([512, 4096, 65536, 262144]),
        maxBurstLength: rng.pick([4096, 65536, 262144, 1048576]),
      });
    } catch (err) {
      findings.push({ seed, mode: 'ffp', what: `well-formed login failed: ${(err as Error).message}`, recent: [] });
      ini.close();
      return;
    }
    stats.ffpLogins++;
    const combo = `${hd ? 'HD' : 'noHD'}/${dd ? 'DD' : 'noDD'}${discovery ? '/discovery' : ''}`;
    stats.digestCombos.set(combo, (stats.digestCombos.get(combo) ?? 0) + 1);
    const s: FfpState = {
      rng,
      n: ini.negotiated!,
      discovery,
      blocks: FUZZ_BLOCKS,
      r2ts: [],
      textTtts: [],
      recent: [],
      cmdSN: ini.cmdSN,
      expStatSN: ini.expStatSN,
      nextItt: 0x10000000,
    };
    ini.onPdu = (p) => {
      const answer =
        p.opcode === TOp.SCSI_RESPONSE
          ? `scsi-status-${p.bhs[3]!.toString(16)}${p.bhs[2] ? '-failure' : ''}`
          : p.opcode === TOp.DATA_IN && p.flags & 1
            ? `data-in-status-${p.bhs[3]!.toString(16)}`
            : p.opcode === TOp.REJECT
              ? `reject-${p.bhs[2]!.toString(16)}`
              : p.opcode === TOp.TMF_RESPONSE
                ? `tmf-response-${p.bhs[2]}`
                : `op-${p.opcode.toString(16)}`;
      stats.answers.set(answer, (stats.answers.get(answer) ?? 0) + 1);
      if (p.opcode === TOp.R2T && s.r2ts.length < 64) {
        s.r2ts.push({ itt: p.itt, ttt: p.ttt, offset: p.bhs.readUInt32BE(40), length: p.bhs.readUInt32BE(44), lun: Buffer.from(p.bhs.subarray(8, 16)) });
      }
      if (p.opcode === TOp.TEXT_RESPONSE && p.ttt !== RESERVED && s.textTtts.length < 8) s.textTtts.push(p.ttt);
      s.expStatSN = ini.expStatSN;
    };
    const recent: string[] = [];
    const maxShots = rng.range(20, 600);
    let shots = 0;
    while (shots < maxShots && !ini.isClosed && !stop()) {
      const batch = rng.range(1, 40);
      let fate: 'in-sync' | 'fatal' | 'desync' = 'in-sync';
      let last = '';
      let pdus = 0;
      // One write per batch: the target still sees the PDUs split at arbitrary points by TCP.
      ini.socket.cork();
      for (let i = 0; i < batch && !ini.isClosed; i++, shots++) {
        const shot = ffpShot(s, ESCALATE_FFP);
        ini.writeRaw(shot.bytes);
        pdus += shot.pdus;
        last = shot.kind;
        recent.push(shot.kind);
        if (recent.length > 12) recent.shift();
        countKind(shot.kind);
        if (shot.fate !== 'in-sync') {
          fate = shot.fate;
          break;
        }
      }
      ini.socket.uncork();
      stats.pdusSent += pdus;
      stats.byMode.ffp.pdus += pdus;
      if (fate === 'fatal') {
        stats.fatal++;
        if (!(await ini.waitClosed(6000))) findings.push({ seed, mode: 'ffp', what: `target kept the connection after ${last}`, recent: [...recent] });
        break;
      }
      if (fate === 'desync') {
        stats.desync++;
        await ini.waitClosed(rng.range(0, 150));
        break;
      }
      const pong = await ini.ping(8000);
      if (pong) {
        stats.pdusConfirmed += pdus;
        s.cmdSN = pong.expCmdSN;
        s.expStatSN = ini.expStatSN;
        continue;
      }
      if (!ini.isClosed) findings.push({ seed, mode: 'ffp', what: `HANG: NOP-Out ping unanswered for 8 s on an open connection (${combo})`, recent: [...recent] });
      else stats.targetClosed++;
      break;
    }
    if (ini.protocolErrors.length) findings.push({ seed, mode: 'ffp', what: ini.protocolErrors.join('; '), recent: [...recent] });
    ini.close();
  }

  /* ---------------- the well-behaved session ---------------- */

  async function keep(stop: () => boolean): Promise<void> {
    const rng = new Prng(SEED ^ 0x6b656570);
    for (let i = 0; !stop(); i++) {
      const t0 = Date.now();
      const pong = await keeperIni.ping(3000);
      if (!pong) {
        keeperFailures.push(`ping ${i} unanswered (${keeperIni.isClosed ? 'connection closed' : 'timeout'})`);
        return;
      }
      keeper.pings++;
      keeper.maxPingMs = Math.max(keeper.maxPingMs, Date.now() - t0);
      if (i % 8 === 0) {
        try {
          await roundTrip(keeperIni, rng, rng.range(1, 64), QUIET_BLOCKS);
          keeper.roundTrips++;
        } catch (err) {
          keeperFailures.push(`round trip ${keeper.roundTrips}: ${(err as Error).message}`);
          return;
        }
      }
      await sleep(10);
    }
  }

  beforeAll(async () => {
    process.on('uncaughtException', onEscape);
    process.on('unhandledRejection', onEscape);
    const log = pino({ level: 'info', base: null, timestamp: false }, capture);
    server = new IscsiServer({ log, timers: { loginTimeoutMs: 3000, nopInIntervalMs: 1000, nopInTimeoutMs: 3000 } });
    fuzzLu = makeLu(FUZZ_BLOCKS, '0f0f0f0f-1111-4222-8333-444455556666');
    server.addTarget({
      name: FUZZ_TARGET,
      device: new ScsiTargetDevice({ name: FUZZ_TARGET, luns: new Map([[0, fuzzLu], [1, makeLu(64, '0f0f0f0f-1111-4222-8333-444455556667')]]) }),
      allowedInitiators: null,
    });
    server.addTarget({
      name: QUIET_TARGET,
      device: new ScsiTargetDevice({ name: QUIET_TARGET, luns: new Map([[0, makeLu(QUIET_BLOCKS, '0f0f0f0f-1111-4222-8333-444455556668')]]) }),
      allowedInitiators: [KEEPER_NAME],
    });
    port = await server.listen('127.0.0.1', 0);

    keeperIni = await connect();
    await keeperIni.login({ initiatorName: KEEPER_NAME, targetName: QUIET_TARGET, headerDigest: true, dataDigest: true });
    expect(await ready(keeperIni)).toBe(0);
    baseline = { heap: heapAfterGc(), sessions: server.listSessions().length, connections: server.connectionCount };

    console.log(`fuzz: seed 0x${SEED.toString(16)} (TWINSAN_FUZZ_SEED=${SEED}), budget ${PDU_BUDGET} PDUs, ${WORKERS} workers, limit ${TIME_LIMIT_MS / 1000} s`);
    const t0 = Date.now();
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
    const stop = (): boolean => stats.pdusSent >= PDU_BUDGET || Date.now() - t0 > TIME_LIMIT_MS;
    let stormDone = false;
    const keeping = keep(() => stormDone);
    const master = new Prng(SEED);
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      const wrng = master.fork();
      while (!stop()) {
        const seed = wrng.u32();
        const rng = new Prng(seed);
        const mode = rng.weighted<'random' | 'login' | 'ffp'>([
          ['random', 2],
          ['login', 4],
          ['ffp', 5],
        ]);
        stats.connections++;
        stats.byMode[mode].connections++;
        try {
          if (mode === 'random') await randomBytes(rng, seed);
          else if (mode === 'login') await loginPhase(rng, seed);
          else await fullFeature(rng, seed, stop);
        } catch (err) {
          findings.push({ seed, mode, what: `fuzz connection threw: ${(err as Error).stack ?? String(err)} (worker ${w})`, recent: [] });
        }
      }
    });
    await Promise.all(workers);
    stormDone = true;
    await keeping;
    clearInterval(sampler);
    after = { ...after, peakRss, durationMs: Date.now() - t0 };
  }, TIME_LIMIT_MS + 60_000);

  afterAll(async () => {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
    keeperIni?.close();
    await server?.close();
    const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
    const top = (m: Map<string, number>, k = 12): string =>
      [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([x, n]) => `${x}=${n}`).join(', ');
    console.log(
      [
        `fuzz: seed 0x${SEED.toString(16)}: ${stats.pdusSent} PDUs sent (${stats.pdusConfirmed} confirmed consumed by a later ping) ` +
          `over ${stats.connections} connections in ${(after.durationMs / 1000).toFixed(1)} s`,
        `  by mode: ${Object.entries(stats.byMode).map(([m, v]) => `${m} ${v.connections} conns / ${v.pdus} PDUs`).join('; ')}`,
        `  full-feature logins ${stats.ffpLogins} (${top(stats.digestCombos)}), fatal shots ${stats.fatal}, desync shots ${stats.desync}, target-closed after in-sync ${stats.targetClosed}`,
        `  kinds: ${top(stats.kinds, 30)}`,
        `  target answers: ${top(stats.answers, 30)}`,
        `  keeper: ${keeper.pings} pings (max ${keeper.maxPingMs} ms), ${keeper.roundTrips} WRITE+READ round trips, failures: ${keeperFailures.length}`,
        `  memory: heap after GC ${mb(baseline?.heap ?? 0)} -> ${mb(after.heap)}, peak RSS ${mb(after.peakRss)}, gc ${typeof (globalThis as { gc?: unknown }).gc === 'function' ? 'exposed' : 'NOT exposed'}`,
        `  log: ${capture.lines} lines; close reasons: ${top(capture.closeReasons, 20)}`,
        `  findings: ${findings.length}${findings.length ? ` (${top(tally(findings.map((f) => f.what.replace(/\d+/g, 'N').slice(0, 120))), 10)})` : ''}`,
      ].join('\n'),
    );
  });

  it(`feeds at least ${PDU_BUDGET} PDUs of every kind, with and without digests, in bounded time`, () => {
    expect(stats.pdusSent).toBeGreaterThanOrEqual(Math.min(PDU_BUDGET, 100_000));
    expect(after.durationMs).toBeLessThan(TIME_LIMIT_MS + 10_000);
    expect([...stats.digestCombos.keys()]).toEqual(expect.arrayContaining(['noHD/noDD', 'HD/noDD', 'noHD/DD', 'HD/DD']));
    for (const k of ['scsi', 'data-out', 'nop-out', 'tmf', 'text', 'snack', 'logout', 'login', 'random-bhs']) {
      expect([...stats.kinds.keys()].some((x) => x.startsWith(k)), k).toBe(true);
    }
    expect(stats.byMode.random.connections).toBeGreaterThan(0);
    expect(stats.fatal).toBeGreaterThan(0);
  });

  it('found no crash, hang or protocol violation (findings name the connection seed)', () => {
    expect(escaped.map((e) => (e instanceof Error ? e.stack : String(e)))).toEqual([]);
    expect(findings.slice(0, 10)).toEqual([]);
    expect(capture.errors).toEqual([]);
  });

  it('kept the well-behaved session on the other target working throughout', () => {
    expect(keeperFailures).toEqual([]);
    expect(keeper.pings).toBeGreaterThan(10);
    expect(keeper.roundTrips).toBeGreaterThan(2);
  });

  it('returns to its baseline of sessions and connections once the fuzzers are gone', async () => {
    await until('the fuzzed connections to close', () => server.connectionCount === baseline.connections, 15_000).catch(() => undefined);
    expect(server.connectionCount).toBe(baseline.connections);
    expect(server.listSessions().map((s) => s.initiatorName)).toEqual([KEEPER_NAME]);
    expect(server.listSessions()).toHaveLength(baseline.sessions);
    // The fuzzed LU forgot every I_T nexus (unit attention queues, task sets) with its session.
    expect(fuzzLu.unitAttentions.nexusKeys()).toEqual([]);
  });

  it('lets a fresh session log in and round-trip data on both targets after the storm', async () => {
    const rng = new Prng(SEED ^ 0xf2e54);
    const fresh = await connect();
    await fresh.login({ initiatorName: KEEPER_NAME, targetName: QUIET_TARGET, isid: Buffer.from([0x80, 0, 0, 0, 0, 9]), maxRecvDataSegmentLength: 8192 });
    expect(await ready(fresh)).toBe(0);
    await roundTrip(fresh, rng, 512, QUIET_BLOCKS); // 256 KiB: several R2Ts and Data-In PDUs
    expect(await fresh.logout()).toBe(true);
    // The fuzzed target's LU may have been reserved, reset or write protected by the storm: it must answer, whatever the status.
    const other = await connect();
    await other.login({ initiatorName: 'iqn.2026-01.io.twinsan.test:after', targetName: FUZZ_TARGET });
    const tur = await other.scsi(Buffer.alloc(16));
    expect(tur.response).toBe(0);
    // Nothing left holding the LBA range lock or the task set: a READ and a WRITE over the LU's start get answered.
    expect((await other.scsi(rw10(0x28, 0, 64), { read: 64 * 512 })).response).toBe(0);
    expect((await other.scsi(rw10(0x2a, 0, 64), { write: Buffer.alloc(64 * 512, 0x77) })).response).toBe(0);
    expect(await other.logout()).toBe(true);
    expect(await keeperIni.ping(3000)).not.toBeNull();
    await until('the fresh connections to close', () => server.connectionCount === baseline.connections, 5000);
  });

  it('keeps the heap bounded', () => {
    after.heap = heapAfterGc();
    after.rss = process.memoryUsage().rss;
    expect(after.heap - baseline.heap).toBeLessThan(HEAP_GROWTH_CEILING);
    expect(after.peakRss).toBeLessThan(RSS_CEILING);
  });

  it('logged a reason for every connection it closed', async () => {
    expect(await keeperIni.logout()).toBe(true);
    await until('every connection to close', () => server.connectionCount === 0, 5000);
    expect(server.listSessions()).toEqual([]);
    await until('a close line per connection', () => capture.closes.size >= clientConnections, 5000).catch(() => undefined);
    expect(capture.closes.size).toBe(clientConnections);
    const missing = [...capture.closes].filter(([, reason]) => typeof reason !== 'string' || reason.length === 0);
    expect(missing).toEqual([]);
  });
});

describe('regressions found by the fuzzer', () => {
  let server: IscsiServer;
  let port: number;

  beforeAll(async () => {
    server = new IscsiServer({ log: pino({ level: 'silent' }) });
    server.addTarget({
      name: QUIET_TARGET,
      device: new ScsiTargetDevice({ name: QUIET_TARGET, luns: new Map([[0, makeLu(64, '0f0f0f0f-1111-4222-8333-444455556669')]]) }),
      allowedInitiators: null,
    });
    port = await server.listen('127.0.0.1', 0);
  });

  afterAll(async () => {
    await server?.close();
  });

  it('rejects NOP-Out ping data longer than the initiator may receive back, and carries on', async () => {
    const ini = await TestInitiator.connect(port);
    try {
      await ini.login({ initiatorName: 'iqn.2026-01.io.twinsan.test:nop', targetName: QUIET_TARGET, maxRecvDataSegmentLength: 512 });
      const reject = ini.waitFor((p) => p.opcode === TOp.REJECT, 3000);
      ini.send(nopOut({ itt: 0x77, ttt: RESERVED, cmdSN: ini.cmdSN, expStatSN: ini.expStatSN, immediate: true, data: Buffer.alloc(4096, 0xa5) }));
      const r = await reject;
      expect(r?.bhs[2]).toBe(0x04); // protocol error
      expect(r?.data.readUInt32BE(16)).toBe(0x77); // the rejected header, quoted
      expect(ini.protocolErrors).toEqual([]);
      // 512 bytes of ping data come back whole.
      const echo = ini.waitFor((p) => p.opcode === TOp.NOP_IN && p.itt === 0x78, 3000);
      ini.send(nopOut({ itt: 0x78, ttt: RESERVED, cmdSN: ini.cmdSN, expStatSN: ini.expStatSN, immediate: true, data: Buffer.alloc(512, 0x5a) }));
      expect((await echo)?.data.equals(Buffer.alloc(512, 0x5a))).toBe(true);
    } finally {
      ini.close();
    }
  });
});
