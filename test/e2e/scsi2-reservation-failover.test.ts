/**
 * A SCSI-2 reservation (RESERVE (10)) follows resource group rg1 across a
 * planned move and then a takeover (lab/node-pair.ts: two `twinsan node`
 * processes, redis witness, rg1 alias 198.18.0.50 first owned by node a).
 * Needs root, redis-server and a fresh build (npm run build:ts).
 *
 * Initiator A reserves the logical unit through the alias and keeps its
 * session up (pr-client's `hold`): a logout or a connection it dropped
 * itself would release the reservation, as SPC-2 says for an I_T nexus
 * loss. The target's own failover is no such loss: the session the old
 * owner drops (a move) or loses with it (SIGKILL) must not release it. So
 * after POST /move?rg=rg1 to node b, and again after node b is killed and
 * node a takes rg1 back, initiator B's write gets RESERVATION CONFLICT while
 * A, reconnecting through the same alias with the same ISID, writes; A's
 * RELEASE (10) then frees the unit for B.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from './lab';
import type { LabProcess } from './lab';
import { NodePair, PAIR_ALIAS, PAIR_IQN, until } from './lab/node-pair';

const CLIENT = path.resolve(__dirname, 'lab/pr-client.mjs');
/** Inside each node's own namespace. */
const STATUS_PORT = 27102;
const HOST_A = 'iqn.2026-11.io.twinsan.lab:host-a';
const HOST_B = 'iqn.2026-11.io.twinsan.lab:host-b';

let pair: NodePair | null = null;

interface Step {
  step: string;
  status: string;
}

/** Runs pr-client.mjs in the initiator's namespace as `initiator`, to the end. */
async function client(initiator: string, ...steps: string[]): Promise<Step[]> {
  const r = await pair!.ns('h').exec(process.execPath, [CLIENT, PAIR_ALIAS, '3260', PAIR_IQN, initiator, ...steps], { allowFailure: true, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`pr-client ${steps.join(' ')} failed (${r.code}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { steps: Step[] }).steps;
}

/** A pr-client that stays logged in between its `hold` steps (released with next()). */
class Holder {
  private out = '';
  private err = '';
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly proc: LabProcess) {
    proc.child.stdout!.on('data', (c: Buffer) => {
      this.out += c.toString();
      for (const w of this.waiters.splice(0)) w();
    });
    proc.child.stderr!.on('data', (c: Buffer) => (this.err += c.toString()));
  }
  /** Resolves once the client holds after `steps` steps. */
  async held(steps: number): Promise<void> {
    const line = JSON.stringify({ held: steps });
    while (!this.out.split('\n').includes(line)) {
      const exited = await Promise.race([this.proc.exited.then((code) => code), new Promise<null>((r) => this.waiters.push(() => r(null)))]);
      if (exited !== null) throw new Error(`pr-client exited (${exited}) before holding: ${this.out}${this.err}`);
    }
  }
  next(): void {
    this.proc.child.stdin!.write('go\n');
  }
  /** The final steps, once the client has logged out. */
  async result(): Promise<Step[]> {
    const code = await this.proc.exited;
    if (code !== 0) throw new Error(`pr-client failed (${code}): ${this.err}`);
    const last = this.out.trim().split('\n').at(-1)!;
    return (JSON.parse(last) as { steps: Step[] }).steps;
  }
}

beforeAll(async () => {
  requireRoot('test/e2e/scsi2-reservation-failover.test.ts', ['ip', 'redis-server', 'redis-cli']);
  pair = await NodePair.create({ name: 'scsi2-failover', statusPort: STATUS_PORT });
  await pair.startBoth();
}, 120_000);

afterAll(async () => {
  await pair?.destroy();
}, 60_000);

describe('SCSI-2 reservation across a planned move and a takeover', () => {
  it('RESERVE (10) taken through node a holds on node b after a move, and on node a after node b is killed', { timeout: 300_000 }, async () => {
    const p = pair!;
    const holder = new Holder(p.ns('h').spawn(process.execPath, [CLIENT, PAIR_ALIAS, '3260', PAIR_IQN, HOST_A, 'reserve10', 'hold', 'write:100', 'hold', 'write:101', 'release10'], 'holder'));
    await holder.held(1);
    expect(await client(HOST_B, 'write:100')).toEqual([{ step: 'write:100', status: 'reservation-conflict' }]);

    // Planned move a → b: a drops the holder's session itself.
    const movedAt = performance.now();
    const moved = await p.post('a', '/move?rg=rg1');
    expect(moved.code, moved.body).toBe(200);
    await until('rg1 serving on b', 30_000, async () => (await p.rgState('b')) === 'serving');
    console.log(`scsi2 move: rg1 serving on node b ${(performance.now() - movedAt).toFixed(0)} ms after POST /move`);
    expect(await client(HOST_B, 'write:100')).toEqual([{ step: 'write:100', status: 'reservation-conflict' }]);
    expect(await client(HOST_B, 'reserve10')).toEqual([{ step: 'reserve10', status: 'reservation-conflict' }]);
    holder.next();
    await holder.held(2); // the holder reconnected to b with its ISID and wrote
    expect(await p.ns('b').ip('-4', 'addr', 'show', 'dev', 'eth1')).toContain(PAIR_ALIAS);

    // Takeover b → a: b is killed with the holder's session on it.
    await until('v1 in sync on a', 60_000, async () => (await p.status('a'))?.inSync === true);
    await p.kill('b');
    const killedAt = performance.now();
    await until('rg1 serving on a', 30_000, async () => (await p.rgState('a')) === 'serving').catch((err: Error) => {
      throw new Error(`${err.message}\nnode-a:\n${p.tail('a')}`);
    });
    console.log(`scsi2 takeover: rg1 serving on node a ${(performance.now() - killedAt).toFixed(0)} ms after SIGKILL of node b`);
    expect(await client(HOST_B, 'write:100')).toEqual([{ step: 'write:100', status: 'reservation-conflict' }]);
    holder.next();
    expect(await holder.result()).toEqual([
      { step: 'reserve10', status: 'good' },
      { step: 'write:100', status: 'good' },
      { step: 'write:101', status: 'good' },
      { step: 'release10', status: 'good' },
    ]);
    // Released by its holder: B writes and may reserve.
    expect(await client(HOST_B, 'write:100', 'reserve10', 'release10')).toEqual([
      { step: 'write:100', status: 'good' },
      { step: 'reserve10', status: 'good' },
      { step: 'release10', status: 'good' },
    ]);
  });
});
