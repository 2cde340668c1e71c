/**
 * Logical units an EXTENDED COPY may name in a CSCD identification
 * descriptor, found by their NAA designator (VPD 0x83).
 *
 * The copy manager always finds the logical units of the device the command
 * was sent to. A CopyTargetRegistry (one per process, given to every
 * ScsiTargetDevice that may copy across targets) adds logical units of
 * other targets of this node, each with an access rule: CVE-2020-28374
 * (LIO) let any initiator read or overwrite every LU of a host by naming
 * its NAA in an XCOPY; here an LU of another target is reachable only when
 * its registration allows the requesting I_T nexus, and by default it does
 * not.
 */
import type { LogicalUnit } from './logical-unit';
import type { ScsiTargetDevice } from './target-device';
import type { ItNexus } from './types';

export interface CopyTargetRegistration {
  /** The device that exposes the LU (its ALUA state applies to copies). */
  readonly device: ScsiTargetDevice;
  /**
   * Whether a nexus of ANOTHER target device may use this LU as a copy
   * source or destination (default: never). Its own device's nexuses always may.
   */
  readonly mayCopy?: (nexus: ItNexus) => boolean;
}

export interface CopyTarget {
  readonly lu: LogicalUnit;
  readonly device: ScsiTargetDevice;
}

interface Entry extends CopyTargetRegistration {
  readonly lu: LogicalUnit;
}

export class CopyTargetRegistry {
  private readonly byNaa = new Map<string, Entry>();

  /** Register an LU; returns the function that unregisters it. */
  register(lu: LogicalUnit, registration: CopyTargetRegistration): () => void {
    const key = lu.identity.naa.toString('hex');
    const existing = this.byNaa.get(key);
    if (existing && existing.lu !== lu) throw new Error(`another logical unit with NAA ${key} is registered for copies`);
    const entry: Entry = { lu, ...registration };
    this.byNaa.set(key, entry);
    return () => {
      if (this.byNaa.get(key) === entry) this.byNaa.delete(key);
    };
  }

  /** The LU with this NAA designator that `nexus`, connected to `from`, may copy with; undefined otherwise. */
  find(naa: Buffer, nexus: ItNexus, from: ScsiTargetDevice): CopyTarget | undefined {
    const entry = this.byNaa.get(naa.toString('hex'));
    if (!entry) return undefined;
    if (entry.device !== from && !(entry.mayCopy?.(nexus) ?? false)) return undefined;
    return { lu: entry.lu, device: entry.device };
  }

  get size(): number {
    return this.byNaa.size;
  }
}
