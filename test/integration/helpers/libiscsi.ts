/**
 * libiscsi's command-line initiators (Debian package libiscsi-bin):
 * iscsi-inq, iscsi-ls and iscsi-readcapacity16, with parsers for what they
 * print. Each call returns the raw RunResult too, for assertion messages.
 *
 * Quirk: iscsi-inq's --pagecode is parsed by popt as a decimal integer;
 * "0x80" is silently read as 0. Page codes are always passed as decimal here.
 */
import { run } from './run';
import type { RunResult } from './run';

const TIMEOUT_MS = 20_000;

export interface InitiatorOptions {
  readonly initiatorName?: string;
  readonly timeoutMs?: number;
}

/** "Key:Value" lines, each key mapped to its values in order of appearance. */
export type Fields = ReadonlyMap<string, readonly string[]>;

export function parseFields(text: string): Fields {
  const fields = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const list = fields.get(key);
    if (list) list.push(value);
    else fields.set(key, [value]);
  }
  return fields;
}

/** The first value of `key`, or undefined. */
export function field(fields: Fields, key: string): string | undefined {
  return fields.get(key)?.[0];
}

function initiatorArgs(options: InitiatorOptions): string[] {
  return options.initiatorName ? ['-i', options.initiatorName] : [];
}

export interface InquiryResult {
  readonly run: RunResult;
  readonly fields: Fields;
}

/** Standard INQUIRY (no page) or, with `page`, the VPD page of that code. */
export async function iscsiInq(url: string, options: InitiatorOptions & { readonly page?: number } = {}): Promise<InquiryResult> {
  const args = [...initiatorArgs(options)];
  if (options.page !== undefined) args.push('-e', '1', '-c', String(options.page));
  args.push(url);
  const r = await run('iscsi-inq', args, { timeoutMs: options.timeoutMs ?? TIMEOUT_MS });
  return { run: r, fields: parseFields(r.stdout) };
}

/** Page codes listed by VPD page 0x00 (SUPPORTED VPD PAGES). */
export function parseSupportedVpdPages(text: string): number[] {
  const pages: number[] = [];
  for (const m of text.matchAll(/^Page:0x([0-9a-fA-F]{2})\b/gm)) pages.push(Number.parseInt(m[1]!, 16));
  return pages;
}

export async function iscsiSupportedVpdPages(url: string, options: InitiatorOptions = {}): Promise<{ run: RunResult; pages: number[] }> {
  const { run: r } = await iscsiInq(url, { ...options, page: 0x00 });
  return { run: r, pages: parseSupportedVpdPages(r.stdout) };
}

export interface Designator {
  readonly codeSet: string;
  readonly association: string;
  readonly type: string;
}

/** The designators of VPD page 0x83 as iscsi-inq prints them ("Designator Type:(3) NAA", ...). */
export function parseDesignators(text: string): Designator[] {
  const out: Designator[] = [];
  for (const block of text.split(/^DEVICE DESIGNATOR #\d+$/m).slice(1)) {
    const f = parseFields(block);
    out.push({ codeSet: field(f, 'Code Set') ?? '', association: field(f, 'Association') ?? '', type: field(f, 'Designator Type') ?? '' });
  }
  return out;
}

export interface ReadCapacity16 {
  readonly run: RunResult;
  /** RETURNED LOGICAL BLOCK ADDRESS: the last LBA. */
  readonly lastLba: bigint;
  readonly blockLength: number;
  /** Total size in bytes as iscsi-readcapacity16 computes it. */
  readonly totalSize: bigint;
  readonly lbpme: number;
  readonly lbprz: number;
  readonly fields: Fields;
}

export async function iscsiReadCapacity16(url: string, options: InitiatorOptions = {}): Promise<ReadCapacity16> {
  const r = await run('iscsi-readcapacity16', [...initiatorArgs(options), url], { timeoutMs: options.timeoutMs ?? TIMEOUT_MS });
  return { run: r, ...parseReadCapacity16(r.stdout) };
}

export function parseReadCapacity16(text: string): Omit<ReadCapacity16, 'run'> {
  const fields = parseFields(text);
  const big = (key: string): bigint => {
    const v = field(fields, key);
    return v !== undefined && /^\d+$/.test(v) ? BigInt(v) : -1n;
  };
  // "LBPME:0 LBPRZ:0" shares one line; parseFields keys it as "LBPME".
  const flag = (name: string): number => {
    const m = new RegExp(`\\b${name}:(\\d+)`).exec(text);
    return m ? Number(m[1]) : -1;
  };
  return {
    lastLba: big('RETURNED LOGICAL BLOCK ADDRESS'),
    blockLength: Number(big('LOGICAL BLOCK LENGTH IN BYTES')),
    totalSize: big('Total size'),
    lbpme: flag('LBPME'),
    lbprz: flag('LBPRZ'),
    fields,
  };
}

export interface DiscoveredTarget {
  readonly iqn: string;
  readonly portal: string;
}

export interface DiscoveredLun {
  readonly lun: number;
  readonly type: string;
}

export interface IscsiLsResult {
  readonly run: RunResult;
  readonly targets: DiscoveredTarget[];
  readonly luns: DiscoveredLun[];
}

/** SendTargets discovery on a portal URL (iscsi://host:port); `showLuns` also logs in and lists LUNs. */
export async function iscsiLs(portalUrl: string, options: InitiatorOptions & { readonly showLuns?: boolean } = {}): Promise<IscsiLsResult> {
  const args = [...initiatorArgs(options), ...(options.showLuns ? ['-s'] : []), portalUrl];
  const r = await run('iscsi-ls', args, { timeoutMs: options.timeoutMs ?? TIMEOUT_MS });
  return { run: r, ...parseIscsiLs(r.stdout) };
}

export function parseIscsiLs(text: string): Omit<IscsiLsResult, 'run'> {
  const targets: DiscoveredTarget[] = [];
  const luns: DiscoveredLun[] = [];
  for (const m of text.matchAll(/^Target:(\S+) Portal:(\S+)$/gm)) {
    if (!targets.some((t) => t.iqn === m[1] && t.portal === m[2])) targets.push({ iqn: m[1]!, portal: m[2]! });
  }
  for (const m of text.matchAll(/^Lun:(\d+)\s+Type:(\S+)/gm)) luns.push({ lun: Number(m[1]), type: m[2]! });
  return { targets, luns };
}
