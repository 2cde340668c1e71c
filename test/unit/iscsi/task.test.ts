/**
 * Task (src/target/iscsi/task.ts): gathering a write's Data-Out from
 * immediate data, unsolicited Data-Out and R2T-solicited bursts, with
 * DataPDUInOrder=Yes and DataSN checked per sequence; and the task's state
 * transitions.
 *
 * The session normally sets unsolicitedLimit / unsolicitedDone and opens
 * R2Ts; these tests set them directly, as the session would.
 */
import { describe, expect, it } from 'vitest';
import { RESERVED_TAG } from '../../../src/target/iscsi/constants';
import { ScsiCommandPdu } from '../../../src/target/iscsi/pdu';
import { DataOutError, OutstandingR2T, Task, TaskState } from '../../../src/target/iscsi/task';

function command(fields: Partial<ScsiCommandPdu> = {}): ScsiCommandPdu {
  return {
    kind: 'scsi-command',
    raw: { bhs: Buffer.alloc(48), ahs: null, data: [], dataLength: 0 },
    immediate: false,
    itt: 0x10,
    dataLength: 0,
    final: true,
    read: false,
    write: true,
    attr: 1,
    lun: 0,
    edtl: 10000,
    cmdSN: 1,
    expStatSN: 1,
    cdb: Buffer.from([0x2a, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0]),
    bidiReadLength: null,
    ...fields,
  };
}

/** A write task that may receive `unsolicited` bytes without an R2T. */
function writeTask(edtl: number, unsolicited = 0): Task {
  const task = new Task(command({ edtl }));
  task.unsolicitedLimit = unsolicited;
  task.unsolicitedDone = unsolicited === 0;
  return task;
}

function openR2T(task: Task, ttt: number, offset: number, length: number): OutstandingR2T {
  const r2t: OutstandingR2T = { ttt, r2tSN: task.nextR2TSN++, offset, length, received: 0, nextDataSN: 0 };
  task.r2ts.set(ttt, r2t);
  return r2t;
}

const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

function dataOutError(fn: () => unknown): DataOutError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DataOutError);
    return err as DataOutError;
  }
  throw new Error('expected a DataOutError, nothing was thrown');
}

describe('Task construction', () => {
  it('copies ITT, LUN, CmdSN, CDB, EDTL, direction and attribute from the command', () => {
    const cdb = Buffer.from([0x28, 0, 0, 0, 0, 1, 0, 0, 8, 0]);
    const task = new Task(command({ itt: 0xabc, lun: 5, cmdSN: 77, cdb, edtl: 4096, read: true, write: false, attr: 2 }));
    expect(task).toMatchObject({ itt: 0xabc, lun: 5, cmdSN: 77, cdb, edtl: 4096, isRead: true, isWrite: false, attr: 2 });
  });

  it('starts receiving, with nothing received, no R2Ts and unsolicited data closed', () => {
    const task = new Task(command());
    expect(task.state).toBe(TaskState.RECEIVING);
    expect(task.received).toBe(0);
    expect(task.segments).toEqual([]);
    expect(task.r2ts.size).toBe(0);
    expect(task.unsolicitedDone).toBe(true);
    expect(task.aborted).toBe(false);
  });
});

describe('Task.dataComplete', () => {
  it('is true at once for a command that writes nothing', () => {
    expect(new Task(command({ read: true, write: false, edtl: 512 })).dataComplete).toBe(true);
  });

  it('becomes true for a write once EDTL bytes have arrived', () => {
    const task = writeTask(8, 8);
    expect(task.dataComplete).toBe(false);
    task.acceptData(0, [bytes(4, 1)], 4, RESERVED_TAG);
    expect(task.dataComplete).toBe(false);
    task.acceptData(4, [bytes(4, 2)], 4, RESERVED_TAG);
    expect(task.dataComplete).toBe(true);
  });
});

