/**
 * FUA and SYNCHRONIZE CACHE reach stable storage, seen at the system-call
 * level: `twinsan target` runs under
 *   strace -f -e trace=open,openat,pwritev2,pwritev,pwrite64,fdatasync,fsync,
 *                      sync_file_range,write,writev,sendmsg,sendto
 * and a small raw-CDB initiator (test/unit/iscsi/fuzz/initiator.ts) sends
 * WRITE(10)/(16) with and without FUA, SYNCHRONIZE CACHE(10) and a MODE
 * SELECT that turns the write cache off (WCE=0), each with its own ITT. In
 * the trace, the SCSI Response PDU of a command is the first socket write
 * whose buffer starts with opcode 0x21 and carries that ITT (strace -xx
 * prints the bytes); the backing file's writes are found by file offset.
 * strace prints syscalls in the order they happen, splitting one that
 * another thread interrupts into "<unfinished ...>" and "resumed" lines, so
 * line numbers give the order of entries and exits across threads.
 *
 * "Durable before the response" means: pwritev2 with RWF_DSYNC (or
 * RWF_SYNC) returned, or the write returned and then an fdatasync/fsync of
 * the backing file returned, before the response's socket write began.
 */
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForPort } from '../../scripts/lib/ports.mjs';
import { spawnDaemon } from '../../scripts/lib/proc.mjs';
import type { Daemon } from '../../scripts/lib/proc.mjs';
import { TWINSAN_BIN } from '../../scripts/lib/targets.mjs';
import { TestInitiator, rw10 } from '../unit/iscsi/fuzz/initiator';
import { freePort, requireTools, track } from './helpers';

const BLOCK = 512;
const SIZE = 8 * 1024 * 1024;
const IQN = 'iqn.2026-11.io.twinsan.test:durability';
const TRACED = 'open,openat,pwritev2,pwritev,pwrite64,fdatasync,fsync,sync_file_range,write,writev,sendmsg,sendto';

/** One system call from the trace, with the trace lines of its entry and its exit. */
interface Syscall {
  readonly pid: number;
  readonly name: string;
  readonly args: string;
  readonly ret: number;
  readonly start: number;
  readonly end: number;
}

/** Parse `strace -f -o FILE` output into syscalls (entry/exit line numbers kept for ordering). */
function parseStrace(text: string): Syscall[] {
  const out: Syscall[] = [];
  const open = new Map<number, { name: string; args: string; start: number }>();
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    let m = /^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (m) {
      open.set(Number(m[1]), { name: m[2]!, args: m[3]!, start: i });
      return;
    }
    m = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+= (-?\d+|\?)/.exec(line);
    if (m) {
      const pid = Number(m[1]);
      const begun = open.get(pid);
      open.delete(pid);
      if (begun && begun.name === m[2]) out.push({ pid, name: begun.name, args: begun.args + m[3]!, ret: Number(m[4]), start: begun.start, end: i });
      return;
    }
    m = /^(\d+)\s+(\w+)\((.*)\)\s+= (-?\d+|\?)/.exec(line);
    if (m) out.push({ pid: Number(m[1]), name: m[2]!, args: m[3]!, ret: Number(m[4]), start: i, end: i });
  });
  return out;
}

/** The byte strings in a syscall's arguments (strace -xx prints every byte as \xHH). */
function strings(args: string): Buffer[] {
  return [...args.matchAll(/"((?:\\x[0-9a-f]{2})*)"/g)].map((m) => Buffer.from(m[1]!.replace(/\\x/g, ''), 'hex'));
}

const fdOf = (c: Syscall): number => Number.parseInt(c.args, 10);
const SOCKET_WRITES = new Set(['write', 'writev', 'sendmsg', 'sendto']);
const FILE_WRITES = new Set(['pwritev2', 'pwritev', 'pwrite64']);
const SYNCS = new Set(['fdatasync', 'fsync', 'sync_file_range']);

class Trace {
  readonly calls: Syscall[];
  readonly backingFd: number;

  constructor(text: string, backingPath: string) {
    this.calls = parseStrace(text);
    const opened = this.calls.filter((c) => (c.name === 'openat' || c.name === 'open') && c.args.includes(`"${hex(backingPath)}"`) && c.ret >= 0);
    if (opened.length === 0) throw new Error(`the trace never opens ${backingPath}`);
    this.backingFd = opened[opened.length - 1]!.ret;
  }

