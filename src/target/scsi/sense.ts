/**
 * The one sense-data builder: fixed format (response code 0x70) or
 * descriptor format (0x72, used when the control mode page has D_SENSE set
 * or REQUEST SENSE asks with DESC=1).
 */
import { FAILURE_SENSE, FailureDetail, FailureReason, FieldPointer } from './failures';

export const SenseFormat = { FIXED: 'fixed', DESCRIPTOR: 'descriptor' } as const;
export type SenseFormat = (typeof SenseFormat)[keyof typeof SenseFormat];

export interface SenseFields {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  readonly information?: number;
  readonly field?: FieldPointer;
}

const FIXED_LENGTH = 18;

function senseKeySpecific(field: FieldPointer): [number, number, number] {
  let b0 = 0x80; // SKSV
  if (field.inCdb) b0 |= 0x40; // C/D
  if (field.bit !== undefined) b0 |= 0x08 | (field.bit & 0x07); // BPV + BIT POINTER
  return [b0, (field.byte >> 8) & 0xff, field.byte & 0xff];
}

function fixed(f: SenseFields): Buffer {
  const b = Buffer.alloc(FIXED_LENGTH);
  b[0] = 0x70;
  b[2] = f.key & 0x0f;
  if (f.information !== undefined && f.information >= 0 && f.information <= 0xffffffff) {
    b[0] |= 0x80; // VALID
    b.writeUInt32BE(f.information, 3);
  }
  b[7] = FIXED_LENGTH - 8;
  b[12] = f.asc;
  b[13] = f.ascq;
  if (f.field) {
    const [s0, s1, s2] = senseKeySpecific(f.field);
    b[15] = s0;
    b[16] = s1;
    b[17] = s2;
  }
  return b;
}

function descriptor(f: SenseFields): Buffer {
  const parts: Buffer[] = [];
  if (f.information !== undefined && f.information >= 0) {
    const d = Buffer.alloc(12);
    d[0] = 0x00; // information descriptor
    d[1] = 0x0a;
    d[2] = 0x80; // VALID
    d.writeBigUInt64BE(BigInt(f.information), 4);
    parts.push(d);
  }
  if (f.field) {
    const d = Buffer.alloc(8);
    d[0] = 0x02; // sense key specific descriptor
    d[1] = 0x06;
    const [s0, s1, s2] = senseKeySpecific(f.field);
    d[4] = s0;
    d[5] = s1;
    d[6] = s2;
    parts.push(d);
  }
  const head = Buffer.alloc(8);
  head[0] = 0x72;
  head[1] = f.key & 0x0f;
  head[2] = f.asc;
  head[3] = f.ascq;
  const body = Buffer.concat(parts);
  head[7] = body.length;
  return Buffer.concat([head, body]);
}

/** Build sense data in the requested format. */
export function buildSense(fields: SenseFields, format: SenseFormat = SenseFormat.FIXED): Buffer {
  return format === SenseFormat.DESCRIPTOR ? descriptor(fields) : fixed(fields);
}

/** Sense data for a typed failure reason. */
export function senseForFailure(reason: FailureReason, detail: FailureDetail, format: SenseFormat): Buffer {
  const code = FAILURE_SENSE[reason];
  return buildSense({ key: code.key, asc: code.asc, ascq: code.ascq, ...detail }, format);
}
