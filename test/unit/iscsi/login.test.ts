import { describe, expect, it } from 'vitest';
import { ChapCredentials } from '../../../src/target/iscsi/chap';
import {
  LoginContext,
  LoginFailure,
  LoginMachine,
  LoginRequestPdu,
  LoginResponsePdu,
  LoginStage,
  TargetLoginPolicy,
} from '../../../src/target/iscsi/login';
import { decodeText } from '../../../src/target/iscsi/text';

const TARGET = 'iqn.2026-11.io.twinsan:vol0';
const INITIATOR = 'iqn.1994-05.com.redhat:client';
const ISID = Buffer.from('400001370000', 'hex');
const { SECURITY, OPERATIONAL, FULL_FEATURE } = LoginStage;

/** Hand-built request text: each entry NUL-terminated. */
const text = (...entries: string[]): Buffer => Buffer.from(entries.map((e) => `${e}\0`).join(''), 'utf8');

function request(fields: Partial<LoginRequestPdu>): LoginRequestPdu {
  return { transit: false, cont: false, csg: SECURITY, nsg: 0, versionMax: 0, versionMin: 0, isid: ISID, tsih: 0, cid: 1, data: Buffer.alloc(0), ...fields };
}

const keysOf = (res: LoginResponsePdu): Map<string, string> => new Map(decodeText(res.data));
const status = (res: LoginResponsePdu): [number, number] => [res.statusClass, res.statusDetail];

/* CHAP known answers (Python hashlib): md5(0x07 || secret || 00..0f), md5(0xc8 || mutual secret || a1..b0). */
const CHAP: ChapCredentials = { user: 'client-user', secret: 'initiator-secret-12', mutualUser: 'target-user', mutualSecret: 'target-secret-456' };
const ONE_WAY_RESPONSE = '822414174512c10383e37089d80f758f';
const MUTUAL_CHALLENGE = 'a1a2a3a4a5a6a7a8a9aaabacadaeafb0';
const MUTUAL_RESPONSE = '998a89febb0d6726e24ed29b150b9da1';
const fixedRandom = (size: number): Buffer => (size === 1 ? Buffer.from([0x07]) : Buffer.from(Array.from({ length: size }, (_, i) => i & 0xff)));

interface Setup {
  chap?: ChapCredentials;
  alias?: string;
  allowed?: string[];
  ctx?: Partial<LoginContext>;
}

function machine(setup: Setup = {}): LoginMachine {
  const policy: TargetLoginPolicy = {
    name: TARGET,
    ...(setup.alias ? { alias: setup.alias } : {}),
    initiatorAllowed: (name) => (setup.allowed ?? [INITIATOR]).includes(name),
    ...(setup.chap ? { chap: setup.chap } : {}),
  };
  return new LoginMachine({
    portalGroupTag: 1,
    findTarget: (name) => (name === TARGET ? policy : null),
    randomBytes: fixedRandom,
    ...setup.ctx,
  });
}

const FIRST = [`InitiatorName=${INITIATOR}`, `TargetName=${TARGET}`, 'SessionType=Normal'];
const OPERATIONAL_KEYS = [
  'HeaderDigest=CRC32C,None',
  'DataDigest=None',
  'InitialR2T=No',
  'ImmediateData=Yes',
  'MaxBurstLength=16776192',
  'FirstBurstLength=262144',
  'MaxRecvDataSegmentLength=131072',
  'ErrorRecoveryLevel=0',
];

function expectFailure(m: LoginMachine, res: LoginResponsePdu, reason: LoginFailure, cls: number, detail: number): void {
  expect(status(res)).toEqual([cls, detail]);
  expect(res.transit).toBe(false);
  expect(res.data.length).toBe(0);
  expect(m.state).toBe('failed');
  expect(m.failure?.reason).toBe(reason);
}

