/**
 * Mode pages of the logical unit: their default values, which bits MODE
 * SELECT may change, and the current values (shared by all I_T nexuses).
 * Saved values are not implemented (no PS bit, SP=1 and PC=saved are
 * rejected). A logical unit reset returns every page to its defaults
 * (SAM-5: parameters without saved values revert to default).
 *
 * Pages are kept as their wire bytes (page code, page length, parameters);
 * the accessors below read the few bits the device acts on.
 */

export const ModePage = {
  CACHING: 0x08,
  CONTROL: 0x0a,
  INFORMATIONAL_EXCEPTIONS_CONTROL: 0x1c,
  ALL_PAGES: 0x3f,
} as const;

/** MODE SENSE page control field. */
export const PageControl = { CURRENT: 0, CHANGEABLE: 1, DEFAULT: 2, SAVED: 3 } as const;
export type PageControl = (typeof PageControl)[keyof typeof PageControl];

export interface ModePageDefinition {
  readonly code: number;
  readonly name: string;
  /** Whole page including the two header bytes. */
  readonly defaults: readonly number[];
  /** Bits MODE SELECT may change (same length as defaults; header bytes 0). */
  readonly changeable: readonly number[];
}

// Caching mode page (SBC-4): WCE (byte 2 bit 2) on by default and changeable.
const CACHING: ModePageDefinition = {
  code: ModePage.CACHING,
  name: 'Caching',
  defaults: [0x08, 0x12, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  changeable: [0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
};

// Control mode page (SPC-4): TST=001b (task set per I_T nexus), QUEUE
// ALGORITHM MODIFIER=1 (unrestricted reordering of SIMPLE tasks), QERR=0,
// UA_INTLCK_CTRL=0, BUSY TIMEOUT PERIOD=FFFFh (unlimited). D_SENSE (byte 2
// bit 2) and SWP (byte 4 bit 3) are changeable.
const CONTROL: ModePageDefinition = {
  code: ModePage.CONTROL,
  name: 'Control',
  defaults: [0x0a, 0x0a, 0x20, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0],
  changeable: [0, 0, 0x04, 0, 0x08, 0, 0, 0, 0, 0, 0, 0],
};

// Informational exceptions control mode page (SPC-4): DEXCPT=1, MRIE=0;
// nothing changeable (the device never reports informational exceptions).
const INFORMATIONAL_EXCEPTIONS: ModePageDefinition = {
  code: ModePage.INFORMATIONAL_EXCEPTIONS_CONTROL,
  name: 'Informational Exceptions Control',
  defaults: [0x1c, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  changeable: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
};

/** Supported pages in ascending page code order (the order of "all pages"). */
export const MODE_PAGES: readonly ModePageDefinition[] = [CACHING, CONTROL, INFORMATIONAL_EXCEPTIONS];

export function modePageDefinition(code: number): ModePageDefinition | undefined {
  return MODE_PAGES.find((p) => p.code === code);
}

export class ModeParameters {
  private current = new Map<number, Buffer>();

  constructor() {
    this.reset();
  }

  /** Return every page to its default values. */
  reset(): void {
    this.current = new Map(MODE_PAGES.map((p) => [p.code, Buffer.from(p.defaults)]));
  }

  /** The page bytes for a page control value other than SAVED. */
  page(code: number, pc: Exclude<PageControl, typeof PageControl.SAVED>): Buffer {
    const def = modePageDefinition(code);
    if (!def) throw new Error(`unknown mode page 0x${code.toString(16)}`);
    if (pc === PageControl.CURRENT) return Buffer.from(this.current.get(code)!);
    if (pc === PageControl.DEFAULT) return Buffer.from(def.defaults);
    const mask = Buffer.from(def.changeable);
    mask[0] = def.defaults[0]!;
    mask[1] = def.defaults[1]!;
    return mask;
  }

  /** Current bytes of a page (a copy), for staging a MODE SELECT. */
  currentPage(code: number): Buffer {
    return this.page(code, PageControl.CURRENT);
  }

  /** Install validated pages; returns true when any current value changed. */
  replace(pages: ReadonlyMap<number, Buffer>): boolean {
    let changed = false;
    for (const [code, bytes] of pages) {
      const old = this.current.get(code);
      if (!old) throw new Error(`unknown mode page 0x${code.toString(16)}`);
      if (!old.equals(bytes)) changed = true;
      this.current.set(code, Buffer.from(bytes));
    }
    return changed;
  }

  /** Caching page WCE: writes may complete before they are durable. */
  get writeCacheEnabled(): boolean {
    return (this.current.get(ModePage.CACHING)![2]! & 0x04) !== 0;
  }

  /** Control page D_SENSE: report sense data in descriptor format. */
  get descriptorSense(): boolean {
    return (this.current.get(ModePage.CONTROL)![2]! & 0x04) !== 0;
  }

  /** Control page SWP: software write protect. */
  get softwareWriteProtect(): boolean {
    return (this.current.get(ModePage.CONTROL)![4]! & 0x08) !== 0;
  }
}
