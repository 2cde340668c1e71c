/**
 * EXTENDED COPY (LID1) (0x83 / 0x00, SPC-4 6.4): the copy manager of the
 * addressed logical unit copies blocks between logical units of this node
 * without the data crossing the network (VMware VAAI "XCOPY" uses exactly
 * this: LID1, one 0xE4 CSCD descriptor per LU, 0x02 segments).
 *
 * Implemented descriptors: CSCD 0xE4 (identification descriptor) naming an
 * LU by its NAA designator, with peripheral device type 0 and the LU's
 * block length; segment 0x02 (block device to block device). No inline or
 * embedded data. LU ID TYPE, NUL, the relative initiator port and CAT are
 * ignored (SPC-4 made LU ID TYPE and NUL obsolete). LIST ID USAGE 11b is
 * accepted whatever the list id (SPC-4 wants it zero; being lenient costs
 * nothing). There is no Third-party Copy VPD page (0x8F): it describes the
 * LID4 and ROD token commands, which are not implemented; ESXi and libiscsi
 * find the copy manager through the 3PC bit and RECEIVE COPY RESULTS.
 *
 * Checks, in order, so the first fault found is the one reported:
 *   1. parameter list length 1..15, or longer than a full descriptor list:
 *      PARAMETER LIST LENGTH ERROR (at the CDB, before any data-out);
 *   2. header: reserved LIST ID USAGE, inline data: INVALID FIELD IN
 *      PARAMETER LIST; descriptor lists longer than MAXIMUM DESCRIPTOR LIST
 *      LENGTH or than the parameter list: PARAMETER LIST LENGTH ERROR;
 *   3. descriptor counts: TOO MANY TARGET / SEGMENT DESCRIPTORS; descriptor
 *      types: UNSUPPORTED TARGET / SEGMENT DESCRIPTOR TYPE CODE; malformed
 *      descriptors: INVALID FIELD IN PARAMETER LIST;
 *   4. a list id already running for this nexus: OPERATION IN PROGRESS;
 *   5. resolving (nothing has moved yet; COPY ABORTED, with a field pointer
 *      into the parameter list): an LU not found or not reachable from
 *      this nexus, or a segment naming a CSCD that is not in the list:
 *      UNREACHABLE COPY TARGET; an LU not accessible now (moving,
 *      transitioning, standby...): COPY TARGET DEVICE NOT REACHABLE; a range
 *      beyond an LU's capacity: COPY ABORTED, NO ADDITIONAL SENSE with the
 *      pointer at the LBA field; a write-protected destination: WRITE
 *      PROTECTED;
 *   6. copying, segment by segment, in chunks of COPY_LIMITS.chunkBytes,
 *      each under a shared lock on the source range and an exclusive lock on
 *      the destination range (taken in a fixed order; one exclusive lock
 *      when they overlap on one LU, whose chunks then run back to front
 *      when the destination is above the source, like memmove). Before each
 *      chunk both LUs are checked again, so a failover stops a long copy:
 *      COPY TARGET DEVICE NOT REACHABLE. An I/O error is THIRD PARTY DEVICE
 *      FAILURE. Segments already copied stay copied.
 */
import { mediumAccessible } from './alua';
import { CommandRow, DataDirection, luCommand, LuCommandContext, ReservationClass } from './command-table';
import type { CopyTarget } from './copy-registry';
import type { CopyOperation } from './copy-results';
import { flatten } from './data';
import { FailureReason, invalidParameterField, ScsiFailure } from './failures';
import { LockMode, Release } from './interval-lock';
import type { LogicalUnit } from './logical-unit';
import {
  BLOCK_TO_BLOCK_DESCRIPTOR_LENGTH,
  COPY_LIMITS,
  CopyDescriptor,
  CopyOpcode,
  CSCD_DESCRIPTOR_LENGTH,
  ExtendedCopyAction,
  ListIdUsage,
  PARAMETER_LIST_HEADER_LENGTH,
} from './third-party-copy';
import { ScsiStatus } from './types';

const MAX_PARAMETER_LIST_LENGTH = PARAMETER_LIST_HEADER_LENGTH + COPY_LIMITS.maxDescriptorListLength;
const NAA_DESIGNATOR_TYPE = 3;
const LU_ASSOCIATION = 0;
const MAX_DESIGNATOR_LENGTH = 20;

export interface ExtendedCopyRequest {
  readonly parameterListLength: number;
}

export interface CopyListHeader {
  readonly listId: number;
  readonly listIdUsage: number;
  readonly cscdListLength: number;
  readonly segmentListLength: number;
}

