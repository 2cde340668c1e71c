/**
 * Planned move of a resource group under load, between two `twinsan node`
 * processes in lab namespaces with a redis witness (lab/node-pair.ts).
 * Needs root, redis-server and a fresh build (npm run build:ts).
 *
 * A stamped-write workload (lab/stamped-load.mjs: 4 writers, 4 KiB WRITE
 * (10)s through rg1's alias IP, retrying the same bytes on BUSY, UNIT
 * ATTENTION, NOT READY and reconnects) runs in the initiator's namespace
 * while POST /move?rg=rg1 moves rg1 from node a to node b, and then back.
 * Every acknowledged write must read back and no write may fail; the
 * longest I/O pause (gap between two acknowledgements) and the time each
 * move took are printed, not asserted.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabProcess, requireRoot } from './lab';
import { NodeName, NodePair, PAIR_ALIAS, PAIR_IQN, until } from './lab/node-pair';

const LOAD = path.resolve(__dirname, 'lab/stamped-load.mjs');
/** Inside each node's own namespace. */
const STATUS_PORT = 20101;

let pair: NodePair | null = null;

beforeAll(async () => {
  requireRoot('test/e2e/move-under-load.test.ts', ['ip', 'redis-server', 'redis-cli']);
  pair = await NodePair.create({ name: 'move-load', statusPort: STATUS_PORT });
  await pair.startBoth();
}, 120_000);

afterAll(async () => {
  await pair?.destroy();
}, 60_000);

interface LoadResult {
  acked: number;
  runMs: number;
  maxPauseMs: number | null;
  longestPauses: { atMs: number; ms: number }[];
  counts: Record<string, number>;
  reconnects: { lostAtMs: number; readyAfterMs: number; refused: number }[];
  loginRejections: { atMs: number; status: string }[];
  ioErrors: { seq: number; message: string }[];
  ioErrorCount: number;
  verify: { checked: number; mismatchCount: number; mismatched: unknown[] } | { error: string };
}

class Load {
  private out = '';
  private err = '';
  readonly proc: LabProcess;
  constructor(p: NodePair) {
    this.proc = p.ns('h').spawn(process.execPath, [LOAD, PAIR_ALIAS, '3260', PAIR_IQN, '4096', '4', '4096'], 'stamped-load');
    this.proc.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.proc.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
  }
  get acked(): number {
    const m = [...this.out.matchAll(/^acked (\d+)$/gm)].at(-1);
    return m ? Number(m[1]) : 0;
  }
  /** Waits until `n` more writes than now are acknowledged. */
  async more(n: number, ms = 60_000): Promise<void> {
    const target = this.acked + n;
    await until(`${target} acknowledged writes (stderr: ${this.err.slice(-500)})`, ms, async () => this.acked >= target);
  }
  async finish(): Promise<LoadResult> {
    this.proc.child.stdin!.write('stop\n');
    const line = await until('the load result', 120_000, async () => /^RESULT (.*)$/m.exec(this.out));
    await this.proc.exited;
    return JSON.parse(line[1]!) as LoadResult;
  }
}

describe('planned move under load', () => {
  it('moves rg1 to node b and back while writes keep going: no I/O error, every acknowledged write reads back', { timeout: 300_000 }, async () => {
    const p = pair!;
    const load = new Load(p);
    await load.more(200);
    const moves: string[] = [];
    const move = async (from: NodeName, to: NodeName): Promise<void> => {
      const t0 = performance.now();
      const res = await p.post(from, '/move?rg=rg1').catch((err: Error) => {
        throw new Error(`${err.message}\nnode-${from}:\n${p.tail(from)}\nnode-${to}:\n${p.tail(to)}`);
      });
      const ms = performance.now() - t0;
      expect(res.code, `${res.body}\nnode-${from}:\n${p.tail(from)}\nnode-${to}:\n${p.tail(to)}`).toBe(200);
      expect(await p.rgState(to)).toBe('serving');
      expect(await p.rgState(from)).toBe('stopped');
      const phases = [...p.tail(from).matchAll(/"phases":(\{[^}]*\})[^\n]*moved rg1 to the peer/g)].at(-1)?.[1] ?? '?';
      const resourceMs = (self: NodeName, transition: string): string =>
        [...p.tail(self).matchAll(new RegExp(`"resourceMs":(\\{[^}]*\\})[^\\n]*${transition}`, 'g'))].at(-1)?.[1] ?? '?';
      moves.push(
        `${from} → ${to}: POST /move answered in ${ms.toFixed(0)} ms; phases on ${from} (ms): ${phases}; ` +
          `stop on ${from}: ${resourceMs(from, 'moving-out → stopped')}; start on ${to}: ${resourceMs(to, 'moving-in → serving')}`,
      );
      // The load goes on through the other node.
      await load.more(200);
      // The source's copy catches up before the next move.
      await until(`in sync on ${from}`, 60_000, async () => (await p.status(from))?.inSync === true);
    };
    await move('a', 'b');
    await move('b', 'a');
    const r = await load.finish();
    console.log(`planned move under load:\n  ${moves.join('\n  ')}`);
    console.log(
      `  ${r.acked} writes acknowledged in ${r.runMs} ms; longest I/O pause ${r.maxPauseMs} ms; longest pauses ${JSON.stringify(r.longestPauses)}; ` +
        `retries ${JSON.stringify(r.counts)}; reconnects ${JSON.stringify(r.reconnects)}; login rejections ${JSON.stringify(r.loginRejections)}`,
    );
    expect(r.ioErrorCount, JSON.stringify(r.ioErrors)).toBe(0);
    expect('error' in r.verify ? r.verify.error : null).toBeNull();
    const v = r.verify as { checked: number; mismatchCount: number; mismatched: unknown[] };
    expect(v.mismatchCount, JSON.stringify(v.mismatched)).toBe(0);
    expect(v.checked).toBeGreaterThan(0);
    expect(r.acked).toBeGreaterThanOrEqual(v.checked);
  });
});
