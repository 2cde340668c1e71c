/**
 * End-to-end tests of the session state machine (src/target/iscsi/
 * session.ts, task.ts): data-out with immediate data, unsolicited bursts and
 * R2Ts; Data-In splitting, status piggyback and residuals; the CmdSN window;
 * task management; SendTargets with continuation. Driven over TCP by the
 * hand-built initiator in harness/initiator.ts against a memory-backed device.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Op, RESERVED, TEST_UNIT_READY, TestInitiator, TargetPdu, keyText, parsePairs, pattern, read10, senseTriple, write10 } from './harness/initiator';
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

/** Serve, log in with `keys` and clear the power-on unit attention. */
async function session(keys: Record<string, string | number>, options: TestTargetOptions = {}): Promise<{ t: TestTarget; c: TestInitiator }> {
  const t = await serve(options);
  const c = await t.loggedIn({ keys });
  const ua = await c.run({ cdb: TEST_UNIT_READY, edtl: 0 });
  expect(senseTriple(ua.sense)).toEqual([0x6, 0x29, 0x00]);
  return { t, c };
}

const ABORTED_COMMAND_DATA_PHASE: [number, number, number] = [0x0b, 0x4b, 0x00];
const TMF = { ABORT_TASK: 1, ABORT_TASK_SET: 2, LUN_RESET: 5, TASK_REASSIGN: 8 } as const;

const r2tFields = (r: TargetPdu): { r2tSN: number; offset: number; length: number } => ({ r2tSN: r.sn36, offset: r.bufferOffset, length: r.word44 });

/* ---------------- writes ---------------- */

