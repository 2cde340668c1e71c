/**
 * Acceptance test of the mirrored pair (issue "Step 3"): two `twinsan node`
 * processes on loopback with two replication links, v1 owned by node a and
 * v2 by node b. Two qemu-io initiators write at the same time, v1 through
 * a's target and v2 through b's, each a seeded random mix of sizes
 * (512 B .. 256 KiB, 512-aligned, log-uniform so small writes are common)
 * at random offsets over the 64 MiB volume, filled either with a byte
 * pattern or with bytes from one of eight random source files. The test
 * keeps the image each volume must end up with; once the writers are done
 * and the pair reports in sync, the nodes are stopped and BOTH copies of
 * each volume must hash to that image.
 *
 * The second test routes link 1 through TCP proxies and destroys them
 * while both writers run: no write may fail, and the copies must again be
 * identical to the expected images.
 *
 * Each writer is one qemu-io process reading its commands from stdin (one
 * "write" per line, ~1 ms each), so the writes of one volume are issued in
 * order, one at a time: the expected image is exact even where writes
 * overlap. A sample of the final image is read back through the target
 * with "read -P" as well, to show the writes went to the LUN.
 *
 * Set TWINSAN_PAIR_SEED to replay a run; the seed is printed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TWINSAN_BIN } from '../../scripts/lib/targets.mjs';
import { ExpectedImage, INITIATOR_TOOLS, MiB, describeRun, firstDifference, qemuIoPatterns, requireTools, run, sha256File } from './helpers';
import type { PatternOp } from './helpers';
import { startPair } from './helpers/pair';
import type { Pair, PairNodeId, PairVolume } from './helpers/pair';

const SIZE = 64 * MiB;
const SECTOR = 512;
const MAX_WRITE = 256 * 1024;
const SOURCE_FILES = 8;
/** Writes per volume in the acceptance test (two volumes written at once). */
const WRITES_PER_VOLUME = 10_000;
/** Writes per volume while a link is cut. */
const LINK_CUT_WRITES_PER_VOLUME = 4_000;
const READBACK_SAMPLES = 200;

const seed = Number(process.env['TWINSAN_PAIR_SEED'] ?? Math.floor(Math.random() * 0x7fffffff));

let sourceDir: string;
let sources: Buffer[];
let sourcePaths: string[];

beforeAll(async () => {
  requireTools(INITIATOR_TOOLS);
  console.log(`mirror-pair: seed ${seed} (TWINSAN_PAIR_SEED=${seed} replays it)`);
  sourceDir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-pair-src-'));
  sources = [];
  sourcePaths = [];
  for (let i = 0; i < SOURCE_FILES; i++) {
    const data = randomBytes(MAX_WRITE);
    const file = path.join(sourceDir, `src-${i}.bin`);
    await writeFile(file, data);
    sources.push(data);
    sourcePaths.push(file);
  }
});

afterAll(async () => {
  if (sourceDir) await rm(sourceDir, { recursive: true, force: true });
});

/* ---------------- the workload ---------------- */

