import { describe, expect, test } from 'vitest';
import { PR_ACCESS, ReservationClass, sbcCommandTable } from '../../../../src/target/scsi';
import { PR_ACCESS_COLUMNS, reservationClassOf } from '../../../../src/target/scsi/reservations';
import { cdb } from '../helpers';

describe('reservation conflict tables', () => {
  test('reservation_access_table_is_spc4_table', () => {
    // SPC-4 "SPC commands that are allowed in the presence of various reservations" / SBC-3 equivalent:
    // columns WE, EA from any other nexus; RO/AR types from a registered nexus (WE, EA); from an unregistered one (WE, EA).
    expect(PR_ACCESS_COLUMNS).toEqual([
      'write-exclusive',
      'exclusive-access',
      'registered/write-exclusive',
      'registered/exclusive-access',
      'unregistered/write-exclusive',
      'unregistered/exclusive-access',
    ]);
    const letters = (row: readonly boolean[]): string => row.map((a) => (a ? 'A' : 'C')).join(' ');
    expect(letters(PR_ACCESS[ReservationClass.ALLOWED])).toBe('A A A A A A'); // INQUIRY, TEST UNIT READY, READ CAPACITY
    expect(letters(PR_ACCESS[ReservationClass.READ])).toBe('A C A A A C'); // READ, VERIFY, MODE SENSE, PRE-FETCH
    expect(letters(PR_ACCESS[ReservationClass.WRITE])).toBe('C C A A C C'); // WRITE, SYNCHRONIZE CACHE
    expect(letters(PR_ACCESS[ReservationClass.CONFLICT])).toBe('C C A A C C'); // MODE SELECT, START STOP UNIT (stop)
  });

  test('reservation_class_of_cdb_dependent_commands', () => {
    const c = ReservationClass.CONFLICT;
    expect(reservationClassOf(c, cdb([0x1b, 0, 0, 0, 0x01, 0]))).toBe(ReservationClass.ALLOWED); // START
    expect(reservationClassOf(c, cdb([0x1b, 0, 0, 0, 0x03, 0]))).toBe(ReservationClass.ALLOWED); // START + LOEJ
    expect(reservationClassOf(c, cdb([0x1b, 0, 0, 0, 0x00, 0]))).toBe(c); // STOP
    expect(reservationClassOf(c, cdb([0x1b, 0, 0, 0, 0x11, 0]))).toBe(c); // power condition ACTIVE
    expect(reservationClassOf(c, cdb([0x1e, 0, 0, 0, 0x00, 0]))).toBe(ReservationClass.ALLOWED);
    expect(reservationClassOf(c, cdb([0x1e, 0, 0, 0, 0x01, 0]))).toBe(c);
    expect(reservationClassOf(ReservationClass.READ, cdb([0x28]))).toBe(ReservationClass.READ);
  });

  test('reservation_classes_of_the_command_table', () => {
    const table = sbcCommandTable();
    const classOf = (opcode: number, sa?: number): string | undefined => table.find(opcode, sa)?.reservation;
    const expected: ReadonlyArray<[number, number | undefined, ReservationClass]> = [
      [0x00, undefined, ReservationClass.ALLOWED], // TEST UNIT READY
      [0x12, undefined, ReservationClass.ALLOWED], // INQUIRY
      [0x25, undefined, ReservationClass.ALLOWED], // READ CAPACITY (10)
      [0x28, undefined, ReservationClass.READ],
      [0x2a, undefined, ReservationClass.WRITE],
      [0x2f, undefined, ReservationClass.READ], // VERIFY (10)
      [0x35, undefined, ReservationClass.WRITE], // SYNCHRONIZE CACHE (10)
      [0x15, undefined, ReservationClass.CONFLICT], // MODE SELECT (6)
      [0x1a, undefined, ReservationClass.READ], // MODE SENSE (6)
      [0x16, undefined, ReservationClass.ALLOWED], // RESERVE (6): CRH rules in the command
      [0x17, undefined, ReservationClass.ALLOWED],
      [0x56, undefined, ReservationClass.ALLOWED],
      [0x57, undefined, ReservationClass.ALLOWED],
      ...[0, 1, 2, 3].map((sa): [number, number, ReservationClass] => [0x5e, sa, ReservationClass.ALLOWED]),
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((sa): [number, number, ReservationClass] => [0x5f, sa, ReservationClass.ALLOWED]),
    ];
    for (const [opcode, sa, cls] of expected) expect([opcode, sa, classOf(opcode, sa)]).toEqual([opcode, sa, cls]);
  });
});
