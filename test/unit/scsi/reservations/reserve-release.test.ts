import { describe, expect, test } from 'vitest';
import { TaskManagementFunction } from '../../../../src/target/scsi';
import { expectCheck, expectGood, readyFixture, run } from '../helpers';
import { admit, expectConflict, I1, I2, itNexus, pendingUas, readBlock, register, reserve, Type, writeBlock } from './helpers';

const RESERVE6 = [0x16, 0, 0, 0, 0, 0];
const RELEASE6 = [0x17, 0, 0, 0, 0, 0];
const RESERVE10 = [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const RELEASE10 = [0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const MODE_SENSE6 = [0x1a, 0, 0x3f, 0, 0xff, 0];

async function setup(): ReturnType<typeof readyFixture> {
  const f = await readyFixture();
  await admit(f.dev, I1, I2);
  return f;
}

describe('RESERVE / RELEASE', () => {
  test('reserve6_simple', async () => {
    const { dev } = await setup();
    expectGood(await run(dev, RESERVE6, { nexus: I1 }));
    expectGood(await run(dev, RESERVE6, { nexus: I1 })); // again, from the holder
    expectGood(await readBlock(dev, I1));
    expectGood(await writeBlock(dev, I1));
    expectGood(await run(dev, RELEASE6, { nexus: I1 }));
  });

  test('reserve6_conflict_from_other_nexus', async () => {
    const { dev } = await setup();
    expectGood(await run(dev, RESERVE6, { nexus: I1 }));
    expectConflict(await run(dev, RESERVE6, { nexus: I2 }));
    expectConflict(await readBlock(dev, I2));
    expectConflict(await writeBlock(dev, I2));
    expectConflict(await run(dev, MODE_SENSE6, { nexus: I2 }));
    expectConflict(await run(dev, [0x00, 0, 0, 0, 0, 0], { nexus: I2 })); // TEST UNIT READY
    expectGood(await run(dev, MODE_SENSE6, { nexus: I1 }));
    // What a SCSI-2 reservation never stops.
    expectGood(await run(dev, [0x12, 0, 0, 0, 36, 0], { nexus: I2 })); // INQUIRY
    expectGood(await run(dev, [0x03, 0, 0, 0, 18, 0], { nexus: I2 })); // REQUEST SENSE
    expectGood(await run(dev, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], { nexus: I2 })); // REPORT LUNS
    expectGood(await run(dev, [0x1e, 0, 0, 0, 0, 0], { nexus: I2 })); // PREVENT ALLOW, PREVENT=0
    expectConflict(await run(dev, [0x1e, 0, 0, 0, 1, 0], { nexus: I2 }));
  });

  test('release6_from_other_nexus_is_a_no_op', async () => {
    const { dev } = await setup();
    expectGood(await run(dev, RESERVE6, { nexus: I1 }));
    expectGood(await run(dev, RELEASE6, { nexus: I2 }));
    expectConflict(await run(dev, RESERVE6, { nexus: I2 }));
    expectGood(await run(dev, RELEASE6, { nexus: I1 }));
    expectGood(await run(dev, RESERVE6, { nexus: I2 }));
    expectGood(await run(dev, RELEASE6, { nexus: I2 }));
    expectGood(await run(dev, RELEASE6, { nexus: I2 })); // nothing to release
  });

  test('reserve6_belongs_to_the_session', async () => {
    const { dev } = await setup();
    const otherSession = itNexus(1, 1, '23d0000000aa'); // same initiator, another ISID
    await admit(dev, otherSession);
    expectGood(await run(dev, RESERVE6, { nexus: I1 }));
    expectConflict(await readBlock(dev, otherSession));
  });

  test('reserve10_release10', async () => {
    const { dev } = await setup();
    expectGood(await run(dev, RESERVE10, { nexus: I1 }));
    expectConflict(await run(dev, RESERVE10, { nexus: I2 }));
    expectGood(await run(dev, RELEASE10, { nexus: I2 }));
    expectConflict(await readBlock(dev, I2));
    expectGood(await run(dev, RELEASE10, { nexus: I1 }));
    expectGood(await readBlock(dev, I2));
  });

  test('reserve_third_party_and_extents_are_rejected', async () => {
    const { dev } = await setup();
    expect(expectCheck(await run(dev, [0x16, 0x10, 0, 0, 0, 0], { nexus: I1 }), 0x5, 0x24, 0x00).sks).toMatchObject({ field: 1, bit: 4 });
    expect(expectCheck(await run(dev, [0x16, 0x01, 0, 0, 0, 0], { nexus: I1 }), 0x5, 0x24, 0x00).sks).toMatchObject({ field: 1, bit: 0 });
    expect(expectCheck(await run(dev, [0x56, 0x02, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: I1 }), 0x5, 0x24, 0x00).sks).toMatchObject({ field: 1, bit: 1 });
    expect(expectCheck(await run(dev, [0x56, 0, 0, 0, 0, 0, 0, 0, 8, 0], { nexus: I1 }), 0x5, 0x24, 0x00).sks).toMatchObject({ field: 7 });
    expect(expectCheck(await run(dev, [0x17, 0x10, 0, 0, 0, 0], { nexus: I1 }), 0x5, 0x24, 0x00).sks).toMatchObject({ field: 1, bit: 4 });
    expectGood(await readBlock(dev, I2)); // nothing was reserved
  });

  test.each([
    ['lun_reset', TaskManagementFunction.LOGICAL_UNIT_RESET],
    ['target_warm_reset', TaskManagementFunction.TARGET_WARM_RESET],
    ['target_cold_reset', TaskManagementFunction.TARGET_COLD_RESET],
  ])('reserve6_released_by_%s', async (_name, fn) => {
    const { dev } = await setup();
    expectGood(await run(dev, RESERVE6, { nexus: I1 }));
    expect(dev.taskManagement(fn, I1, 0)).toBe('complete');
    await admit(dev, I2); // the reset unit attention
    expectGood(await run(dev, RESERVE6, { nexus: I2 }));
  });

  test('reserve6_itnexus_loss', async () => {
    const { dev } = await setup();
    expectGood(await run(dev, RESERVE6, { nexus: I1 }));
    dev.nexusLost(I2); // another nexus's loss changes nothing
    expect(await pendingUas(dev, I2)).toEqual([0x2900]); // it comes back as a new nexus
    expectConflict(await run(dev, RESERVE6, { nexus: I2 }));
    dev.nexusLost(I1);
    expectGood(await run(dev, RESERVE6, { nexus: I2 }));
  });

  test('reserve6_with_registrations_conflicts', async () => {
    const { dev } = await setup();
    expectGood(await register(dev, I1, 0x1n));
    // Registrations exist: RESERVE and RELEASE conflict for everyone but the holder.
    expectConflict(await run(dev, RESERVE6, { nexus: I2 }));
    expectConflict(await run(dev, RESERVE6, { nexus: I1 }));
    expectConflict(await run(dev, RELEASE6, { nexus: I2 }));
    expectGood(await reserve(dev, I1, 0x1n, Type.WE));
    // From the holder: GOOD, nothing changes.
    expectGood(await run(dev, RESERVE6, { nexus: I1 }));
    expectGood(await run(dev, RELEASE6, { nexus: I1 }));
    expectGood(await readBlock(dev, I2));
    expectConflict(await writeBlock(dev, I2));
  });
});
