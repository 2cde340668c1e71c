import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AuthFailure,
  AuthState,
  ChapConfigError,
  ChapCredentials,
  TargetAuthenticator,
  TransitVerdict,
  chapMd5Response,
  decodeBinaryValue,
} from '../../../src/target/iscsi/chap';
import { decodeText } from '../../../src/target/iscsi/text';

/** Hand-built request text. */
const keys = (...entries: string[]) => decodeText(Buffer.from(entries.map((e) => `${e}\0`).join(''), 'utf8'));

/** Fixed randomness: identifier 7, challenge 00 01 02 ... 0f. */
const fixedRandom = (size: number): Buffer => (size === 1 ? Buffer.from([0x07]) : Buffer.from(Array.from({ length: size }, (_, i) => i & 0xff)));

const CREDS: ChapCredentials = { user: 'iqn.1994-05.com.redhat:client', secret: 'initiator-secret-12' };
const MUTUAL: ChapCredentials = { ...CREDS, mutualUser: 'iqn.2026-11.io.twinsan:vol0', mutualSecret: 'target-secret-456' };

/*
 * Known-answer vectors, computed outside this code base (Python hashlib):
 *   md5(0x07 || "initiator-secret-12" || 00..0f)  = 822414174512c10383e37089d80f758f
 *   md5(0xc8 || "target-secret-456"   || a1..b0)  = 998a89febb0d6726e24ed29b150b9da1
 */
const ONE_WAY_RESPONSE = '822414174512c10383e37089d80f758f';
const MUTUAL_CHALLENGE = 'a1a2a3a4a5a6a7a8a9aaabacadaeafb0';
const MUTUAL_RESPONSE = '998a89febb0d6726e24ed29b150b9da1';

function authenticator(credentials: ChapCredentials | null = CREDS): TargetAuthenticator {
  return new TargetAuthenticator({ credentials, randomBytes: fixedRandom });
}

/** Drive an authenticator to AWAIT_RESPONSE and return the challenge answer. */
function challenged(a: TargetAuthenticator) {
  const first = a.step(keys('AuthMethod=CHAP,None'));
  expect(first).toEqual({ ok: true, responses: [['AuthMethod', 'CHAP']] });
  const second = a.step(keys('CHAP_A=5'));
  if (!second.ok) throw new Error(second.message);
  return new Map(second.responses);
}

function failureOf(step: ReturnType<TargetAuthenticator['step']>): string {
  if (step.ok) throw new Error('expected a failure');
  return step.failure;
}

describe('CHAP known-answer vectors', () => {
  it('computes MD5(identifier || secret || challenge)', () => {
    expect(chapMd5Response(7, 'initiator-secret-12', Buffer.from(Array.from({ length: 16 }, (_, i) => i))).toString('hex')).toBe(ONE_WAY_RESPONSE);
    expect(chapMd5Response(0xc8, 'target-secret-456', Buffer.from(MUTUAL_CHALLENGE, 'hex')).toString('hex')).toBe(MUTUAL_RESPONSE);
  });

  it('agrees with node:crypto for a random case', () => {
    const challenge = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
    const expected = createHash('md5').update(Buffer.concat([Buffer.from([200]), Buffer.from('s3cr3t-s3cr3t'), challenge])).digest();
    expect(chapMd5Response(200, 's3cr3t-s3cr3t', challenge)).toEqual(expected);
  });
});

describe('binary values', () => {
  it('decodes 0x hex in either case, and 0b base64', () => {
    expect(decodeBinaryValue('0xABcd')).toEqual(Buffer.from([0xab, 0xcd]));
    expect(decodeBinaryValue('0XabCD')).toEqual(Buffer.from([0xab, 0xcd]));
    expect(decodeBinaryValue('0xabc')).toEqual(Buffer.from([0x0a, 0xbc]));
    expect(decodeBinaryValue('0bq80=')).toEqual(Buffer.from([0xab, 0xcd]));
    expect(decodeBinaryValue('0Bq80')).toEqual(Buffer.from([0xab, 0xcd]));
  });

  it('refuses malformed values', () => {
    for (const bad of ['abcd', '0x', '0xzz', '0b', '0b!!!!', '0bq80==x', '0bq', '1234']) expect(decodeBinaryValue(bad), bad).toBeNull();
  });
});

