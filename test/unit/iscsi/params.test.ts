import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TARGET_LIMITS,
  KEYS,
  NegotiationError,
  NegotiationFailure,
  NegotiationStage,
  Negotiator,
  NegotiatorOptions,
  SessionType,
  keyDefinition,
  parseNumber,
  resolveTargetLimits,
} from '../../../src/target/iscsi/params';
import { decodeText } from '../../../src/target/iscsi/text';

const OP = NegotiationStage.OPERATIONAL;
const SEC = NegotiationStage.SECURITY;

/** Hand-built request text, decoded the way the login does. */
const request = (...entries: string[]) => decodeText(Buffer.from(entries.map((e) => `${e}\0`).join(''), 'utf8'));

/** Offer one key=value and return the target's answer (undefined: no answer). */
function answer(entry: string, options: NegotiatorOptions = {}): string | undefined {
  const n = new Negotiator(options);
  const out = n.handle(request(entry), OP);
  return new Map(out.responses).get(entry.slice(0, entry.indexOf('=')));
}

function negotiationError(fn: () => unknown): NegotiationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NegotiationError);
    return err as NegotiationError;
  }
  throw new Error('expected a NegotiationError');
}

describe('key table', () => {
  it('has one row per key with the RFC 7143 defaults', () => {
    const defaults = Object.fromEntries(KEYS.map((k) => [k.key, k.default]));
    expect(defaults).toMatchObject({
      HeaderDigest: 'None',
      DataDigest: 'None',
      MaxConnections: '1',
      InitialR2T: 'Yes',
      ImmediateData: 'Yes',
      MaxRecvDataSegmentLength: '8192',
      MaxBurstLength: '262144',
      FirstBurstLength: '65536',
      DefaultTime2Wait: '2',
      DefaultTime2Retain: '20',
      MaxOutstandingR2T: '1',
      DataPDUInOrder: 'Yes',
      DataSequenceInOrder: 'Yes',
      ErrorRecoveryLevel: '0',
      SessionType: 'Normal',
    });
    expect(new Set(KEYS.map((k) => k.key)).size).toBe(KEYS.length);
  });

  it('lists every key the RFC defines for login and text', () => {
    const required = [
      'HeaderDigest', 'DataDigest', 'MaxConnections', 'SendTargets', 'TargetName', 'InitiatorName', 'TargetAlias', 'InitiatorAlias',
      'TargetAddress', 'TargetPortalGroupTag', 'InitialR2T', 'ImmediateData', 'MaxRecvDataSegmentLength', 'MaxBurstLength',
      'FirstBurstLength', 'DefaultTime2Wait', 'DefaultTime2Retain', 'MaxOutstandingR2T', 'DataPDUInOrder', 'DataSequenceInOrder',
      'ErrorRecoveryLevel', 'SessionType', 'AuthMethod', 'CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R',
    ];
    for (const key of required) expect(keyDefinition(key), key).toBeDefined();
  });

  it('records the merge rule of each negotiated key', () => {
    const merge = (key: string) => keyDefinition(key)!.merge;
    expect(merge('InitialR2T')).toBe('or');
    expect(merge('ImmediateData')).toBe('and');
    expect(merge('DataPDUInOrder')).toBe('or');
    expect(merge('DataSequenceInOrder')).toBe('or');
    expect(merge('MaxBurstLength')).toBe('min');
    expect(merge('DefaultTime2Wait')).toBe('max');
    expect(merge('DefaultTime2Retain')).toBe('min');
    expect(merge('HeaderDigest')).toBe('list-first-match');
    expect(merge('MaxRecvDataSegmentLength')).toBe('declarative');
  });

  it('parses decimal and hex numerical values', () => {
    expect(parseNumber('8192')).toBe(8192);
    expect(parseNumber('0x2000')).toBe(8192);
    expect(parseNumber('0X2000')).toBe(8192);
    expect(parseNumber('-1')).toBeNull();
    expect(parseNumber('12k')).toBeNull();
    expect(parseNumber('')).toBeNull();
    expect(parseNumber('99999999999999999999')).toBeNull();
  });
});

