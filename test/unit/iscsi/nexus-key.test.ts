/**
 * I_T nexus keys: the key of a session's nexus, and the key of the same
 * initiator port through another target port (where the session lands after
 * a resource group moved to the other node), which a takeover uses to carry
 * pending unit attentions over.
 */
import { describe, expect, it } from 'vitest';
import { makeNexus, nexusKeyThrough } from '../../../src/target/iscsi';

const IQN = 'iqn.2026-11.io.twinsan:v1';
const ISID = Buffer.from('80123456000a', 'hex');

describe('nexus keys', () => {
  it('names the initiator port and the target port with its portal group tag', () => {
    expect(makeNexus('iqn.1993-08.org.debian:01:host', ISID, IQN, 1, 1).key).toBe('iqn.1993-08.org.debian:01:host,i,0x80123456000a|iqn.2026-11.io.twinsan:v1,t,0x0001');
  });

  it('nexusKeyThrough gives the key a login through the other target port makes', () => {
    const atA = makeNexus('iqn.1993-08.org.debian:01:host', ISID, IQN, 1, 1);
    const atB = makeNexus('iqn.1993-08.org.debian:01:host', ISID, IQN, 2, 2);
    expect(nexusKeyThrough(atA.key, IQN, 2)).toBe(atB.key);
    expect(nexusKeyThrough(atB.key, IQN, 2)).toBe(atB.key);
  });

  it('nexusKeyThrough refuses what is not a nexus key', () => {
    expect(nexusKeyThrough('no bar here', IQN, 2)).toBeNull();
    expect(nexusKeyThrough('|iqn.x,t,0x0001', IQN, 2)).toBeNull();
    expect(nexusKeyThrough('host-without-isid|iqn.x,t,0x0001', IQN, 2)).toBeNull();
  });
});
