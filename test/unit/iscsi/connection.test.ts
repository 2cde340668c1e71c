/**
 * End-to-end tests of the connection state machine (src/target/iscsi/
 * connection.ts, server.ts): login, digests, NOP-In liveness, logout,
 * session reinstatement, malformed input and graceful shutdown, driven over
 * TCP by the hand-built initiator in harness/initiator.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ConnectionClosedError,
  Op,
  RESERVED,
  TEST_INITIATOR,
  TEST_UNIT_READY,
  TestInitiator,
  keyText,
  pattern,
  read10,
  senseTriple,
  write10,
} from './harness/initiator';
import { BLOCK, TARGET, TestTarget, TestTargetOptions, startTestTarget } from './harness/fake-device';

// Every read has its own timeout; this bounds a test that still hangs.
vi.setConfig({ testTimeout: 10_000, hookTimeout: 10_000 });

/* ---------------- no stray exceptions anywhere in the suite ---------------- */

const stray: unknown[] = [];
const onStray = (err: unknown): void => {
  stray.push(err);
};
beforeAll(() => {
  process.on('uncaughtException', onStray);
  process.on('unhandledRejection', onStray);
});
afterAll(() => {
  process.off('uncaughtException', onStray);
  process.off('unhandledRejection', onStray);
  expect(stray).toEqual([]);
});

/* ---------------- fixture ---------------- */

let target: TestTarget | null = null;

async function serve(options: TestTargetOptions = {}): Promise<TestTarget> {
  target = await startTestTarget(options);
  return target;
}

afterEach(async () => {
  await target?.stop();
  target = null;
});

const CHAP = { user: 'alice', secret: 'alice-secret-0123' } as const;
const MUTUAL = { user: 'alice', secret: 'alice-secret-0123', mutualUser: 'disk0', mutualSecret: 'target-secret-4567' } as const;

/** Clear the power-on unit attention a new nexus sees first. */
async function clearUnitAttention(c: TestInitiator): Promise<void> {
  const r = await c.run({ cdb: TEST_UNIT_READY, edtl: 0 });
  expect(senseTriple(r.sense)?.[0]).toBe(0x6);
}

/* ---------------- login ---------------- */