describe('login without authentication', () => {
  it('goes security -> operational -> full feature and yields the negotiated parameters', () => {
    const m = machine({ alias: 'Volume 0' });
    const r1 = m.step(request({ transit: true, nsg: OPERATIONAL, data: text(...FIRST, 'InitiatorAlias=client host', 'AuthMethod=None') }));
    expect(status(r1)).toEqual([0, 0]);
    expect(r1).toMatchObject({ transit: true, cont: false, csg: SECURITY, nsg: OPERATIONAL, versionMax: 0, versionActive: 0 });
    expect(keysOf(r1)).toEqual(
      new Map([
        ['TargetPortalGroupTag', '1'],
        ['TargetAlias', 'Volume 0'],
        ['AuthMethod', 'None'],
      ]),
    );
    expect(m.state).toBe('in-progress');

    const r2 = m.step(request({ transit: true, csg: OPERATIONAL, nsg: FULL_FEATURE, data: text(...OPERATIONAL_KEYS) }));
    expect(r2).toMatchObject({ transit: true, csg: OPERATIONAL, nsg: FULL_FEATURE, statusClass: 0 });
    const keys = keysOf(r2);
    expect(keys.get('HeaderDigest')).toBe('CRC32C');
    expect(keys.get('InitialR2T')).toBe('Yes');
    expect(keys.get('MaxBurstLength')).toBe('1048576');
    expect(keys.get('FirstBurstLength')).toBe('65536');
    expect(keys.get('MaxRecvDataSegmentLength')).toBe('262144');
    expect(keys.has('TargetPortalGroupTag')).toBe(false); // declared once only

    expect(m.state).toBe('complete');
    expect(m.result).toEqual({
      sessionType: 'Normal',
      initiatorName: INITIATOR,
      initiatorAlias: 'client host',
      targetName: TARGET,
      credentials: null,
      session: {
        initialR2T: true,
        immediateData: true,
        maxBurstLength: 1048576,
        firstBurstLength: 65536,
        maxOutstandingR2T: 1,
        dataPDUInOrder: true,
        dataSequenceInOrder: true,
        errorRecoveryLevel: 0,
        defaultTime2Wait: 2,
        defaultTime2Retain: 20,
        maxConnections: 1,
      },
      connection: { headerDigest: 'CRC32C', dataDigest: 'None', maxRecvDataSegmentLength: 131072, targetMaxRecvDataSegmentLength: 262144 },
    });
  });

  it('lets the initiator skip the security stage when the target needs no CHAP', () => {
    const m = machine();
    const r = m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text(...FIRST, 'MaxRecvDataSegmentLength=65536') }));
    expect(r).toMatchObject({ transit: true, csg: OPERATIONAL, nsg: FULL_FEATURE, statusClass: 0 });
    expect(keysOf(r).get('TargetPortalGroupTag')).toBe('1');
    expect(m.result?.connection.maxRecvDataSegmentLength).toBe(65536);
  });

  it('lets the initiator go from security straight to full feature', () => {
    const m = machine();
    const r = m.step(request({ transit: true, nsg: FULL_FEATURE, data: text(...FIRST, 'AuthMethod=None') }));
    expect(r).toMatchObject({ transit: true, nsg: FULL_FEATURE });
    expect(m.state).toBe('complete');
    expect(m.result?.connection).toEqual({ headerDigest: 'None', dataDigest: 'None', maxRecvDataSegmentLength: 8192, targetMaxRecvDataSegmentLength: 8192 });
  });

  it('never sets T when the initiator did not', () => {
    const m = machine();
    const r1 = m.step(request({ data: text(...FIRST, 'AuthMethod=None') }));
    expect(r1.transit).toBe(false);
    const r2 = m.step(request({ transit: true, nsg: OPERATIONAL }));
    expect(r2).toMatchObject({ transit: true, nsg: OPERATIONAL });
    expect(r2.data.length).toBe(0); // nothing is declared twice
  });

  it('stays in the operational stage until the initiator asks to leave', () => {
    const m = machine();
    m.step(request({ csg: OPERATIONAL, data: text(...FIRST) }));
    const r = m.step(request({ csg: OPERATIONAL, data: text('MaxBurstLength=65536') }));
    expect(r.transit).toBe(false);
    expect(m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE }))).toMatchObject({ transit: true, nsg: FULL_FEATURE });
    expect(m.result?.session.maxBurstLength).toBe(65536);
  });

  it('refuses a request after the login completed', () => {
    const m = machine();
    m.step(request({ transit: true, nsg: FULL_FEATURE, data: text(...FIRST) }));
    expect(() => m.step(request({ csg: FULL_FEATURE }))).toThrow(/complete/);
  });
});

