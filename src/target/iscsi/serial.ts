/** 32-bit serial number arithmetic (RFC 1982) for CmdSN, StatSN and DataSN. */

export function serialAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** a < b in serial arithmetic. */
export function serialLt(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

export function serialLe(a: number, b: number): boolean {
  return a === b || serialLt(a, b);
}

/** Whether `sn` lies in the window [low, high] (inclusive, serial arithmetic). */
export function serialInWindow(sn: number, low: number, high: number): boolean {
  return serialLe(low, sn) && serialLe(sn, high);
}
