import { describe, expect, it } from 'vitest';
import { TextAccumulator, TextError, TextErrorCode, decodeText, encodeText, splitText } from '../../../src/target/iscsi/text';

/** Hand-built wire bytes: each entry gets its NUL terminator. */
const wire = (...entries: string[]): Buffer => Buffer.from(entries.map((e) => `${e}\0`).join(''), 'utf8');

function decodeError(data: Buffer): TextError {
  try {
    decodeText(data);
  } catch (err) {
    expect(err).toBeInstanceOf(TextError);
    return err as TextError;
  }
  throw new Error('expected decodeText to throw');
}

describe('decodeText', () => {
  it('decodes key=value entries in order', () => {
    expect(decodeText(wire('InitiatorName=iqn.1993-08.org.debian:01:abc', 'SessionType=Normal', 'HeaderDigest=CRC32C,None'))).toEqual([
      ['InitiatorName', 'iqn.1993-08.org.debian:01:abc'],
      ['SessionType', 'Normal'],
      ['HeaderDigest', 'CRC32C,None'],
    ]);
  });

  it('decodes an empty data segment as no pairs', () => {
    expect(decodeText(Buffer.alloc(0))).toEqual([]);
  });

  it('keeps an empty value and values containing =', () => {
    expect(decodeText(wire('SendTargets=', 'X-com.example.eq=a=b'))).toEqual([
      ['SendTargets', ''],
      ['X-com.example.eq', 'a=b'],
    ]);
  });

  it('skips zero padding after the last entry', () => {
    const padded = Buffer.concat([wire('MaxConnections=1'), Buffer.alloc(3)]);
    expect(decodeText(padded)).toEqual([['MaxConnections', '1']]);
  });

  it('decodes UTF-8 values', () => {
    expect(decodeText(wire('InitiatorAlias=Ünïcödé host'))).toEqual([['InitiatorAlias', 'Ünïcödé host']]);
  });

  it('rejects an entry without =', () => {
    expect(decodeError(wire('InitiatorName')).code).toBe(TextErrorCode.MISSING_EQUALS);
  });

  it('rejects an = that belongs to the next entry', () => {
    expect(decodeError(Buffer.from('Key\0Other=1\0')).code).toBe(TextErrorCode.MISSING_EQUALS);
  });

  it('rejects an empty key', () => {
    expect(decodeError(wire('=value')).code).toBe(TextErrorCode.EMPTY_KEY);
  });

  it('accepts a 63-byte key and rejects a 64-byte key', () => {
    const k63 = `X-${'k'.repeat(61)}`;
    expect(decodeText(wire(`${k63}=1`))).toEqual([[k63, '1']]);
    expect(decodeError(wire(`${k63}k=1`)).code).toBe(TextErrorCode.KEY_TOO_LONG);
  });

  it('accepts an 8192-byte value and rejects an 8193-byte value', () => {
    expect(decodeText(wire(`CHAP_C=${'a'.repeat(8192)}`))[0]![1]).toHaveLength(8192);
    const err = decodeError(wire(`CHAP_C=${'a'.repeat(8193)}`));
    expect(err.code).toBe(TextErrorCode.VALUE_TOO_LONG);
    expect(err.key).toBe('CHAP_C');
  });

  it('rejects bytes that are not UTF-8', () => {
    const bad = Buffer.concat([Buffer.from('InitiatorAlias='), Buffer.from([0xc3, 0x28]), Buffer.from([0])]);
    expect(decodeError(bad).code).toBe(TextErrorCode.INVALID_UTF8);
  });

  it('rejects a key that appears twice in one request', () => {
    const err = decodeError(wire('MaxBurstLength=512', 'MaxBurstLength=1024'));
    expect(err.code).toBe(TextErrorCode.DUPLICATE_KEY);
    expect(err.key).toBe('MaxBurstLength');
  });

  it('allows repeated keys when asked (SendTargets responses)', () => {
    const text = wire('TargetName=iqn.a', 'TargetAddress=10.0.0.1:3260,1', 'TargetName=iqn.b', 'TargetAddress=10.0.0.1:3260,1');
    expect(decodeText(text, { allowDuplicates: true })).toHaveLength(4);
  });

  it('rejects a last entry without its NUL terminator', () => {
    expect(decodeError(Buffer.from('InitiatorName=iqn.x\0SessionType=Normal')).code).toBe(TextErrorCode.UNTERMINATED);
  });
});

