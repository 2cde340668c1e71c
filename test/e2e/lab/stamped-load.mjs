// A stamped-write workload for the e2e tests, run inside the initiator's
// namespace: `depth` writers keep WRITE (10)s of one `block` each going
// through one iSCSI session (scripts/lib/mini-initiator.mjs), cycling over
// `slots` slots; each block carries its sequence number and slot, so what
// reads back says which write it is.
//
// Like an initiator riding out a failover or a planned move, a write is
// retried (same bytes) on BUSY / TASK SET FULL, on UNIT ATTENTION and on
// NOT READY (ASC 04h: ALUA transitioning, becoming ready), and after the
// connection drops (reconnect, log in again, TEST UNIT READY until GOOD).
// Any other answer is an I/O error. Every gap between two consecutive
// acknowledgements is a pause; the longest ones are reported.
//
// "stop" on stdin: the writers finish, every slot's last acknowledged
// write is read back through a new session and compared byte for byte, and
// one JSON line goes to stdout. Progress lines ("acked N") go to stdout
// every 250 ms while it runs.
//
//   node stamped-load.mjs HOST PORT TARGET_IQN [slots=4096] [depth=4] [block=4096]

import { MiniInitiator, ScsiStatus, ScsiStatusError } from '../../../scripts/lib/mini-initiator.mjs';

const [host, portText, target, slotsText = '4096', depthText = '4', blockText = '4096'] = process.argv.slice(2);
if (!host || !portText || !target) {
  process.stderr.write('usage: stamped-load.mjs HOST PORT TARGET_IQN [slots] [depth] [block]\n');
  process.exit(2);
}
const port = Number(portText);
const slots = Number(slotsText);
const depth = Number(depthText);
const block = Number(blockText);
const SECTOR = 512;
const COMMAND_TIMEOUT_MS = 15_000;
const CONNECT_TIMEOUT_MS = 5_000;
const RETRY_DELAY_MS = 10;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The bytes of write `seq` (into slot seq % slots). */
function payload(seq) {
  const b = Buffer.alloc(block);
  for (let at = 0; at < block; at += 16) {
    b.write('TSANSTMP', at, 'latin1');
    b.writeUInt32BE(seq, at + 8);
    b.writeUInt32BE(seq % slots, at + 12);
  }
  return b;
}

const counts = { busy: 0, unitAttention: 0, notReady: 0, reconnects: 0, connectFailures: 0, loginFailures: 0, timeouts: 0 };
const loginRejections = [];
/** Each reconnect: when the session was found lost, how long until a new one was ready, connections refused meanwhile. */
const reconnectLog = [];
const ioErrors = [];
/** Slot → sequence number of its last acknowledged write. */
const lastAcked = new Map();
let acked = 0;
let lastAckAt = 0;
const gaps = [];
let stopping = false;
const t0 = performance.now();

/* ---------------- the session, reconnected on loss ---------------- */

let session = null; // { ini, alive }
let connecting = null;
let isidCounter = 1;

function newIsid() {
  const isid = Buffer.from([0x80, 0x12, 0x34, 0x56, 0x00, 0x00]);
  isid.writeUInt16BE(isidCounter, 4);
  return isid;
}

async function openSession(isid) {
  const ini = new MiniInitiator({ host, port, targetName: target, initiatorName: 'iqn.2026-11.io.twinsan.lab:stamped-load', isid });
  const timer = setTimeout(() => ini.destroy(), CONNECT_TIMEOUT_MS);
  try {
    await ini.connect();
    await ini.login();
  } catch (err) {
    ini.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const s = { ini, alive: true };
  ini.socket.on('close', () => (s.alive = false));
  // The new nexus' POWER ON / RESET unit attention, and NOT READY while a takeover finishes.
  for (let i = 0; ; i++) {
    try {
      await ini.command(Buffer.alloc(16));
      break;
    } catch (err) {
      if (!(err instanceof ScsiStatusError) || i > 200) throw err;
      await sleep(RETRY_DELAY_MS);
    }
  }
  return s;
}

/** The live session, (re)connecting as needed; retries until it has one. */
function live() {
  if (session?.alive) return Promise.resolve(session);
  connecting ??= (async () => {
    const lostAt = performance.now();
    const refusedBefore = counts.connectFailures;
    if (session) counts.reconnects++;
    for (;;) {
      try {
        // The same ISID: the new login reinstates the old session (same I_T nexus).
        session = await openSession(newIsid());
        if (counts.reconnects > 0 && reconnectLog.length < 20) {
          reconnectLog.push({ lostAtMs: Math.round(lostAt - t0), readyAfterMs: Math.round(performance.now() - lostAt), refused: counts.connectFailures - refusedBefore });
        }
        return session;
      } catch (err) {
        if (/login .* failed with status 0x(\w+)/.test(err.message)) {
          counts.loginFailures++;
          const code = /0x(\w+)/.exec(err.message)[1];
          if (loginRejections.length < 20) loginRejections.push({ atMs: Math.round(performance.now() - t0), status: code });
        } else counts.connectFailures++;
        await sleep(RETRY_DELAY_MS * 2);
      }
    }
  })().finally(() => (connecting = null));
  return connecting;
}

function withTimeout(p, s) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      counts.timeouts++;
      s.alive = false;
      s.ini.destroy();
      reject(new Error('command timed out'));
    }, COMMAND_TIMEOUT_MS);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