describe('writes', () => {
  it('takes a write carried entirely as immediate data: no R2T, GOOD, data on the store', async () => {
    const { t, c } = await session({ ImmediateData: 'Yes', InitialR2T: 'Yes' });
    const data = pattern(4 * BLOCK, 11);
    const r = await c.write(write10(100, 4), data);
    expect(r.r2ts).toEqual([]);
    expect(r.status).toBe(0);
    expect(r.response!.byte2).toBe(0); // command completed at target
    expect(r.response!.underflow || r.response!.overflow).toBe(false);
    expect(await t.device.readStore(100 * BLOCK, data.length)).toEqual(data);
    expect(t.device.commands.at(-1)!.dataOut).toEqual(data);
  });

  it('solicits the rest of a write after its immediate data with InitialR2T=Yes', async () => {
    const { t, c } = await session({ ImmediateData: 'Yes', InitialR2T: 'Yes', FirstBurstLength: 1024 });
    const data = pattern(8 * BLOCK, 12);
    const r = await c.write(write10(0, 8), data);
    expect(r.r2ts.map(r2tFields)).toEqual([{ r2tSN: 0, offset: 1024, length: 3072 }]);
    expect(r.status).toBe(0);
    expect(await t.device.readStore(0, data.length)).toEqual(data);
  });

  it('with InitialR2T=No takes unsolicited Data-Out up to FirstBurstLength, then sends R2Ts for the rest', async () => {
    const { t, c } = await session(
      { InitialR2T: 'No', ImmediateData: 'Yes', FirstBurstLength: 4096, MaxBurstLength: 8192 },
      { server: { limits: { initialR2T: false, maxRecvDataSegmentLength: 2048 } } },
    );
    expect(c.params.initialR2T).toBe(false);
    expect(c.params.targetMaxRecvDataSegmentLength).toBe(2048);
    const data = pattern(20480, 13);
    const itt = c.command({ cdb: write10(8, 40), write: true, edtl: data.length, immediateData: data.subarray(0, 2048), final: false });
    // Nothing is solicited while the unsolicited burst is still open.
    expect(await c.drainFor(100)).toEqual([]);
    c.dataOut({ itt, dataSN: 0, offset: 2048, data: data.subarray(2048, 4096), final: true });
    const first = await c.recv();
    expect(first.opcode).toBe(Op.R2T);
    expect(first.itt).toBe(itt);
    expect(first.ttt).not.toBe(RESERVED);
    expect(r2tFields(first)).toEqual({ r2tSN: 0, offset: 4096, length: 8192 });
    // MaxOutstandingR2T=1: the next R2T waits for this burst.
    expect(await c.drainFor(100)).toEqual([]);
    c.answerR2T(first, data);
    const res = await c.finishCommand(itt, 3000, (r2t) => c.answerR2T(r2t, data));
    expect(res.r2ts.map(r2tFields)).toEqual([{ r2tSN: 1, offset: 12288, length: 8192 }]);
    expect(res.status).toBe(0);
    expect(await t.device.readStore(8 * BLOCK, data.length)).toEqual(data);
  });

  it('with InitialR2T=No and the F bit on the command, solicits everything after the immediate data', async () => {
    const { t, c } = await session({ InitialR2T: 'No', ImmediateData: 'Yes', FirstBurstLength: 4096 }, { server: { limits: { initialR2T: false } } });
    const data = pattern(6 * BLOCK, 14);
    const itt = c.command({ cdb: write10(0, 6), write: true, edtl: data.length, immediateData: data.subarray(0, 1024), final: true });
    const res = await c.finishCommand(itt, 3000, (r2t) => c.answerR2T(r2t, data));
    expect(res.r2ts.map(r2tFields)).toEqual([{ r2tSN: 0, offset: 1024, length: 2048 }]);
    expect(res.status).toBe(0);
    expect(await t.device.readStore(0, data.length)).toEqual(data);
  });

  it('solicits the rest of a write whose unsolicited burst ends (F bit) short of FirstBurstLength', async () => {
    const { t, c } = await session({ InitialR2T: 'No', ImmediateData: 'No', FirstBurstLength: 4096 }, { server: { limits: { initialR2T: false } } });
    const data = pattern(16 * BLOCK, 20);
    const itt = c.command({ cdb: write10(0, 16), write: true, edtl: data.length, final: false });
    // The initiator ends its unsolicited burst early; the target asks for the rest from there, leaving no hole.
    c.dataOut({ itt, dataSN: 0, offset: 0, data: data.subarray(0, 1024), final: true });
    const res = await c.finishCommand(itt, 3000, (r2t) => c.answerR2T(r2t, data));
    expect(res.r2ts[0]!.bufferOffset).toBe(1024);
    expect(res.status).toBe(0);
    expect(await t.device.readStore(0, 16 * BLOCK)).toEqual(data);
  });

  it('reports an underflow when the expected length is longer than the CDB transfers', async () => {
    const { t, c } = await session({ ImmediateData: 'Yes' });
    const data = pattern(2 * BLOCK, 27);
    const r = await c.write(write10(40, 1), data);
    expect(r.status).toBe(0);
    expect(r.response!.underflow).toBe(true);
    expect(r.response!.overflow).toBe(false);
    expect(r.response!.word44).toBe(BLOCK);
    expect(await t.device.readStore(40 * BLOCK, BLOCK)).toEqual(data.subarray(0, BLOCK));
  });

  it('solicits only the data the CDB can use when the expected length is far larger (memory stays bounded)', async () => {
    const { t, c } = await session({ InitialR2T: 'Yes', ImmediateData: 'No' });
    const data = pattern(BLOCK, 31);
    const edtl = 256 * 1024 * 1024;
    const itt = c.command({ cdb: write10(8, 1), write: true, edtl, final: true });
    const res = await c.finishCommand(itt, 3000, (r2t) => c.answerR2T(r2t, data));
    expect(res.r2ts.map((r) => r.word44).reduce((a, b) => a + b, 0)).toBe(BLOCK); // word 44 of an R2T: desired length
    expect(res.status).toBe(0);
    expect(res.response!.underflow).toBe(true);
    expect(res.response!.word44).toBe(edtl - BLOCK);
    expect(await t.device.readStore(8 * BLOCK, BLOCK)).toEqual(data);
  });

  it('solicits nothing for a write whose CDB fails, and answers with its sense', async () => {
    const { c } = await session({ InitialR2T: 'Yes', ImmediateData: 'No' });
    const itt = c.command({ cdb: write10(0xfffffff0, 1), write: true, edtl: 64 * 1024 * 1024, final: true });
    const res = await c.finishCommand(itt, 3000, (r2t) => c.answerR2T(r2t, pattern(BLOCK, 1)));
    expect(res.r2ts).toHaveLength(0);
    expect(res.status).toBe(0x02);
    expect(senseTriple(res.sense)).toEqual([0x05, 0x21, 0x00]);
  });

  it('reports an overflow when the CDB asks for more data than the expected length', async () => {
    const { c } = await session({ ImmediateData: 'Yes' });
    const r = await c.write(write10(40, 4), pattern(2 * BLOCK, 28));
    expect(r.status).toBe(0);
    expect(r.response!.overflow).toBe(true);
    expect(r.response!.underflow).toBe(false);
    expect(r.response!.word44).toBe(2 * BLOCK);
  });

  it('answers a write that fails at the device with CHECK CONDITION and sense', async () => {
    const { c } = await session({ ImmediateData: 'Yes' });
    const r = await c.write(write10(5000, 1), pattern(BLOCK));
    expect(r.status).toBe(0x02);
    expect(senseTriple(r.sense)).toEqual([0x05, 0x21, 0x00]);
  });

  it('cuts a transfer longer than MaxBurstLength into R2Ts with consecutive offsets and R2TSNs', async () => {
    const { t, c } = await session({ InitialR2T: 'Yes', ImmediateData: 'No', MaxBurstLength: 4096 });
    expect(c.params.maxBurstLength).toBe(4096);
    const data = pattern(3 * 4096 + 1024, 15);
    const r = await c.write(write10(64, data.length / BLOCK), data);
    expect(r.r2ts.map(r2tFields)).toEqual([
      { r2tSN: 0, offset: 0, length: 4096 },
      { r2tSN: 1, offset: 4096, length: 4096 },
      { r2tSN: 2, offset: 8192, length: 4096 },
      { r2tSN: 3, offset: 12288, length: 1024 },
    ]);
    expect(new Set(r.r2ts.map((p) => p.ttt)).size).toBe(4);
    for (const p of r.r2ts) expect(p.lunBytes).toEqual(TestInitiator.lun(0));
    expect(r.status).toBe(0);
    expect(await t.device.readStore(64 * BLOCK, data.length)).toEqual(data);
  });

  it('keeps MaxOutstandingR2T R2Ts open at once and opens the next as each burst completes', async () => {
    const { t, c } = await session({ InitialR2T: 'Yes', ImmediateData: 'No', MaxBurstLength: 2048, MaxOutstandingR2T: 2 }, { server: { limits: { maxOutstandingR2T: 4 } } });
    expect(c.params.maxOutstandingR2T).toBe(2);
    const data = pattern(5 * 2048, 16);
    const itt = c.command({ cdb: write10(0, data.length / BLOCK), write: true, edtl: data.length });
    const a = await c.recv();
    const b = await c.recv();
    expect([a, b].map(r2tFields)).toEqual([
      { r2tSN: 0, offset: 0, length: 2048 },
      { r2tSN: 1, offset: 2048, length: 2048 },
    ]);
    expect(await c.drainFor(100)).toEqual([]);
    c.answerR2T(a, data);
    const next = await c.recv();
    expect(r2tFields(next)).toEqual({ r2tSN: 2, offset: 4096, length: 2048 });
    expect(await c.drainFor(50)).toEqual([]);
    c.answerR2T(b, data);
    c.answerR2T(next, data);
    const res = await c.finishCommand(itt, 3000, (r2t) => c.answerR2T(r2t, data));
    expect(res.r2ts.map(r2tFields)).toEqual([
      { r2tSN: 3, offset: 6144, length: 2048 },
      { r2tSN: 4, offset: 8192, length: 2048 },
    ]);
    expect(res.status).toBe(0);
    expect(await t.device.readStore(0, data.length)).toEqual(data);
  });

  it('fails a command whose unsolicited Data-Out has the wrong DataSN with ABORTED COMMAND / DATA PHASE ERROR; the connection goes on', async () => {
    const { t, c } = await session({ InitialR2T: 'No', ImmediateData: 'No', FirstBurstLength: 2048 }, { server: { limits: { initialR2T: false } } });
    const before = await t.device.readStore(0, 4 * BLOCK);
    const data = pattern(4 * BLOCK, 17);
    const itt = c.command({ cdb: write10(0, 4), write: true, edtl: data.length, final: false });
    c.dataOut({ itt, dataSN: 0, offset: 0, data: data.subarray(0, 1024), final: false });
    c.dataOut({ itt, dataSN: 5, offset: 1024, data: data.subarray(1024, 2048), final: true });
    const res = await c.finishCommand(itt);
    expect(res.status).toBe(0x02);
    expect(senseTriple(res.sense)).toEqual(ABORTED_COMMAND_DATA_PHASE);
    expect(res.response!.byte2).toBe(0);
    // Later Data-Out for the failed task is discarded without an answer.
    c.dataOut({ itt, ttt: 1, dataSN: 0, offset: 2048, data: data.subarray(2048), final: true });
    expect(await c.drainFor(100)).toEqual([]);
    expect(t.device.commands.filter((cmd) => cmd.opcode === 0x2a)).toHaveLength(0);
    expect(await t.device.readStore(0, 4 * BLOCK)).toEqual(before);
    const ok = await c.write(write10(0, 4), data);
    expect(ok.status).toBe(0);
    expect(await t.device.readStore(0, 4 * BLOCK)).toEqual(data);
  });

  it('fails a command whose solicited Data-Out has the wrong DataSN', async () => {
    const { t, c } = await session({ InitialR2T: 'Yes', ImmediateData: 'No' });
    const data = pattern(2 * BLOCK, 18);
    const itt = c.command({ cdb: write10(0, 2), write: true, edtl: data.length });
    const r2t = await c.recv();
    expect(r2t.opcode).toBe(Op.R2T);
    c.dataOut({ itt, ttt: r2t.ttt, dataSN: 0, offset: 0, data: data.subarray(0, BLOCK), final: false });
    c.dataOut({ itt, ttt: r2t.ttt, dataSN: 0, offset: BLOCK, data: data.subarray(BLOCK), final: true });
    const res = await c.finishCommand(itt);
    expect(senseTriple(res.sense)).toEqual(ABORTED_COMMAND_DATA_PHASE);
    expect(t.device.commands.filter((cmd) => cmd.opcode === 0x2a)).toHaveLength(0);
    expect((await c.run({ cdb: TEST_UNIT_READY, edtl: 0 })).status).toBe(0);
  });

  it('fails a command whose Data-Out skips ahead in the buffer', async () => {
    const { c } = await session({ InitialR2T: 'Yes', ImmediateData: 'No' });
    const data = pattern(2 * BLOCK, 19);
    const itt = c.command({ cdb: write10(0, 2), write: true, edtl: data.length });
    const r2t = await c.recv();
    c.dataOut({ itt, ttt: r2t.ttt, dataSN: 0, offset: BLOCK, data: data.subarray(BLOCK), final: true });
    const res = await c.finishCommand(itt);
    expect(senseTriple(res.sense)).toEqual(ABORTED_COMMAND_DATA_PHASE);
  });

  it('rejects immediate data beyond FirstBurstLength', async () => {
    const { t, c } = await session({ ImmediateData: 'Yes', FirstBurstLength: 1024 });
    c.command({ cdb: write10(0, 4), write: true, edtl: 4 * BLOCK, immediateData: pattern(4 * BLOCK) });
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x04);
    expect(t.device.commands.filter((cmd) => cmd.opcode === 0x2a)).toHaveLength(0);
  });

  it('drops the connection for immediate data when ImmediateData=No was negotiated', async () => {
    const { c } = await session({ ImmediateData: 'No' });
    c.command({ cdb: write10(0, 1), write: true, edtl: BLOCK, immediateData: pattern(BLOCK) });
    expect(await c.waitClosed()).toBe(true);
  });

  it('rejects a second command with the ITT of a task still running (task in progress)', async () => {
    const { t, c } = await session({});
    t.device.hold();
    const itt = c.command({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    await t.device.waitForHeld(1);
    c.command({ cdb: read10(1, 1), read: true, edtl: BLOCK, itt });
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x07);
    t.device.release();
    expect((await c.finishCommand(itt)).status).toBe(0);
  });
});