describe('login with CHAP', () => {
  function throughChallenge(m: LoginMachine) {
    const r1 = m.step(request({ data: text(...FIRST, 'AuthMethod=CHAP,None') }));
    expect(keysOf(r1).get('AuthMethod')).toBe('CHAP');
    expect(r1.transit).toBe(false);
    const r2 = m.step(request({ data: text('CHAP_A=5') }));
    expect(keysOf(r2)).toEqual(
      new Map([
        ['CHAP_A', '5'],
        ['CHAP_I', '7'],
        ['CHAP_C', '0x000102030405060708090a0b0c0d0e0f'],
      ]),
    );
    return r2;
  }

  it('authenticates one-way CHAP and moves on', () => {
    const m = machine({ chap: { user: CHAP.user, secret: CHAP.secret } });
    throughChallenge(m);
    const r3 = m.step(request({ transit: true, nsg: OPERATIONAL, data: text(`CHAP_N=${CHAP.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`) }));
    expect(r3).toMatchObject({ transit: true, nsg: OPERATIONAL, statusClass: 0 });
    expect(r3.data.length).toBe(0);
    m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text('HeaderDigest=None') }));
    expect(m.state).toBe('complete');
    expect(m.result?.chapUser).toBe(CHAP.user);
  });

  it('answers mutual CHAP with the target credentials', () => {
    const m = machine({ chap: CHAP });
    throughChallenge(m);
    const r3 = m.step(
      request({ transit: true, nsg: OPERATIONAL, data: text(`CHAP_N=${CHAP.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`, 'CHAP_I=200', `CHAP_C=0x${MUTUAL_CHALLENGE}`) }),
    );
    expect(r3).toMatchObject({ transit: true, nsg: OPERATIONAL });
    expect(keysOf(r3)).toEqual(
      new Map([
        ['CHAP_N', 'target-user'],
        ['CHAP_R', `0x${MUTUAL_RESPONSE}`],
      ]),
    );
  });

  it('fails a wrong secret with authentication failure 0x0201', () => {
    const m = machine({ chap: CHAP });
    throughChallenge(m);
    const r = m.step(request({ transit: true, nsg: OPERATIONAL, data: text(`CHAP_N=${CHAP.user}`, `CHAP_R=0x${'11'.repeat(16)}`) }));
    expectFailure(m, r, LoginFailure.AUTHENTICATION_FAILED, 0x02, 0x01);
    expect(m.failure?.message).toMatch(/wrong-response/);
  });

  it('fails a reflected challenge with 0x0201', () => {
    const m = machine({ chap: CHAP });
    const r2 = throughChallenge(m);
    const r = m.step(
      request({ transit: true, nsg: OPERATIONAL, data: text(`CHAP_N=${CHAP.user}`, `CHAP_R=0x${ONE_WAY_RESPONSE}`, 'CHAP_I=7', `CHAP_C=${keysOf(r2).get('CHAP_C')}`) }),
    );
    expectFailure(m, r, LoginFailure.AUTHENTICATION_FAILED, 0x02, 0x01);
    expect(m.failure?.message).toMatch(/reflected-challenge/);
  });

  it('keeps T clear while the CHAP exchange is under way', () => {
    const m = machine({ chap: CHAP });
    const r1 = m.step(request({ transit: true, nsg: OPERATIONAL, data: text(...FIRST, 'AuthMethod=CHAP') }));
    expect(r1.transit).toBe(false);
    expect(m.state).toBe('in-progress');
  });

  it('refuses to skip the security stage when CHAP is required', () => {
    const m = machine({ chap: CHAP });
    const r = m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text(...FIRST) }));
    expectFailure(m, r, LoginFailure.AUTHENTICATION_REQUIRED, 0x02, 0x01);
  });

  it('refuses AuthMethod=None when CHAP is required', () => {
    const m = machine({ chap: CHAP });
    const r = m.step(request({ transit: true, nsg: OPERATIONAL, data: text(...FIRST, 'AuthMethod=None') }));
    expectFailure(m, r, LoginFailure.AUTHENTICATION_FAILED, 0x02, 0x01);
  });

  it('proposes CHAP when the initiator wants to leave security without offering a method', () => {
    const m = machine({ chap: CHAP });
    const r1 = m.step(request({ transit: true, nsg: OPERATIONAL, data: text(...FIRST) }));
    expect(r1.transit).toBe(false);
    expect(keysOf(r1).get('AuthMethod')).toBe('CHAP');
    const r2 = m.step(request({ data: text('AuthMethod=CHAP', 'CHAP_A=5') }));
    expect(keysOf(r2).has('AuthMethod')).toBe(false);
    expect(keysOf(r2).get('CHAP_C')).toBe('0x000102030405060708090a0b0c0d0e0f');
  });

  it('fails the security stage transit when no method was ever agreed', () => {
    const m = machine({ chap: CHAP });
    m.step(request({ transit: true, nsg: OPERATIONAL, data: text(...FIRST) }));
    const r = m.step(request({ transit: true, nsg: OPERATIONAL }));
    expectFailure(m, r, LoginFailure.AUTHENTICATION_FAILED, 0x02, 0x01);
  });

  it('answers 0x0300 for a target whose CHAP configuration is unusable', () => {
    const m = machine({ chap: { user: 'u', secret: 'same-secret', mutualUser: 't', mutualSecret: 'same-secret' } });
    const r = m.step(request({ data: text(...FIRST, 'AuthMethod=CHAP') }));
    expectFailure(m, r, LoginFailure.TARGET_MISCONFIGURED, 0x03, 0x00);
  });
});