describe('Negotiator: boolean keys', () => {
  const cases: Array<[string, boolean, string, string]> = [
    // key, our vote, offer, answer
    ['InitialR2T', true, 'No', 'Yes'], // OR
    ['InitialR2T', false, 'No', 'No'],
    ['InitialR2T', false, 'Yes', 'Yes'],
    ['ImmediateData', true, 'Yes', 'Yes'], // AND
    ['ImmediateData', true, 'No', 'No'],
    ['ImmediateData', false, 'Yes', 'No'],
    ['DataPDUInOrder', true, 'No', 'Yes'], // OR
    ['DataPDUInOrder', false, 'No', 'No'],
    ['DataSequenceInOrder', true, 'No', 'Yes'], // OR
    ['DataSequenceInOrder', false, 'No', 'No'],
  ];
  const field = { InitialR2T: 'initialR2T', ImmediateData: 'immediateData', DataPDUInOrder: 'dataPDUInOrder', DataSequenceInOrder: 'dataSequenceInOrder' } as const;

  for (const [key, ours, offer, expected] of cases) {
    it(`answers ${key}=${offer} with ${expected} when the target votes ${ours ? 'Yes' : 'No'}`, () => {
      expect(answer(`${key}=${offer}`, { limits: { [field[key as keyof typeof field]]: ours } })).toBe(expected);
    });
  }

  it('rejects a boolean that is not exactly Yes or No', () => {
    expect(answer('InitialR2T=yes')).toBe('Reject');
    expect(answer('ImmediateData=1')).toBe('Reject');
  });
});

describe('Negotiator: numeric keys', () => {
  const cases: Array<[string, string, string]> = [
    // offer, answer (default limits: MaxBurst 1 MiB, FirstBurst 64 KiB, T2W 2, T2R 20, MaxOutstandingR2T 1)
    ['MaxBurstLength=262144', '262144'],
    ['MaxBurstLength=16776192', '1048576'],
    ['MaxBurstLength=512', '512'],
    ['MaxBurstLength=0x100000', '1048576'],
    ['FirstBurstLength=262144', '65536'],
    ['FirstBurstLength=4096', '4096'],
    ['DefaultTime2Wait=0', '2'], // max
    ['DefaultTime2Wait=10', '10'],
    ['DefaultTime2Retain=0', '0'], // min
    ['DefaultTime2Retain=3600', '20'],
    ['MaxOutstandingR2T=8', '1'],
    ['MaxConnections=8', '1'], // we support one connection
    ['ErrorRecoveryLevel=2', '0'], // we support level 0 only
    ['ErrorRecoveryLevel=0', '0'],
  ].map(([offer, expected]) => [offer!.split('=')[0]!, offer!, expected!]);

  for (const [, offer, expected] of cases) {
    it(`answers ${offer} with ${expected}`, () => {
      expect(answer(offer)).toBe(expected);
    });
  }

  const rejects = [
    'MaxBurstLength=511',
    'MaxBurstLength=16777216',
    'FirstBurstLength=100',
    'DefaultTime2Wait=3601',
    'DefaultTime2Retain=4000',
    'MaxOutstandingR2T=0',
    'MaxOutstandingR2T=65536',
    'MaxConnections=0',
    'ErrorRecoveryLevel=3',
    'MaxBurstLength=lots',
    'MaxBurstLength=-512',
  ];
  for (const offer of rejects) {
    it(`rejects the out-of-range or malformed ${offer}`, () => {
      expect(answer(offer)).toBe('Reject');
    });
  }

  it('accepts range boundaries', () => {
    expect(answer('MaxBurstLength=16777215', { limits: { maxBurstLength: 16777215 } })).toBe('16777215');
    expect(answer('DefaultTime2Wait=3600')).toBe('3600');
    expect(answer('MaxOutstandingR2T=65535', { limits: { maxOutstandingR2T: 65535 } })).toBe('65535');
  });
});