/** A CSCD identification descriptor as written. */
export interface CscdDescriptor {
  /** Offset of the descriptor in the parameter list. */
  readonly offset: number;
  readonly association: number;
  readonly designatorType: number;
  readonly designator: Buffer;
  readonly blockLength: number;
}

/** A block to block segment descriptor as written. */
export interface BlockSegment {
  readonly offset: number;
  /** DC: NUMBER OF BLOCKS counts destination blocks (else source blocks). */
  readonly destinationCount: boolean;
  readonly source: number;
  readonly destination: number;
  readonly blocks: number;
  readonly sourceLba: bigint;
  readonly destinationLba: bigint;
}

export interface CopyParameterList {
  readonly header: CopyListHeader;
  readonly cscds: readonly CscdDescriptor[];
  readonly segments: readonly BlockSegment[];
}

/** A failure with a field pointer into the parameter list (for COPY ABORTED: a segment pointer, SD=0). */
const failAt = (reason: FailureReason, byte: number): ScsiFailure => new ScsiFailure(reason, { field: { inCdb: false, byte } });

/** Steps 2 and 3: the parameter list's syntax. Throws ILLEGAL REQUEST failures. */
export function parseCopyParameterList(p: Buffer): CopyParameterList {
  if (p.length < PARAMETER_LIST_HEADER_LENGTH) throw new ScsiFailure('parameter-list-length-error');
  const header: CopyListHeader = {
    listId: p[0]!,
    listIdUsage: (p[1]! >> 3) & 0x03,
    cscdListLength: p.readUInt16BE(2),
    segmentListLength: p.readUInt32BE(8),
  };
  if (header.listIdUsage === ListIdUsage.RESERVED) throw invalidParameterField(1, 4);
  if (p.readUInt32BE(12) !== 0) throw invalidParameterField(12, 7); // inline data is not supported
  const lists = header.cscdListLength + header.segmentListLength;
  if (lists > COPY_LIMITS.maxDescriptorListLength) throw new ScsiFailure('parameter-list-length-error');
  if (PARAMETER_LIST_HEADER_LENGTH + lists > p.length) throw new ScsiFailure('parameter-list-length-error');

  const cscdStart = PARAMETER_LIST_HEADER_LENGTH;
  const segmentStart = cscdStart + header.cscdListLength;
  if (header.cscdListLength % CSCD_DESCRIPTOR_LENGTH !== 0) throw invalidParameterField(2, 7);
  if (header.cscdListLength / CSCD_DESCRIPTOR_LENGTH > COPY_LIMITS.maxCscdDescriptors) throw new ScsiFailure('too-many-target-descriptors');

  // Segment descriptors have their own lengths: find them all before judging any.
  const segmentOffsets: number[] = [];
  for (let at = segmentStart; at < segmentStart + header.segmentListLength; ) {
    if (segmentStart + header.segmentListLength - at < 4) throw new ScsiFailure('parameter-list-length-error');
    segmentOffsets.push(at);
    at += 4 + p.readUInt16BE(at + 2);
    if (at > segmentStart + header.segmentListLength) throw new ScsiFailure('parameter-list-length-error');
  }
  if (segmentOffsets.length > COPY_LIMITS.maxSegmentDescriptors) throw new ScsiFailure('too-many-segment-descriptors');

  const cscds: CscdDescriptor[] = [];
  for (let at = cscdStart; at < segmentStart; at += CSCD_DESCRIPTOR_LENGTH) cscds.push(parseCscd(p, at));
  return { header, cscds, segments: segmentOffsets.map((at) => parseSegment(p, at)) };
}

function parseCscd(p: Buffer, at: number): CscdDescriptor {
  if (p[at] !== CopyDescriptor.IDENTIFICATION) throw failAt('unsupported-target-descriptor-type', at);
  if ((p[at + 1]! & 0x1f) !== 0) throw failAt('unsupported-target-descriptor-type', at + 1); // only block devices
  const length = p[at + 7]!;
  if (length > MAX_DESIGNATOR_LENGTH) throw invalidParameterField(at + 7, 7);
  return {
    offset: at,
    association: (p[at + 5]! >> 4) & 0x03,
    designatorType: p[at + 5]! & 0x0f,
    designator: Buffer.from(p.subarray(at + 8, at + 8 + length)),
    blockLength: p.readUIntBE(at + 29, 3),
  };
}

