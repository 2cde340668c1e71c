/**
 * ScsiTargetDevice.quiesce(): the drain a planned move runs before handing
 * a logical unit to the peer. New commands get BUSY (retryable); it resolves
 * once every command that was accepted before has been answered, or says
 * what is still running when the bound passes.
 */
import { describe, expect, test } from 'vitest';
import { MemoryBackingStore } from '../../../src/block';
import { LuAvailability } from '../../../src/target/scsi';
import { expectGood, readyFixture, run } from './helpers';

const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const WRITE10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const BUSY = 0x08;

/** A store whose writes wait until release() is called. */
class GatedStore extends MemoryBackingStore {
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }
  override async writev(offset: number, buffers: readonly Buffer[]): Promise<void> {
    if (this.gate) await this.gate;
    return super.writev(offset, buffers);
  }
}

describe('quiesce', () => {
  test('quiesce_waits_for_accepted_commands_and_busies_new_ones', async () => {
    const store = new GatedStore(1024 * 512);
    const { dev, lu } = await readyFixture({ lu: { store } });
    store.hold();
    const write = run(dev, WRITE10, { dataOut: [Buffer.alloc(512, 0x77)] });
    await new Promise((r) => setImmediate(r));
    expect(lu.inFlight.size).toBe(1);
    let quiesced = false;
    const q = dev.quiesce({ timeoutMs: 5000 }).then((o) => {
      quiesced = true;
      return o;
    });
    // A command arriving during the drain is answered BUSY at once, not queued behind it.
    expect((await run(dev, READ10)).status).toBe(BUSY);
    expect(lu.availability).toBe(LuAvailability.MOVING);
    await new Promise((r) => setTimeout(r, 20));
    expect(quiesced).toBe(false);
    store.release();
    expectGood(await write);
    const outcome = await q;
    expect(outcome.drained).toBe(true);
    expect(outcome.inFlight).toBe(0);
    expect(lu.inFlight.size).toBe(0);
    // The accepted write was done before the quiesce resolved.
    expect((await store.read(0, 512))[0]).toBe(0x77);
    dev.resume();
    expectGood(await run(dev, READ10));
  });

  test('quiesce_of_an_idle_device_resolves_at_once', async () => {
    const { dev } = await readyFixture();
    const o = await dev.quiesce({ timeoutMs: 1000 });
    expect(o).toMatchObject({ drained: true, inFlight: 0 });
    expect((await run(dev, WRITE10, { dataOut: [Buffer.alloc(512)] })).status).toBe(BUSY);
  });

  test('quiesce_past_its_bound_reports_what_is_still_running', async () => {
    const store = new GatedStore(1024 * 512);
    const { dev, lu } = await readyFixture({ lu: { store } });
    store.hold();
    const write = run(dev, WRITE10, { dataOut: [Buffer.alloc(512, 0x11)] });
    await new Promise((r) => setImmediate(r));
    const o = await dev.quiesce({ timeoutMs: 30 });
    expect(o.drained).toBe(false);
    expect(o.inFlight).toBe(1);
    // Still quiesced: the caller decides (a move resumes and gives up).
    expect(lu.availability).toBe(LuAvailability.MOVING);
    store.release();
    expectGood(await write);
    expect(lu.inFlight.size).toBe(0);
  });

  test('rejected_commands_are_not_counted_in_flight', async () => {
    const { dev, lu } = await readyFixture();
    await run(dev, [0x2a, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0], { dataOut: [Buffer.alloc(512)] }); // LBA out of range
    await run(dev, [0xc0]); // unsupported opcode
    expect(lu.inFlight.size).toBe(0);
    expect((await dev.quiesce({ timeoutMs: 10 })).drained).toBe(true);
  });
});
