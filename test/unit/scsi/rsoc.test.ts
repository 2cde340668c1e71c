import { describe, expect, test } from 'vitest';
import { be16, be32, expectCheck, expectGood, readyFixture, run } from './helpers';

const rsoc = (options: number, opcode = 0, sa = 0, alloc = 65535, rctd = 0): number[] => [
  0xa3,
  0x0c,
  (rctd << 7) | options,
  opcode,
  ...be16(sa),
  ...be32(alloc),
  0,
  0,
];

interface Descriptor {
  opcode: number;
  sa: number;
  servactv: boolean;
  ctdp: boolean;
  cdbLength: number;
  timeoutLength?: number;
}

function parseAll(d: Buffer): Descriptor[] {
  const out: Descriptor[] = [];
  const end = 4 + d.readUInt32BE(0);
  for (let at = 4; at < end; ) {
    const desc: Descriptor = {
      opcode: d[at]!,
      sa: d.readUInt16BE(at + 2),
      servactv: (d[at + 5]! & 0x01) !== 0,
      ctdp: (d[at + 5]! & 0x02) !== 0,
      cdbLength: d.readUInt16BE(at + 6),
    };
    at += 8;
    if (desc.ctdp) {
      desc.timeoutLength = d.readUInt16BE(at);
      at += 12;
    }
    out.push(desc);
  }
  return out;
}

/** Every opcode the tests expect the block device to implement in this step. */
const EXPECTED = [
  [0x00], [0x03], [0x08], [0x0a], [0x12], [0x15], [0x16], [0x17], [0x1a], [0x1b], [0x1e], [0x25], [0x28], [0x2a], [0x2e], [0x2f], [0x34], [0x35],
  [0x41], [0x42], [0x55], [0x56], [0x57], [0x5a], [0x5e, 0x00], [0x5e, 0x01], [0x5e, 0x02], [0x5e, 0x03],
  [0x5f, 0x00], [0x5f, 0x01], [0x5f, 0x02], [0x5f, 0x03], [0x5f, 0x04], [0x5f, 0x05], [0x5f, 0x06], [0x5f, 0x07], [0x83, 0x00], [0x84, 0x00], [0x84, 0x03], [0x88], [0x89], [0x8a], [0x8e], [0x8f], [0x90], [0x91], [0x93], [0x9e, 0x10], [0x9e, 0x12], [0xa0], [0xa3, 0x0a], [0xa3, 0x0c], [0xa8], [0xaa], [0xae], [0xaf],
];

describe('REPORT SUPPORTED OPERATION CODES', () => {
  test('rsoc_simple', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, rsoc(0, 0, 0, 1024));
    expectGood(r);
    expect(r.dataIn!.length).toBeLessThanOrEqual(1024);
  });

  test('rsoc_lists_the_implemented_commands', async () => {
    const { dev } = await readyFixture();
    const all = parseAll((await run(dev, rsoc(0))).dataIn!);
    expect(all.map((d) => (d.servactv ? [d.opcode, d.sa] : [d.opcode]))).toEqual(EXPECTED);
  });

  test('rsoc_all_commands_consistent', async () => {
    const { dev } = await readyFixture();
    const all = parseAll((await run(dev, rsoc(0))).dataIn!);
    for (const d of all) {
      // SERVACTV clear means SERVICE ACTION 0.
      if (!d.servactv) expect(d.sa).toBe(0);
      // One-command format agrees with the list, and the wrong option is INVALID FIELD IN CDB.
      const right = d.servactv ? 2 : 1;
      const wrong = d.servactv ? 1 : 2;
      const one = await run(dev, rsoc(right, d.opcode, d.sa));
      expectGood(one);
      const o = one.dataIn!;
      expect(o[1]! & 0x07).toBe(3); // supported
      expect(o.readUInt16BE(2)).toBe(d.cdbLength);
      expect(o.length).toBe(4 + d.cdbLength);
      expect(o[4]).toBe(d.opcode); // CDB USAGE DATA byte 0
      if (d.servactv) expect(o[5]! & 0x1f).toBe(d.sa);
      expectCheck(await run(dev, rsoc(wrong, d.opcode, d.sa)), 0x5, 0x24, 0x00);
      // Option 3 accepts both kinds.
      const three = await run(dev, rsoc(3, d.opcode, d.sa));
      expect(three.dataIn!.equals(o)).toBe(true);
      // The command really is implemented: it is never INVALID COMMAND OPERATION CODE.
      const cdb = Buffer.alloc(16);
      cdb[0] = d.opcode;
      if (d.servactv) cdb[1] = d.sa;
      const resp = await run(dev, cdb);
      if (resp.sense) expect(resp.sense[12]).not.toBe(0x20);
    }
  });

  test('rsoc_rctd', async () => {
    const { dev } = await readyFixture();
    for (const d of parseAll((await run(dev, rsoc(0))).dataIn!)) expect(d.ctdp).toBe(false);
    const withTimeouts = parseAll((await run(dev, rsoc(0, 0, 0, 65535, 1))).dataIn!);
    expect(withTimeouts.length).toBe(EXPECTED.length);
    for (const d of withTimeouts) {
      expect(d.ctdp).toBe(true);
      expect(d.timeoutLength).toBe(0x0a);
    }
    const one = (await run(dev, rsoc(1, 0x28, 0, 65535, 1))).dataIn!;
    expect(one[1]! & 0x80).toBe(0x80);
    expect(one.length).toBe(4 + 10 + 12);
    expect(one.readUInt16BE(14)).toBe(0x0a);
  });

  test('rsoc_unsupported_command_reports_not_supported', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, rsoc(1, 0xc0));
    expectGood(r);
    expect([...r.dataIn!]).toEqual([0, 1, 0, 0]);
    expect([...(await run(dev, rsoc(2, 0x9e, 0x1f))).dataIn!]).toEqual([0, 1, 0, 0]);
    expect([...(await run(dev, rsoc(3, 0x28, 0x01))).dataIn!]).toEqual([0, 1, 0, 0]);
  });

  test('rsoc_invalid_reporting_options', async () => {
    const { dev } = await readyFixture();
    for (const opt of [4, 5, 6, 7]) {
      const s = expectCheck(await run(dev, rsoc(opt)), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 2 });
    }
  });

  test('rsoc_usage_data_dpofua', async () => {
    const { dev } = await readyFixture();
    for (const op of [0x28, 0xa8, 0x88, 0x2a, 0xaa, 0x8a]) expect((await run(dev, rsoc(1, op))).dataIn![5]! & 0x18).toBe(0x18);
    for (const op of [0x2f, 0xaf, 0x8f, 0x2e, 0xae, 0x8e]) expect((await run(dev, rsoc(1, op))).dataIn![5]! & 0x10).toBe(0x10);
    // Protection fields are not supported, so not flagged as used.
    expect((await run(dev, rsoc(1, 0x28))).dataIn![5]! & 0xe0).toBe(0);
  });

  test('rsoc_alloc_length_truncates', async () => {
    const { dev } = await readyFixture();
    const full = (await run(dev, rsoc(0))).dataIn!;
    const cut = (await run(dev, rsoc(0, 0, 0, 20))).dataIn!;
    expect(cut.equals(full.subarray(0, 20))).toBe(true);
  });
});
