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
});