describe('Task.acceptData', () => {
  it('gathers immediate data, unsolicited Data-Out and two R2T bursts in order', () => {
    // EDTL 10000, FirstBurstLength 4096, 1024 bytes of immediate data,
    // then R2Ts of MaxBurstLength 4096 for the rest.
    const task = writeTask(10000, 4096);
    const immediate = bytes(1024, 0x01);
    expect(task.acceptData(0, [immediate], 1024, RESERVED_TAG)).toBeNull();
    expect(task.acceptData(1024, [bytes(2048, 0x02)], 2048, RESERVED_TAG, 0)).toBeNull();
    expect(task.acceptData(3072, [bytes(1024, 0x03)], 1024, RESERVED_TAG, 1)).toBeNull();
    expect(task.received).toBe(4096);

    const first = openR2T(task, 0x100, 4096, 4096);
    const second = openR2T(task, 0x101, 8192, 1808);
    expect(task.acceptData(4096, [bytes(2048, 0x04)], 2048, 0x100, 0)).toBeNull();
    expect(first.received).toBe(2048);
    expect(task.acceptData(6144, [bytes(2048, 0x05)], 2048, 0x100, 1)).toBe(first);
    expect(task.acceptData(8192, [bytes(1808, 0x06)], 1808, 0x101, 0)).toBe(second);

    expect(task.received).toBe(10000);
    expect(task.dataComplete).toBe(true);
    expect(task.r2ts.size).toBe(0);
    expect(task.segments[0]).toBe(immediate);
    expect(Buffer.concat(task.segments)).toEqual(
      Buffer.concat([bytes(1024, 1), bytes(2048, 2), bytes(1024, 3), bytes(2048, 4), bytes(2048, 5), bytes(1808, 6)]),
    );
  });

  it('keeps every slice of a multi-slice Data-Out, in order, without copying', () => {
    const task = writeTask(6, 6);
    const a = Buffer.from('ab');
    const b = Buffer.from('cdef');
    task.acceptData(0, [a, b], 6, RESERVED_TAG);
    expect(task.segments).toHaveLength(2);
    expect(task.segments[0]).toBe(a);
    expect(task.segments[1]).toBe(b);
  });

  it('returns the R2T when its burst completes, with everything counted, and forgets it', () => {
    const task = writeTask(4096);
    const r2t = openR2T(task, 7, 0, 4096);
    const done = task.acceptData(0, [bytes(4096, 9)], 4096, 7);
    expect(done).toBe(r2t);
    expect(done).toMatchObject({ ttt: 7, r2tSN: 0, offset: 0, length: 4096, received: 4096 });
    expect(task.r2ts.has(7)).toBe(false);
  });

  it('returns null while a burst is still short of its desired length', () => {
    const task = writeTask(4096);
    openR2T(task, 7, 0, 4096);
    expect(task.acceptData(0, [bytes(4095, 9)], 4095, 7)).toBeNull();
    expect(task.r2ts.get(7)?.received).toBe(4095);
  });

  it('rejects data at an offset other than the next expected one (DataPDUInOrder)', () => {
    const task = writeTask(8192, 8192);
    task.acceptData(0, [bytes(512, 1)], 512, RESERVED_TAG);
    expect(dataOutError(() => task.acceptData(1024, [bytes(512, 2)], 512, RESERVED_TAG)).message).toMatch(/offset 1024.*512/);
    expect(dataOutError(() => task.acceptData(0, [bytes(512, 2)], 512, RESERVED_TAG)).message).toMatch(/offset 0/);
  });

  it('rejects data that would run past the expected data transfer length', () => {
    const task = writeTask(1000, 1000);
    task.acceptData(0, [bytes(600, 1)], 600, RESERVED_TAG);
    expect(dataOutError(() => task.acceptData(600, [bytes(401, 2)], 401, RESERVED_TAG)).message).toMatch(/1001.*1000/);
  });

  it('rejects solicited data past EDTL even when its R2T would allow it', () => {
    const task = writeTask(1000);
    openR2T(task, 3, 0, 2000);
    dataOutError(() => task.acceptData(0, [bytes(1001, 1)], 1001, 3));
    expect(task.r2ts.get(3)?.received).toBe(0);
  });

  it('rejects data for a target transfer tag with no outstanding R2T', () => {
    const task = writeTask(4096);
    openR2T(task, 0x20, 0, 4096);
    expect(dataOutError(() => task.acceptData(0, [bytes(512, 1)], 512, 0x21)).message).toMatch(/0x21/);
  });

  it('rejects further data on an R2T whose burst already completed', () => {
    const task = writeTask(8192);
    openR2T(task, 1, 0, 4096);
    task.acceptData(0, [bytes(4096, 1)], 4096, 1);
    dataOutError(() => task.acceptData(4096, [bytes(512, 2)], 512, 1));
  });

  it('rejects solicited data that does not fit inside its R2T', () => {
    const task = writeTask(8192);
    openR2T(task, 1, 0, 4096);
    openR2T(task, 2, 4096, 4096);
    // runs over the end of R2T 1
    expect(dataOutError(() => task.acceptData(0, [bytes(4097, 1)], 4097, 1)).message).toMatch(/outside its R2T/);
    // starts before R2T 2
    dataOutError(() => task.acceptData(0, [bytes(512, 1)], 512, 2));
  });

  it('rejects unsolicited data once the unsolicited burst is over', () => {
    const task = writeTask(8192, 4096);
    task.acceptData(0, [bytes(1024, 1)], 1024, RESERVED_TAG);
    task.unsolicitedDone = true; // F bit seen
    dataOutError(() => task.acceptData(1024, [bytes(1024, 2)], 1024, RESERVED_TAG));
  });

  it('rejects unsolicited data beyond FirstBurstLength', () => {
    const task = writeTask(8192, 4096);
    task.acceptData(0, [bytes(4000, 1)], 4000, RESERVED_TAG);
    expect(dataOutError(() => task.acceptData(4000, [bytes(97, 2)], 97, RESERVED_TAG)).message).toMatch(/4096/);
    expect(task.acceptData(4000, [bytes(96, 2)], 96, RESERVED_TAG)).toBeNull();
    expect(task.received).toBe(4096);
  });

  it('rejects unsolicited data on a task that allows none (InitialR2T=Yes, no immediate data)', () => {
    const task = writeTask(4096);
    dataOutError(() => task.acceptData(0, [bytes(512, 1)], 512, RESERVED_TAG));
  });

  it('changes nothing when it rejects data', () => {
    const task = writeTask(8192, 2048);
    task.acceptData(0, [bytes(1024, 1)], 1024, RESERVED_TAG);
    const r2t = openR2T(task, 9, 2048, 4096);
    const attempts: Array<() => unknown> = [
      () => task.acceptData(2048, [bytes(10, 0)], 10, 9), // out of order
      () => task.acceptData(1024, [bytes(8000, 0)], 8000, RESERVED_TAG), // past EDTL
      () => task.acceptData(1024, [bytes(10, 0)], 10, 0x99), // unknown TTT
      () => task.acceptData(1024, [bytes(10, 0)], 10, 9), // before its R2T
      () => task.acceptData(1024, [bytes(1025, 0)], 1025, RESERVED_TAG), // past FirstBurstLength
    ];
    for (const attempt of attempts) dataOutError(attempt);
    expect(task.received).toBe(1024);
    expect(task.segments).toHaveLength(1);
    expect(r2t.received).toBe(0);
    expect(task.r2ts.size).toBe(1);
  });

  it('DataOutError is an Error named DataOutError', () => {
    const err = new DataOutError('x');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('DataOutError');
  });
});