describe('encodeText', () => {
  it('produces NUL-terminated key=value entries', () => {
    expect(encodeText([['HeaderDigest', 'None'], ['TargetPortalGroupTag', '1']])).toEqual(Buffer.from('HeaderDigest=None\0TargetPortalGroupTag=1\0'));
  });

  it('round-trips through decodeText', () => {
    const pairs: Array<[string, string]> = [['TargetAlias', 'Disk ü'], ['MaxRecvDataSegmentLength', '262144']];
    expect(decodeText(encodeText(pairs))).toEqual(pairs);
  });

  it('refuses keys and values it cannot encode', () => {
    expect(() => encodeText([['A=B', 'x']])).toThrow(TextError);
    expect(() => encodeText([['Key', 'a\0b']])).toThrow(TextError);
    expect(() => encodeText([['', 'x']])).toThrow(TextError);
  });
});

describe('splitText', () => {
  it('returns the text as one piece when it fits', () => {
    const t = wire('A=1');
    expect(splitText(t, 8192)).toEqual([t]);
  });

  it('cuts into pieces of at most the segment size that join back', () => {
    const t = wire(`CHAP_C=0x${'ab'.repeat(100)}`, 'CHAP_I=1');
    const pieces = splitText(t, 17);
    expect(pieces.every((p) => p.length <= 17)).toBe(true);
    expect(Buffer.concat(pieces)).toEqual(t);
  });
});

describe('TextAccumulator', () => {
  const text = wire('InitiatorName=iqn.1994-05.com.redhat:abc', 'TargetName=iqn.2026-11.io.twinsan:vol0', 'SessionType=Normal', 'AuthMethod=CHAP,None');

  it('returns a single-PDU text at once', () => {
    const acc = new TextAccumulator();
    expect(acc.push(text, false)).toEqual(text);
    expect(acc.inProgress).toBe(false);
  });

  it('joins text split at every byte boundary into two PDUs', () => {
    for (let cut = 0; cut <= text.length; cut++) {
      const acc = new TextAccumulator();
      expect(acc.push(text.subarray(0, cut), true)).toBeNull();
      expect(acc.inProgress).toBe(true);
      const whole = acc.push(text.subarray(cut), false);
      expect(whole).toEqual(text);
      expect(decodeText(whole!)).toHaveLength(4);
    }
  });

  it('joins text split into three PDUs at every pair of boundaries', () => {
    const short = wire('A=1', 'BB=22');
    for (let a = 0; a <= short.length; a++) {
      for (let b = a; b <= short.length; b++) {
        const acc = new TextAccumulator();
        expect(acc.push(short.subarray(0, a), true)).toBeNull();
        expect(acc.push(short.subarray(a, b), true)).toBeNull();
        expect(acc.push(short.subarray(b), false)).toEqual(short);
      }
    }
  });

  it('starts afresh after yielding a text', () => {
    const acc = new TextAccumulator();
    acc.push(wire('A=1'), true);
    acc.push(wire('B=2'), false);
    expect(acc.pendingBytes).toBe(0);
    expect(acc.push(wire('C=3'), false)).toEqual(wire('C=3'));
  });

  it('refuses text beyond its limit and forgets what it held', () => {
    const acc = new TextAccumulator(10);
    expect(acc.push(Buffer.alloc(6, 0x41), true)).toBeNull();
    expect(() => acc.push(Buffer.alloc(5, 0x41), true)).toThrow(expect.objectContaining({ code: TextErrorCode.TOO_LARGE }));
    expect(acc.pendingBytes).toBe(0);
    expect(acc.inProgress).toBe(false);
  });

  it('defaults to a 64 KiB cap', () => {
    const acc = new TextAccumulator();
    expect(acc.push(Buffer.alloc(65536), true)).toBeNull();
    expect(() => acc.push(Buffer.alloc(1), false)).toThrow(TextError);
  });
});