/** What to do about a failed command: 'retry' the same command, or 'error'. */
function classify(err, s) {
  if (!(err instanceof ScsiStatusError)) {
    // The connection went (closed, reset, timed out): reconnect and resend.
    s.alive = false;
    return 'retry';
  }
  if (err.status === ScsiStatus.BUSY || err.status === ScsiStatus.TASK_SET_FULL) {
    counts.busy++;
    return 'retry';
  }
  if (err.status === ScsiStatus.CHECK_CONDITION && err.sense?.key === 0x6) {
    counts.unitAttention++;
    return 'retry';
  }
  if (err.status === ScsiStatus.CHECK_CONDITION && err.sense?.key === 0x2 && err.sense.asc === 0x04) {
    counts.notReady++;
    return 'retry';
  }
  return 'error';
}

/* ---------------- the writers ---------------- */

let nextSeq = 0;

async function writer() {
  while (!stopping) {
    const seq = nextSeq++;
    const data = payload(seq);
    const lba = (seq % slots) * (block / SECTOR);
    for (;;) {
      const s = await live();
      try {
        await withTimeout(s.ini.write10(lba, data), s);
        const now = performance.now();
        if (lastAckAt > 0) gaps.push({ atMs: Math.round(lastAckAt - t0), ms: now - lastAckAt });
        if (gaps.length > 64) {
          gaps.sort((a, b) => b.ms - a.ms);
          gaps.length = 16;
        }
        lastAckAt = now;
        acked++;
        const prev = lastAcked.get(seq % slots);
        if (prev === undefined || prev < seq) lastAcked.set(seq % slots, seq);
        break;
      } catch (err) {
        if (classify(err, s) === 'error') {
          ioErrors.push({ seq, atMs: Math.round(performance.now() - t0), message: err.message });
          break;
        }
        await sleep(RETRY_DELAY_MS);
      }
    }
  }
}

async function verify() {
  const s = await openSession(Buffer.from([0x80, 0x12, 0x34, 0x57, 0x00, 0x01]));
  const mismatched = [];
  let checked = 0;
  const entries = [...lastAcked.entries()];
  const readOne = async ([slot, seq]) => {
    const got = await s.ini.read10(slot * (block / SECTOR), block / SECTOR);
    checked++;
    if (!got.equals(payload(seq))) {
      mismatched.push({ slot, expectedSeq: seq, found: got.subarray(0, 8).toString('latin1') === 'TSANSTMP' ? got.readUInt32BE(8) : null });
    }
  };
  for (let i = 0; i < entries.length; i += 16) await Promise.all(entries.slice(i, i + 16).map(readOne));
  await s.ini.logout();
  return { checked, mismatched: mismatched.slice(0, 20), mismatchCount: mismatched.length };
}

const progress = setInterval(() => process.stdout.write(`acked ${acked}\n`), 250);
const workers = Array.from({ length: depth }, () => writer());

let input = '';
process.stdin.on('data', async (d) => {
  input += d.toString();
  if (!input.includes('stop') || stopping) return;
  stopping = true;
  await Promise.all(workers);
  clearInterval(progress);
  const runMs = performance.now() - t0;
  session?.ini.destroy();
  let verified;
  try {
    verified = await verify();
  } catch (err) {
    verified = { error: err.message };
  }
  gaps.sort((a, b) => b.ms - a.ms);
  const result = {
    acked,
    runMs: Math.round(runMs),
    maxPauseMs: gaps.length ? Math.round(gaps[0].ms * 10) / 10 : null,
    longestPauses: gaps.slice(0, 5).map((g) => ({ atMs: g.atMs, ms: Math.round(g.ms * 10) / 10 })),
    counts,
    reconnects: reconnectLog,
    loginRejections,
    ioErrors: ioErrors.slice(0, 20),
    ioErrorCount: ioErrors.length,
    verify: verified,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
});