describe('first request checks', () => {
  it('requires InitiatorName', () => {
    const m = machine();
    const r = m.step(request({ data: text(`TargetName=${TARGET}`, 'AuthMethod=None') }));
    expectFailure(m, r, LoginFailure.MISSING_INITIATOR_NAME, 0x02, 0x07);
  });

  it('requires TargetName for a normal session', () => {
    const m = machine();
    const r = m.step(request({ data: text(`InitiatorName=${INITIATOR}`, 'SessionType=Normal') }));
    expectFailure(m, r, LoginFailure.MISSING_TARGET_NAME, 0x02, 0x07);
  });

  it('answers not found for an unknown target', () => {
    const m = machine();
    const r = m.step(request({ data: text(`InitiatorName=${INITIATOR}`, 'TargetName=iqn.2026-11.io.twinsan:nope') }));
    expectFailure(m, r, LoginFailure.TARGET_NOT_FOUND, 0x02, 0x03);
  });

  it('answers not found at this address for a target served only at other portals', () => {
    const m = machine({ ctx: { findTarget: (name) => (name === TARGET ? { name, initiatorAllowed: () => true, atThisPortal: false } : null) } });
    const r = m.step(request({ data: text(...FIRST) }));
    expectFailure(m, r, LoginFailure.TARGET_NOT_AT_PORTAL, 0x02, 0x03);
  });

  it('answers authorization failure for an initiator outside the ACL', () => {
    const m = machine({ allowed: ['iqn.1994-05.com.redhat:other'] });
    const r = m.step(request({ data: text(...FIRST) }));
    expectFailure(m, r, LoginFailure.INITIATOR_NOT_AUTHORIZED, 0x02, 0x02);
  });

  it('answers session type not supported for an unknown SessionType', () => {
    const m = machine();
    const r = m.step(request({ data: text(`InitiatorName=${INITIATOR}`, 'SessionType=Management') }));
    expectFailure(m, r, LoginFailure.UNSUPPORTED_SESSION_TYPE, 0x02, 0x09);
  });

  it('answers out of resources when the admission hook refuses', () => {
    const seen: unknown[] = [];
    const m = machine({ ctx: { admit: (login) => (seen.push(login), false) } });
    const r = m.step(request({ data: text(...FIRST) }));
    expectFailure(m, r, LoginFailure.OUT_OF_RESOURCES, 0x03, 0x02);
    expect(seen).toEqual([{ initiatorName: INITIATOR, sessionType: 'Normal', targetName: TARGET, isid: ISID, tsih: 0, cid: 1 }]);
  });

  it('consults the admission hook once, and only for logins that could proceed', () => {
    let calls = 0;
    const admit = () => (calls++, true);
    const denied = machine({ chap: CHAP, ctx: { admit } });
    denied.step(request({ csg: OPERATIONAL, data: text(...FIRST) }));
    expect(calls).toBe(0);
    const m = machine({ ctx: { admit } });
    m.step(request({ data: text(...FIRST) }));
    m.step(request({ transit: true, nsg: FULL_FEATURE, data: text('AuthMethod=None') }));
    expect(m.state).toBe('complete');
    expect(calls).toBe(1);
  });

  it('refuses InitiatorName, TargetName or SessionType after the first request', () => {
    for (const late of [`InitiatorName=${INITIATOR}`, `TargetName=${TARGET}`, 'SessionType=Discovery']) {
      const m = machine();
      m.step(request({ data: text(...FIRST) }));
      expectFailure(m, m.step(request({ data: text(late) })), LoginFailure.LATE_DECLARATION, 0x02, 0x00);
    }
  });
});

