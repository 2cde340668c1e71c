/**
 * Control messages (protocol version 2) and version negotiation between a
 * node that speaks version 2 and one capped at version 1: data replication
 * works on both, control messages only where both speak version 2.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CONTROL_SINCE_VERSION, MirrorNode, PROTOCOL_VERSIONS } from '../../../../src/mirror';
import { KiB, Pair, fileBytes, nodePair, pattern, spec, tempDir, testLog, waitFor, waitReplication } from './helpers';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let pair: Pair | null = null;
afterEach(async () => {
  await pair?.close();
  pair = null;
});

async function writeReplicates(p: Pair, id: string): Promise<void> {
  const priSpec = spec(tmp, id, 'primary');
  const secSpec = spec(tmp, id, 'secondary');
  const pri = await p.a.openVolume(priSpec);
  const sec = await p.b.openVolume(secSpec);
  await waitReplication(pri, 'in-sync');
  await waitReplication(sec, 'in-sync');
  const data = pattern(7, 64 * KiB);
  await pri.store.writev(256 * KiB, [data]);
  expect(fileBytes(secSpec.backingPath).subarray(256 * KiB, 320 * KiB).equals(data)).toBe(true);
}

describe('control messages', () => {
  it('carries a control message to the handler of its topic and its reply back', async () => {
    pair = await nodePair();
    const seen: string[] = [];
    pair.b.onControl('echo', (data) => {
      seen.push(data.toString());
      return Buffer.from(`b got ${data.toString()}`);
    });
    await waitFor(() => pair!.a.controlAvailable && pair!.b.controlAvailable, 5_000, 'control available on both');
    expect(pair.a.negotiatedVersion).toBe(PROTOCOL_VERSIONS.max);
    const reply = await pair.a.sendControl('echo', Buffer.from('hello'));
    expect(reply.toString()).toBe('b got hello');
    expect(seen).toEqual(['hello']);
  });

  it('answers a topic without a handler with ENOTSUP', async () => {
    pair = await nodePair();
    await waitFor(() => pair!.a.controlAvailable, 5_000, 'control available');
    await expect(pair.a.sendControl('nobody', Buffer.from('x'))).rejects.toMatchObject({ code: 'ENOTSUP' });
  });

  it('passes a handler failure back as a RemoteError with its code', async () => {
    pair = await nodePair();
    pair.b.onControl('fails', () => {
      throw Object.assign(new Error('no such thing'), { code: 'ENOENT' });
    });
    await waitFor(() => pair!.a.controlAvailable, 5_000, 'control available');
    await expect(pair.a.sendControl('fails', Buffer.alloc(0))).rejects.toMatchObject({ code: 'ENOENT', message: 'no such thing' });
  });
});

describe('protocol version negotiation', () => {
  it.each([
    ['a', { a: 1 }],
    ['b', { b: 1 }],
  ] as const)('node %s capped at version 1: the link runs 1, writes replicate, control is unavailable', async (_which, caps) => {
    expect(CONTROL_SINCE_VERSION).toBe(2);
    pair = await nodePair({ maxProtocolVersion: caps });
    pair.b.onControl('echo', (d) => d);
    await writeReplicates(pair, `v1-${_which}`);
    expect(pair.a.negotiatedVersion).toBe(1);
    expect(pair.b.negotiatedVersion).toBe(1);
    expect(pair.a.controlAvailable).toBe(false);
    await expect(pair.a.sendControl('echo', Buffer.from('x'))).rejects.toMatchObject({ name: 'UnsupportedByPeerError', code: 'ENOTSUP' });
  });

  it('refuses a max protocol version this release does not speak', () => {
    for (const max of [0, PROTOCOL_VERSIONS.max + 1, 1.5]) {
      expect(
        () => new MirrorNode({ nodeId: 'x', peerNodeId: 'y', clusterId: 'c', secret: 's', links: [{ local: '127.0.0.1:0' }], log: testLog, maxProtocolVersion: max }),
      ).toThrow(/max protocol version/);
    }
  });
});
