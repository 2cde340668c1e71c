/**
 * Logical block provisioning as reported by READ CAPACITY (16) and VPD
 * 0xB2 (and the unmap granularity of VPD 0xB0). What is advertised follows
 * what the command table implements: a thin LU only claims LBPME (and LBPU
 * / LBPWS / LBPWS10) once rows for UNMAP / WRITE SAME with UNMAP exist, so
 * an initiator never sends a deallocation command the device would reject.
 *
 * Deallocation works in whole physical blocks aligned to LBA 0 (READ
 * CAPACITY (16) reports LOWEST ALIGNED LBA 0): that is the OPTIMAL UNMAP
 * GRANULARITY, with UNMAP GRANULARITY ALIGNMENT 0. Deallocated blocks read
 * back as zeros (LBPRZ).
 */
import type { CommandCapabilities } from './command-table';
import type { LogicalUnit } from './logical-unit';

export interface Provisioning {
  /** Logical block provisioning management enabled (READ CAPACITY (16) LBPME). */
  readonly lbpme: boolean;
  /** Deallocated blocks read back as zeros (LBPRZ). */
  readonly lbprz: boolean;
  readonly lbpu: boolean;
  readonly lbpws: boolean;
  readonly lbpws10: boolean;
  /** VPD 0xB2 PROVISIONING TYPE: 0 fully provisioned, 2 thin. */
  readonly provisioningType: 0 | 2;
  /** VPD 0xB0 OPTIMAL UNMAP GRANULARITY in logical blocks (0 when UNMAP is not offered). */
  readonly unmapGranularity: number;
  /** VPD 0xB0 UNMAP GRANULARITY ALIGNMENT (valid when unmapGranularity > 0). */
  readonly unmapGranularityAlignment: number;
}

/** Logical blocks per deallocation unit: one physical block. */
export function unmapGranularity(lu: LogicalUnit): number {
  return 2 ** lu.physicalBlockExponent;
}

export function provisioning(lu: LogicalUnit, caps: CommandCapabilities): Provisioning {
  const lbpu = lu.thin && caps.unmap !== undefined;
  const lbpws = lu.thin && caps.writeSame16Unmap === true;
  const lbpws10 = lu.thin && caps.writeSame10Unmap === true;
  const lbpme = lbpu || lbpws || lbpws10;
  return {
    lbpme,
    lbprz: lbpme,
    lbpu,
    lbpws,
    lbpws10,
    provisioningType: lu.thin ? 2 : 0,
    unmapGranularity: lbpu ? Math.max(caps.unmap!.granularity, unmapGranularity(lu)) : 0,
    unmapGranularityAlignment: 0,
  };
}