describe('AuthMethod negotiation', () => {
  it('selects CHAP when the target has credentials', () => {
    const a = authenticator();
    expect(a.step(keys('AuthMethod=None,CHAP'))).toEqual({ ok: true, responses: [['AuthMethod', 'CHAP']] });
    expect(a.state).toBe(AuthState.AWAIT_ALGORITHM);
  });

  it('selects None when the target needs no authentication', () => {
    const a = authenticator(null);
    expect(a.step(keys('AuthMethod=CHAP,None'))).toEqual({ ok: true, responses: [['AuthMethod', 'None']] });
    expect(a.state).toBe(AuthState.UNAUTHENTICATED);
    expect(a.transitVerdict()).toBe(TransitVerdict.ALLOW);
  });

  it('fails an initiator that offers only None to a target requiring CHAP', () => {
    const a = authenticator();
    expect(failureOf(a.step(keys('AuthMethod=None')))).toBe(AuthFailure.NO_ACCEPTABLE_METHOD);
    expect(a.state).toBe(AuthState.FAILED);
    expect(a.transitVerdict()).toBe(TransitVerdict.DENY);
  });

  it('answers Reject when the initiator insists on CHAP and the target has none', () => {
    const a = authenticator(null);
    expect(a.step(keys('AuthMethod=CHAP'))).toEqual({ ok: true, responses: [['AuthMethod', 'Reject']] });
  });

  it('proposes CHAP once when the initiator offered no method, and expects the answer next', () => {
    const a = authenticator();
    expect(a.step([])).toEqual({ ok: true, responses: [] });
    expect(a.transitVerdict()).toBe(TransitVerdict.DENY);
    expect(a.propose()).toEqual([['AuthMethod', 'CHAP']]);
    expect(a.propose()).toEqual([]);
    expect(a.transitVerdict()).toBe(TransitVerdict.CONTINUE);
    // The answer is not answered again; CHAP_A may come with it.
    const step = a.step(keys('AuthMethod=CHAP', 'CHAP_A=5'));
    if (!step.ok) throw new Error(step.message);
    expect(step.responses.map(([k]) => k)).toEqual(['CHAP_A', 'CHAP_I', 'CHAP_C']);
  });

  it('fails when the initiator ignores our AuthMethod proposal', () => {
    const a = authenticator();
    a.propose();
    expect(failureOf(a.step([]))).toBe(AuthFailure.MISSING_KEY);
  });
});