describe('Negotiator: FirstBurstLength and MaxBurstLength', () => {
  it('keeps FirstBurstLength within a MaxBurstLength negotiated in the same request', () => {
    const n = new Negotiator({ limits: { firstBurstLength: 65536 } });
    const out = new Map(n.handle(request('FirstBurstLength=262144', 'MaxBurstLength=16384'), OP).responses);
    expect(out.get('MaxBurstLength')).toBe('16384');
    expect(out.get('FirstBurstLength')).toBe('16384');
    expect([...out.keys()]).toEqual(['FirstBurstLength', 'MaxBurstLength']); // request order kept
  });

  it('clamps FirstBurstLength to a MaxBurstLength negotiated later', () => {
    const n = new Negotiator();
    n.handle(request('FirstBurstLength=65536'), OP);
    n.handle(request('MaxBurstLength=4096'), OP);
    const { session } = n.finish();
    expect(session.maxBurstLength).toBe(4096);
    expect(session.firstBurstLength).toBe(4096);
  });

  it('answers Irrelevant to FirstBurstLength when InitialR2T=Yes and ImmediateData=No', () => {
    const n = new Negotiator();
    const out = new Map(n.handle(request('InitialR2T=Yes', 'ImmediateData=No', 'FirstBurstLength=65536'), OP).responses);
    expect(out.get('FirstBurstLength')).toBe('Irrelevant');
  });

  it('refuses limits whose FirstBurstLength exceeds MaxBurstLength', () => {
    expect(() => new Negotiator({ limits: { maxBurstLength: 8192, firstBurstLength: 65536 } })).toThrow(RangeError);
  });

  it('allows MaxBurstLength up to 2^24-1 and no further', () => {
    expect(resolveTargetLimits({ maxBurstLength: 2 ** 24 - 1 }).maxBurstLength).toBe(2 ** 24 - 1);
    expect(() => resolveTargetLimits({ maxBurstLength: 2 ** 24 })).toThrow(RangeError);
  });
});

describe('Negotiator: digests', () => {
  it('takes the first digest of the initiator list that the target allows', () => {
    expect(answer('HeaderDigest=CRC32C,None')).toBe('CRC32C');
    expect(answer('HeaderDigest=None,CRC32C')).toBe('None');
    expect(answer('DataDigest=CRC32C')).toBe('CRC32C');
  });

  it('skips values it does not know', () => {
    expect(answer('HeaderDigest=Y-com.example.hash,CRC32C')).toBe('CRC32C');
  });

  it('rejects a list with nothing the target allows', () => {
    expect(answer('DataDigest=CRC32C', { limits: { dataDigests: ['None'] } })).toBe('Reject');
    expect(answer('HeaderDigest=Y-com.example.hash')).toBe('Reject');
  });

  it('reports the negotiated digests in the connection parameters', () => {
    const n = new Negotiator();
    n.handle(request('HeaderDigest=CRC32C,None', 'DataDigest=None,CRC32C'), OP);
    expect(n.finish().connection).toMatchObject({ headerDigest: 'CRC32C', dataDigest: 'None' });
  });
});