  /** The socket write that begins the SCSI Response (opcode 0x21) for `itt`. */
  response(itt: number): Syscall {
    const r = this.calls.find(
      (c) => SOCKET_WRITES.has(c.name) && fdOf(c) !== this.backingFd && strings(c.args).some((b) => b.length >= 20 && (b[0]! & 0x3f) === 0x21 && b.readUInt32BE(16) === itt),
    );
    if (!r) throw new Error(`no SCSI Response for ITT 0x${itt.toString(16)} in the trace`);
    return r;
  }

  /** Writes to the backing file at byte `offset`. */
  writesAt(offset: number): Array<Syscall & { flags: string }> {
    return this.calls
      .filter((c) => FILE_WRITES.has(c.name) && fdOf(c) === this.backingFd)
      .map((c) => {
        // pwritev2(fd, iov, cnt, offset, flags); pwritev(fd, iov, cnt, offset); pwrite64(fd, buf, n, offset)
        const m = c.name === 'pwritev2' ? /, (\d+), (\w+(?:\|\w+)*)$/.exec(c.args) : /, (\d+)$/.exec(c.args);
        return { ...c, at: m ? Number(m[1]) : -1, flags: c.name === 'pwritev2' && m ? m[2]! : '0' };
      })
      .filter((c) => c.at === offset);
  }

  syncs(after: number, before: number): Syscall[] {
    return this.calls.filter((c) => SYNCS.has(c.name) && fdOf(c) === this.backingFd && c.ret === 0 && c.start > after && c.end < before);
  }

  /** The write at `offset` was durable before the response for `itt` began to be sent. */
  durableBeforeResponse(offset: number, length: number, itt: number): { written: boolean; durable: boolean; how: string } {
    const resp = this.response(itt);
    const writes = this.writesAt(offset).filter((w) => w.end < resp.start);
    if (writes.length === 0) return { written: false, durable: false, how: `no write at ${offset} before the response` };
    const w = writes[writes.length - 1]!;
    if (w.ret !== length) return { written: false, durable: false, how: `${w.name} at ${offset} returned ${w.ret}, not ${length}` };
    if (/RWF_D?SYNC/.test(w.flags)) return { written: true, durable: true, how: `${w.name}(..., ${w.flags}) returned before the response` };
    const s = this.syncs(w.end, resp.start);
    if (s.length > 0) return { written: true, durable: true, how: `${w.name} then ${s[0]!.name} before the response` };
    return { written: true, durable: false, how: `${w.name}(flags ${w.flags}) with no sync before the response` };
  }
}