describe('discovery sessions', () => {
  const DISCOVERY = [`InitiatorName=${INITIATOR}`, 'SessionType=Discovery'];

  it('logs in without a target name and answers only relevant keys', () => {
    const m = machine();
    m.step(request({ transit: true, nsg: OPERATIONAL, data: text(...DISCOVERY, 'AuthMethod=None') }));
    const r = m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text('HeaderDigest=None', 'MaxBurstLength=262144', 'InitialR2T=No', 'MaxRecvDataSegmentLength=32768') }));
    const keys = keysOf(r);
    expect(keys.get('HeaderDigest')).toBe('None');
    expect(keys.get('MaxBurstLength')).toBe('Irrelevant');
    expect(keys.get('InitialR2T')).toBe('Irrelevant');
    expect(keys.has('TargetPortalGroupTag')).toBe(false);
    expect(m.result).toMatchObject({ sessionType: 'Discovery', initiatorName: INITIATOR, connection: { maxRecvDataSegmentLength: 32768 } });
    expect(m.result?.targetName).toBeUndefined();
  });

  it('requires CHAP when discovery CHAP is configured', () => {
    const m = machine({ ctx: { discoveryChap: { user: CHAP.user, secret: CHAP.secret } } });
    const r = m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text(...DISCOVERY) }));
    expectFailure(m, r, LoginFailure.AUTHENTICATION_REQUIRED, 0x02, 0x01);
  });
});

