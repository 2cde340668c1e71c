// Persistent reservation steps for the e2e tests, run inside the initiator's
// namespace through scripts/lib/mini-initiator.mjs (libiscsi's CLI tools do
// not do PERSISTENT RESERVE). One login as INITIATOR (fixed ISID, so every
// run is the same I_T nexus), then the steps in order; one JSON line out:
//
//   {"steps":[{"step":"read-keys","generation":N,"keys":["00000000000abc01"]},
//             {"step":"write","status":"good"|"reservation-conflict"|"0x.."} ...]}
//
// Steps: register:KEY  reserve:KEY:TYPE  read-keys  read-reservation  write:LBA
// reserve10  release10 (SCSI-2 RESERVE (10) / RELEASE (10))  hold
// (KEY in hex; TYPE 1 WE, 3 EA, 5 WE-RO, 6 EA-RO). `hold` prints
// {"held":N} (N steps done) and waits, logged in and answering NOP-In
// pings, for a line on stdin before the next step: the session stays up
// while the test kills or moves the target under it. BUSY, UNIT ATTENTION
// and NOT READY (a takeover finishing) are retried for up to 30 s, and so
// are connection failures; anything else is reported as the step's status.
//
//   node pr-client.mjs HOST PORT TARGET INITIATOR STEP...

import { MiniInitiator, ScsiStatus, ScsiStatusError } from '../../../scripts/lib/mini-initiator.mjs';

const [host, port, target, initiatorName, ...steps] = process.argv.slice(2);
let DEADLINE = Date.now() + 30_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// One ISID per initiator name, the same on every run.
const isid = Buffer.from([0x80, 0x77, 0, 0, 0, 0]);
isid.writeUInt32BE([...initiatorName].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7), 2);

function retryable(err) {
  if (!(err instanceof ScsiStatusError)) return true; // connection trouble
  if (err.status === ScsiStatus.BUSY || err.status === ScsiStatus.TASK_SET_FULL) return true;
  return err.status === ScsiStatus.CHECK_CONDITION && (err.sense?.key === 0x6 || (err.sense?.key === 0x2 && err.sense.asc === 0x04));
}

async function connect() {
  for (;;) {
    const ini = new MiniInitiator({ host, port: Number(port), targetName: target, initiatorName, isid });
    try {
      await ini.connect();
      await ini.login();
      return ini;
    } catch (err) {
      ini.destroy();
      if (Date.now() > DEADLINE) throw err;
      await sleep(50);
    }
  }
}

let ini = await connect();

/** Runs `op`; retries what a takeover in progress answers; resolves with the data or the ScsiStatusError. */
async function run(op) {
  for (;;) {
    // The target dropped the connection while the client held (a move or a takeover): log in again, same ISID.
    if (ini.socket.destroyed) {
      ini.destroy();
      ini = await connect();
    }
    try {
      return await op(ini);
    } catch (err) {
      if (err instanceof ScsiStatusError && !retryable(err)) return err;
      if (Date.now() > DEADLINE) throw err;
      if (!(err instanceof ScsiStatusError)) {
        ini.destroy();
        ini = await connect();
      }
      await sleep(20);
    }
  }
}

function statusName(r) {
  if (!(r instanceof ScsiStatusError)) return 'good';
  if (r.status === ScsiStatus.RESERVATION_CONFLICT) return 'reservation-conflict';
  return `0x${r.status.toString(16)}${r.sense ? ` ${r.sense.key}/${r.sense.asc.toString(16)}/${r.sense.ascq.toString(16)}` : ''}`;
}

const out = [];
for (const step of steps) {
  const [name, a, b] = step.split(':');
  if (name === 'register') {
    // REGISTER AND IGNORE EXISTING KEY (6) with the key as SERVICE ACTION RESERVATION KEY.
    const r = await run((i) => i.persistentReserveOut(6, { serviceActionKey: BigInt(`0x${a}`) }));
    out.push({ step, status: statusName(r) });
  } else if (name === 'reserve') {
    const r = await run((i) => i.persistentReserveOut(1, { key: BigInt(`0x${a}`), type: Number(b) }));
    out.push({ step, status: statusName(r) });
  } else if (name === 'read-keys') {
    const r = await run((i) => i.persistentReserveIn(0));
    if (r instanceof ScsiStatusError) out.push({ step, status: statusName(r) });
    else {
      const n = r.readUInt32BE(4) / 8;
      const keys = Array.from({ length: n }, (_, k) => r.subarray(8 + 8 * k, 16 + 8 * k).toString('hex'));
      out.push({ step, status: 'good', generation: r.readUInt32BE(0), keys });
    }
  } else if (name === 'read-reservation') {
    const r = await run((i) => i.persistentReserveIn(1));
    if (r instanceof ScsiStatusError) out.push({ step, status: statusName(r) });
    else if (r.readUInt32BE(4) === 0) out.push({ step, status: 'good', generation: r.readUInt32BE(0), reservation: null });
    else out.push({ step, status: 'good', generation: r.readUInt32BE(0), reservation: { key: r.subarray(8, 16).toString('hex'), type: r[21] & 0x0f, scope: r[21] >> 4 } });
  } else if (name === 'reserve10' || name === 'release10') {
    const cdb = Buffer.alloc(10);
    cdb[0] = name === 'reserve10' ? 0x56 : 0x57;
    const r = await run((i) => i.command(cdb));
    out.push({ step, status: statusName(r) });
  } else if (name === 'hold') {
    process.stdout.write(`${JSON.stringify({ held: out.length })}\n`);
    await new Promise((resolve) => process.stdin.once('data', resolve).resume());
    process.stdin.pause(); // lets the client exit at the end
    DEADLINE = Date.now() + 30_000;
  } else if (name === 'write') {
    const r = await run((i) => i.write10(Number(a), Buffer.alloc(512, 0x5a)));
    out.push({ step, status: statusName(r) });
  } else {
    throw new Error(`unknown step ${step}`);
  }
}
await ini.logout();
process.stdout.write(`${JSON.stringify({ steps: out })}\n`);