describe('Task.acceptData DataSN checking', () => {
  it('numbers unsolicited Data-Out from 0, not counting the immediate data of the command', () => {
    const task = writeTask(4096, 4096);
    task.acceptData(0, [bytes(1024, 1)], 1024, RESERVED_TAG); // immediate data: no DataSN
    expect(task.acceptData(1024, [bytes(1024, 2)], 1024, RESERVED_TAG, 0)).toBeNull();
    expect(task.acceptData(2048, [bytes(1024, 3)], 1024, RESERVED_TAG, 1)).toBeNull();
    expect(task.nextUnsolicitedDataSN).toBe(2);
  });

  it('rejects an unsolicited Data-Out whose DataSN skips or repeats one', () => {
    const task = writeTask(4096, 4096);
    task.acceptData(0, [bytes(512, 1)], 512, RESERVED_TAG, 0);
    expect(dataOutError(() => task.acceptData(512, [bytes(512, 2)], 512, RESERVED_TAG, 2)).message).toMatch(/DataSN 2, expected 1/);
    dataOutError(() => task.acceptData(512, [bytes(512, 2)], 512, RESERVED_TAG, 0));
    expect(task.received).toBe(512);
    expect(task.nextUnsolicitedDataSN).toBe(1);
  });

  it('numbers the Data-Out of each R2T burst from 0', () => {
    const task = writeTask(4096);
    const first = openR2T(task, 1, 0, 2048);
    const second = openR2T(task, 2, 2048, 2048);
    expect(task.acceptData(0, [bytes(1024, 1)], 1024, 1, 0)).toBeNull();
    expect(task.acceptData(1024, [bytes(1024, 2)], 1024, 1, 1)).toBe(first);
    expect(task.acceptData(2048, [bytes(1024, 3)], 1024, 2, 0)).toBeNull();
    expect(task.acceptData(3072, [bytes(1024, 4)], 1024, 2, 1)).toBe(second);
    expect(task.dataComplete).toBe(true);
  });

  it('rejects a solicited Data-Out with the wrong DataSN and leaves its R2T untouched', () => {
    const task = writeTask(4096);
    const r2t = openR2T(task, 1, 0, 4096);
    task.acceptData(0, [bytes(1024, 1)], 1024, 1, 0);
    expect(dataOutError(() => task.acceptData(1024, [bytes(1024, 2)], 1024, 1, 5)).message).toMatch(/DataSN 5, expected 1/);
    expect(r2t).toMatchObject({ received: 1024, nextDataSN: 1 });
    expect(task.received).toBe(1024);
  });
});

describe('Task.advance', () => {
  it('moves receiving -> executing -> done', () => {
    const task = new Task(command());
    task.advance(TaskState.EXECUTING);
    expect(task.state).toBe('executing');
    task.advance(TaskState.DONE);
    expect(task.state).toBe('done');
  });

  it('may finish a task straight from receiving (aborted or failed before execution)', () => {
    const task = new Task(command());
    task.advance(TaskState.DONE);
    expect(task.state).toBe(TaskState.DONE);
  });

  it('refuses to go backwards, to stay put, or to leave done', () => {
    const executing = new Task(command({ itt: 0x2a }));
    executing.advance(TaskState.EXECUTING);
    expect(() => executing.advance(TaskState.RECEIVING)).toThrow(/0x2a.*executing -> receiving/);
    expect(() => executing.advance(TaskState.EXECUTING)).toThrow(/illegal transition/);
    expect(executing.state).toBe(TaskState.EXECUTING);

    const receiving = new Task(command());
    expect(() => receiving.advance(TaskState.RECEIVING)).toThrow(/illegal transition/);

    const done = new Task(command());
    done.advance(TaskState.DONE);
    for (const next of Object.values(TaskState)) expect(() => done.advance(next)).toThrow(/illegal transition/);
    expect(done.state).toBe(TaskState.DONE);
  });
});