describe('login', () => {
  it('logs in to a normal session: TSIH assigned, StatSN counts from ExpStatSN, ExpCmdSN is the login CmdSN', async () => {
    const t = await serve();
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET });
    expect(out.status).toEqual([0, 0]);
    expect(out.tsih).toBeGreaterThan(0);
    // Our first login carried ExpStatSN 0: the responses take StatSN 0, 1, ...
    expect(out.responses.map((r) => r.statSN)).toEqual(out.responses.map((_, i) => i));
    for (const r of out.responses) {
      expect(r.expCmdSN).toBe(1);
      expect(r.itt).toBe(out.responses[0]!.itt);
    }
    expect(out.last.loginTransit).toBe(true);
    expect(out.last.loginNsg).toBe(3);
    expect(out.last.maxCmdSN).toBeGreaterThanOrEqual(out.last.expCmdSN);
    expect(out.keys.get('TargetPortalGroupTag')).toBe('1');
    expect(t.server.listSessions()).toEqual([
      expect.objectContaining({ tsih: out.tsih, initiatorName: TEST_INITIATOR, target: TARGET, type: 'Normal', isid: '801234560001' }),
    ]);
    // The first command uses the login's CmdSN and is answered with the next StatSN.
    const r = await c.run({ cdb: TEST_UNIT_READY, edtl: 0 });
    expect(r.final.statSN).toBe(out.responses.length);
    expect(r.final.expCmdSN).toBe(2);
  });

  it('gives each session its own TSIH', async () => {
    const t = await serve();
    const a = await t.connect();
    const b = await t.connect();
    const la = await a.login({ targetName: TARGET, isid: Buffer.from('800000000001', 'hex') });
    const lb = await b.login({ targetName: TARGET, isid: Buffer.from('800000000002', 'hex') });
    expect(la.tsih).not.toBe(lb.tsih);
    expect(t.server.listSessions().map((s) => s.tsih).sort()).toEqual([la.tsih, lb.tsih].sort());
  });

  it('logs in to a discovery session, which takes no SCSI commands', async () => {
    const t = await serve();
    const c = await t.connect();
    const out = await c.login({ discovery: true });
    expect(out.status).toEqual([0, 0]);
    expect(out.tsih).toBeGreaterThan(0);
    expect(t.server.listSessions()[0]).toMatchObject({ type: 'Discovery', target: null });
    c.command({ cdb: TEST_UNIT_READY, edtl: 0 });
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x04);
    expect(t.device.commands).toHaveLength(0);
  });

  it('authenticates with one-way CHAP', async () => {
    const t = await serve({ target: { chap: CHAP } });
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET, chap: { user: CHAP.user, secret: CHAP.secret } });
    expect(out.status).toEqual([0, 0]);
    expect(out.responses[0]!.keys.get('AuthMethod')).toBe('CHAP');
    await clearUnitAttention(c);
  });

  it('authenticates with mutual CHAP, the target proving its own secret', async () => {
    const t = await serve({ target: { chap: MUTUAL } });
    const c = await t.connect();
    // login() throws if the target's CHAP_N/CHAP_R do not match the mutual secret.
    const out = await c.login({
      targetName: TARGET,
      chap: { user: MUTUAL.user, secret: MUTUAL.secret, mutual: { user: MUTUAL.mutualUser, secret: MUTUAL.mutualSecret } },
    });
    expect(out.status).toEqual([0, 0]);
  });

  it('answers a wrong CHAP secret with authentication failure (0x0201) and closes the connection', async () => {
    const t = await serve({ target: { chap: CHAP } });
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET, chap: { user: CHAP.user, secret: 'not-the-secret' } });
    expect(out.status).toEqual([0x02, 0x01]);
    expect(out.tsih).toBe(0);
    expect(await c.waitClosed()).toBe(true);
    expect(t.server.listSessions()).toEqual([]);
  });

  it('refuses AuthMethod=None when the target requires CHAP (0x0201)', async () => {
    const t = await serve({ target: { chap: CHAP } });
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET });
    expect(out.status).toEqual([0x02, 0x01]);
    expect(await c.waitClosed()).toBe(true);
  });

  it('answers an unknown target with 0x0203 and closes', async () => {
    const t = await serve();
    const c = await t.connect();
    const out = await c.login({ targetName: 'iqn.2026-01.test.twinsan:nope' });
    expect(out.status).toEqual([0x02, 0x03]);
    expect(await c.waitClosed()).toBe(true);
  });

  it('answers an initiator outside the ACL with 0x0202 and closes', async () => {
    const t = await serve({ target: { allowedInitiators: ['iqn.2026-01.test.twinsan:someone-else'] } });
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET });
    expect(out.status).toEqual([0x02, 0x02]);
    expect(await c.waitClosed()).toBe(true);
  });

  it('lets an initiator on the ACL in', async () => {
    const t = await serve({ target: { allowedInitiators: [TEST_INITIATOR] } });
    const c = await t.connect();
    expect((await c.login({ targetName: TARGET })).status).toEqual([0, 0]);
  });

  it('logs in with the security stage skipped (first request in the operational stage)', async () => {
    const t = await serve();
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET, skipSecurity: true });
    expect(out.status).toEqual([0, 0]);
    expect(out.responses[0]!.loginCsg).toBe(1);
  });

  it('refuses to skip the security stage when the target requires CHAP (0x0201)', async () => {
    const t = await serve({ target: { chap: CHAP } });
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET, skipSecurity: true });
    expect(out.status).toEqual([0x02, 0x01]);
    expect(await c.waitClosed()).toBe(true);
  });

  it('closes a connection whose first PDU is not a login request, without answering', async () => {
    const t = await serve();
    const c = await t.connect();
    c.nopOut({ itt: 1 });
    expect(await c.waitClosed()).toBe(true);
    expect(c.received).toEqual([]);
    // The server keeps serving.
    await t.loggedIn();
  });

  it('closes a connection with a SCSI command before login', async () => {
    const t = await serve();
    const c = await t.connect();
    c.command({ cdb: TEST_UNIT_READY, edtl: 0 });
    expect(await c.waitClosed()).toBe(true);
    expect(t.device.commands).toHaveLength(0);
  });

  it('answers a login with an unknown TSIH with 0x020a (session does not exist)', async () => {
    const t = await serve();
    const c = await t.connect();
    c.loginRequest({ transit: true, csg: 0, nsg: 1, isid: Buffer.from('800000000009', 'hex'), tsih: 0x4242, itt: 1, data: keyText({ InitiatorName: TEST_INITIATOR, TargetName: TARGET, AuthMethod: 'None' }) });
    const r = await c.recv();
    expect(r.loginStatus).toEqual([0x02, 0x0a]);
    expect(await c.waitClosed()).toBe(true);
  });

  it('closes an idle connection when the login timer runs out', async () => {
    const t = await serve({ server: { timers: { loginTimeoutMs: 150 } } });
    const c = await t.connect();
    const started = Date.now();
    expect(await c.waitClosed(2000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(c.received).toEqual([]);
  });

  it('closes a connection that stalls half-way through login', async () => {
    const t = await serve({ server: { timers: { loginTimeoutMs: 200 } } });
    const c = await t.connect();
    c.loginRequest({ transit: false, csg: 0, nsg: 1, isid: Buffer.from('800000000003', 'hex'), itt: 1, data: keyText({ InitiatorName: TEST_INITIATOR, TargetName: TARGET, AuthMethod: 'None' }) });
    expect((await c.recv()).opcode).toBe(Op.LOGIN_RESPONSE);
    expect(await c.waitClosed(2000)).toBe(true);
    expect(t.server.listSessions()).toEqual([]);
  });

  it('keeps a logged-in connection open past the login timeout', async () => {
    const t = await serve({ server: { timers: { loginTimeoutMs: 150 } } });
    const c = await t.loggedIn();
    await new Promise((r) => setTimeout(r, 400));
    expect(c.closed).toBe(false);
    await clearUnitAttention(c);
  });
});