describe('stage transitions and header checks', () => {
  it('answers unsupported version when the initiator needs a version above 0', () => {
    const m = machine();
    const r = m.step(request({ versionMax: 2, versionMin: 1, data: text(...FIRST) }));
    expectFailure(m, r, LoginFailure.UNSUPPORTED_VERSION, 0x02, 0x05);
    expect(r).toMatchObject({ versionMax: 0, versionActive: 0 });
  });

  it('accepts an initiator that supports versions 0..1', () => {
    const m = machine();
    const r = m.step(request({ versionMax: 1, versionMin: 0, data: text(...FIRST) }));
    expect(status(r)).toEqual([0, 0]);
    expect(r.versionActive).toBe(0);
  });

  it('refuses version, ISID, TSIH or CID changing during the login', () => {
    const changes: Array<Partial<LoginRequestPdu>> = [{ versionMax: 1 }, { isid: Buffer.from('400001370001', 'hex') }, { tsih: 5 }, { cid: 2 }];
    for (const change of changes) {
      const m = machine();
      m.step(request({ data: text(...FIRST) }));
      expectFailure(m, m.step(request(change)), LoginFailure.HEADER_CHANGED, 0x02, 0x00);
    }
  });

  it('refuses T and C set together', () => {
    const m = machine();
    expectFailure(m, m.step(request({ transit: true, cont: true, nsg: OPERATIONAL, data: text(...FIRST) })), LoginFailure.TRANSIT_WITH_CONTINUE, 0x02, 0x00);
  });

  it('refuses a login starting in full feature phase or the reserved stage', () => {
    for (const csg of [2, 3]) {
      const m = machine();
      expectFailure(m, m.step(request({ csg, data: text(...FIRST) })), LoginFailure.INVALID_STAGE, 0x02, 0x00);
    }
  });

  it('refuses a request for a stage other than the current one', () => {
    const m = machine();
    m.step(request({ data: text(...FIRST) }));
    expectFailure(m, m.step(request({ csg: OPERATIONAL })), LoginFailure.INVALID_STAGE, 0x02, 0x00);
  });

  it('refuses going back or to the reserved stage', () => {
    const cases: Array<[number, number]> = [
      [SECURITY, SECURITY],
      [SECURITY, 2],
      [OPERATIONAL, SECURITY],
      [OPERATIONAL, OPERATIONAL],
    ];
    for (const [csg, nsg] of cases) {
      const m = machine();
      expectFailure(m, m.step(request({ csg, transit: true, nsg, data: text(...FIRST) })), LoginFailure.INVALID_TRANSITION, 0x02, 0x00);
    }
  });

  it('answers initiator error to malformed text', () => {
    const m = machine();
    expectFailure(m, m.step(request({ data: Buffer.from(`InitiatorName=${INITIATOR}\0TargetName`) })), LoginFailure.MALFORMED_TEXT, 0x02, 0x00);
  });

  it('answers initiator error to an operational key in the security stage', () => {
    const m = machine();
    expectFailure(m, m.step(request({ data: text(...FIRST, 'MaxBurstLength=65536') })), LoginFailure.NEGOTIATION_ERROR, 0x02, 0x00);
  });

  it('answers initiator error to a key negotiated twice', () => {
    const m = machine();
    m.step(request({ csg: OPERATIONAL, data: text(...FIRST, 'MaxBurstLength=65536') }));
    expectFailure(m, m.step(request({ csg: OPERATIONAL, data: text('MaxBurstLength=65536') })), LoginFailure.NEGOTIATION_ERROR, 0x02, 0x00);
  });

  it('refuses leading-only keys in a login that adds a connection (TSIH set)', () => {
    const m = machine();
    const r = m.step(request({ tsih: 0x12, csg: OPERATIONAL, data: text(...FIRST.slice(0, 2), 'InitialR2T=No') }));
    expectFailure(m, r, LoginFailure.NEGOTIATION_ERROR, 0x02, 0x00);
  });
});

describe('target offers', () => {
  it('clears T to offer keys whose default is outside its limits, then transits on the answer', () => {
    const m = machine({ ctx: { limits: { immediateData: false } } });
    m.step(request({ transit: true, nsg: OPERATIONAL, data: text(...FIRST) }));
    const r2 = m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text('HeaderDigest=None') }));
    expect(r2.transit).toBe(false);
    expect(keysOf(r2).get('ImmediateData')).toBe('No');
    const r3 = m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text('ImmediateData=No') }));
    expect(r3).toMatchObject({ transit: true, nsg: FULL_FEATURE });
    expect(r3.data.length).toBe(0);
    expect(m.result?.session.immediateData).toBe(false);
  });

  it('sends the initiator through the operational stage when it has keys to offer', () => {
    const m = machine({ ctx: { limits: { headerDigests: ['CRC32C'] } } });
    const r = m.step(request({ transit: true, nsg: FULL_FEATURE, data: text(...FIRST) }));
    expect(r).toMatchObject({ transit: true, nsg: OPERATIONAL });
    expect(m.state).toBe('in-progress');
  });

  it('fails when the initiator answers an offer wrongly', () => {
    const m = machine({ ctx: { limits: { immediateData: false } } });
    m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text(...FIRST) }));
    expectFailure(m, m.step(request({ csg: OPERATIONAL, transit: true, nsg: FULL_FEATURE, data: text('ImmediateData=Yes') })), LoginFailure.NEGOTIATION_ERROR, 0x02, 0x00);
  });
});