type WriteOp =
  | { readonly kind: 'pattern'; readonly offset: number; readonly length: number; readonly byte: number }
  | { readonly kind: 'file'; readonly offset: number; readonly length: number; readonly source: number };

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` writes: sizes log-uniform over 512 B .. 256 KiB (a power-of-two
 * bucket 2^0..2^9 sectors picked uniformly, then a size inside it), offsets
 * uniform over the volume, one in eight filled from a source file.
 */
function makeWorkload(rng: () => number, count: number, size: number): WriteOp[] {
  const ops: WriteOp[] = [];
  const sectors = size / SECTOR;
  for (let i = 0; i < count; i++) {
    const bucket = Math.floor(rng() * 10);
    const lo = bucket === 0 ? 1 : 2 ** (bucket - 1) + 1;
    const n = lo + Math.floor(rng() * (2 ** bucket - lo + 1));
    const offset = Math.floor(rng() * (sectors - n + 1)) * SECTOR;
    const length = n * SECTOR;
    ops.push(
      rng() < 1 / 8
        ? { kind: 'file', offset, length, source: Math.floor(rng() * SOURCE_FILES) }
        : { kind: 'pattern', offset, length, byte: Math.floor(rng() * 256) },
    );
  }
  return ops;
}

function commandOf(op: WriteOp): string {
  return op.kind === 'pattern' ? `write -P ${op.byte} ${op.offset} ${op.length}` : `write -s ${sourcePaths[op.source]!} ${op.offset} ${op.length}`;
}

function applyAll(image: ExpectedImage, ops: readonly WriteOp[]): void {
  for (const op of ops) {
    if (op.kind === 'pattern') image.apply([{ op: 'write', offset: op.offset, length: op.length, pattern: op.byte }]);
    else image.applyBytes(op.offset, sources[op.source]!.subarray(0, op.length));
  }
}

/** "read -P" checks of runs of equal bytes (>= one sector, <= 64 KiB) around random points of the image. */
function readbackSample(rng: () => number, image: ExpectedImage, samples: number): PatternOp[] {
  const ops: PatternOp[] = [];
  for (let i = 0; i < samples * 4 && ops.length < samples; i++) {
    const at = Math.floor(rng() * (image.size / SECTOR)) * SECTOR;
    const value = image.bytes[at]!;
    let start = at;
    while (start > 0 && image.bytes[start - 1] === value && at - start < 32 * 1024) start--;
    let end = at + 1;
    while (end < image.size && image.bytes[end] === value && end - start < 64 * 1024) end++;
    if (end - start >= SECTOR) ops.push({ op: 'verify', offset: start, length: end - start, pattern: value });
  }
  return ops;
}

/* ---------------- a qemu-io writer fed on stdin ---------------- */

interface WriterResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly completed: number;
  readonly bytes: number;
  readonly failures: readonly string[];
  readonly stderr: string;
  readonly durationMs: number;
}

/**
 * Run the commands in one interactive qemu-io session over `url`, counting
 * "wrote N/N bytes" lines as they come; `onProgress(completed)` follows
 * them. Any line that reports a failure is kept.
 */
function runWriter(url: string, commands: readonly string[], timeoutMs: number, onProgress?: (completed: number) => void): Promise<WriterResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-io', ['-f', 'raw', url], { stdio: ['pipe', 'pipe', 'pipe'] });
    let completed = 0;
    let bytes = 0;
    let partial = '';
    let stderr = '';
    const failures: string[] = [];
    const timer = setTimeout(() => {
      failures.push(`killed after ${timeoutMs} ms`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const m = /wrote (\d+)\/(\d+) bytes at offset \d+/.exec(line);
        if (m) {
          completed++;
          bytes += Number(m[1]);
          if (m[1] !== m[2]) failures.push(line);
        } else if (/fail|error|can't/i.test(line)) {
          failures.push(line);
        }
      }
      onProgress?.(completed);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.length > 64 * 1024) stderr = stderr.slice(-32 * 1024);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (/fail|error|can't/i.test(partial)) failures.push(partial);
      resolve({ code, signal, completed, bytes, failures, stderr, durationMs: Date.now() - started });
    });
    child.stdin.on('error', () => undefined); // qemu-io gone early: reported by close
    child.stdin.end(`${commands.join('\n')}\nquit\n`);
  });
}

/* ---------------- the scenario ---------------- */

interface VolumePlan {
  readonly volume: PairVolume;
  readonly ops: readonly WriteOp[];
  readonly expected: ExpectedImage;
  readonly sample: readonly PatternOp[];
}

function plan(volume: PairVolume, volumeSeed: number, writes: number): VolumePlan {
  const rng = prng(volumeSeed);
  const ops = makeWorkload(rng, writes, SIZE);
  const expected = new ExpectedImage(SIZE);
  applyAll(expected, ops);
  return { volume, ops, expected, sample: readbackSample(rng, expected, READBACK_SAMPLES) };
}

function describeSizes(ops: readonly WriteOp[]): string {
  const total = ops.reduce((s, op) => s + op.length, 0);
  const min = Math.min(...ops.map((op) => op.length));
  const max = Math.max(...ops.map((op) => op.length));
  const fromFiles = ops.filter((op) => op.kind === 'file').length;
  return `${ops.length} writes, ${(total / MiB).toFixed(1)} MiB, ${min}..${max} bytes (mean ${Math.round(total / ops.length)}), ${fromFiles} from source files`;
}

/** Write both volumes at once through their owners; every write must complete. */
async function writeBoth(pair: Pair, plans: readonly VolumePlan[], onProgress?: (volume: PairVolume, completed: number) => void): Promise<void> {
  const started = Date.now();
  const results = await Promise.all(
    plans.map((p) =>
      runWriter(pair.url(p.volume), p.ops.map(commandOf), 240_000, (n) => onProgress?.(p.volume, n)),
    ),
  );
  results.forEach((r, i) => {
    const p = plans[i]!;
    const what = `qemu-io writer of ${p.volume}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}, ${r.completed}/${p.ops.length} writes\n${r.failures.slice(0, 20).join('\n')}\n--- stderr ---\n${r.stderr.slice(-4000)}\n${pair.logs()}`;
    expect(r.failures, what).toEqual([]);
    expect(r.code, what).toBe(0);
    expect(r.completed, what).toBe(p.ops.length);
    expect(r.bytes, what).toBe(p.ops.reduce((s, op) => s + op.length, 0));
    console.log(`mirror-pair: ${p.volume}: ${describeSizes(p.ops)} in ${(r.durationMs / 1000).toFixed(1)} s`);
  });
  console.log(`mirror-pair: both writers done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function readBack(pair: Pair, plans: readonly VolumePlan[]): Promise<void> {
  for (const p of plans) {
    const r = await qemuIoPatterns(pair.url(p.volume), p.sample, 120_000);
    expect(r.ok, describeRun(`read-back of ${p.sample.length} extents of ${p.volume}`, r.run)).toBe(true);
  }
}