describe('Negotiator: special answers', () => {
  it('answers NotUnderstood to unknown and extension keys', () => {
    const n = new Negotiator();
    const out = n.handle(request('X-com.example.feature=1', 'X#Registered=yes', 'FancyKey=3'), OP);
    expect(out.responses).toEqual([
      ['X-com.example.feature', 'NotUnderstood'],
      ['X#Registered', 'NotUnderstood'],
      ['FancyKey', 'NotUnderstood'],
    ]);
  });

  it('accepts X#NodeArchitecture as a declaration without answering', () => {
    const n = new Negotiator();
    expect(n.handle(request('X#NodeArchitecture=Linux'), OP).responses).toEqual([]);
  });

  it('answers No to the obsolete marker keys and Reject to their intervals', () => {
    const n = new Negotiator();
    const out = new Map(n.handle(request('IFMarker=Yes', 'OFMarker=No', 'IFMarkInt=2048', 'OFMarkInt=1~65535'), OP).responses);
    expect(out.get('IFMarker')).toBe('No');
    expect(out.get('OFMarker')).toBe('No');
    expect(out.get('IFMarkInt')).toBe('Reject');
    expect(out.get('OFMarkInt')).toBe('Reject');
  });

  it('answers RFC3720 to TaskReporting and rejects the modes we lack', () => {
    expect(answer('TaskReporting=FastAbort,RFC3720')).toBe('RFC3720');
    expect(answer('TaskReporting=ResponseFence')).toBe('Reject');
  });

  it('answers Irrelevant to Normal-only keys in a Discovery session', () => {
    const n = new Negotiator({ sessionType: SessionType.DISCOVERY });
    const out = new Map(
      n.handle(request('InitialR2T=No', 'ImmediateData=Yes', 'MaxBurstLength=262144', 'FirstBurstLength=65536', 'MaxOutstandingR2T=1', 'DataPDUInOrder=Yes', 'DataSequenceInOrder=Yes', 'MaxConnections=1', 'HeaderDigest=None', 'DefaultTime2Wait=2', 'ErrorRecoveryLevel=0'), OP)
        .responses,
    );
    for (const key of ['InitialR2T', 'ImmediateData', 'MaxBurstLength', 'FirstBurstLength', 'MaxOutstandingR2T', 'DataPDUInOrder', 'DataSequenceInOrder', 'MaxConnections']) {
      expect(out.get(key), key).toBe('Irrelevant');
    }
    expect(out.get('HeaderDigest')).toBe('None');
    expect(out.get('DefaultTime2Wait')).toBe('2');
    expect(out.get('ErrorRecoveryLevel')).toBe('0');
  });

  it('does not answer declarative keys', () => {
    const n = new Negotiator();
    const out = n.handle(request('InitiatorName=iqn.a', 'InitiatorAlias=host', 'TargetName=iqn.t', 'SessionType=Normal', 'MaxRecvDataSegmentLength=65536'), OP);
    expect(out.responses).toEqual([]);
    expect(n.settled('InitiatorAlias')).toBe('host');
  });

  it('hands security keys back to the caller in the security stage', () => {
    const n = new Negotiator();
    const out = n.handle(request('InitiatorName=iqn.a', 'AuthMethod=CHAP,None', 'CHAP_A=5'), SEC);
    expect(out.security).toEqual([
      ['AuthMethod', 'CHAP,None'],
      ['CHAP_A', '5'],
    ]);
    expect(out.responses).toEqual([]);
  });
});