function parseSegment(p: Buffer, at: number): BlockSegment {
  if (p[at] !== CopyDescriptor.BLOCK_TO_BLOCK) throw failAt('unsupported-segment-descriptor-type', at);
  if (4 + p.readUInt16BE(at + 2) !== BLOCK_TO_BLOCK_DESCRIPTOR_LENGTH) throw invalidParameterField(at + 2, 7);
  return {
    offset: at,
    destinationCount: (p[at + 1]! & 0x02) !== 0,
    source: p.readUInt16BE(at + 4),
    destination: p.readUInt16BE(at + 6),
    blocks: p.readUInt16BE(at + 10),
    sourceLba: p.readBigUInt64BE(at + 12),
    destinationLba: p.readBigUInt64BE(at + 20),
  };
}

/* ---------------- resolving ---------------- */

interface Endpoint extends CopyTarget {
  /** Byte offset of the range on the LU's medium. */
  readonly byte: number;
}

interface ResolvedSegment {
  readonly offset: number;
  readonly source: Endpoint;
  readonly destination: Endpoint;
  readonly bytes: number;
}

/** The LU an identification descriptor names, if this nexus may reach it. */
function findCopyTarget(ctx: LuCommandContext, cscd: CscdDescriptor): CopyTarget | undefined {
  if (cscd.designatorType !== NAA_DESIGNATOR_TYPE || cscd.association !== LU_ASSOCIATION) return undefined;
  for (const lu of ctx.device.logicalUnits()) if (lu.identity.naa.equals(cscd.designator)) return { lu, device: ctx.device };
  const t = ctx.device.copyTargets?.find(cscd.designator, ctx.cmd.nexus, ctx.device);
  return t && t.device.logicalUnits().includes(t.lu) ? t : undefined;
}

function accessible(ctx: LuCommandContext, t: CopyTarget): boolean {
  return mediumAccessible(t.device.alua, t.lu, ctx.cmd.nexus.relativeTargetPortId);
}

/** Step 5: every CSCD found and usable, every segment inside its LUs. Throws COPY ABORTED failures. */
function resolve(ctx: LuCommandContext, list: CopyParameterList): ResolvedSegment[] {
  const targets = list.cscds.map((cscd) => {
    const t = findCopyTarget(ctx, cscd);
    if (!t) throw failAt('copy-target-unreachable', cscd.offset + 4);
    if (cscd.blockLength !== t.lu.blockSize) throw invalidParameterField(cscd.offset + 29, 7);
    return t;
  });
  return list.segments.map((seg) => {
    const src = targets[seg.source];
    const dst = targets[seg.destination];
    if (!src) throw failAt('copy-target-unreachable', seg.offset + 4);
    if (!dst) throw failAt('copy-target-unreachable', seg.offset + 6);
    if (!accessible(ctx, src)) throw failAt('copy-target-not-reachable', seg.offset + 4);
    if (!accessible(ctx, dst)) throw failAt('copy-target-not-reachable', seg.offset + 6);
    const bytes = seg.blocks * (seg.destinationCount ? dst.lu.blockSize : src.lu.blockSize);
    if (bytes % src.lu.blockSize !== 0 || bytes % dst.lu.blockSize !== 0) throw invalidParameterField(seg.offset + 10, 7);
    if (bytes > COPY_LIMITS.maxSegmentBytes) throw invalidParameterField(seg.offset + 10, 7);
    const source = endpoint(src, seg.sourceLba, bytes, seg.offset + 12);
    const destination = endpoint(dst, seg.destinationLba, bytes, seg.offset + 20);
    if (bytes > 0 && dst.lu.writeProtected) throw failAt('copy-target-write-protected', seg.offset + 6);
    return { offset: seg.offset, source, destination, bytes };
  });
}

function endpoint(t: CopyTarget, lba: bigint, bytes: number, lbaField: number): Endpoint {
  const start = lba * BigInt(t.lu.blockSize);
  if (start + BigInt(bytes) > BigInt(t.lu.blockCount) * BigInt(t.lu.blockSize)) throw failAt('copy-aborted', lbaField);
  return { ...t, byte: Number(start) };
}

/* ---------------- copying ---------------- */

interface LockRequest {
  readonly lu: LogicalUnit;
  readonly start: number;
  readonly end: number;
  readonly mode: LockMode;
}

/** The range locks a chunk needs, in the one order every copy takes them (LU by NAA, then LBA). */
function chunkLocks(src: LogicalUnit, srcByte: number, dst: LogicalUnit, dstByte: number, bytes: number): LockRequest[] {
  const s = { lu: src, start: srcByte / src.blockSize, end: (srcByte + bytes) / src.blockSize, mode: LockMode.SHARED };
  const d = { lu: dst, start: dstByte / dst.blockSize, end: (dstByte + bytes) / dst.blockSize, mode: LockMode.EXCLUSIVE };
  if (src === dst && s.start < d.end && d.start < s.end) {
    return [{ lu: src, start: Math.min(s.start, d.start), end: Math.max(s.end, d.end), mode: LockMode.EXCLUSIVE }];
  }
  const key = (r: LockRequest): string => r.lu.identity.naa.toString('hex');
  return [s, d].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.start - b.start));
}