/** Both copies of each volume equal the expected image (the pair must be stopped). */
async function expectIdenticalCopies(pair: Pair, plans: readonly VolumePlan[]): Promise<void> {
  for (const p of plans) {
    const want = p.expected.sha256();
    for (const node of ['a', 'b'] as PairNodeId[]) {
      const file = pair.backing(node, p.volume);
      const got = await sha256File(file);
      if (got !== want) {
        const at = await firstDifference(file, p.expected.bytes);
        expect.fail(`node ${node}'s copy of ${p.volume} (${file}) differs from the expected image, first at byte ${at}`);
      }
    }
  }
}

describe('twinsan node pair', () => {
  it('refuses to start with a bad config, naming the file and the key', async () => {
    const file = path.join(sourceDir, 'node-a.json');
    const config = JSON.parse(await readFile(path.join(__dirname, '../../examples/node-a.json'), 'utf8')) as { peer: { links: { local: string }[] } };
    config.peer.links[1]!.local = '127.0.0.1:99999';
    await writeFile(file, JSON.stringify(config));
    const r = await run(process.execPath, [TWINSAN_BIN, 'node', '--config', file], { timeoutMs: 20_000 });
    expect(r.code, describeRun('twinsan node', r)).toBe(1);
    expect(r.stderr).toBe('twinsan: node-a.json: peer.links[1].local: "127.0.0.1:99999" is not host:port\n');
  });

  it(
    `keeps both copies identical under ${2 * WRITES_PER_VOLUME} concurrent random writes to two volumes owned by different nodes`,
    async () => {
      const started = Date.now();
      const plans = [plan('v1', seed, WRITES_PER_VOLUME), plan('v2', seed ^ 0x5bd1e995, WRITES_PER_VOLUME)];
      const pair = await startPair({ sizeBytes: SIZE });
      await pair.waitInSync(60_000);

      await writeBoth(pair, plans);
      await readBack(pair, plans);
      await pair.waitInSync(120_000);

      const stopped = await pair.stop();
      expect(stopped, `graceful exit of both nodes\n${pair.logs()}`).toEqual({ a: 0, b: 0 });
      await expectIdenticalCopies(pair, plans);
      console.log(`mirror-pair: acceptance run took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    },
    420_000,
  );

  it(
    'loses no write when one of the two replication links is cut during the writes',
    async () => {
      const plans = [plan('v1', seed + 1, LINK_CUT_WRITES_PER_VOLUME), plan('v2', (seed + 1) ^ 0x5bd1e995, LINK_CUT_WRITES_PER_VOLUME)];
      const pair = await startPair({ sizeBytes: SIZE, proxiedLinks: [1] });
      await pair.waitInSync(60_000);
      for (const id of ['a', 'b'] as PairNodeId[]) {
        expect((await pair.node(id).status()).peer.channel?.links.map((l) => l.up), `links of node ${id}`).toEqual([true, true]);
      }

      // What the volumes' replication goes through while the writers run (polled).
      const seen = new Set<string>();
      let polling = true;
      const poller = (async () => {
        while (polling) {
          for (const id of ['a', 'b'] as PairNodeId[]) {
            const s = await pair.node(id).status().catch(() => null);
            for (const v of s?.volumes ?? []) seen.add(`${id}/${v.name}: ${v.mirror.replication}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      })();

      let cutAt: number | null = null;
      try {
        await writeBoth(pair, plans, (volume, completed) => {
          if (cutAt === null && volume === 'v1' && completed >= LINK_CUT_WRITES_PER_VOLUME / 3) {
            cutAt = completed;
            pair.cutLink(1);
          }
        });
      } finally {
        polling = false;
        await poller;
      }
      expect(cutAt, 'the link was cut while v1 was being written').not.toBeNull();
      console.log(`mirror-pair: link 1 cut after ${cutAt} writes of v1; replication states seen: ${[...seen].sort().join(', ')}`);

      for (const id of ['a', 'b'] as PairNodeId[]) {
        const links = (await pair.node(id).status()).peer.channel!.links;
        expect(links.map((l) => l.up), `links of node ${id} after the cut`).toEqual([true, false]);
        // Link 1 carried replication traffic before it was cut (block data, not only heartbeats).
        expect(links[1]!.bytesSent, `bytes node ${id} sent on link 1`).toBeGreaterThan(MiB);
      }
      // Losing one of two links is not losing the peer: the volumes never went degraded.
      expect([...seen].filter((s) => !s.endsWith(': in-sync')), 'replication states other than in-sync').toEqual([]);

      await readBack(pair, plans);
      await pair.waitInSync(120_000);
      const stopped = await pair.stop();
      expect(stopped, `graceful exit of both nodes\n${pair.logs()}`).toEqual({ a: 0, b: 0 });
      await expectIdenticalCopies(pair, plans);
    },
    300_000,
  );
});
