import { describe, expect, test } from 'vitest';
import { clearUnitAttentions, expectCheck, expectGood, nexus, parseSense, readyFixture, run } from './helpers';

const modeSense6 = (page: number, pc = 0, dbd = 0, alloc = 255, subpage = 0): number[] => [0x1a, dbd << 3, (pc << 6) | page, subpage, alloc, 0];
const modeSense10 = (page: number, pc = 0, flags = 0, alloc = 0xffff): number[] => [0x5a, flags, (pc << 6) | page, 0, 0, 0, 0, alloc >> 8, alloc & 0xff, 0];
const modeSelect6 = (length: number, pf = 1, sp = 0): number[] => [0x15, (pf << 4) | sp, 0, 0, length, 0];
const modeSelect10 = (length: number, pf = 1): number[] => [0x55, pf << 4, 0, 0, 0, 0, 0, length >> 8, length & 0xff, 0];

interface Page {
  code: number;
  bytes: Buffer;
}

/** Independent mode parameter parser (6- or 10-byte header). */
function parseMode(d: Buffer, ten: boolean): { length: number; dsp: number; longLba: boolean; bd: Buffer; pages: Page[] } {
  const hdr = ten ? 8 : 4;
  const length = ten ? d.readUInt16BE(0) : d[0]!;
  const dsp = ten ? d[3]! : d[2]!;
  const bdLen = ten ? d.readUInt16BE(6) : d[3]!;
  const bd = d.subarray(hdr, hdr + bdLen);
  const pages: Page[] = [];
  for (let at = hdr + bdLen; at < d.length; at += 2 + d[at + 1]!) pages.push({ code: d[at]! & 0x3f, bytes: d.subarray(at, at + 2 + d[at + 1]!) });
  return { length, dsp, longLba: ten && (d[4]! & 1) === 1, bd, pages };
}

const CONTROL_DEFAULT = [0x0a, 0x0a, 0x20, 0x10, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00];
const CACHING_DEFAULT = [0x08, 0x12, 0x04, ...new Array(17).fill(0)];

function selectList6(...pages: number[][]): Buffer {
  return Buffer.from([0, 0, 0, 0, ...pages.flat()]);
}

describe('MODE SENSE', () => {
  test('modesense6_all_pages', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    const r = await run(dev, modeSense6(0x3f));
    expectGood(r);
    const m = parseMode(r.dataIn!, false);
    expect(m.length).toBe(r.dataIn!.length - 1);
    expect(m.length).toBeGreaterThanOrEqual(3);
    expect(m.dsp).toBe(0x10); // DPOFUA, not write protected
    expect(m.bd.length).toBe(8);
    expect(m.bd.readUInt32BE(0)).toBe(1024);
    expect(m.bd.readUIntBE(5, 3)).toBe(512);
    expect(m.pages.map((p) => p.code)).toEqual([0x08, 0x0a, 0x1c]);
    expect([...m.pages[0]!.bytes]).toEqual(CACHING_DEFAULT);
    expect([...m.pages[1]!.bytes]).toEqual(CONTROL_DEFAULT);
  });

  test('modesense6_control', async () => {
    const { dev } = await readyFixture();
    const all = parseMode((await run(dev, modeSense6(0x3f))).dataIn!, false).pages.find((p) => p.code === 0x0a)!;
    const one = parseMode((await run(dev, modeSense6(0x0a))).dataIn!, false).pages;
    expect(one.length).toBe(1);
    expect(one[0]!.bytes.equals(all.bytes)).toBe(true);
    const c = one[0]!.bytes;
    expect(c[2]! >> 5).toBeLessThanOrEqual(1); // TST 0 or 1
    expect((c[3]! >> 1) & 0x03).not.toBe(2); // QERR
    expect((c[4]! >> 4) & 0x03).not.toBe(1); // UA_INTLCK_CTRL
    expect(c.readUInt16BE(8)).not.toBe(0); // BUSY TIMEOUT PERIOD specified
  });

  test('modesense6_residuals', async () => {
    const { dev } = await readyFixture();
    const r = await run(dev, modeSense6(0x3f, 0, 0, 4));
    expectGood(r);
    expect(r.dataIn!.length).toBe(4);
    const full = await run(dev, modeSense6(0x3f, 0, 0, 255));
    expect(full.dataIn!.subarray(0, 4).equals(r.dataIn!)).toBe(true);
    expect((await run(dev, modeSense6(0x3f, 0, 0, 0))).dataIn!.length).toBe(0);
  });

  test('modesense6_dbd', async () => {
    const { dev } = await readyFixture();
    const m = parseMode((await run(dev, modeSense6(0x08, 0, 1))).dataIn!, false);
    expect(m.bd.length).toBe(0);
    expect(m.pages.map((p) => p.code)).toEqual([0x08]);
  });

  test('modesense6_page_control_changeable_and_default', async () => {
    const { dev } = await readyFixture();
    const ch = parseMode((await run(dev, modeSense6(0x3f, 1))).dataIn!, false);
    expect(ch.bd.equals(Buffer.alloc(8))).toBe(true); // geometry not changeable
    expect([...ch.pages[0]!.bytes.subarray(0, 3)]).toEqual([0x08, 0x12, 0x04]); // WCE
    expect([...ch.pages[1]!.bytes.subarray(0, 5)]).toEqual([0x0a, 0x0a, 0x04, 0x00, 0x08]); // D_SENSE, SWP
    expect(ch.pages[2]!.bytes.subarray(2).equals(Buffer.alloc(10))).toBe(true);
    const def = parseMode((await run(dev, modeSense6(0x0a, 2))).dataIn!, false);
    expect([...def.pages[0]!.bytes]).toEqual(CONTROL_DEFAULT);
  });

  test('modesense6_saved_values_not_supported', async () => {
    const { dev } = await readyFixture();
    expectCheck(await run(dev, modeSense6(0x3f, 3)), 0x5, 0x39, 0x00);
  });

  test('modesense6_invalid_page_and_subpage', async () => {
    const { dev } = await readyFixture();
    const s = expectCheck(await run(dev, modeSense6(0x19)), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 2, bit: 5 });
    expectCheck(await run(dev, modeSense6(0x0a, 0, 0, 255, 0x01)), 0x5, 0x24, 0x00);
    expectGood(await run(dev, modeSense6(0x3f, 0, 0, 255, 0xff)));
  });

  test('modesense10_short_and_long_block_descriptors', async () => {
    const { dev } = await readyFixture({ blocks: 1024, blockSize: 4096 });
    const short = parseMode((await run(dev, modeSense10(0x08))).dataIn!, true);
    expect(short.longLba).toBe(false);
    expect(short.bd.length).toBe(8);
    expect(short.bd.readUIntBE(5, 3)).toBe(4096);
    const r = await run(dev, modeSense10(0x08, 0, 0x10)); // LLBAA
    const long = parseMode(r.dataIn!, true);
    expect(long.length).toBe(r.dataIn!.length - 2);
    expect(long.longLba).toBe(true);
    expect(long.bd.length).toBe(16);
    expect(long.bd.readBigUInt64BE(0)).toBe(1024n);
    expect(long.bd.readUInt32BE(12)).toBe(4096);
    expect(long.pages.map((p) => p.code)).toEqual([0x08]);
  });

  test('modesense_write_protect_bit', async () => {
    const { dev } = await readyFixture({ lu: { readOnly: true } });
    expect(parseMode((await run(dev, modeSense6(0x3f))).dataIn!, false).dsp).toBe(0x90);
  });
});