describe('Negotiator: protocol errors', () => {
  it('refuses a key negotiated again in the same login', () => {
    const n = new Negotiator();
    n.handle(request('MaxBurstLength=65536'), OP);
    const err = negotiationError(() => n.handle(request('MaxBurstLength=65536'), OP));
    expect(err.failure).toBe(NegotiationFailure.RENEGOTIATION);
    expect(err.key).toBe('MaxBurstLength');
  });

  it('refuses a declaration made again in the same login', () => {
    const n = new Negotiator();
    n.handle(request('MaxRecvDataSegmentLength=8192'), OP);
    expect(negotiationError(() => n.handle(request('MaxRecvDataSegmentLength=8192'), OP)).failure).toBe(NegotiationFailure.RENEGOTIATION);
  });

  it('refuses a key answered Irrelevant being sent again', () => {
    const n = new Negotiator({ sessionType: SessionType.DISCOVERY });
    n.handle(request('InitialR2T=No'), OP);
    expect(negotiationError(() => n.handle(request('InitialR2T=No'), OP)).failure).toBe(NegotiationFailure.RENEGOTIATION);
  });

  it('refuses operational keys in the security stage', () => {
    expect(negotiationError(() => new Negotiator().handle(request('MaxBurstLength=65536'), SEC)).failure).toBe(NegotiationFailure.WRONG_STAGE);
  });

  it('refuses security keys in the operational stage', () => {
    expect(negotiationError(() => new Negotiator().handle(request('CHAP_A=5'), OP)).failure).toBe(NegotiationFailure.WRONG_STAGE);
  });

  it('refuses SendTargets during login', () => {
    expect(negotiationError(() => new Negotiator().handle(request('SendTargets=All'), OP)).failure).toBe(NegotiationFailure.WRONG_STAGE);
  });

  it('refuses keys only a target may send', () => {
    for (const entry of ['TargetPortalGroupTag=1', 'TargetAlias=x', 'TargetAddress=10.0.0.1']) {
      expect(negotiationError(() => new Negotiator().handle(request(entry), OP)).failure).toBe(NegotiationFailure.WRONG_SENDER);
    }
  });

  it('refuses leading-only keys in a non-leading login', () => {
    const n = new Negotiator({ leading: false });
    expect(negotiationError(() => n.handle(request('MaxBurstLength=65536'), OP)).failure).toBe(NegotiationFailure.LEADING_ONLY);
    expect(n.handle(request('HeaderDigest=None'), OP).responses).toEqual([['HeaderDigest', 'None']]);
  });

  it('refuses invalid declarations', () => {
    const bad = ['MaxRecvDataSegmentLength=511', 'MaxRecvDataSegmentLength=16777216', 'MaxRecvDataSegmentLength=big', 'SessionType=Other', 'InitiatorName=', `InitiatorName=iqn.${'x'.repeat(220)}`];
    for (const entry of bad) {
      expect(negotiationError(() => new Negotiator().handle(request(entry), OP)).failure, entry).toBe(NegotiationFailure.INVALID_DECLARATION);
    }
  });
});

describe('Negotiator: target offers and declarations', () => {
  it('declares its MaxRecvDataSegmentLength once, in the operational stage', () => {
    const n = new Negotiator();
    expect(n.declarations(SEC)).toEqual([]);
    expect(n.declarations(OP)).toEqual([['MaxRecvDataSegmentLength', '262144']]);
    expect(n.declarations(OP)).toEqual([]);
    expect(n.finish().connection.targetMaxRecvDataSegmentLength).toBe(262144);
  });

  it('reports 8192 as its receive limit if it never declared one', () => {
    expect(new Negotiator().finish().connection.targetMaxRecvDataSegmentLength).toBe(8192);
  });

  it('offers nothing when every default is within its limits', () => {
    const n = new Negotiator();
    expect(n.makeOffers()).toEqual([]);
    expect(n.needsOperationalStage()).toBe(false);
  });

  it('offers keys whose RFC default is outside its limits', () => {
    const n = new Negotiator({ limits: { maxBurstLength: 131072, firstBurstLength: 16384, immediateData: false, headerDigests: ['CRC32C'], defaultTime2Wait: 5 } });
    expect(n.needsOperationalStage()).toBe(true);
    expect(new Map(n.makeOffers())).toEqual(
      new Map([
        ['HeaderDigest', 'CRC32C'],
        ['ImmediateData', 'No'],
        ['MaxBurstLength', '131072'],
        ['FirstBurstLength', '16384'],
        ['DefaultTime2Wait', '5'],
      ]),
    );
    expect(n.awaitingAnswers).toBe(true);
  });

  it('does not offer what the initiator already negotiated', () => {
    const n = new Negotiator({ limits: { maxBurstLength: 131072 } });
    n.handle(request('MaxBurstLength=65536'), OP);
    expect(n.makeOffers()).toEqual([]);
  });

  it('needs the operational stage to declare a receive limit below 8192', () => {
    expect(new Negotiator({ limits: { maxRecvDataSegmentLength: 4096 } }).needsOperationalStage()).toBe(true);
  });

  it('settles an offered key with the initiator answer, without answering back', () => {
    const n = new Negotiator({ limits: { maxBurstLength: 131072 } });
    n.makeOffers();
    expect(n.handle(request('MaxBurstLength=65536'), OP).responses).toEqual([]);
    expect(n.awaitingAnswers).toBe(false);
    expect(n.finish().session.maxBurstLength).toBe(65536);
  });

  it('refuses an answer beyond its offer', () => {
    const n = new Negotiator({ limits: { maxBurstLength: 131072 } });
    n.makeOffers();
    expect(negotiationError(() => n.handle(request('MaxBurstLength=262144'), OP)).failure).toBe(NegotiationFailure.INVALID_ANSWER);
  });

  it('refuses a boolean answer that contradicts the AND function', () => {
    const n = new Negotiator({ limits: { immediateData: false } });
    n.makeOffers();
    expect(negotiationError(() => n.handle(request('ImmediateData=Yes'), OP)).failure).toBe(NegotiationFailure.INVALID_ANSWER);
  });

  it('fails when the initiator rejects a digest it must use', () => {
    const n = new Negotiator({ limits: { headerDigests: ['CRC32C'] } });
    n.makeOffers();
    expect(negotiationError(() => n.handle(request('HeaderDigest=Reject'), OP)).failure).toBe(NegotiationFailure.OFFER_REFUSED);
  });

  it('will not finish while an offer is unanswered', () => {
    const n = new Negotiator({ limits: { immediateData: false } });
    n.makeOffers();
    expect(() => n.finish()).toThrow(/unanswered/);
  });
});