describe('one-way CHAP', () => {
  it('sends algorithm 5, an identifier and a 16-byte hex challenge', () => {
    const c = challenged(authenticator());
    expect(c.get('CHAP_A')).toBe('5');
    expect(c.get('CHAP_I')).toBe('7');
    expect(c.get('CHAP_C')).toBe('0x000102030405060708090a0b0c0d0e0f');
  });

  it('picks MD5 out of an algorithm list', () => {
    const a = authenticator();
    a.step(keys('AuthMethod=CHAP'));
    const step = a.step(keys('CHAP_A=7,5'));
    expect(step.ok && new Map(step.responses).get('CHAP_A')).toBe('5');
  });

  it('refuses algorithms other than MD5', () => {
    const a = authenticator();
    a.step(keys('AuthMethod=CHAP'));
    expect(failureOf(a.step(keys('CHAP_A=6,7')))).toBe(AuthFailure.UNSUPPORTED_ALGORITHM);
  });

  it('authenticates the known-answer response given in hex', () => {
    const a = authenticator();
    challenged(a);
    expect(a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`))).toEqual({ ok: true, responses: [] });
    expect(a.state).toBe(AuthState.AUTHENTICATED);
    expect(a.authenticatedUser).toBe(CREDS.user);
    expect(a.transitVerdict()).toBe(TransitVerdict.ALLOW);
  });

  it('accepts upper-case hex and base64 responses', () => {
    const upper = authenticator();
    challenged(upper);
    expect(upper.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0X${ONE_WAY_RESPONSE.toUpperCase()}`)).ok).toBe(true);
    const b64 = authenticator();
    challenged(b64);
    expect(b64.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0b${Buffer.from(ONE_WAY_RESPONSE, 'hex').toString('base64')}`)).ok).toBe(true);
  });

  it('fails a response made with the wrong secret', () => {
    const a = authenticator();
    challenged(a);
    const wrong = chapMd5Response(7, 'not-the-secret', Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')).toString('hex');
    expect(failureOf(a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${wrong}`)))).toBe(AuthFailure.WRONG_RESPONSE);
    expect(a.transitVerdict()).toBe(TransitVerdict.DENY);
  });

  it('fails a response of the wrong length', () => {
    const a = authenticator();
    challenged(a);
    expect(failureOf(a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}00`)))).toBe(AuthFailure.WRONG_RESPONSE);
  });

  it('fails an unknown user even with the right response', () => {
    const a = authenticator();
    challenged(a);
    expect(failureOf(a.step(keys('CHAP_N=someone-else', `CHAP_R=0x${ONE_WAY_RESPONSE}`)))).toBe(AuthFailure.UNKNOWN_USER);
  });

  it('fails a malformed response', () => {
    const a = authenticator();
    challenged(a);
    expect(failureOf(a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=${ONE_WAY_RESPONSE}`)))).toBe(AuthFailure.MALFORMED_VALUE);
  });

  it('fails CHAP_N without CHAP_R', () => {
    const a = authenticator();
    challenged(a);
    expect(failureOf(a.step(keys(`CHAP_N=${CREDS.user}`)))).toBe(AuthFailure.MISSING_KEY);
  });

  it('keeps waiting, and lets the login continue, until the response arrives', () => {
    const a = authenticator();
    challenged(a);
    expect(a.step([])).toEqual({ ok: true, responses: [] });
    expect(a.transitVerdict()).toBe(TransitVerdict.CONTINUE);
  });

  it('fails keys out of sequence', () => {
    const early = authenticator();
    expect(failureOf(early.step(keys('CHAP_A=5')))).toBe(AuthFailure.OUT_OF_SEQUENCE);
    const again = authenticator();
    challenged(again);
    expect(failureOf(again.step(keys('CHAP_A=5')))).toBe(AuthFailure.OUT_OF_SEQUENCE);
    const after = authenticator();
    challenged(after);
    after.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`));
    expect(failureOf(after.step(keys('AuthMethod=CHAP')))).toBe(AuthFailure.OUT_OF_SEQUENCE);
  });

  it('stays failed', () => {
    const a = authenticator();
    a.step(keys('AuthMethod=None'));
    expect(failureOf(a.step(keys('AuthMethod=CHAP')))).toBe(AuthFailure.ALREADY_FAILED);
  });

  it('advances through several states in one request', () => {
    const a = authenticator();
    const step = a.step(keys('AuthMethod=CHAP', 'CHAP_A=5'));
    expect(step.ok && step.responses.map(([k]) => k)).toEqual(['AuthMethod', 'CHAP_A', 'CHAP_I', 'CHAP_C']);
    expect(a.state).toBe(AuthState.AWAIT_RESPONSE);
  });

  it('uses fresh randomness for the challenge by default', () => {
    const one = new TargetAuthenticator({ credentials: CREDS });
    const two = new TargetAuthenticator({ credentials: CREDS });
    const c1 = challenged(one).get('CHAP_C')!;
    const c2 = challenged(two).get('CHAP_C')!;
    expect(c1).toMatch(/^0x[0-9a-f]{32}$/);
    expect(c1).not.toBe(c2);
  });
});

describe('mutual CHAP', () => {
  it('answers the initiator challenge with the known-answer response', () => {
    const a = authenticator(MUTUAL);
    challenged(a);
    const step = a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`, 'CHAP_I=200', `CHAP_C=0x${MUTUAL_CHALLENGE}`));
    expect(step).toEqual({
      ok: true,
      responses: [
        ['CHAP_N', MUTUAL.mutualUser],
        ['CHAP_R', `0x${MUTUAL_RESPONSE}`],
      ],
    });
    expect(a.state).toBe(AuthState.AUTHENTICATED);
  });

  it('accepts a hex CHAP_I and a base64 challenge', () => {
    const a = authenticator(MUTUAL);
    challenged(a);
    const b64 = Buffer.from(MUTUAL_CHALLENGE, 'hex').toString('base64');
    const step = a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`, 'CHAP_I=0xc8', `CHAP_C=0b${b64}`));
    expect(step.ok && new Map(step.responses).get('CHAP_R')).toBe(`0x${MUTUAL_RESPONSE}`);
  });

  it('rejects an initiator reflecting the target challenge back', () => {
    const a = authenticator(MUTUAL);
    const c = challenged(a);
    const step = a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`, 'CHAP_I=7', `CHAP_C=${c.get('CHAP_C')}`));
    expect(failureOf(step)).toBe(AuthFailure.REFLECTED_CHALLENGE);
  });

  it('does not answer the initiator challenge when the initiator failed', () => {
    const a = authenticator(MUTUAL);
    challenged(a);
    const step = a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${'00'.repeat(16)}`, 'CHAP_I=200', `CHAP_C=0x${MUTUAL_CHALLENGE}`));
    expect(failureOf(step)).toBe(AuthFailure.WRONG_RESPONSE);
  });

  it('fails when the initiator asks for mutual CHAP the target is not configured for', () => {
    const a = authenticator(CREDS);
    challenged(a);
    const step = a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`, 'CHAP_I=200', `CHAP_C=0x${MUTUAL_CHALLENGE}`));
    expect(failureOf(step)).toBe(AuthFailure.MUTUAL_NOT_CONFIGURED);
  });

  it('fails CHAP_I without CHAP_C, a bad identifier and an oversized challenge', () => {
    const cases = [
      ['CHAP_I=200'],
      ['CHAP_I=256', `CHAP_C=0x${MUTUAL_CHALLENGE}`],
      ['CHAP_I=1', `CHAP_C=0x${'ab'.repeat(1025)}`],
    ];
    const expected = [AuthFailure.MISSING_KEY, AuthFailure.MALFORMED_VALUE, AuthFailure.MALFORMED_VALUE];
    cases.forEach((extra, i) => {
      const a = authenticator(MUTUAL);
      challenged(a);
      expect(failureOf(a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`, ...extra))), extra.join(' ')).toBe(expected[i]);
    });
  });

  it('lets the initiator skip mutual authentication', () => {
    const a = authenticator(MUTUAL);
    challenged(a);
    expect(a.step(keys(`CHAP_N=${CREDS.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`))).toEqual({ ok: true, responses: [] });
  });
});

describe('CHAP configuration', () => {
  it('refuses empty credentials, half-configured mutual CHAP and a shared secret', () => {
    expect(() => authenticator({ user: '', secret: 'x' })).toThrow(ChapConfigError);
    expect(() => authenticator({ ...CREDS, mutualUser: 'tgt' })).toThrow(ChapConfigError);
    expect(() => authenticator({ ...CREDS, mutualUser: 'tgt', mutualSecret: CREDS.secret })).toThrow(ChapConfigError);
    expect(() => new TargetAuthenticator({ credentials: CREDS, challengeBytes: 8 })).toThrow(ChapConfigError);
  });
});