async function copyChunk(src: LogicalUnit, srcByte: number, dst: LogicalUnit, dstByte: number, bytes: number): Promise<void> {
  const releases: Release[] = [];
  try {
    for (const r of chunkLocks(src, srcByte, dst, dstByte, bytes)) {
      releases.push(r.lu.locks.tryAcquire(r.start, r.end, r.mode) ?? (await r.lu.locks.acquire(r.start, r.end, r.mode)));
    }
    const data = await src.store.read(srcByte, bytes);
    await dst.store.writev(dstByte, [data], { fua: !dst.mode.writeCacheEnabled });
  } finally {
    for (const release of releases.reverse()) release();
  }
}

async function copySegment(ctx: LuCommandContext, seg: ResolvedSegment, moved: (bytes: number) => void): Promise<void> {
  const { source: src, destination: dst, bytes } = seg;
  const chunk = COPY_LIMITS.chunkBytes;
  const count = Math.ceil(bytes / chunk);
  const backwards = src.lu === dst.lu && dst.byte > src.byte && dst.byte < src.byte + bytes;
  for (let k = 0; k < count; k++) {
    const i = backwards ? count - 1 - k : k;
    const at = i * chunk;
    const length = Math.min(chunk, bytes - at);
    if (!accessible(ctx, src)) throw failAt('copy-target-not-reachable', seg.offset + 4);
    if (!accessible(ctx, dst)) throw failAt('copy-target-not-reachable', seg.offset + 6);
    try {
      await copyChunk(src.lu, src.byte + at, dst.lu, dst.byte + at, length);
    } catch (err) {
      if (err instanceof ScsiFailure) throw err;
      throw failAt('copy-third-party-device-failure', seg.offset);
    }
    moved(length);
  }
}

export async function executeExtendedCopy(ctx: LuCommandContext, parameterList: Buffer): Promise<ScsiStatus | undefined> {
  const list = parseCopyParameterList(parameterList);
  const copies = ctx.lu.copyResults;
  if (copies.activeCount >= COPY_LIMITS.maxConcurrentCopies) return ScsiStatus.BUSY;
  const { listId, listIdUsage } = list.header;
  const op: CopyOperation | null = copies.begin(ctx.cmd.nexus.key, listId, listIdUsage !== ListIdUsage.NONE, listIdUsage === ListIdUsage.HOLD);
  if (!op) throw new ScsiFailure('operation-in-progress');
  let ok = false;
  try {
    const segments = resolve(ctx, list);
    let bytes = 0;
    for (let i = 0; i < segments.length; i++) {
      await copySegment(ctx, segments[i]!, (n) => {
        bytes += n;
        op.progress(i, bytes);
      });
      op.progress(i + 1, bytes);
    }
    ok = true;
    return undefined;
  } finally {
    op.finish(ok);
  }
}

export const EXTENDED_COPY_ROW: CommandRow = luCommand<ExtendedCopyRequest>({
  name: 'EXTENDED COPY (LID1)',
  opcode: CopyOpcode.EXTENDED_COPY,
  serviceAction: ExtendedCopyAction.LID1,
  cdbLength: 16,
  direction: DataDirection.OUT,
  // It may write the addressed LU; reservations on the other LUs it names are not checked yet.
  reservation: ReservationClass.WRITE,
  usage: [CopyOpcode.EXTENDED_COPY, ExtendedCopyAction.LID1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
  parse: (cdb) => {
    const parameterListLength = cdb.readUInt32BE(10);
    if (parameterListLength > 0 && parameterListLength < PARAMETER_LIST_HEADER_LENGTH) throw new ScsiFailure('parameter-list-length-error');
    if (parameterListLength > MAX_PARAMETER_LIST_LENGTH) throw new ScsiFailure('parameter-list-length-error');
    return { parameterListLength };
  },
  dataOutLength: (req) => req.parameterListLength,
  execute: async (req, ctx, dataOut) => {
    // A zero-length parameter list copies nothing and is not an error (SPC-4 6.4.1).
    if (req.parameterListLength === 0) return {};
    const status = await executeExtendedCopy(ctx, flatten(dataOut));
    return status === undefined ? {} : { status };
  },
});
