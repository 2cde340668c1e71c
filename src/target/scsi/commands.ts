/**
 * The block device's command set: every implemented row, assembled into the
 * opcode table. Later steps (reservations, COMPARE AND WRITE, UNMAP, WRITE
 * SAME, ALUA) add their rows here.
 */
import { CommandRow, CommandTable } from './command-table';
import { CACHE_ROWS } from './cache';
import { COMPARE_AND_WRITE_ROW } from './compare-and-write';
import { GET_LBA_STATUS_ROW } from './get-lba-status';
import { INQUIRY_ROW } from './inquiry';
import { MODE_SELECT_ROWS } from './mode-select';
import { MODE_SENSE_ROWS } from './mode-sense';
import { READ_CAPACITY_ROWS } from './read-capacity';
import { READ_WRITE_ROWS } from './read-write';
import { REPORT_LUNS_ROW } from './report-luns';
import { RSOC_ROW } from './report-supported-opcodes';
import { REQUEST_SENSE_ROW } from './request-sense';
import { UNIT_CONTROL_ROWS } from './unit-control';
import { UNMAP_ROW } from './unmap';
import { VERIFY_ROWS } from './verify';
import { WRITE_SAME_ROWS } from './write-same';
import { PERSISTENT_RESERVE_IN_ROWS } from './persistent-reserve-in';
import { PERSISTENT_RESERVE_OUT_ROWS } from './persistent-reserve-out';
import { RESERVE_RELEASE_ROWS } from './reserve-release';
import { RTPG_ROW } from './report-target-port-groups';
import { EXTENDED_COPY_ROW } from './extended-copy';
import { RECEIVE_COPY_RESULTS_ROWS } from './receive-copy-results';

export const SBC_COMMAND_ROWS: readonly CommandRow[] = [
  INQUIRY_ROW,
  REPORT_LUNS_ROW,
  REQUEST_SENSE_ROW,
  RSOC_ROW,
  ...UNIT_CONTROL_ROWS,
  ...READ_CAPACITY_ROWS,
  ...READ_WRITE_ROWS,
  ...WRITE_SAME_ROWS,
  UNMAP_ROW,
  COMPARE_AND_WRITE_ROW,
  GET_LBA_STATUS_ROW,
  ...VERIFY_ROWS,
  ...CACHE_ROWS,
  ...MODE_SENSE_ROWS,
  ...MODE_SELECT_ROWS,
  ...PERSISTENT_RESERVE_IN_ROWS,
  ...PERSISTENT_RESERVE_OUT_ROWS,
  ...RESERVE_RELEASE_ROWS,
  RTPG_ROW,
  EXTENDED_COPY_ROW,
  ...RECEIVE_COPY_RESULTS_ROWS,
];

/** A fresh table of the standard command set, optionally with extra rows. */
export function sbcCommandTable(extraRows: readonly CommandRow[] = []): CommandTable {
  return new CommandTable([...SBC_COMMAND_ROWS, ...extraRows]);
}
