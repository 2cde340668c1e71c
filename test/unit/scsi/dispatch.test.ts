import { describe, expect, test, vi } from 'vitest';
import { CommandTable, DataDirection, luCommand, ReservationClass, SBC_COMMAND_ROWS, TaskAttribute } from '../../../src/target/scsi';
import { cdb, expectCheck, expectGood, fixture, readyFixture, run } from './helpers';

const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];

describe('dispatch', () => {
  test('dispatch_unsupported_opcode', async () => {
    const { dev } = await readyFixture();
    for (const op of [0x01, 0x04, 0xc0, 0xff]) {
      const s = expectCheck(await run(dev, [op]), 0x5, 0x20, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 0 });
    }
  });

  test('dispatch_unsupported_service_action', async () => {
    const { dev } = await readyFixture();
    const s = expectCheck(await run(dev, [0x9e, 0x13]), 0x5, 0x24, 0x00); // REPORT REFERRALS: not implemented
    expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 4 });
    expectCheck(await run(dev, [0xa3, 0x05]), 0x5, 0x24, 0x00); // REPORT IDENTIFYING INFORMATION: not implemented
  });

  test('dispatch_lun_that_does_not_exist', async () => {
    const { dev } = fixture();
    for (const c of [[0x00, 0, 0, 0, 0, 0], READ10, [0x25], [0xc0], [0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0]]) {
      expectCheck(await run(dev, c, { lun: 1 }), 0x5, 0x25, 0x00);
    }
  });

  test('dispatch_control_byte_naca_and_link', async () => {
    const { dev } = await readyFixture();
    const naca = [...READ10];
    naca[9] = 0x04;
    const s = expectCheck(await run(dev, naca), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 9, bpv: true, bit: 2 });
    const link = [0x00, 0, 0, 0, 0, 0x01];
    expect(expectCheck(await run(dev, link), 0x5, 0x24, 0x00).sks).toMatchObject({ field: 5, bit: 0 });
    // The control byte is found by the command's CDB length, not the padded buffer length.
    const tur = [0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x04];
    expectGood(await run(dev, tur));
  });

  test('dispatch_aca_task_attribute_without_aca', async () => {
    const { dev } = await readyFixture();
    expectCheck(await run(dev, READ10, { taskAttribute: TaskAttribute.ACA }), 0x5, 0x49, 0x00);
  });

  test('dispatch_short_cdb', async () => {
    const { dev } = await readyFixture();
    expectCheck(await run(dev, cdb([0x28, 0, 0, 0, 0, 0], true)), 0x5, 0x24, 0x00);
    expectGood(await run(dev, cdb(READ10, true)));
  });

  test('dispatch_read_with_data_out_is_still_a_read', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, READ10, { dataOut: [Buffer.alloc(512, 0xa6)] });
    expectGood(r);
    expect(r.dataIn!.length).toBe(512);
    expect(r.dataOutExpected).toBeUndefined();
  });

  test('dispatch_internal_error_is_internal_target_failure', async () => {
    const onInternalError = vi.fn();
    const { dev, store } = fixture({ device: { onInternalError } });
    await run(dev, [0x00]);
    const boom = new TypeError('bug');
    vi.spyOn(store, 'read').mockRejectedValue(boom);
    expectCheck(await run(dev, READ10), 0x4, 0x44, 0x00);
    expect(onInternalError).toHaveBeenCalledWith(boom, expect.objectContaining({ lun: 0 }));
  });

  test('dispatch_ordered_task_waits_for_earlier_tasks', async () => {
    const { dev, store } = await readyFixture();
    const order: string[] = [];
    const real = store.read.bind(store);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    vi.spyOn(store, 'read').mockImplementationOnce(async (o, l) => {
      await gate;
      order.push('read');
      return real(o, l);
    });
    const first = run(dev, READ10);
    const ordered = run(dev, [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], { taskAttribute: TaskAttribute.ORDERED }).then((r) => {
      order.push('sync');
      return r;
    });
    const hoq = run(dev, [0x00, 0, 0, 0, 0, 0], { taskAttribute: TaskAttribute.HEAD_OF_QUEUE }).then((r) => {
      order.push('hoq');
      return r;
    });
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['hoq']);
    release();
    expectGood(await first);
    expectGood(await ordered);
    expectGood(await hoq);
    expect(order).toEqual(['hoq', 'read', 'sync']);
  });

  test('command_table_has_256_slots_and_rejects_bad_rows', () => {
    const table = new CommandTable(SBC_COMMAND_ROWS);
    expect(table.find(0x28)?.name).toBe('READ (10)');
    expect(table.find(0x9e, 0x10)?.name).toBe('READ CAPACITY (16)');
    expect(table.find(0x9e)).toBeUndefined();
    expect(table.lookup(Buffer.from([0xc0])).failure?.reason).toBe('invalid-opcode');
    const row = (opcode: number, usage: number[], serviceAction?: number) =>
      luCommand<void>({
        name: 'X',
        opcode,
        ...(serviceAction === undefined ? {} : { serviceAction }),
        cdbLength: usage.length,
        direction: DataDirection.NONE,
        reservation: ReservationClass.ALLOWED,
        usage,
        parse: () => undefined,
        execute: () => ({}),
      });
    expect(() => new CommandTable([...SBC_COMMAND_ROWS, row(0x28, [0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0])])).toThrow(/twice/);
    expect(() => new CommandTable([row(0x42, [0x41, 0, 0, 0, 0, 0])])).toThrow(/opcode/);
    expect(() => new CommandTable([row(0x9e, [0x9e, 0x11, 0, 0, 0, 0], 0x12)])).toThrow(/service action/);
    expect(() => new CommandTable([...SBC_COMMAND_ROWS, row(0x9e, [0x9e, 0x10, 0, 0, 0, 0], 0x10)])).toThrow(/twice/);
  });

  test('every_row_declares_consistent_metadata', () => {
    for (const r of SBC_COMMAND_ROWS) {
      expect([6, 10, 12, 16]).toContain(r.cdbLength);
      const group = r.opcode >> 5;
      const expectedLength = group === 0 ? 6 : group <= 2 ? 10 : group === 4 ? 16 : group === 5 ? 12 : 0;
      expect(r.cdbLength, r.name).toBe(expectedLength);
      expect(r.allowedWithoutLun, r.name).toBe([0x12, 0x03, 0xa0].includes(r.opcode));
      expect(r.allowedWithPendingUa, r.name).toBe([0x12, 0x03, 0xa0].includes(r.opcode));
      expect(Object.values(ReservationClass)).toContain(r.reservation);
    }
  });
});
