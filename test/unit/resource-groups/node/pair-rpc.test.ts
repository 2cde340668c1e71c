import { describe, expect, it } from 'vitest';
import { ControlError } from '../../../../src/resource-groups/control';
import { callPeer, servePairRpc, type PairRpcHandlers } from '../../../../src/resource-groups/node/pair-rpc';

/** Handlers that record what they were called with. */
function recording(): { calls: [string, unknown][]; handlers: PairRpcHandlers } {
  const calls: [string, unknown][] = [];
  const job = { id: 'j1', kind: 'maintenance', state: 'done' } as never;
  return {
    calls,
    handlers: {
      snapshot: async (a) => (calls.push(['snapshot', a]), null as never),
      move: async (a) => (calls.push(['move', a]), null),
      failback: async (a) => (calls.push(['failback', a]), null),
      maintenance: async (a) => (calls.push(['maintenance', a]), job),
      job: async (a) => (calls.push(['job', a]), job),
    },
  };
}

async function serve(handlers: PairRpcHandlers, body: string): Promise<{ ok: boolean; code?: string; message?: string; field?: string }> {
  const out = await servePairRpc(handlers)(Buffer.from(body));
  return JSON.parse(out.toString('utf8')) as { ok: boolean; code?: string; message?: string; field?: string };
}

describe('servePairRpc', () => {
  it('passes well-formed arguments to the handler', async () => {
    const { calls, handlers } = recording();
    expect(await serve(handlers, JSON.stringify({ op: 'move', rg: 'rg1' }))).toEqual({ ok: true, result: null });
    expect(await serve(handlers, JSON.stringify({ op: 'maintenance', on: false }))).toMatchObject({ ok: true });
    expect(calls).toEqual([
      ['move', { rg: 'rg1' }],
      ['maintenance', { on: false }],
    ]);
  });

  it.each([
    ['maintenance with a string "on" (truthy: would enter maintenance)', { op: 'maintenance', on: 'false' }, 'on'],
    ['move without rg', { op: 'move' }, 'rg'],
    ['move with a numeric rg', { op: 'move', rg: 7 }, 'rg'],
    ['failback with an object rg', { op: 'failback', rg: { name: 'x' } }, 'rg'],
    ['job with a null id', { op: 'job', id: null }, 'id'],
  ])('refuses %s as invalid, naming the field, without calling the handler', async (_what, body, field) => {
    const { calls, handlers } = recording();
    const reply = await serve(handlers, JSON.stringify(body));
    expect(reply).toMatchObject({ ok: false, code: 'invalid', field });
    expect(calls).toEqual([]);
  });

  it.each([
    ['JSON null', 'null'],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"move"'],
    ['not JSON', '{op:'],
  ])('answers %s with an invalid-request error', async (_what, body) => {
    const { calls, handlers } = recording();
    const reply = await serve(handlers, body);
    expect(reply).toMatchObject({ ok: false, code: 'invalid' });
    expect(calls).toEqual([]);
  });
});

describe('callPeer', () => {
  const answering = (text: string) => ({ sendControl: async () => Buffer.from(text) });

  it.each([
    ['JSON null', 'null'],
    ['a number', '42'],
    ['an object without ok', '{"result":1}'],
    ['a refusal without a message', '{"ok":false,"code":"conflict"}'],
  ])('turns a reply that is %s into ControlError peer-unavailable', async (_what, text) => {
    const err: unknown = await callPeer(answering(text), 'move', { rg: 'rg1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).code).toBe('peer-unavailable');
  });

  it("rethrows the peer's refusal with its code and field", async () => {
    const err: unknown = await callPeer(answering('{"ok":false,"code":"conflict","message":"busy","field":"rg"}'), 'move', { rg: 'rg1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).code).toBe('conflict');
    expect((err as ControlError).message).toBe('busy');
    expect((err as ControlError).details.field).toBe('rg');
  });

  const snapshot = {
    id: 'b',
    clusterId: 'unit',
    release: '1.0.0',
    state: 'up',
    protocol: { min: 1, max: 2, negotiated: 2 },
    maintenance: false,
    owns: ['rg1'],
    serves: ['v1'],
    portals: ['198.18.0.2:3260'],
    sessions: [{ node: 'b', initiator: 'iqn.2026-11.io.test:c', target: 'iqn.2026-11.io.twinsan:v1', volume: 'v1', portal: '198.18.0.10:3260', remote: '198.18.0.5:40000', connections: 1, since: '2026-11-22T07:00:00.000Z' }],
    configVersion: 3,
  };
  const reply = (result: unknown): string => JSON.stringify({ ok: true, result });

  it('returns a well-formed snapshot', async () => {
    expect(await callPeer(answering(reply(snapshot)), 'snapshot', {})).toEqual(snapshot);
    expect(await callPeer(answering(reply({ ...snapshot, release: null, protocol: { min: 1, max: 2, negotiated: null } })), 'snapshot', {})).toMatchObject({ release: null });
  });

  it.each([
    ['null', null, ''],
    ['without an id', { ...snapshot, id: undefined }, 'id'],
    ['with a numeric clusterId', { ...snapshot, clusterId: 7 }, 'clusterId'],
    ['with an unknown state', { ...snapshot, state: 'sideways' }, 'state'],
    ['with a protocol that is not an object', { ...snapshot, protocol: 'v2' }, 'protocol'],
    ['with a string protocol.min', { ...snapshot, protocol: { min: '1', max: 2, negotiated: 2 } }, 'protocol.min'],
    ['with owns not a list', { ...snapshot, owns: 'rg1' }, 'owns'],
    ['with a number in serves', { ...snapshot, serves: ['v1', 2] }, 'serves[1]'],
    ['with a session missing its volume', { ...snapshot, sessions: [{ ...snapshot.sessions[0], volume: undefined }] }, 'sessions[0].volume'],
    ['with a string configVersion', { ...snapshot, configVersion: '3' }, 'configVersion'],
  ])('turns a snapshot result %s into ControlError peer-unavailable naming the field', async (_what, result, field) => {
    const err: unknown = await callPeer(answering(reply(result)), 'snapshot', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).code).toBe('peer-unavailable');
    expect((err as ControlError).message).toContain(field === '' ? 'not an object' : field);
  });
});
