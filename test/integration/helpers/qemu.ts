/**
 * qemu-img and qemu-io against iscsi:// URLs (Debian packages qemu-utils and,
 * for the iSCSI block driver, qemu-block-extra). Images are opened as raw
 * (-f raw) so no format probing touches the LUN.
 *
 * qemu-io exits non-zero when any of its -c commands failed (including a
 * "read -P" pattern mismatch); qemuIo() additionally checks the output.
 */
import { run } from './run';
import type { RunResult } from './run';

const TIMEOUT_MS = 60_000;

export interface QemuImgInfo {
  readonly run: RunResult;
  readonly virtualSize: number;
  readonly format: string;
}

export async function qemuImgInfo(url: string, timeoutMs = TIMEOUT_MS): Promise<QemuImgInfo> {
  const r = await run('qemu-img', ['info', '-f', 'raw', '--output=json', url], { timeoutMs });
  let parsed: { 'virtual-size'?: number; format?: string } = {};
  if (r.code === 0) parsed = JSON.parse(r.stdout) as typeof parsed;
  return { run: r, virtualSize: parsed['virtual-size'] ?? -1, format: parsed.format ?? '' };
}

/** One qemu-io command: write or read-and-verify `length` bytes of byte `pattern` at `offset`. */
export interface PatternOp {
  readonly op: 'write' | 'verify';
  readonly offset: number;
  readonly length: number;
  /** A byte value, 0..255. */
  readonly pattern: number;
}

export function patternCommand({ op, offset, length, pattern }: PatternOp): string {
  if (!Number.isInteger(pattern) || pattern < 0 || pattern > 0xff) throw new Error(`pattern must be a byte, got ${pattern}`);
  const p = `0x${pattern.toString(16).padStart(2, '0')}`;
  return `${op === 'write' ? 'write' : 'read'} -P ${p} ${offset} ${length}`;
}

export interface QemuIoResult {
  readonly run: RunResult;
  /** Exit 0, no verification or I/O failure reported, and every command completed. */
  readonly ok: boolean;
}

/** Run raw qemu-io commands (`-c` each) against one URL in one session. */
export async function qemuIo(url: string, commands: readonly string[], timeoutMs = TIMEOUT_MS): Promise<QemuIoResult> {
  const args = ['-f', 'raw'];
  for (const c of commands) args.push('-c', c);
  args.push(url);
  const r = await run('qemu-io', args, { timeoutMs });
  const reportedFailure = /Pattern verification failed|failed:|can't open|error/i.test(r.stdout + r.stderr);
  const completed = (r.stdout.match(/^(wrote|read) \d+\/\d+ bytes at offset \d+$/gm) ?? []).length;
  const expected = commands.filter((c) => /^(read|write)\b/.test(c)).length;
  return { run: r, ok: r.code === 0 && !reportedFailure && completed === expected };
}

/** Run pattern writes and verifies, in order, in one qemu-io session. */
export function qemuIoPatterns(url: string, ops: readonly PatternOp[], timeoutMs = TIMEOUT_MS): Promise<QemuIoResult> {
  return qemuIo(url, ops.map(patternCommand), timeoutMs);
}

export function qemuWritePattern(url: string, offset: number, length: number, pattern: number): Promise<QemuIoResult> {
  return qemuIoPatterns(url, [{ op: 'write', offset, length, pattern }]);
}

export function qemuVerifyPattern(url: string, offset: number, length: number, pattern: number): Promise<QemuIoResult> {
  return qemuIoPatterns(url, [{ op: 'verify', offset, length, pattern }]);
}

/** Write `length` bytes at `offset` taken from `sourceFile` (qemu-io "write -s"; the file is repeated if shorter). */
export function qemuWriteFile(url: string, sourceFile: string, offset: number, length: number, timeoutMs = TIMEOUT_MS): Promise<QemuIoResult> {
  return qemuIo(url, [`write -s ${sourceFile} ${offset} ${length}`], timeoutMs);
}

export interface QemuImgCompareResult {
  readonly run: RunResult;
  /** qemu-img compare: exit 0 = identical, 1 = content differs, 2+ = error. */
  readonly identical: boolean;
}

/** Compare the whole LUN, read over iSCSI, with a local raw image of the same size. */
export async function qemuImgCompare(url: string, localImage: string, timeoutMs = TIMEOUT_MS): Promise<QemuImgCompareResult> {
  const r = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', url, localImage], { timeoutMs });
  return { run: r, identical: r.code === 0 };
}