/* ---------------- digests ---------------- */

describe('header and data digests', () => {
  const DIGESTS = { HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' } as const;

  it('negotiates CRC32C and accepts correct PDUs; every target PDU carries correct digests', async () => {
    const t = await serve();
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET, keys: { ...DIGESTS, ImmediateData: 'Yes', MaxRecvDataSegmentLength: 4096 } });
    expect(out.keys.get('HeaderDigest')).toBe('CRC32C');
    expect(out.keys.get('DataDigest')).toBe('CRC32C');
    expect(c.headerDigest && c.dataDigest).toBe(true);
    await clearUnitAttention(c);
    const data = pattern(3 * BLOCK + 0, 9);
    const w = await c.write(write10(10, 3), data);
    expect(w.status).toBe(0);
    expect(await t.device.readStore(10 * BLOCK, data.length)).toEqual(data);
    const r = await c.run({ cdb: read10(10, 3), read: true, edtl: data.length });
    expect(r.status).toBe(0);
    expect(r.dataIn).toEqual(data);
    // A NOP-Out with an odd-length payload: padding is digested.
    const itt = c.nopOut({ data: Buffer.from('ping!') });
    const nop = await c.recv();
    expect(nop.itt).toBe(itt);
    expect(nop.data.toString()).toBe('ping!');
    expect(c.digestErrors).toEqual([]);
  });

  it('answers a Data-Out with a bad data digest with a Reject (data digest error) and drops the connection, writing nothing', async () => {
    const t = await serve();
    const c = await t.connect();
    await c.login({ targetName: TARGET, keys: { ...DIGESTS, ImmediateData: 'No' } });
    await clearUnitAttention(c);
    const before = await t.device.readStore(0, BLOCK);
    const itt = c.command({ cdb: write10(0, 1), write: true, edtl: BLOCK });
    const r2t = await c.recv();
    expect(r2t.opcode).toBe(Op.R2T);
    c.dataOut({ itt, ttt: r2t.ttt, dataSN: 0, offset: 0, data: pattern(BLOCK, 3), final: true }, { data: true });
    // RFC 7143 §7.8: a Reject quoting the discarded PDU; then, at ERL 0, the connection goes.
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x02);
    expect(rej.data.readUInt32BE(16)).toBe(itt);
    expect(rej.data[0]! & 0x3f).toBe(Op.DATA_OUT);
    expect(await c.waitClosed()).toBe(true);
    expect(c.received.some((p) => p.opcode === Op.SCSI_RESPONSE && p.itt === itt)).toBe(false);
    expect(c.digestErrors).toEqual([]);
    expect(t.device.commands.filter((cmd) => cmd.opcode === 0x2a)).toHaveLength(0);
    expect(await t.device.readStore(0, BLOCK)).toEqual(before);
    // The target still serves others.
    const other = await t.loggedIn({ isid: Buffer.from('800000000077', 'hex') });
    await clearUnitAttention(other);
  });

  it('drops the connection on a bad header digest', async () => {
    const t = await serve();
    const c = await t.connect();
    await c.login({ targetName: TARGET, keys: DIGESTS });
    c.command({ cdb: TEST_UNIT_READY, edtl: 0 }, { header: true });
    expect(await c.waitClosed()).toBe(true);
    expect(t.device.commands).toHaveLength(0);
    expect(t.server.listSessions()).toEqual([]);
  });
});