/* ---------------- framing on a real socket ---------------- */

describe('framing', () => {
  it('handles PDUs written one byte at a time, and several PDUs in one write', async () => {
    const { t, c } = await session({ HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' });
    const data = pattern(3 * BLOCK + 0, 25);
    // Capture the bytes of a write command with immediate data, then dribble them out.
    const chunks: Buffer[] = [];
    const write = c.socket.write.bind(c.socket);
    c.socket.write = ((b: Buffer) => (chunks.push(Buffer.from(b)), true)) as typeof c.socket.write;
    const itt = c.command({ cdb: write10(3, 3), write: true, edtl: data.length, immediateData: data });
    const tur1 = c.command({ cdb: TEST_UNIT_READY, edtl: 0 });
    const tur2 = c.command({ cdb: TEST_UNIT_READY, edtl: 0 });
    c.socket.write = write;
    const first = chunks[0]!;
    for (let i = 0; i < first.length; i++) {
      c.sendRaw(first.subarray(i, i + 1));
      if (i % 97 === 0) await new Promise((r) => setImmediate(r));
    }
    expect((await c.finishCommand(itt)).status).toBe(0);
    c.sendRaw(Buffer.concat(chunks.slice(1)));
    expect((await c.finishCommand(tur1)).status).toBe(0);
    expect((await c.finishCommand(tur2)).status).toBe(0);
    expect(await t.device.readStore(3 * BLOCK, data.length)).toEqual(data);
    expect(c.digestErrors).toEqual([]);
  });

  it('splits digested Data-In with odd lengths and padding correctly', async () => {
    const { t, c } = await session({ HeaderDigest: 'CRC32C', DataDigest: 'CRC32C', MaxRecvDataSegmentLength: 1000 });
    const data = pattern(8 * BLOCK, 26);
    await t.device.store.writev(0, [data]);
    const r = await c.run({ cdb: read10(0, 8), read: true, edtl: data.length });
    expect(r.dataIns.map((p) => p.dataSegmentLength)).toEqual([1000, 1000, 1000, 1000, 96]);
    expect(r.dataIn).toEqual(data);
    expect(c.digestErrors).toEqual([]);
  });
});

/* ---------------- reads ---------------- */

describe('reads', () => {
  it("splits Data-In at the initiator's MaxRecvDataSegmentLength, F at each MaxBurstLength and at the end, status in the last (S)", async () => {
    const { t, c } = await session({ MaxRecvDataSegmentLength: 1024, MaxBurstLength: 4096 });
    const data = pattern(20 * BLOCK, 21);
    await t.device.store.writev(0, [data]);
    const statBefore = c.expStatSN;
    const r = await c.run({ cdb: read10(0, 20), read: true, edtl: data.length });
    expect(r.response).toBeNull();
    expect(r.dataIns.map((p) => p.dataSegmentLength)).toEqual(Array(10).fill(1024));
    expect(r.dataIns.map((p) => p.sn36)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(r.dataIns.map((p) => p.bufferOffset)).toEqual([0, 1024, 2048, 3072, 4096, 5120, 6144, 7168, 8192, 9216]);
    expect(r.dataIns.map((p) => p.final)).toEqual([false, false, false, true, false, false, false, true, false, true]);
    expect(r.dataIns.map((p) => p.hasStatus)).toEqual([...Array(9).fill(false), true]);
    const last = r.final;
    expect(last.status).toBe(0);
    expect(last.statSN).toBe(statBefore);
    expect(last.underflow || last.overflow).toBe(false);
    expect(last.word44).toBe(0);
    for (const p of r.dataIns) {
      expect(p.itt).toBe(r.itt);
      expect(p.ttt).toBe(RESERVED);
      expect(p.lunBytes).toEqual(TestInitiator.lun(0));
    }
    expect(r.dataIn).toEqual(data);
  });

  it('reports an underflow in the last Data-In when the expected length is longer than the data', async () => {
    const { t, c } = await session({});
    const data = pattern(4 * BLOCK, 22);
    await t.device.store.writev(0, [data]);
    const r = await c.run({ cdb: read10(0, 4), read: true, edtl: 8192 });
    expect(r.dataIn).toEqual(data);
    expect(r.final.opcode).toBe(Op.DATA_IN);
    expect(r.final.underflow).toBe(true);
    expect(r.final.overflow).toBe(false);
    expect(r.final.word44).toBe(8192 - 2048);
  });

  it('sends no more than the expected length and reports the overflow', async () => {
    const { t, c } = await session({});
    const data = pattern(4 * BLOCK, 23);
    await t.device.store.writev(0, [data]);
    const r = await c.run({ cdb: read10(0, 4), read: true, edtl: 1000 });
    expect(r.dataIn).toEqual(data.subarray(0, 1000));
    expect(r.final.overflow).toBe(true);
    expect(r.final.underflow).toBe(false);
    expect(r.final.word44).toBe(2048 - 1000);
  });

  it('with an expected length of 0 sends no Data-In, only a SCSI Response with the overflow', async () => {
    const { c } = await session({});
    const r = await c.run({ cdb: read10(0, 1), read: true, edtl: 0 });
    expect(r.dataIns).toEqual([]);
    expect(r.response).not.toBeNull();
    expect(r.response!.overflow).toBe(true);
    expect(r.response!.word44).toBe(BLOCK);
  });

  it('puts CHECK CONDITION in a SCSI Response with SenseLength-prefixed sense, no Data-In', async () => {
    const { c } = await session({});
    const r = await c.run({ cdb: read10(5000, 1), read: true, edtl: BLOCK }); // LUN has 2048 blocks
    expect(r.dataIns).toEqual([]);
    const resp = r.response!;
    expect(resp.opcode).toBe(Op.SCSI_RESPONSE);
    expect(resp.byte2).toBe(0);
    expect(resp.status).toBe(0x02);
    expect(resp.data.readUInt16BE(0)).toBe(resp.data.length - 2);
    expect(resp.data[2]! & 0x7f).toBe(0x70);
    expect(senseTriple(resp.sense)).toEqual([0x05, 0x21, 0x00]); // LBA OUT OF RANGE
    expect(resp.sn36).toBe(0); // ExpDataSN: no Data-In was sent
    expect(resp.underflow).toBe(true); // nothing of the expected length was transferred
    expect(resp.word44).toBe(BLOCK);
  });

  it('answers with a target failure service response when the device throws', async () => {
    const { t, c } = await session({});
    t.device.script(0x28, () => Promise.reject(new Error('disk on fire')));
    const r = await c.run({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    expect(r.response!.byte2).toBe(0x01);
    expect((await c.run({ cdb: TEST_UNIT_READY, edtl: 0 })).status).toBe(0);
  });

  it('releases data-in lent by the device once, after its Data-In went out', async () => {
    const { t, c } = await session({ MaxRecvDataSegmentLength: 1024 });
    const data = pattern(8 * BLOCK, 25);
    let releases = 0;
    t.device.script(0x28, () => ({ status: 0, sense: null, dataIn: data, release: () => releases++ }));
    const r = await c.run({ cdb: read10(0, 8), read: true, edtl: data.length });
    expect(r.dataIns).toHaveLength(4);
    expect(r.dataIn).toEqual(data);
    await vi.waitFor(() => expect(releases).toBe(1));
    // Nothing sent (expected length 0): released all the same.
    await c.run({ cdb: read10(0, 8), read: true, edtl: 0 });
    await vi.waitFor(() => expect(releases).toBe(2));
  });

  it('sends Data-In then a separate SCSI Response when the device returns data with sense', async () => {
    const { t, c } = await session({});
    const sense = Buffer.alloc(18);
    sense[0] = 0x70;
    sense[2] = 0x01; // RECOVERED ERROR
    sense[7] = 10;
    sense[12] = 0x17;
    t.device.script(0x28, () => ({ status: 0x02, sense, dataIn: pattern(BLOCK, 24) }));
    const r = await c.run({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    expect(r.dataIns).toHaveLength(1);
    expect(r.dataIns[0]!.hasStatus).toBe(false);
    expect(r.dataIns[0]!.final).toBe(true);
    expect(r.response!.status).toBe(0x02);
    expect(r.response!.sense).toEqual(sense);
    expect(r.response!.sn36).toBe(1); // ExpDataSN counts the Data-In
  });
});

/* ---------------- CmdSN window ---------------- */

describe('CmdSN window', () => {
  it('silently ignores a command beyond MaxCmdSN', async () => {
    const { t, c } = await session({}, { server: { cmdWindow: 4 } });
    const { expCmdSN, maxCmdSN } = c.window;
    expect(maxCmdSN).toBe(expCmdSN + 3);
    c.command({ cdb: read10(1, 1), read: true, edtl: BLOCK, cmdSN: maxCmdSN + 1 });
    expect(await c.drainFor(150)).toEqual([]);
    expect(t.device.commands).toHaveLength(1);
    // The window is unchanged: the next in-order command runs.
    const r = await c.run({ cdb: TEST_UNIT_READY, edtl: 0 });
    expect(r.final.expCmdSN).toBe(expCmdSN + 1);
    expect(t.device.commands).toHaveLength(2);
  });

  it('silently ignores a command below ExpCmdSN (a duplicate)', async () => {
    const { t, c } = await session({});
    const used = c.cmdSN - 1;
    c.command({ cdb: read10(1, 1), read: true, edtl: BLOCK, cmdSN: used });
    expect(await c.drainFor(150)).toEqual([]);
    expect(t.device.commands).toHaveLength(1);
  });

  it('queues commands that arrive out of order within the window and runs them in CmdSN order once the gap fills', async () => {
    const { t, c } = await session({});
    const sn = c.cmdSN;
    c.cmdSN += 3;
    const i2 = c.command({ cdb: read10(2, 1), read: true, edtl: BLOCK, cmdSN: sn + 2 });
    const i1 = c.command({ cdb: read10(1, 1), read: true, edtl: BLOCK, cmdSN: sn + 1 });
    expect(await c.drainFor(150)).toEqual([]);
    expect(t.device.commands).toHaveLength(1);
    const i0 = c.command({ cdb: read10(0, 1), read: true, edtl: BLOCK, cmdSN: sn });
    await t.device.waitForCommands(4);
    expect(t.device.commands.slice(1).map((cmd) => cmd.cdb.readUInt32BE(2))).toEqual([0, 1, 2]);
    let statuses = 0;
    const done = await c.recvUntil((p) => p.opcode === Op.DATA_IN && p.hasStatus && ++statuses === 3);
    expect(new Set(done.map((p) => p.itt))).toEqual(new Set([i0, i1, i2]));
    expect(done.at(-1)!.expCmdSN).toBe(sn + 3);
  });

  it('does not advance ExpCmdSN for immediate commands', async () => {
    const { t, c } = await session({});
    const sn = c.cmdSN;
    const r = await c.run({ cdb: TEST_UNIT_READY, edtl: 0, immediate: true });
    expect(r.status).toBe(0);
    expect(r.final.expCmdSN).toBe(sn);
    expect(c.cmdSN).toBe(sn);
    const n = await c.run({ cdb: TEST_UNIT_READY, edtl: 0 });
    expect(n.final.expCmdSN).toBe(sn + 1);
    expect(t.device.commands).toHaveLength(3);
  });

  it('closes the window (MaxCmdSN = ExpCmdSN - 1) while cmdWindow tasks are in flight and reopens it as they finish', async () => {
    const { t, c } = await session({}, { server: { cmdWindow: 4 } });
    t.device.hold();
    const itts: number[] = [];
    const first = c.cmdSN;
    for (let i = 0; i < 4; i++) itts.push(c.command({ cdb: read10(i, 1), read: true, edtl: BLOCK }));
    await t.device.waitForHeld(4);
    // An immediate ping shows the window without using a CmdSN.
    c.nopOut({});
    const nop = await c.recv();
    expect(nop.expCmdSN).toBe(first + 4);
    expect(nop.maxCmdSN).toBe(first + 3);
    // Commands past the closed window are dropped: the device never sees them.
    for (let i = 0; i < 6; i++) c.command({ cdb: read10(10 + i, 1), read: true, edtl: BLOCK, cmdSN: first + 4 + i });
    expect(await c.drainFor(150)).toEqual([]);
    expect(t.device.commands).toHaveLength(5);
    t.device.release(1);
    const one = await c.finishCommand(itts[0]!);
    expect(one.final.expCmdSN).toBe(first + 4);
    expect(one.final.maxCmdSN).toBe(first + 4);
    t.device.release();
    let finished = 1;
    const rest = await c.recvUntil((p) => p.opcode === Op.DATA_IN && p.hasStatus && ++finished === 4);
    expect(rest.at(-1)!.maxCmdSN).toBe(first + 7);
    // MaxCmdSN never went backwards.
    const maxes = c.received.map((p) => p.maxCmdSN);
    for (let i = 1; i < maxes.length; i++) expect(maxes[i]!).toBeGreaterThanOrEqual(maxes[i - 1]!);
    c.cmdSN = first + 4;
    expect((await c.run({ cdb: TEST_UNIT_READY, edtl: 0 })).status).toBe(0);
  });
});

/* ---------------- task management ---------------- */

describe('task management', () => {
  it('ABORT TASK on a running task: function complete, and the task gets no response', async () => {
    const { t, c } = await session({});
    t.device.hold();
    const sn = c.cmdSN;
    const itt = c.command({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    await t.device.waitForHeld(1);
    const tmf = c.tmf({ func: TMF.ABORT_TASK, refItt: itt, refCmdSN: sn });
    // The device cannot be interrupted: the TMF is answered once the task has left it.
    expect(await c.drainFor(50)).toEqual([]);
    t.device.release();
    const pdus = await c.recvUntil((p) => p.opcode === Op.TMF_RESPONSE);
    expect(pdus.map((p) => [p.opcode, p.itt])).toEqual([[Op.TMF_RESPONSE, tmf]]);
    expect(pdus[0]!.byte2).toBe(0);
    expect(await c.drainFor(100)).toEqual([]);
    expect((await c.run({ cdb: TEST_UNIT_READY, edtl: 0 })).status).toBe(0);
  });

  it('ABORT TASK on a write waiting for Data-Out: function complete at once; later Data-Out is discarded, nothing written', async () => {
    const { t, c } = await session({ ImmediateData: 'No' });
    const before = await t.device.readStore(0, BLOCK);
    const sn = c.cmdSN;
    const itt = c.command({ cdb: write10(0, 1), write: true, edtl: BLOCK });
    const r2t = await c.recv();
    expect(r2t.opcode).toBe(Op.R2T);
    c.tmf({ func: TMF.ABORT_TASK, refItt: itt, refCmdSN: sn });
    const resp = await c.recv();
    expect(resp.opcode).toBe(Op.TMF_RESPONSE);
    expect(resp.byte2).toBe(0);
    c.dataOut({ itt, ttt: r2t.ttt, dataSN: 0, offset: 0, data: pattern(BLOCK), final: true });
    expect(await c.drainFor(100)).toEqual([]);
    expect(await t.device.readStore(0, BLOCK)).toEqual(before);
    expect(t.device.commands.filter((cmd) => cmd.opcode === 0x2a)).toHaveLength(0);
  });

  it('ABORT TASK on a completed task: task does not exist (1)', async () => {
    const { c } = await session({});
    const sn = c.cmdSN;
    const r = await c.run({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    c.tmf({ func: TMF.ABORT_TASK, refItt: r.itt, refCmdSN: sn });
    const resp = await c.recv();
    expect(resp.opcode).toBe(Op.TMF_RESPONSE);
    expect(resp.byte2).toBe(1);
  });

  it('ABORT TASK for a CmdSN not yet received: function complete, and that command never runs', async () => {
    const { t, c } = await session({});
    const sn = c.cmdSN;
    c.cmdSN += 1; // CmdSN sn is "in flight"
    const lostItt = 0x7777;
    c.tmf({ func: TMF.ABORT_TASK, refItt: lostItt, refCmdSN: sn });
    const resp = await c.recv();
    expect(resp.byte2).toBe(0);
    c.command({ cdb: read10(3, 1), read: true, edtl: BLOCK, itt: lostItt, cmdSN: sn });
    expect(await c.drainFor(150)).toEqual([]);
    expect(t.device.commands).toHaveLength(1);
    // Its CmdSN counts as received: the next one runs.
    const next = await c.run({ cdb: TEST_UNIT_READY, edtl: 0 });
    expect(next.status).toBe(0);
    expect(next.final.expCmdSN).toBe(sn + 2);
  });

  it('ABORT TASK on a queued command waiting for a CmdSN gap: it never runs', async () => {
    const { t, c } = await session({});
    const sn = c.cmdSN;
    c.cmdSN += 2;
    const queued = c.command({ cdb: read10(7, 1), read: true, edtl: BLOCK, cmdSN: sn + 1 });
    c.tmf({ func: TMF.ABORT_TASK, refItt: queued, refCmdSN: sn + 1 });
    expect((await c.recv()).byte2).toBe(0);
    const first = await c.run({ cdb: read10(6, 1), read: true, edtl: BLOCK, cmdSN: sn });
    expect(first.status).toBe(0);
    expect(await c.drainFor(100)).toEqual([]);
    expect(t.device.commands.map((cmd) => cmd.cdb.readUInt32BE(2))).not.toContain(7);
  });

  it('LOGICAL UNIT RESET aborts the LUN’s tasks silently and answers function complete', async () => {
    const { t, c } = await session({});
    t.device.hold();
    const itt = c.command({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    await t.device.waitForHeld(1);
    c.tmf({ func: TMF.LUN_RESET, lun: 0 });
    await new Promise((r) => setTimeout(r, 50));
    t.device.release();
    const pdus = await c.recvUntil((p) => p.opcode === Op.TMF_RESPONSE);
    expect(pdus).toHaveLength(1);
    expect(pdus[0]!.byte2).toBe(0);
    expect(pdus.some((p) => p.itt === itt)).toBe(false);
    expect(t.device.tmfs).toEqual([{ fn: 'logical-unit-reset', lun: 0 }]);
    const after = await c.run({ cdb: TEST_UNIT_READY, edtl: 0 });
    expect(senseTriple(after.sense)?.[0]).toBe(0x06); // the reset is reported as a unit attention
  });

  it('TARGET COLD RESET answers function complete, then drops every session of the target', async () => {
    const t = await serve();
    const a = await t.loggedIn({ isid: Buffer.from('800000000031', 'hex') });
    const b = await t.loggedIn({ isid: Buffer.from('800000000032', 'hex') });
    a.tmf({ func: 7 });
    const resp = await a.recv();
    expect(resp.opcode).toBe(Op.TMF_RESPONSE);
    expect(resp.byte2).toBe(0);
    expect(await a.waitClosed()).toBe(true);
    expect(await b.waitClosed()).toBe(true);
    await expect.poll(() => t.server.listSessions(), { timeout: 1000 }).toEqual([]);
  });

  it('answers a TMF in a discovery session with function not supported (5)', async () => {
    const t = await serve();
    const c = await t.connect();
    await c.login({ discovery: true });
    c.tmf({ func: TMF.LUN_RESET, lun: 0 });
    expect((await c.recv()).byte2).toBe(5);
  });

  it('TASK REASSIGN is not supported at ERL 0 (4)', async () => {
    const { c } = await session({});
    c.tmf({ func: TMF.TASK_REASSIGN, refItt: 0x1234 });
    const resp = await c.recv();
    expect(resp.opcode).toBe(Op.TMF_RESPONSE);
    expect(resp.byte2).toBe(4);
  });

  it('answers a TMF for an unknown LUN with LUN does not exist (2)', async () => {
    const { t, c } = await session({});
    c.tmf({ func: TMF.LUN_RESET, lun: 9 });
    expect((await c.recv()).byte2).toBe(2);
    c.tmf({ func: TMF.ABORT_TASK_SET, lun: 9 });
    expect((await c.recv()).byte2).toBe(2);
    expect(t.device.tmfs).toEqual([]);
  });

  it('ABORT TASK SET aborts only this session’s tasks on the LUN', async () => {
    const t = await serve();
    const a = await t.loggedIn({ isid: Buffer.from('800000000021', 'hex') });
    const b = await t.loggedIn({ isid: Buffer.from('800000000022', 'hex') });
    for (const c of [a, b]) await c.run({ cdb: TEST_UNIT_READY, edtl: 0 });
    t.device.hold();
    const ia = a.command({ cdb: read10(0, 1), read: true, edtl: BLOCK });
    const ib = b.command({ cdb: read10(1, 1), read: true, edtl: BLOCK });
    await t.device.waitForHeld(2);
    a.tmf({ func: TMF.ABORT_TASK_SET, lun: 0 });
    await new Promise((r) => setTimeout(r, 50));
    t.device.release();
    const pa = await a.recvUntil((p) => p.opcode === Op.TMF_RESPONSE);
    expect(pa.map((p) => p.opcode)).toEqual([Op.TMF_RESPONSE]);
    expect(pa.some((p) => p.itt === ia)).toBe(false);
    expect((await b.finishCommand(ib)).status).toBe(0);
  });
});

/* ---------------- text: SendTargets ---------------- */

describe('SendTargets', () => {
  const names = (text: Buffer): string[] => parsePairs(text).filter(([k]) => k === 'TargetName').map(([, v]) => v);

  it('lists the targets this initiator may see, each at the address it connected to', async () => {
    const t = await serve({
      extraTargets: [
        { name: 'iqn.2026-01.test.twinsan:disk1' },
        { name: 'iqn.2026-01.test.twinsan:hidden', allowedInitiators: ['iqn.2026-01.test.twinsan:other'] },
      ],
    });
    const c = await t.connect();
    expect((await c.login({ discovery: true })).status).toEqual([0, 0]);
    const { text, pdus } = await c.sendTargets('All');
    expect(pdus).toHaveLength(1);
    expect(pdus[0]!.final).toBe(true);
    expect(pdus[0]!.ttt).toBe(RESERVED);
    expect(parsePairs(text)).toEqual([
      ['TargetName', TARGET],
      ['TargetAddress', `127.0.0.1:${t.port},1`],
      ['TargetName', 'iqn.2026-01.test.twinsan:disk1'],
      ['TargetAddress', `127.0.0.1:${t.port},1`],
    ]);
  });

  it('answers SendTargets=<name> with that target only', async () => {
    const t = await serve({ extraTargets: [{ name: 'iqn.2026-01.test.twinsan:disk1' }] });
    const c = await t.connect();
    await c.login({ discovery: true });
    expect(names((await c.sendTargets('iqn.2026-01.test.twinsan:disk1')).text)).toEqual(['iqn.2026-01.test.twinsan:disk1']);
  });

  it('in a normal session reports only the session’s own target', async () => {
    const t = await serve({ extraTargets: [{ name: 'iqn.2026-01.test.twinsan:disk1' }] });
    const c = await t.loggedIn();
    expect(names((await c.sendTargets('')).text)).toEqual([TARGET]);
  });

  it("continues a response longer than the initiator's MaxRecvDataSegmentLength over several text requests (C bit, TTT)", async () => {
    const extra = Array.from({ length: 24 }, (_, i) => ({ name: `iqn.2026-01.test.twinsan:volume-with-a-long-name-${String(i).padStart(3, '0')}` }));
    const t = await serve({ extraTargets: extra });
    const c = await t.connect();
    await c.login({ discovery: true, keys: { MaxRecvDataSegmentLength: 512 } });
    const { text, pdus } = await c.sendTargets('All');
    expect(pdus.length).toBeGreaterThan(3);
    for (const p of pdus) expect(p.dataSegmentLength).toBeLessThanOrEqual(512);
    for (const p of pdus.slice(0, -1)) {
      expect(p.cont).toBe(true);
      expect(p.final).toBe(false);
      expect(p.ttt).not.toBe(RESERVED);
    }
    const last = pdus.at(-1)!;
    expect(last.cont).toBe(false);
    expect(last.final).toBe(true);
    expect(last.ttt).toBe(RESERVED);
    expect(new Set(pdus.map((p) => p.itt)).size).toBe(1);
    expect(names(text)).toEqual([TARGET, ...extra.map((e) => e.name)]);
  });

  it('rejects a text request split over several PDUs (C bit), which no full-feature key needs', async () => {
    const t = await serve();
    const c = await t.connect();
    await c.login({ discovery: true });
    c.text({ data: Buffer.from('SendTar'), final: false, cont: true });
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x04);
    expect(names((await c.sendTargets('All')).text)).toEqual([TARGET]);
  });

  it('rejects a continuation with a TTT it never issued', async () => {
    const t = await serve();
    const c = await t.connect();
    await c.login({ discovery: true });
    c.text({ data: Buffer.alloc(0), ttt: 0x4444 });
    const rej = await c.recv();
    expect(rej.opcode).toBe(Op.REJECT);
    expect(rej.byte2).toBe(0x09);
  });

  it('answers unknown keys in a text request with NotUnderstood', async () => {
    const t = await serve();
    const c = await t.connect();
    await c.login({ discovery: true });
    c.text({ data: keyText({ 'X-com.example.Frobnicate': 'Yes' }) });
    const resp = await c.recv();
    expect(resp.keys.get('X-com.example.Frobnicate')).toBe('NotUnderstood');
  });
});
