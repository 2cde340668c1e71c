/**
 * The node guard: its own messages (witness, lease, unlease, notice) beside
 * the alias guard's on one pipe, its state, the death duties (release only
 * the lease terms the node held; send the signed notice), and a real guard
 * process whose pipe ends with and without a clean release.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  NODE_GUARD_ENTRY,
  NodeGuardMessage,
  NodeGuardMessageError,
  NodeGuardState,
  encodeNodeGuardMessage,
  parseNodeGuardMessage,
  releaseLeases,
  sendDeathNotice,
} from '../../../src/resource-groups/guard';
import { decodeHeartbeat, encodeHeartbeat } from '../../../src/resource-groups/heartbeat';
import { MemoryWitnessServer } from '../../../src/resource-groups/witness';

const log = { info: () => undefined, warn: () => undefined };
const SECRET = 'the secret of this test pair';

function refusal(line: string): string {
  try {
    parseNodeGuardMessage(line);
  } catch (err) {
    expect(err).toBeInstanceOf(NodeGuardMessageError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${line}`);
}

describe('node guard protocol', () => {
  it('round-trips every message through one JSON line', () => {
    const messages: NodeGuardMessage[] = [
      { op: 'witness', node: 'node-a', host: '198.18.0.1', port: 6379, keyPrefix: 'twinsan:lab:' },
      { op: 'witness', node: 'node-a', host: 'witness.example', port: 6379, keyPrefix: null },
      { op: 'lease', rg: 'rg-a', epoch: 7 },
      { op: 'unlease', rg: 'rg-a' },
      { op: 'notice', host: '198.18.0.2', port: 7400, from: '198.18.0.1', datagram: encodeHeartbeat({ kind: 'died', nodeId: 'node-a', seq: 0 }, SECRET, 'lab') },
    ];
    for (const m of messages) {
      const line = encodeNodeGuardMessage(m);
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      expect(parseNodeGuardMessage(line.slice(0, -1))).toEqual(m);
    }
  });

  it.each([
    ['not JSON', 'lease rg-a 7', /not JSON/],
    ['an array', '["lease"]', /JSON object/],
    ['an unknown op', '{"op":"fence"}', /unknown op "fence"/],
    ['a zero epoch', '{"op":"lease","rg":"rg-a","epoch":0}', /epoch must be a positive whole number/],
    ['a fractional epoch', '{"op":"lease","rg":"rg-a","epoch":1.5}', /epoch/],
    ['a group name with a brace', '{"op":"lease","rg":"rg{a}","epoch":1}', /bad resource group name/],
    ['a witness port out of range', '{"op":"witness","node":"a","host":"198.18.0.1","port":70000}', /port must be 1-65535/],
    ['a witness host that is neither', '{"op":"witness","node":"a","host":"-bad host-","port":6379}', /host must be an IP address or host name/],
    ['a witness without a node', '{"op":"witness","host":"198.18.0.1","port":6379}', /bad node id/],
    ['an empty notice', '{"op":"notice","host":"198.18.0.2","port":7400,"from":"198.18.0.1","datagram":""}', /datagram must be 1-512 bytes/],
    ['a notice without a from address', '{"op":"notice","host":"198.18.0.2","port":7400,"datagram":"AAAA"}', /from must be/],
  ])('refuses %s, saying what is wrong', (_name, line, why) => {
    expect(refusal(line)).toMatch(why);
  });
});

describe('NodeGuardState', () => {
  it('keeps the newest term per group, forgets an unleased one, and lists what to do at death', () => {
    const s = new NodeGuardState();
    expect(s.duties()).toEqual({ witness: null, leases: [], notice: null });
    s.apply({ op: 'lease', rg: 'rg-a', epoch: 3 });
    s.apply({ op: 'lease', rg: 'rg-b', epoch: 1 });
    s.apply({ op: 'lease', rg: 'rg-a', epoch: 5 });
    s.apply({ op: 'unlease', rg: 'rg-b' });
    s.apply({ op: 'witness', node: 'node-a', host: '198.18.0.9', port: 6379, keyPrefix: null });
    expect(s.duties()).toEqual({ witness: { node: 'node-a', host: '198.18.0.9', port: 6379, keyPrefix: null }, leases: [{ rg: 'rg-a', epoch: 5 }], notice: null });
  });
});

describe('death duties', () => {
  it('releases the terms the dead node held, and not a term another node (or a newer run) holds', async () => {
    const server = new MemoryWitnessServer();
    const a = server.client();
    const b = server.client();
    const ga = await a.acquire('rg-a', 'node-a', 60_000);
    const gOld = await a.acquire('rg-b', 'node-a', 60_000);
    await a.release('rg-b', 'node-a', gOld!.epoch);
    const gb = await b.acquire('rg-b', 'node-b', 60_000);
    const s = new NodeGuardState();
    s.apply({ op: 'witness', node: 'node-a', host: '127.0.0.1', port: 6379, keyPrefix: null });
    s.apply({ op: 'lease', rg: 'rg-a', epoch: ga!.epoch });
    // The guard missed the unlease of rg-b: its stale term must not free node-b's.
    s.apply({ op: 'lease', rg: 'rg-b', epoch: gOld!.epoch });
    const guardClient = server.client();
    expect(await releaseLeases(s.duties(), guardClient, log)).toEqual(['rg-a']);
    expect(await b.holder('rg-a')).toBeNull();
    expect(await b.holder('rg-b')).toMatchObject({ node: 'node-b', epoch: gb!.epoch });
  });

  it('without a witness client releases nothing, and says so', async () => {
    const warned: string[] = [];
    const s = new NodeGuardState();
    s.apply({ op: 'lease', rg: 'rg-a', epoch: 1 });
    expect(await releaseLeases(s.duties(), null, { info: () => undefined, warn: (_f, m) => void warned.push(m) })).toEqual([]);
    expect(warned.join('\n')).toMatch(/no witness address/);
  });

  it('sends the signed notice to the peer three times', async () => {
    const peer = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', () => resolve()));
    const got: Buffer[] = [];
    peer.on('message', (m) => got.push(m));
    try {
      const datagram = encodeHeartbeat({ kind: 'died', nodeId: 'node-a', seq: 0 }, SECRET, 'lab');
      expect(await sendDeathNotice({ host: '127.0.0.1', port: peer.address().port, from: '127.0.0.1', datagram }, log)).toBe(true);
      await waitUntil(() => got.length >= 3);
      expect(got.map((m) => decodeHeartbeat(m, SECRET, 'lab')?.kind)).toEqual(['died', 'died', 'died']);
    } finally {
      peer.close();
    }
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!existsSync(NODE_GUARD_ENTRY))('a real node guard process (dist built)', () => {
  const sockets: dgram.Socket[] = [];
  afterEach(() => sockets.splice(0).forEach((s) => s.close()));

  async function run(lines: string[], end: 'eof' | 'release'): Promise<{ code: number | null; stderr: string; got: Buffer[] }> {
    const peer = dgram.createSocket('udp4');
    sockets.push(peer);
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', () => resolve()));
    const got: Buffer[] = [];
    peer.on('message', (m) => got.push(m));
    const datagram = encodeHeartbeat({ kind: 'died', nodeId: 'node-a', seq: 0 }, SECRET, 'lab');
    const child = spawn(process.execPath, [NODE_GUARD_ENTRY], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const all = [encodeNodeGuardMessage({ op: 'notice', host: '127.0.0.1', port: peer.address().port, from: '127.0.0.1', datagram }), ...lines];
    if (end === 'release') all.push('{"op":"release"}\n');
    child.stdin.end(all.join(''));
    const code = await exited;
    return { code, stderr, got };
  }

  it('its pipe ending without release (the node died): the notice reaches the peer', { timeout: 15_000 }, async () => {
    const r = await run(['{"op":"lease","rg":"rg-a","epoch":0}\n', encodeNodeGuardMessage({ op: 'lease', rg: 'rg-b', epoch: 2 })], 'eof');
    expect(r.code).toBe(0);
    expect(r.got.length).toBe(3);
    expect(decodeHeartbeat(r.got[0]!, SECRET, 'lab')).toMatchObject({ kind: 'died', nodeId: 'node-a' });
    // The bad line was refused and logged; the rest was still done.
    expect(r.stderr).toMatch(/epoch must be a positive whole number/);
    expect(r.stderr).toMatch(/no witness address was given/);
  });

  it('after a clean release it does nothing: no notice, no lease released', { timeout: 15_000 }, async () => {
    const r = await run([encodeNodeGuardMessage({ op: 'lease', rg: 'rg-a', epoch: 3 })], 'release');
    expect(r.code).toBe(0);
    expect(r.got).toEqual([]);
    expect(r.stderr).not.toMatch(/told the peer/);
  });
});