/* ---------------- NOP ---------------- */

describe('NOP-Out and NOP-In', () => {
  it('echoes a NOP-Out ping with its data, ITT and LUN; TTT reserved', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    const payload = pattern(1000, 5);
    const itt = c.nopOut({ data: payload, lun: 3 });
    const r = await c.recv();
    expect(r.opcode).toBe(Op.NOP_IN);
    expect(r.itt).toBe(itt);
    expect(r.ttt).toBe(RESERVED);
    expect(r.data).toEqual(payload);
    expect(r.lunBytes).toEqual(TestInitiator.lun(3));
    expect(r.statSN).toBe(c.expStatSN - 1);
  });

  it('a non-immediate NOP-Out takes a CmdSN and advances ExpCmdSN', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    c.nopOut({ immediate: false });
    const r = await c.recv();
    expect(r.opcode).toBe(Op.NOP_IN);
    expect(r.expCmdSN).toBe(2);
  });

  it('pings an initiator silent for nopInIntervalMs and keeps the connection when it answers', async () => {
    const t = await serve({ server: { timers: { nopInIntervalMs: 150, nopInTimeoutMs: 300 } } });
    const c = await t.loggedIn();
    const ping = await c.recv(2000);
    expect(ping.opcode).toBe(Op.NOP_IN);
    expect(ping.itt).toBe(RESERVED);
    expect(ping.ttt).not.toBe(RESERVED);
    c.nopOut({ itt: RESERVED, ttt: ping.ttt, immediate: true });
    // Answer every later ping as well; the connection must outlive several timeouts.
    c.autoAnswerPings = true;
    await new Promise((r) => setTimeout(r, 1000));
    expect(c.closed).toBe(false);
    expect(c.received.filter((p) => p.opcode === Op.NOP_IN && p.itt === RESERVED).length).toBeGreaterThanOrEqual(2);
    await clearUnitAttention(c);
  });

  it('drops the connection when a ping goes unanswered for nopInTimeoutMs', async () => {
    const t = await serve({ server: { timers: { nopInIntervalMs: 150, nopInTimeoutMs: 250 } } });
    const c = await t.loggedIn();
    const ping = await c.recv(2000);
    expect(ping.opcode).toBe(Op.NOP_IN);
    const pingAt = Date.now();
    expect(await c.waitClosed(2000)).toBe(true);
    expect(Date.now() - pingAt).toBeGreaterThanOrEqual(200);
    expect(t.server.listSessions()).toEqual([]);
  });

  it('a NOP-Out with the reserved ITT that is not immediate is a protocol error', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    c.nopOut({ itt: RESERVED, immediate: false });
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x04);
    expect(await c.waitClosed()).toBe(true);
  });
});