describe('text spanning several PDUs', () => {
  const first = text(...FIRST, 'AuthMethod=None', 'InitiatorAlias=a somewhat longer alias');

  it('acknowledges each continued request with an empty response until the text is whole, at every split point', () => {
    for (let cut = 0; cut <= first.length; cut++) {
      const m = machine();
      const ack = m.step(request({ cont: true, data: first.subarray(0, cut) }));
      expect(ack).toMatchObject({ transit: false, cont: false, csg: SECURITY, statusClass: 0 });
      expect(ack.data.length).toBe(0);
      const r = m.step(request({ transit: true, nsg: OPERATIONAL, data: first.subarray(cut) }));
      expect(status(r)).toEqual([0, 0]);
      expect(r).toMatchObject({ transit: true, nsg: OPERATIONAL });
      expect(keysOf(r).get('TargetPortalGroupTag')).toBe('1');
    }
  });

  it('joins a text sent over three PDUs', () => {
    const m = machine();
    m.step(request({ cont: true, data: first.subarray(0, 10) }));
    m.step(request({ cont: true, data: first.subarray(10, 30) }));
    const r = m.step(request({ transit: true, nsg: FULL_FEATURE, data: first.subarray(30) }));
    expect(m.state).toBe('complete');
    expect(r.transit).toBe(true);
  });

  it('refuses a request text beyond its cap', () => {
    const m = machine({ ctx: { maxRequestText: 64 } });
    m.step(request({ cont: true, data: first.subarray(0, 60) }));
    expectFailure(m, m.step(request({ cont: true, data: first.subarray(60, 70) })), LoginFailure.MALFORMED_TEXT, 0x02, 0x00);
  });

  it('sends a long response in pieces with C set, carrying T only on the last', () => {
    const m = machine({ alias: 'An alias that makes the first response longer than one small segment', ctx: { maxResponseSegment: 16 } });
    const pieces: Buffer[] = [];
    let r = m.step(request({ transit: true, nsg: FULL_FEATURE, data: text(...FIRST, 'AuthMethod=None') }));
    let rounds = 0;
    while (r.cont) {
      expect(r.transit).toBe(false);
      expect(r.data.length).toBe(16);
      expect(m.state).toBe('in-progress');
      pieces.push(r.data);
      r = m.step(request({ transit: true, nsg: FULL_FEATURE }));
      rounds++;
    }
    pieces.push(r.data);
    expect(rounds).toBeGreaterThan(2);
    expect(r).toMatchObject({ transit: true, nsg: FULL_FEATURE, cont: false });
    expect(new Map(decodeText(Buffer.concat(pieces)))).toEqual(
      new Map([
        ['TargetPortalGroupTag', '1'],
        ['TargetAlias', 'An alias that makes the first response longer than one small segment'],
        ['AuthMethod', 'None'],
      ]),
    );
    expect(m.state).toBe('complete');
  });

  it('does not transit on the last piece if the initiator cleared T', () => {
    const m = machine({ alias: 'x'.repeat(40), ctx: { maxResponseSegment: 32 } });
    let r = m.step(request({ transit: true, nsg: OPERATIONAL, data: text(...FIRST, 'AuthMethod=None') }));
    while (r.cont) r = m.step(request({}));
    expect(r.transit).toBe(false);
    expect(m.currentStage).toBe(SECURITY);
    expect(m.step(request({ transit: true, nsg: OPERATIONAL }))).toMatchObject({ transit: true, nsg: OPERATIONAL });
  });

  it('refuses new text while a response is still being sent', () => {
    const m = machine({ alias: 'x'.repeat(40), ctx: { maxResponseSegment: 16 } });
    m.step(request({ data: text(...FIRST) }));
    expectFailure(m, m.step(request({ data: text('AuthMethod=None') })), LoginFailure.UNEXPECTED_DATA, 0x02, 0x00);
  });
});