describe('Negotiator: results', () => {
  it('yields the RFC defaults when nothing was negotiated', () => {
    const { session, connection } = new Negotiator().finish();
    expect(session).toEqual({
      initialR2T: true,
      immediateData: true,
      maxBurstLength: 262144,
      firstBurstLength: 65536,
      maxOutstandingR2T: 1,
      dataPDUInOrder: true,
      dataSequenceInOrder: true,
      errorRecoveryLevel: 0,
      defaultTime2Wait: 2,
      defaultTime2Retain: 20,
      maxConnections: 1,
    });
    expect(connection).toEqual({ headerDigest: 'None', dataDigest: 'None', maxRecvDataSegmentLength: 8192, targetMaxRecvDataSegmentLength: 8192 });
  });

  it('yields a typical open-iscsi negotiation', () => {
    const n = new Negotiator({ limits: { initialR2T: false } });
    n.handle(
      request(
        'HeaderDigest=None',
        'DataDigest=None',
        'DefaultTime2Wait=2',
        'DefaultTime2Retain=0',
        'IFMarker=No',
        'OFMarker=No',
        'ErrorRecoveryLevel=0',
        'InitialR2T=No',
        'ImmediateData=Yes',
        'MaxBurstLength=16776192',
        'FirstBurstLength=262144',
        'MaxOutstandingR2T=1',
        'MaxConnections=1',
        'DataPDUInOrder=Yes',
        'DataSequenceInOrder=Yes',
        'MaxRecvDataSegmentLength=262144',
      ),
      OP,
    );
    n.declarations(OP);
    expect(n.finish()).toEqual({
      session: {
        initialR2T: false,
        immediateData: true,
        maxBurstLength: DEFAULT_TARGET_LIMITS.maxBurstLength,
        firstBurstLength: 65536,
        maxOutstandingR2T: 1,
        dataPDUInOrder: true,
        dataSequenceInOrder: true,
        errorRecoveryLevel: 0,
        defaultTime2Wait: 2,
        defaultTime2Retain: 0,
        maxConnections: 1,
      },
      connection: { headerDigest: 'None', dataDigest: 'None', maxRecvDataSegmentLength: 262144, targetMaxRecvDataSegmentLength: 262144 },
    });
  });

  it('reads a hex MaxRecvDataSegmentLength declaration', () => {
    const n = new Negotiator();
    n.handle(request('MaxRecvDataSegmentLength=0x10000'), OP);
    expect(n.finish().connection.maxRecvDataSegmentLength).toBe(65536);
  });
});