/* ---------------- logout and reinstatement ---------------- */

describe('logout', () => {
  it('closes the session: logout response, then the target closes the socket', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    const itt = c.logout({ reason: 0 });
    const r = await c.recv();
    expect(r.opcode).toBe(Op.LOGOUT_RESPONSE);
    expect(r.itt).toBe(itt);
    expect(r.byte2).toBe(0);
    expect(await c.waitClosed()).toBe(true);
    await expect.poll(() => t.server.listSessions(), { timeout: 1000 }).toEqual([]);
  });

  it('finishes in-flight tasks before the logout response', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    await clearUnitAttention(c);
    t.device.hold();
    const itt = c.command({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    await t.device.waitForHeld(1);
    const logoutItt = c.logout({ reason: 0 });
    expect(await c.drainFor(150)).toEqual([]);
    t.device.release();
    const pdus = await c.recvUntil((p) => p.opcode === Op.LOGOUT_RESPONSE);
    expect(pdus.map((p) => [p.opcode, p.itt])).toEqual([
      [Op.DATA_IN, itt],
      [Op.LOGOUT_RESPONSE, logoutItt],
    ]);
    expect(pdus[0]!.hasStatus).toBe(true);
    expect(await c.waitClosed()).toBe(true);
  });

  it('rejects new commands while logging out (waiting for logout)', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    await clearUnitAttention(c);
    t.device.hold();
    c.command({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    await t.device.waitForHeld(1);
    c.logout({ reason: 0 });
    await new Promise((r) => setTimeout(r, 50));
    c.command({ cdb: TEST_UNIT_READY, edtl: 0 });
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x0c);
    t.device.release();
    await c.recvUntil((p) => p.opcode === Op.LOGOUT_RESPONSE);
    expect(t.device.commands).toHaveLength(2); // TEST UNIT READY and the READ; the rejected one never ran
  });

  it('answers logout for recovery with "recovery not supported" (ERL 0)', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    c.logout({ reason: 2 });
    const r = await c.recv();
    expect(r.opcode).toBe(Op.LOGOUT_RESPONSE);
    expect(r.byte2).toBe(2);
  });

  it('answers a connection logout naming another CID with "CID not found" (1)', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    c.logout({ reason: 1, cid: 7 });
    const r = await c.recv();
    expect(r.opcode).toBe(Op.LOGOUT_RESPONSE);
    expect(r.byte2).toBe(1);
  });

  it('closes the connection on logout of this connection (reason 1, our CID)', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    c.logout({ reason: 1, cid: 1 });
    const r = await c.recv();
    expect(r.byte2).toBe(0);
    expect(await c.waitClosed()).toBe(true);
  });

  it('reinstates a session: a new login with the same initiator name and ISID closes the old one', async () => {
    const t = await serve();
    const isid = Buffer.from('800000000042', 'hex');
    const old = await t.loggedIn({ isid });
    const oldTsih = t.server.listSessions()[0]!.tsih;
    const fresh = await t.loggedIn({ isid });
    expect(await old.waitClosed()).toBe(true);
    const sessions = t.server.listSessions();
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.tsih).not.toBe(oldTsih);
    expect(t.device.lostNexuses.length).toBeGreaterThanOrEqual(1);
    await clearUnitAttention(fresh);
  });

  it('a different ISID is a separate session, not a reinstatement', async () => {
    const t = await serve();
    const a = await t.loggedIn({ isid: Buffer.from('800000000001', 'hex') });
    await t.loggedIn({ isid: Buffer.from('800000000002', 'hex') });
    await new Promise((r) => setTimeout(r, 50));
    expect(a.closed).toBe(false);
    expect(t.server.listSessions()).toHaveLength(2);
  });
});

