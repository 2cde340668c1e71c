import { describe, expect, test, vi } from 'vitest';
import { BlockIoError, MemoryBackingStore, WriteOptions } from '../../../src/block';
import { LogicalUnit, ScsiTargetDevice } from '../../../src/target/scsi';
import { be16, be32, be64, clearUnitAttentions, expectCheck, expectGood, pattern, readyFixture, run, VOLUME_ID } from './helpers';

const caw = (lba: bigint | number, blocks: number, flags = 0): number[] => [0x89, flags, ...be64(BigInt(lba)), 0, 0, 0, blocks, 0, 0];
const read16 = (lba: number, blocks: number): number[] => [0x88, 0, ...be64(BigInt(lba)), ...be32(blocks), 0, 0];
const write16 = (lba: number, blocks: number): number[] => [0x8a, 0, ...be64(BigInt(lba)), ...be32(blocks), 0, 0];
const inquiry = (page: number): number[] => [0x12, 1, page, ...be16(255), 0];
const rsocOne = (opcode: number): number[] => [0xa3, 0x0c, 0x01, opcode, 0, 0, ...be32(512), 0, 0];

/** A store whose writes land 512 bytes at a time with a turn of the event loop in between (torn writes). */
class TearingStore extends MemoryBackingStore {
  override async writev(offset: number, buffers: readonly Buffer[], options?: WriteOptions): Promise<void> {
    let at = offset;
    for (const b of buffers) {
      for (let i = 0; i < b.length; i += 512) {
        const piece = b.subarray(i, Math.min(b.length, i + 512));
        await super.writev(at, [piece], options);
        at += piece.length;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
}

async function tearingFixture(blocks = 64): Promise<{ dev: ScsiTargetDevice; store: TearingStore }> {
  const store = new TearingStore(blocks * 512);
  const lu = new LogicalUnit({ store, blockSize: 512, identity: { volumeId: VOLUME_ID } });
  const dev = new ScsiTargetDevice({ name: 'iqn.2026-11.io.twinsan:vol0', luns: new Map([[0, lu]]) });
  await clearUnitAttentions(dev);
  return { dev, store };
}

describe('COMPARE AND WRITE', () => {
  test('compareandwrite_simple', async () => {
    const { dev, store } = await readyFixture({ blocks: 1024 });
    for (const [lba, n] of [[0, 1], [0, 8], [1024 - 3, 3], [100, 255]] as const) {
      const a = Buffer.alloc(n * 512, 0x41);
      const b = pattern(n * 512, n);
      await store.writev(lba * 512, [a]);
      const r = await run(dev, caw(lba, n), { dataOut: [Buffer.concat([a, b])] });
      expectGood(r);
      expect(r.dataOutExpected).toBe(2 * n * 512);
      expect((await store.read(lba * 512, n * 512)).equals(b)).toBe(true);
    }
  });

  test('compareandwrite_data_out_split_anywhere', async () => {
    const { dev, store } = await readyFixture();
    const a = pattern(4 * 512, 3);
    const b = pattern(4 * 512, 9);
    await store.writev(512, [a]);
    const all = Buffer.concat([a, b]);
    // Pieces straddling the verify/write boundary and block boundaries.
    const pieces = [all.subarray(0, 700), all.subarray(700, 2047), all.subarray(2047, 2049), all.subarray(2049)];
    expectGood(await run(dev, caw(1, 4), { dataOut: pieces }));
    expect((await store.read(512, 2048)).equals(b)).toBe(true);
  });

  test('compareandwrite_miscompare', async () => {
    const { dev, store } = await readyFixture();
    const n = 4;
    const a = pattern(n * 512, 5);
    await store.writev(0, [a]);
    for (const offset of [0, 1, 511, 512, 1000, n * 512 - 27, n * 512 - 1]) {
      const verify = Buffer.from(a);
      verify[offset] ^= 0x20;
      verify[n * 512 - 1] ^= offset === n * 512 - 1 ? 0 : 0x01; // a later difference must not be the one reported
      const r = await run(dev, caw(0, n), { dataOut: [verify, Buffer.alloc(n * 512, 0x42)] });
      const s = expectCheck(r, 0xe, 0x1d, 0x00);
      expect(s.information).toBe(offset);
      expect(r.sense![0]! & 0x80).toBe(0x80); // VALID
      expect((await store.read(0, n * 512)).equals(a)).toBe(true); // nothing written
    }
  });

  test('compareandwrite_miscompare_descriptor_sense', async () => {
    const { dev, store, lu } = await readyFixture();
    const control = lu.mode.currentPage(0x0a);
    control[2]! |= 0x04; // D_SENSE
    lu.mode.replace(new Map([[0x0a, control]]));
    await store.writev(0, [Buffer.alloc(512, 1)]);
    const verify = Buffer.alloc(512, 1);
    verify[300] = 2;
    const s = expectCheck(await run(dev, caw(0, 1), { dataOut: [verify, Buffer.alloc(512)] }), 0xe, 0x1d, 0x00);
    expect(s.format).toBe('descriptor');
    expect(s.information).toBe(300);
  });

  test('compareandwrite_unwritten', async () => {
    const { dev, store } = await readyFixture({ thin: true });
    // Deallocated blocks read as zeros: a compare with '%' miscompares, a compare with zeros succeeds.
    expectCheck(await run(dev, caw(5, 1), { dataOut: [Buffer.alloc(512, 0x25), Buffer.alloc(512, 0x42)] }), 0xe, 0x1d, 0x00);
    expect((await store.read(5 * 512, 512)).equals(Buffer.alloc(512))).toBe(true);
    expectGood(await run(dev, caw(5, 1), { dataOut: [Buffer.alloc(512), Buffer.alloc(512, 0x42)] }));
    expect((await store.read(5 * 512, 512)).equals(Buffer.alloc(512, 0x42))).toBe(true);
  });

  test('compareandwrite_0blocks', async () => {
    const { dev, store } = await readyFixture({ blocks: 1024 });
    const spy = vi.spyOn(store, 'read');
    const r = await run(dev, caw(0, 0));
    expectGood(r);
    expect(r.dataOutExpected).toBe(0);
    expectGood(await run(dev, caw(1024, 0)));
    expect(spy).not.toHaveBeenCalled();
    // NUMBER OF LOGICAL BLOCKS 0 with data-out (e.g. 256 blocks wrapped to 0): the CDB is wrong.
    const s = expectCheck(await run(dev, caw(0, 0), { dataOut: [Buffer.alloc(2 * 512)] }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 13 });
  });

  test('compareandwrite_maximum_length', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    const vpd = (await run(dev, inquiry(0xb0))).dataIn!;
    expect(vpd[5]).toBe(255); // MAXIMUM COMPARE AND WRITE LENGTH
    expectGood(await run(dev, caw(0, 255), { dataOut: [Buffer.alloc(2 * 255 * 512)] }));
    // Also limited by MAXIMUM TRANSFER LENGTH.
    const small = await readyFixture({ blocks: 1024, lu: { maxTransferBytes: 16 * 512 } });
    expectGood(await run(small.dev, caw(0, 16), { dataOut: [Buffer.alloc(2 * 16 * 512)] }));
    const s = expectCheck(await run(small.dev, caw(0, 17), { dataOut: [Buffer.alloc(2 * 17 * 512)] }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 13, bit: 7 });
  });

  test('compareandwrite_beyond_eol', async () => {
    const { dev } = await readyFixture({ blocks: 1024 });
    for (const [lba, n] of [[1024n, 1], [1023n, 2], [1n << 63n, 1], [0xffffffffffffffffn, 1], [1025n, 0]] as const) {
      expectCheck(await run(dev, caw(lba, n), { dataOut: [Buffer.alloc(2 * n * 512)] }), 0x5, 0x21, 0x00);
    }
  });

  test('compareandwrite_wrprotect', async () => {
    const { dev } = await readyFixture();
    for (let p = 1; p < 8; p++) {
      const s = expectCheck(await run(dev, caw(0, 1, p << 5), { dataOut: [Buffer.alloc(1024)] }), 0x5, 0x24, 0x00);
      expect(s.sks).toMatchObject({ cd: true, field: 1, bit: 7 });
    }
  });

  test('compareandwrite_dpofua', async () => {
    const { dev, store, lu } = await readyFixture();
    const spy = vi.spyOn(store, 'writev');
    for (const [flags, fua] of [[0x00, false], [0x10, false], [0x08, true], [0x18, true]] as const) {
      expectGood(await run(dev, caw(0, 1, flags), { dataOut: [Buffer.alloc(1024)] }));
      expect(spy.mock.lastCall![2]).toEqual({ fua });
    }
    // With the write cache disabled every write is FUA.
    const caching = lu.mode.currentPage(0x08);
    caching[2]! &= ~0x04;
    lu.mode.replace(new Map([[0x08, caching]]));
    expectGood(await run(dev, caw(0, 1), { dataOut: [Buffer.alloc(1024)] }));
    expect(spy.mock.lastCall![2]).toEqual({ fua: true });
    // REPORT SUPPORTED OPERATION CODES agrees: DPO and FUA in the usage data, no WRPROTECT.
    const one = (await run(dev, rsocOne(0x89))).dataIn!;
    expect(one[1]! & 0x07).toBe(3);
    expect(one.readUInt16BE(2)).toBe(16);
    expect(one[5]).toBe(0x18);
    expect(one[4 + 13]).toBe(0xff);
  });

  test('compareandwrite_invalid_dataout_size', async () => {
    const { dev, store } = await readyFixture();
    await store.writev(0, [Buffer.alloc(4 * 512, 0xa6)]);
    const data = Buffer.alloc(4 * 512, 0xa6);
    // Too large: 1 block asks for 2 blocks of data-out, 4 were sent.
    let s = expectCheck(await run(dev, caw(0, 1), { dataOut: [data] }), 0x5, 0x24, 0x00);
    expect(s.sks).toMatchObject({ cd: true, field: 13 });
    // Too small: 3 blocks ask for 6.
    const r = await run(dev, caw(0, 3), { dataOut: [data] });
    s = expectCheck(r, 0x5, 0x0e, 0x03);
    expect(r.dataOutExpected).toBe(6 * 512);
    expect((await store.read(0, 4 * 512)).equals(data)).toBe(true);
  });

  test('compareandwrite_write_protected', async () => {
    const ro = await readyFixture({ lu: { readOnly: true } });
    expectCheck(await run(ro.dev, caw(0, 1), { dataOut: [Buffer.alloc(1024)] }), 0x7, 0x27, 0x00);
    const { dev, lu } = await readyFixture();
    const control = lu.mode.currentPage(0x0a);
    control[4]! |= 0x08; // SWP
    lu.mode.replace(new Map([[0x0a, control]]));
    expectCheck(await run(dev, caw(0, 1), { dataOut: [Buffer.alloc(1024)] }), 0x7, 0x27, 0x00);
  });

  test('compareandwrite_space_allocation_failed', async () => {
    const { dev, store } = await readyFixture({ thin: true, blocks: 1024 });
    store.capacityLimitBytes = 4096;
    expectGood(await run(dev, caw(0, 1), { dataOut: [Buffer.alloc(512), Buffer.alloc(512, 1)] })); // the one chunk allowed
    expectCheck(await run(dev, caw(64, 1), { dataOut: [Buffer.alloc(512), Buffer.alloc(512, 1)] }), 0x7, 0x27, 0x07);
    expect((await store.read(64 * 512, 512)).equals(Buffer.alloc(512))).toBe(true);
  });

  test('compareandwrite_medium_errors', async () => {
    const { dev, store } = await readyFixture();
    const write = vi.spyOn(store, 'writev');
    vi.spyOn(store, 'read').mockRejectedValueOnce(new BlockIoError('EIO', 'bad sector'));
    expectCheck(await run(dev, caw(0, 1), { dataOut: [Buffer.alloc(1024)] }), 0x3, 0x11, 0x00);
    expect(write).not.toHaveBeenCalled();
    write.mockRejectedValueOnce(new BlockIoError('EIO', 'bad sector'));
    expectCheck(await run(dev, caw(0, 1), { dataOut: [Buffer.alloc(1024)] }), 0x3, 0x0c, 0x00);
  });

  test('compareandwrite_holds_the_range_exclusively', async () => {
    const { dev, store, lu } = await readyFixture();
    let release!: (b: Buffer) => void;
    vi.spyOn(store, 'read').mockImplementationOnce(() => new Promise<Buffer>((resolve) => (release = resolve)));
    const pending = run(dev, caw(10, 2), { dataOut: [Buffer.alloc(2048)] });
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(lu.locks.heldCount).toBe(1);
    // A read and a write of an overlapping block wait; one elsewhere does not.
    let readDone = false;
    const reader = run(dev, read16(11, 1)).then((r) => ((readDone = true), r));
    expectGood(await run(dev, read16(12, 1)));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(readDone).toBe(false);
    release(Buffer.alloc(1024));
    expectGood(await pending);
    expectGood(await reader);
    expect(lu.locks.heldCount).toBe(0);
  });

  test('compareandwrite_never_sees_a_torn_write', async () => {
    const { dev, store } = await tearingFixture();
    const x = Buffer.alloc(8 * 512, 0x58);
    const y = Buffer.alloc(8 * 512, 0x59);
    const z = Buffer.alloc(8 * 512, 0x5a);
    await store.writev(0, [x]);
    // The WRITE is issued first, so the COMPARE AND WRITE must see all of it, never a mix of X and Y.
    const w = run(dev, write16(0, 8), { dataOut: [y] });
    const c = run(dev, caw(0, 8), { dataOut: [y, z] });
    expectGood(await w);
    expectGood(await c);
    expect((await store.read(0, 8 * 512)).equals(z)).toBe(true);
    // And the other way round: the WRITE waits for the COMPARE AND WRITE.
    const c2 = run(dev, caw(0, 8), { dataOut: [z, x] });
    const w2 = run(dev, write16(0, 8), { dataOut: [y] });
    expectGood(await c2);
    expectGood(await w2);
    expect((await store.read(0, 8 * 512)).equals(y)).toBe(true);
  });

  test('compareandwrite_concurrent_ats_exactly_one_winner', async () => {
    const { dev, store } = await tearingFixture();
    const free = Buffer.alloc(512, 0x00);
    await store.writev(0, [free]);
    const owners = Array.from({ length: 16 }, (_, i) => pattern(512, i + 1));
    const results = await Promise.all(owners.map((owner) => run(dev, caw(0, 1), { dataOut: [free, owner] })));
    const winners = results.map((r, i) => (r.status === 0 ? i : -1)).filter((i) => i >= 0);
    expect(winners.length).toBe(1);
    for (const r of results) if (r.status !== 0) expectCheck(r, 0xe, 0x1d, 0x00);
    expect((await store.read(0, 512)).equals(owners[winners[0]!]!)).toBe(true);
  });

  test('compareandwrite_races_with_writes_never_miscompare_falsely', async () => {
    // Random WRITEs and COMPARE AND WRITEs over overlapping ranges, all in
    // flight together on a store that tears writes. Overlapping commands
    // run in arrival order, so the data each COMPARE AND WRITE must find is
    // what a model applying the commands in issue order holds: every one
    // of them must succeed, and the medium must end equal to the model.
    const { dev, store } = await tearingFixture(32);
    const model = Buffer.alloc(32 * 512);
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pending: Promise<{ kind: string; status: number }>[] = [];
    for (let i = 0; i < 300; i++) {
      const lba = rand(28);
      const n = 1 + rand(4);
      const data = pattern(n * 512, i + 7);
      if (rand(2) === 0) {
        pending.push(run(dev, write16(lba, n), { dataOut: [data] }).then((r) => ({ kind: 'write', status: r.status })));
      } else {
        const expected = Buffer.from(model.subarray(lba * 512, (lba + n) * 512));
        pending.push(run(dev, caw(lba, n), { dataOut: [expected, data] }).then((r) => ({ kind: 'caw', status: r.status })));
      }
      data.copy(model, lba * 512);
    }
    const results = await Promise.all(pending);
    expect(results.filter((r) => r.status !== 0)).toEqual([]);
    expect(results.some((r) => r.kind === 'caw')).toBe(true);
    expect((await store.read(0, 32 * 512)).equals(model)).toBe(true);
  });
});
