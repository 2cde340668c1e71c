/**
 * 32-bit serial number arithmetic (RFC 1982, SERIAL_BITS = 32) used for
 * CmdSN, StatSN, DataSN and R2TSN (src/target/iscsi/serial.ts).
 */
import { describe, expect, it } from 'vitest';
import { serialAdd, serialInWindow, serialLe, serialLt } from '../../../src/target/iscsi/serial';

const HALF = 0x80000000; // 2^(SERIAL_BITS - 1)
const MAX = 0xffffffff;

describe('serialAdd', () => {
  it('adds without wrapping inside the space', () => {
    expect(serialAdd(5, 3)).toBe(8);
    expect(serialAdd(0, HALF - 1)).toBe(0x7fffffff);
  });

  it('wraps past 2^32 - 1 to 0', () => {
    expect(serialAdd(MAX, 1)).toBe(0);
    expect(serialAdd(0xfffffff0, 0x20)).toBe(0x10);
    expect(serialAdd(MAX, MAX)).toBe(0xfffffffe);
  });

  it('always returns an unsigned 32-bit value', () => {
    expect(serialAdd(0x7fffffff, 1)).toBe(HALF);
    expect(serialAdd(HALF, HALF)).toBe(0);
    expect(serialAdd(0, -1)).toBe(MAX);
  });
});

describe('serialLt', () => {
  it('orders numbers that do not wrap', () => {
    expect(serialLt(1, 2)).toBe(true);
    expect(serialLt(2, 1)).toBe(false);
  });

  it('is false for equal numbers', () => {
    expect(serialLt(0, 0)).toBe(false);
    expect(serialLt(MAX, MAX)).toBe(false);
  });

  it('orders numbers across the wrap: 2^32 - 1 comes before 0', () => {
    expect(serialLt(MAX, 0)).toBe(true);
    expect(serialLt(0, MAX)).toBe(false);
    expect(serialLt(0xfffffff0, 5)).toBe(true);
    expect(serialLt(5, 0xfffffff0)).toBe(false);
  });

  it('treats a forward distance of 2^31 - 1 as "less than"', () => {
    expect(serialLt(0, HALF - 1)).toBe(true);
    expect(serialLt(HALF - 1, 0)).toBe(false);
    expect(serialLt(HALF + 10, 9)).toBe(true); // wraps: 9 - (2^31 + 10) = 2^31 - 1 mod 2^32
  });

  it('treats a forward distance of 2^31 as "greater than"', () => {
    expect(serialLt(0, HALF + 1)).toBe(false);
    expect(serialLt(HALF + 1, 0)).toBe(true);
  });

  it('orders neither way two numbers exactly 2^31 apart (undefined in RFC 1982)', () => {
    expect(serialLt(0, HALF)).toBe(false);
    expect(serialLt(HALF, 0)).toBe(false);
    expect(serialLt(7, HALF + 7)).toBe(false);
    expect(serialLt(HALF + 7, 7)).toBe(false);
  });

  it('agrees that s < s + n for every n in 1 .. 2^31 - 1, wherever s lies', () => {
    for (const s of [0, 1, 0x7fffffff, HALF, 0xfffffffe, MAX]) {
      for (const n of [1, 2, 1000, 0x10000, HALF - 2, HALF - 1]) {
        const t = serialAdd(s, n);
        if (!serialLt(s, t) || serialLt(t, s)) expect.fail(`${s} + ${n}`);
      }
    }
  });
});

describe('serialLe', () => {
  it('is true for equal numbers and for "less than"', () => {
    expect(serialLe(4, 4)).toBe(true);
    expect(serialLe(4, 5)).toBe(true);
    expect(serialLe(MAX, 0)).toBe(true);
  });

  it('is false for "greater than"', () => {
    expect(serialLe(5, 4)).toBe(false);
    expect(serialLe(0, MAX)).toBe(false);
  });
});

describe('serialInWindow', () => {
  it('accepts both ends of the window and what lies between', () => {
    expect(serialInWindow(10, 10, 20)).toBe(true);
    expect(serialInWindow(15, 10, 20)).toBe(true);
    expect(serialInWindow(20, 10, 20)).toBe(true);
  });

  it('rejects numbers just outside either end', () => {
    expect(serialInWindow(9, 10, 20)).toBe(false);
    expect(serialInWindow(21, 10, 20)).toBe(false);
  });

  it('handles a window that wraps through 0', () => {
    const low = 0xfffffffe;
    const high = 2;
    for (const sn of [0xfffffffe, MAX, 0, 1, 2]) expect(serialInWindow(sn, low, high), `${sn}`).toBe(true);
    expect(serialInWindow(0xfffffffd, low, high)).toBe(false);
    expect(serialInWindow(3, low, high)).toBe(false);
  });

  it('accepts only the one number of a single-element window', () => {
    expect(serialInWindow(7, 7, 7)).toBe(true);
    expect(serialInWindow(6, 7, 7)).toBe(false);
    expect(serialInWindow(8, 7, 7)).toBe(false);
  });

  it('accepts nothing in a closed CmdSN window (MaxCmdSN = ExpCmdSN - 1)', () => {
    for (const exp of [0, 1, 100, HALF, MAX]) {
      const max = serialAdd(exp, -1);
      for (const sn of [exp, max, serialAdd(exp, 1), serialAdd(exp, HALF - 1), serialAdd(exp, HALF + 1)]) {
        if (serialInWindow(sn, exp, max)) expect.fail(`CmdSN ${sn} accepted with ExpCmdSN ${exp} and MaxCmdSN ${max}`);
      }
    }
  });

  it('rejects numbers far behind the window (old, duplicate CmdSNs)', () => {
    expect(serialInWindow(serialAdd(100, -1000), 100, 131)).toBe(false);
    expect(serialInWindow(serialAdd(100, HALF + 5), 100, 131)).toBe(false);
  });
});