/* ---------------- malformed input ---------------- */

describe('malformed input', () => {
  it('rejects an unknown opcode with reason 0x05 and keeps the connection', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x1c; // not an initiator opcode
    bhs[1] = 0x80;
    bhs.writeUInt32BE(0x1234, 16);
    c.sendPdu(bhs);
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x05);
    expect(rej.data.subarray(0, 48)).toEqual(bhs);
    await clearUnitAttention(c);
  });

  it('closes a connection that sends garbage, and goes on serving other connections', async () => {
    const t = await serve();
    const good = await t.loggedIn({ isid: Buffer.from('800000000011', 'hex') });
    const bad = await t.loggedIn({ isid: Buffer.from('800000000012', 'hex') });
    bad.sendRaw(Buffer.alloc(200, 0xff));
    expect(await bad.waitClosed()).toBe(true);
    const before = await t.connect();
    before.sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(64, ' ')));
    expect(await before.waitClosed()).toBe(true);
    await clearUnitAttention(good);
    const r = await good.run({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    expect(r.status).toBe(0);
  });

  it('closes the connection when a data segment exceeds our declared MaxRecvDataSegmentLength', async () => {
    const t = await serve({ server: { limits: { maxRecvDataSegmentLength: 4096 } } });
    const c = await t.connect();
    const out = await c.login({ targetName: TARGET });
    expect(out.keys.get('MaxRecvDataSegmentLength')).toBe('4096');
    // A NOP-Out of 4096 bytes is within the limit and is echoed.
    c.nopOut({ data: pattern(4096) });
    expect((await c.recv()).data.length).toBe(4096);
    c.nopOut({ data: pattern(4100) });
    expect(await c.waitClosed()).toBe(true);
  });

  it('rejects a SNACK at ERL 0 (reason 0x03) and keeps the connection', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x10;
    bhs[1] = 0x80;
    bhs.writeUInt32BE(RESERVED, 16);
    c.sendPdu(bhs);
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x03);
    await clearUnitAttention(c);
  });

  it('closes the connection on a login PDU in full feature phase (protocol error)', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    c.loginRequest({ transit: true, csg: 1, nsg: 3, isid: Buffer.alloc(6), itt: 9, data: Buffer.alloc(0) });
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x04);
    expect(await c.waitClosed()).toBe(true);
  });

  it('a socket closed by the initiator mid-command leaves no session behind', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    t.device.hold();
    c.command({ cdb: TEST_UNIT_READY, edtl: 0 });
    await t.device.waitForHeld(1);
    c.destroy();
    t.device.release();
    await expect.poll(() => t.server.listSessions(), { timeout: 1000 }).toEqual([]);
    expect(t.device.lostNexuses).toHaveLength(1);
  });
});

/* ---------------- graceful shutdown ---------------- */

describe('server.close()', () => {
  it('lets in-flight commands finish and answers them, then closes the sockets', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    await clearUnitAttention(c);
    t.device.hold();
    const itt = c.command({ cdb: read10(0, 2), read: true, edtl: 2 * BLOCK });
    await t.device.waitForHeld(1);
    let closedServer = false;
    const closing = t.server.close().then(() => (closedServer = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closedServer).toBe(false);
    expect(c.closed).toBe(false);
    t.device.release();
    const res = await c.finishCommand(itt);
    expect(res.status).toBe(0);
    expect(res.dataIn.length).toBe(2 * BLOCK);
    expect(await c.waitClosed(2000)).toBe(true);
    const started = Date.now();
    await closing;
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('closes connections still in login at once and refuses new ones', async () => {
    const t = await serve();
    const idle = await t.connect();
    const started = Date.now();
    await t.server.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await idle.waitClosed()).toBe(true);
    await expect(TestInitiator.connect(t.port)).rejects.toThrow();
  });

  it('a closed connection makes recv fail fast', async () => {
    const t = await serve();
    const c = await t.loggedIn();
    await t.server.close();
    await expect(c.recv(2000)).rejects.toBeInstanceOf(ConnectionClosedError);
  });
});
