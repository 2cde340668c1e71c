/**
 * A persistent reservation taken through the owner is in force on the node
 * that takes the resource group over (lab/node-pair.ts: two `twinsan node`
 * processes, redis witness, rg1 alias 198.18.0.50 owned by node a). Needs
 * root, redis-server and a fresh build (npm run build:ts).
 *
 * Through the alias, initiator A registers a key and takes a WRITE
 * EXCLUSIVE - REGISTRANTS ONLY reservation (lab/pr-client.mjs, over
 * scripts/lib/mini-initiator.mjs), and node a is killed with SIGKILL right
 * after the reservation is answered: the live SCSI state reaches the peer
 * before the PERSISTENT RESERVE OUT completes, so nothing can be lost in
 * between. Once node b serves rg1, PERSISTENT RESERVE IN through the same
 * alias shows the same key and reservation, an unregistered initiator's
 * write gets RESERVATION CONFLICT and A's write succeeds.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from './lab';
import { NodePair, PAIR_ALIAS, PAIR_IQN, until } from './lab/node-pair';

const CLIENT = path.resolve(__dirname, 'lab/pr-client.mjs');
/** Inside each node's own namespace. */
const STATUS_PORT = 20102;
const HOST_A = 'iqn.2026-11.io.twinsan.lab:host-a';
const HOST_B = 'iqn.2026-11.io.twinsan.lab:host-b';
const KEY = '00000000000abc01';
const WE_RO = 5;

let pair: NodePair | null = null;

interface Step {
  step: string;
  status: string;
  generation?: number;
  keys?: string[];
  reservation?: { key: string; type: number; scope: number } | null;
}

/** Runs pr-client.mjs in the initiator's namespace as `initiator`. */
async function client(initiator: string, ...steps: string[]): Promise<Step[]> {
  const r = await pair!.ns('h').exec(process.execPath, [CLIENT, PAIR_ALIAS, '3260', PAIR_IQN, initiator, ...steps], { allowFailure: true, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`pr-client ${steps.join(' ')} failed (${r.code}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { steps: Step[] }).steps;
}

beforeAll(async () => {
  requireRoot('test/e2e/reservation-takeover.test.ts', ['ip', 'redis-server', 'redis-cli']);
  pair = await NodePair.create({ name: 'pr-takeover', statusPort: STATUS_PORT });
  await pair.startBoth();
}, 120_000);

afterAll(async () => {
  await pair?.destroy();
}, 60_000);

describe('persistent reservation across a takeover', () => {
  it('a reservation taken through node a is in force on node b after node a is killed', { timeout: 180_000 }, async () => {
    const p = pair!;
    const before = await client(HOST_A, `register:${KEY}`, `reserve:${KEY}:${WE_RO}`, 'read-keys', 'read-reservation');
    expect(before.map((s) => s.status)).toEqual(['good', 'good', 'good', 'good']);
    // No pause here: the reservation must already be on node b when PERSISTENT RESERVE OUT answered.
    await p.kill('a');
    const killedAt = performance.now();
    await until('rg1 serving on b', 30_000, async () => (await p.rgState('b')) === 'serving').catch((err: Error) => {
      throw new Error(`${err.message}\nnode-b:\n${p.tail('b')}`);
    });
    console.log(`reservation takeover: rg1 serving on node b ${(performance.now() - killedAt).toFixed(0)} ms after SIGKILL of node a`);

    const [keys, reservation] = await client(HOST_A, 'read-keys', 'read-reservation');
    expect(keys).toEqual({ step: 'read-keys', status: 'good', generation: before[2]!.generation, keys: [KEY] });
    expect(reservation).toEqual({ step: 'read-reservation', status: 'good', generation: before[3]!.generation, reservation: { key: KEY, type: WE_RO, scope: 0 } });
    expect(before[2]!.keys).toEqual([KEY]);
    expect(before[3]!.reservation).toEqual({ key: KEY, type: WE_RO, scope: 0 });

    // Write exclusive - registrants only: the unregistered initiator may read but not write; the registrant writes.
    expect(await client(HOST_B, 'write:100')).toEqual([{ step: 'write:100', status: 'reservation-conflict' }]);
    expect(await client(HOST_A, 'write:100')).toEqual([{ step: 'write:100', status: 'good' }]);
    // Node b really is the one answering: a is gone and b holds the alias.
    expect(await p.ns('b').ip('-4', 'addr', 'show', 'dev', 'eth1')).toContain(PAIR_ALIAS);
  });
});