describe('MODE SELECT', () => {
  test('modeselect6_wce_off_then_on', async () => {
    const { dev, lu } = await readyFixture();
    const caching = [...CACHING_DEFAULT];
    caching[2] = 0x00;
    const r = await run(dev, modeSelect6(4 + 20), { dataOut: [selectList6(caching)] });
    expectGood(r);
    expect(r.dataOutExpected).toBe(24);
    expect(lu.mode.writeCacheEnabled).toBe(false);
    const m = parseMode((await run(dev, modeSense6(0x08))).dataIn!, false);
    expect(m.pages[0]!.bytes[2]).toBe(0x00);
    expectGood(await run(dev, modeSelect6(24), { dataOut: [selectList6(CACHING_DEFAULT)] }));
    expect(lu.mode.writeCacheEnabled).toBe(true);
  });

  test('modeselect_change_raises_mode_parameters_changed_on_other_nexuses', async () => {
    const { dev } = await readyFixture();
    const other = nexus(2);
    await clearUnitAttentions(dev, { nexus: other });
    const caching = [...CACHING_DEFAULT];
    caching[2] = 0;
    expectGood(await run(dev, modeSelect6(24), { dataOut: [selectList6(caching)] }));
    expectGood(await run(dev, [0x00, 0, 0, 0, 0, 0])); // not the one that changed it
    expectCheck(await run(dev, [0x00, 0, 0, 0, 0, 0], { nexus: other }), 0x6, 0x2a, 0x01);
    expectGood(await run(dev, [0x00, 0, 0, 0, 0, 0], { nexus: other }));
  });

  test('modeselect_without_change_raises_nothing', async () => {
    const { dev } = await readyFixture();
    const other = nexus(2);
    await clearUnitAttentions(dev, { nexus: other });
    expectGood(await run(dev, modeSelect6(24), { dataOut: [selectList6(CACHING_DEFAULT)] }));
    expectGood(await run(dev, [0x00, 0, 0, 0, 0, 0], { nexus: other }));
  });

  test('modeselect_non_changeable_bit_is_invalid_field_in_parameter_list', async () => {
    const { dev, lu } = await readyFixture();
    const control = [...CONTROL_DEFAULT];
    control[3] = 0x12; // QERR=01b, not changeable
    const s = expectCheck(await run(dev, modeSelect6(16), { dataOut: [selectList6(control)] }), 0x5, 0x26, 0x00);
    expect(s.sks).toMatchObject({ cd: false, field: 4 + 3, bpv: true, bit: 1 });
    // Nothing was applied even though an earlier page in the same list was valid.
    const caching = [...CACHING_DEFAULT];
    caching[2] = 0;
    expectCheck(await run(dev, modeSelect6(4 + 20 + 12), { dataOut: [selectList6(caching, control)] }), 0x5, 0x26, 0x00);
    expect(lu.mode.writeCacheEnabled).toBe(true);
  });

  test('modeselect_bad_page_length_and_unknown_page', async () => {
    const { dev } = await readyFixture();
    const s = expectCheck(await run(dev, modeSelect6(4 + 4), { dataOut: [selectList6([0x0a, 0x02, 0x20, 0x10])] }), 0x5, 0x26, 0x00);
    expect(s.sks).toMatchObject({ cd: false, field: 5 });
    expectCheck(await run(dev, modeSelect6(4 + 4), { dataOut: [selectList6([0x19, 0x02, 0, 0])] }), 0x5, 0x26, 0x00);
    expectCheck(await run(dev, modeSelect6(4 + 4), { dataOut: [selectList6([0x4a, 0x02, 0, 0])] }), 0x5, 0x26, 0x00); // SPF
  });

  test('modeselect_parameter_list_length_error', async () => {
    const { dev } = await readyFixture();
    // Page claims 10 bytes but the list ends after 6.
    expectCheck(await run(dev, modeSelect6(4 + 8), { dataOut: [selectList6(CONTROL_DEFAULT.slice(0, 8))] }), 0x5, 0x1a, 0x00);
    expectCheck(await run(dev, modeSelect6(3), { dataOut: [Buffer.alloc(3)] }), 0x5, 0x1a, 0x00);
  });

  test('modeselect_sp_and_pf', async () => {
    const { dev } = await readyFixture();
    const s = expectCheck(await run(dev, modeSelect6(16, 1, 1), { dataOut: [selectList6(CONTROL_DEFAULT)] }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 0 });
    expectCheck(await run(dev, modeSelect6(16, 0), { dataOut: [selectList6(CONTROL_DEFAULT)] }), 0x5, 0x24, 0x00);
    expectGood(await run(dev, modeSelect6(0))); // empty list
  });

  test('modeselect_block_descriptor_must_restate_geometry', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    const bd = [0, 0, 0x04, 0x00, 0, 0, 0x02, 0x00]; // 1024 blocks of 512
    expectGood(await run(dev, modeSelect6(12), { dataOut: [Buffer.from([0, 0, 0, 8, ...bd])] }));
    const wrong = [0, 0, 0x04, 0x00, 0, 0, 0x10, 0x00]; // 4096-byte blocks
    expectCheck(await run(dev, modeSelect6(12), { dataOut: [Buffer.from([0, 0, 0, 8, ...wrong])] }), 0x5, 0x26, 0x00);
  });

  test('modeselect10_control_page', async () => {
    const { dev, lu } = await readyFixture();
    const control = [...CONTROL_DEFAULT];
    control[2] |= 0x04; // D_SENSE
    const list = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, ...control]);
    expectGood(await run(dev, modeSelect10(list.length), { dataOut: [list.subarray(0, 5), list.subarray(5)] }));
    expect(lu.mode.descriptorSense).toBe(true);
  });

  test('modesense6_control_d_sense', async () => {
    const { dev } = await readyFixture();
    const control = [...CONTROL_DEFAULT];
    control[2] |= 0x04;
    expectGood(await run(dev, modeSelect6(16), { dataOut: [selectList6(control)] }));
    const ms = parseMode((await run(dev, modeSense6(0x0a))).dataIn!, false);
    expect(ms.pages[0]!.bytes[2]! & 0x04).toBe(0x04);
    const r = await run(dev, [0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x02, 0, 0, 0]);
    const s = parseSense(r.sense!);
    expect(s.format).toBe('descriptor');
    expect([s.key, s.asc, s.ascq]).toEqual([0x5, 0x21, 0x00]);
  });

  test('modesense6_control_swp', async () => {
    const { dev, store } = await readyFixture();
    const control = [...CONTROL_DEFAULT];
    control[4] |= 0x08; // SWP
    expectGood(await run(dev, modeSelect6(16), { dataOut: [selectList6(control)] }));
    expect(parseMode((await run(dev, modeSense6(0x3f))).dataIn!, false).dsp & 0x80).toBe(0x80);
    expectGood(await run(dev, [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
    expectCheck(await run(dev, [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], { dataOut: [Buffer.alloc(512, 1)] }), 0x7, 0x27, 0x00);
    expect((await store.read(0, 512)).equals(Buffer.alloc(512))).toBe(true);
    expectGood(await run(dev, modeSelect6(16), { dataOut: [selectList6(CONTROL_DEFAULT)] }));
    expectGood(await run(dev, [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], { dataOut: [Buffer.alloc(512, 1)] }));
  });

  test('modeselect_lun_reset_restores_defaults', async () => {
    const { dev, lu } = await readyFixture();
    const caching = [...CACHING_DEFAULT];
    caching[2] = 0;
    expectGood(await run(dev, modeSelect6(24), { dataOut: [selectList6(caching)] }));
    expect(dev.taskManagement('logical-unit-reset', nexus(1), 0)).toBe('complete');
    expect(lu.mode.writeCacheEnabled).toBe(true);
  });
});