function hex(s: string): string {
  return [...Buffer.from(s)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
}

function rw16(opcode: 0x8a, lba: number, blocks: number, fua: boolean): Buffer {
  const c = Buffer.alloc(16);
  c[0] = opcode;
  c[1] = fua ? 0x08 : 0;
  c.writeUInt32BE(lba, 6);
  c.writeUInt32BE(blocks, 10);
  return c;
}

/** What the test did, for the assertions: ITTs and byte offsets. */
const OPS = {
  fua10: { itt: 0x0fa00001, lba: 1000, fill: 0xa1 },
  fua16: { itt: 0x0fa00002, lba: 2000, fill: 0xa2 },
  plain: { itt: 0x0fa00003, lba: 3000, fill: 0xb3 },
  sync: { itt: 0x0fa00004 },
  wceOff: { itt: 0x0fa00005 },
  afterWceOff: { itt: 0x0fa00006, lba: 5000, fill: 0xc6 },
} as const;
const BLOCKS = 8;

describe('reading strace -f output', () => {
  it('pairs unfinished and resumed lines per thread and keeps the order of entries and exits', () => {
    const calls = parseStrace(
      [
        '100 pwritev2(18, [{iov_base="\\x5a\\x5a"..., iov_len=4096}], 1, 512000, RWF_DSYNC <unfinished ...>',
        '101 writev(21, [{iov_base="\\x21\\x80", iov_len=48}], 1) = 48',
        '100 <... pwritev2 resumed>) = 4096',
        '102 fdatasync(18)                    = 0',
        '+++ exited with 0 +++',
      ].join('\n'),
    );
    expect(calls.map(({ pid, name, ret, start, end }) => ({ pid, name, ret, start, end }))).toEqual([
      { pid: 101, name: 'writev', ret: 48, start: 1, end: 1 },
      { pid: 100, name: 'pwritev2', ret: 4096, start: 0, end: 2 },
      { pid: 102, name: 'fdatasync', ret: 0, start: 3, end: 3 },
    ]);
    expect(calls[1]!.args).toMatch(/, 512000, RWF_DSYNC$/);
    expect(strings(calls[0]!.args)).toEqual([Buffer.from([0x21, 0x80])]);
  });
});

describe('twinsan target: FUA and SYNCHRONIZE CACHE reach stable storage (strace)', () => {
  let dir: string;
  let backingPath: string;
  let trace: Trace;
  let traceText: string;

  beforeAll(async () => {
    requireTools(['strace']);
    dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-durability-'));
    backingPath = path.join(dir, 'volume.img');
    const traceFile = path.join(dir, 'strace.txt');
    const port = await freePort();
    const daemon: Daemon = spawnDaemon(
      'strace',
      ['-f', '-qq', '-s', '64', '-xx', '-o', traceFile, '-e', `trace=${TRACED}`, process.execPath, TWINSAN_BIN, 'target',
        '--listen', `127.0.0.1:${port}`, '--iqn', IQN, '--backing', backingPath, '--size', String(SIZE), '--create'],
      { label: 'strace twinsan target' },
    );
    let targetPid = 0;
    const signalTarget = (signal: NodeJS.Signals): void => {
      try {
        if (targetPid && daemon.status() === undefined) process.kill(targetPid, signal);
      } catch {
        // already gone
      }
    };
    const stopTarget = async (): Promise<void> => {
      // SIGTERM to strace would detach it and leave the target running: signal the target itself.
      signalTarget('SIGTERM');
      const status = await Promise.race([daemon.exited, new Promise<number>((r) => setTimeout(() => r(-1), 15_000).unref())]);
      if (status === -1) {
        signalTarget('SIGKILL');
        await daemon.stop({ signal: 'SIGKILL', timeoutMs: 2_000 });
      }
    };
    track({
      label: 'strace twinsan target',
      dispose: stopTarget,
      disposeSync: () => {
        signalTarget('SIGKILL');
        daemon.killSync();
      },
    });
    // Tracing slows start-up down.
    await waitForPort(port, { timeoutMs: 30_000, check: () => daemon.assertRunning('before listening') });
    // The log line may reach the pipe after the port accepts (pino writes asynchronously).
    const ready = await daemon.waitForOutput(/"pid":(\d+).*"msg":"target ready"/, { timeoutMs: 30_000 });
    targetPid = Number(ready[1]);
    expect(targetPid, daemon.stdout()).toBeGreaterThan(0);

    const ini = await TestInitiator.connect(port);
    try {
      await ini.login({ initiatorName: 'iqn.2026-01.io.twinsan.test:durability', targetName: IQN });
      for (let i = 0; i < 5 && (await ini.scsi(Buffer.alloc(16))).status !== 0; i++); // clear the power-on unit attention
      const data = (fill: number): Buffer => Buffer.alloc(BLOCKS * BLOCK, fill);
      const good = async (what: string, p: Promise<{ status: number; response: number }>): Promise<void> => {
        const r = await p;
        expect({ what, response: r.response, status: r.status }).toEqual({ what, response: 0, status: 0 });
      };
      await good('WRITE(10) FUA', ini.scsi(rw10(0x2a, OPS.fua10.lba, BLOCKS, true), { write: data(OPS.fua10.fill), itt: OPS.fua10.itt }));
      await good('WRITE(16) FUA', ini.scsi(rw16(0x8a, OPS.fua16.lba, BLOCKS, true), { write: data(OPS.fua16.fill), itt: OPS.fua16.itt }));
      await good('WRITE(10)', ini.scsi(rw10(0x2a, OPS.plain.lba, BLOCKS), { write: data(OPS.plain.fill), itt: OPS.plain.itt }));
      await good('SYNCHRONIZE CACHE(10)', ini.scsi(Buffer.from([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), { itt: OPS.sync.itt }));
      // Caching mode page as it is now (MODE SENSE(10), DBD, current values), then WCE off.
      const sense = await ini.scsi(Buffer.from([0x5a, 0x08, 0x08, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0]), { read: 255 });
      expect(sense.status).toBe(0);
      const page = Buffer.from(sense.dataIn.subarray(8, 8 + 2 + sense.dataIn[9]!));
      expect(page[0]! & 0x3f).toBe(0x08);
      expect(page[2]! & 0x04).toBe(0x04); // WCE is on by default
      page[0]! &= 0x3f; // PS is reserved in MODE SELECT
      page[2]! &= ~0x04;
      const list = Buffer.concat([Buffer.alloc(8), page]);
      const select = Buffer.from([0x55, 0x10, 0, 0, 0, 0, 0, 0, list.length, 0, 0, 0, 0, 0, 0, 0]);
      await good('MODE SELECT(10) WCE=0', ini.scsi(select, { write: list, itt: OPS.wceOff.itt }));
      await good('WRITE(10) with WCE=0', ini.scsi(rw10(0x2a, OPS.afterWceOff.lba, BLOCKS), { write: data(OPS.afterWceOff.fill), itt: OPS.afterWceOff.itt }));
      expect(await ini.logout()).toBe(true);
    } finally {
      ini.close();
    }
    await stopTarget();
    traceText = await readFile(traceFile, 'utf8');
    trace = new Trace(traceText, backingPath);
  }, 90_000);

  afterAll(async () => {
    if (trace) {
      const say = (name: string, op: { itt: number; lba: number }): string => `${name}: ${trace.durableBeforeResponse(op.lba * BLOCK, BLOCKS * BLOCK, op.itt).how}`;
      console.log(
        [
          `strace: backing file fd ${trace.backingFd}, ${trace.calls.length} syscalls traced`,
          say('WRITE(10) FUA', OPS.fua10),
          say('WRITE(16) FUA', OPS.fua16),
          say('WRITE(10), WCE=1', OPS.plain),
          `SYNCHRONIZE CACHE(10): ${trace.syncs(trace.response(OPS.plain.itt).start, trace.response(OPS.sync.itt).start).map((c) => c.name).join(', ') || 'no sync'}`,
          say('WRITE(10), WCE=0', OPS.afterWceOff),
        ].join('\n  '),
      );
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const offset = (lba: number): number => lba * BLOCK;
  const LENGTH = BLOCKS * BLOCK;

  it('finds the backing file, the writes and the responses in the trace', () => {
    expect(trace.backingFd).toBeGreaterThan(2);
    for (const op of [OPS.fua10, OPS.fua16, OPS.plain, OPS.afterWceOff]) expect(trace.writesAt(offset(op.lba)).length, `write at LBA ${op.lba}`).toBeGreaterThan(0);
    for (const op of Object.values(OPS)) expect(() => trace.response(op.itt)).not.toThrow();
  });

  it('makes a WRITE(10) with FUA durable before its SCSI Response is sent', () => {
    const d = trace.durableBeforeResponse(offset(OPS.fua10.lba), LENGTH, OPS.fua10.itt);
    expect(d, d.how).toMatchObject({ written: true, durable: true });
  });

  it('makes a WRITE(16) with FUA durable before its SCSI Response is sent', () => {
    const d = trace.durableBeforeResponse(offset(OPS.fua16.lba), LENGTH, OPS.fua16.itt);
    expect(d, d.how).toMatchObject({ written: true, durable: true });
  });

  it('does not sync a plain WRITE(10) while the write cache is on (the trace tells the two apart)', () => {
    const d = trace.durableBeforeResponse(offset(OPS.plain.lba), LENGTH, OPS.plain.itt);
    expect(d, d.how).toMatchObject({ written: true, durable: false });
  });

  it('fdatasyncs the backing file for SYNCHRONIZE CACHE, after the earlier write was acknowledged and before its own response', () => {
    const syncs = trace.syncs(trace.response(OPS.plain.itt).start, trace.response(OPS.sync.itt).start);
    expect(syncs.map((s) => s.name)).toContain('fdatasync');
  });

  it('flushes when MODE SELECT turns the write cache off', () => {
    const syncs = trace.syncs(trace.response(OPS.sync.itt).start, trace.response(OPS.wceOff.itt).start);
    expect(syncs.length).toBeGreaterThan(0);
  });

  it('makes every write durable before its response once WCE=0, FUA or not', () => {
    const d = trace.durableBeforeResponse(offset(OPS.afterWceOff.lba), LENGTH, OPS.afterWceOff.itt);
    expect(d, d.how).toMatchObject({ written: true, durable: true });
  });

  it('leaves the written data in the backing file', async () => {
    const file = await readFile(backingPath);
    for (const op of [OPS.fua10, OPS.fua16, OPS.plain, OPS.afterWceOff]) {
      expect(file.subarray(offset(op.lba), offset(op.lba) + LENGTH).equals(Buffer.alloc(LENGTH, op.fill)), `LBA ${op.lba}`).toBe(true);
    }
  });
});
