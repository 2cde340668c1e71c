/**
 * Failover rounds in the one-machine lab (`twinsan lab up`, its own prefix
 * per run). An initiator in the client namespace (one qemu-io session, so
 * libiscsi reconnects and retries as a real initiator would) writes
 * stamped 4 KiB blocks, each at its own offset, through rg-a's alias IP;
 * the node serving rg-a is killed with SIGKILL while writes are in flight;
 * the writes carry on through the same alias IP and IQN on the other node.
 * `twinsan lab start-node` brings the killed node back (standby, failback
 * manual) and the round ends once both volumes are in sync again, so the
 * next round kills the other node. After every round every acknowledged
 * block reads back through the initiator; at the end also from both
 * nodes' copies.
 *
 * Pauses (kill → first acknowledged write in the session, kill → rg-a
 * serving on the survivor, kill → a fresh login through the alias, longest
 * gap between acknowledgements) are printed, never asserted. The killed
 * node's alias stops being local with its process (alias-ip/anchor.ts), so
 * the session's first reconnect SYN is dropped and its retransmission, about
 * 1 s later, reaches the survivor; a reconnect the dead host refused would
 * instead wait for libiscsi's back-off (the next whole second, polled once a
 * second by QEMU). Also: the client sees the survivor's gratuitous ARP for the
 * alias and its neighbour table follows.
 *
 * Needs root, a fresh build (npm run build:ts), qemu-io, qemu-img,
 * redis-server and tcpdump.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Namespace as LabNamespace } from '../../src/cli/lab/netns';
import { compiledModule, gratuitousArps, newRunId, removeStaleNamespaces, requireRoot, startCapture } from './lab';
import { LabHandle, StampedWriter, lostBlocks, readBack, twinsan, until } from './lab/twinsan-lab';

const ROUNDS = 20;
/** Acknowledged writes in a round before the kill, and after it. */
const WRITES_BEFORE_KILL = 15;
const WRITES_AFTER_KILL = 15;

let work = '';
let handle: LabHandle | null = null;
let writer: StampedWriter | null = null;
/** Every block number acknowledged so far (block n lives at offset n * 4 KiB). */
const acked = new Set<number>();
let nextBlock = 0;

beforeAll(async () => {
  requireRoot('test/e2e/failover-rounds.test.ts', ['ip', 'tcpdump', 'qemu-io', 'qemu-img', 'redis-server']);
  compiledModule('cli/lab');
  compiledModule('resource-groups');
  await removeStaleNamespaces();
  work = await mkdtemp(path.join(tmpdir(), 'tsan-rounds-'));
  handle = await LabHandle.up(path.join(work, 'lab'), `tsan-${newRunId()}`);
  const rgA = handle.lab.resourceGroups.find((g) => g.name === 'rg-a')!;
  writer = new StampedWriter(handle.client(), rgA.targets[0]!.url, work);
}, 240_000);

afterAll(async () => {
  await writer?.close().catch(() => undefined);
  await handle?.down();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);

const lab = (): LabHandle => handle!;
const rgA = () => lab().lab.resourceGroups.find((g) => g.name === 'rg-a')!;

/** Writes the next block until acknowledged; resolves with the acknowledgement time. */
async function writeNext(): Promise<number> {
  const seq = nextBlock++;
  const at = await writer!.write(seq).catch(async (err: Error) => {
    // The lab (and its logs) is gone after the run: the failure carries the nodes' last lines.
    throw new Error(`${err.message}${await lab().logTails(60)}`);
  });
  acked.add(seq);
  return at;
}

async function verifyThroughInitiator(when: string): Promise<void> {
  const image = await readBack(lab().client(), rgA().targets[0]!.url, nextBlock, work).catch(async (err: Error) => {
    throw new Error(`${err.message}${await lab().logTails(40)}`);
  });
  expect(lostBlocks(image, acked), `acknowledged blocks not read back ${when}`).toEqual([]);
}

describe('twinsan lab: failover rounds', () => {
  it('lab.json describes the running lab', async () => {
    const l = lab().lab;
    expect(l.client.netns).toBe(`${lab().prefix}-client`);
    expect(l.witness.url).toMatch(/^redis:\/\/198\.1[89]\.\d+\.\d+:\d+$/);
    expect(await LabNamespace.existing(l.witness.netns).pids()).toContain(l.witness.pid);
    expect(l.nodes.map((n) => n.id)).toEqual(['a', 'b']);
    for (const n of l.nodes) {
      expect(n.netns).toBe(`${lab().prefix}-${n.id}`);
      const [link] = await LabNamespace.existing(n.netns).ipJson<{ address: string }[]>('link', 'show', 'dev', 'eth1');
      expect(n.frontMac).toBe(link!.address);
      expect((await lab().view(n.id))?.state).toBe('running');
      // The REST API on the front-end address takes the token lab.json gives, and nothing else.
      expect(n.api).toMatch(new RegExp(`^http://${n.frontIp.replace(/\./g, '\\.')}:\\d+$`));
      expect(n.token).toBe((await readFile(n.tokenFile, 'utf8')).trim());
      const groups = await lab().api(n.id).get('/api/v1/resource-groups');
      expect(groups.status).toBe(200);
      expect((JSON.parse(groups.body) as { name: string; owner: string }[]).map((g) => [g.name, g.owner])).toEqual([
        ['rg-a', 'a'],
        ['rg-b', 'b'],
      ]);
      expect((await lab().clientAgent().http(`${n.api}/api/v1/resource-groups`)).status).toBe(401);
      expect(n.volumes.map((v) => v.name)).toEqual(['va', 'vb']);
      for (const v of n.volumes) expect((await stat(v.backing)).isFile()).toBe(true);
    }
    expect(l.resourceGroups.map((g) => [g.name, g.preferredNode, g.volumes])).toEqual([
      ['rg-a', 'a', ['va']],
      ['rg-b', 'b', ['vb']],
    ]);
    for (const g of l.resourceGroups) {
      expect(g.targets[0]!.url).toBe(`iscsi://${g.aliasIps[0]}:3260/${g.targets[0]!.iqn}/0`);
      expect((await lab().owner(g.name))?.id).toBe(g.preferredNode);
    }
    // start-node refuses a node that is running.
    await expect(twinsan(['lab', 'start-node', '--dir', lab().dir, 'a'], 30_000)).rejects.toThrow(/node a is running/);
  });

  it('the client sees a gratuitous ARP for the alias from the survivor, and its neighbour table follows', { timeout: 180_000 }, async () => {
    const alias = rgA().aliasIps[0]!;
    const owner = (await lab().owner('rg-a'))!;
    const survivor = lab().other(owner.id);
    await writeNext(); // the client has a neighbour entry for the alias (owner's MAC)
    const client = lab().client();
    const before = await client.ipJson<{ dst: string; lladdr?: string }[]>('-4', 'neigh', 'show', 'to', alias, 'dev', 'eth1');
    expect(before[0]?.lladdr).toBe(owner.frontMac);

    const capture = await startCapture(client, 'eth1', ['arp']);
    let frames;
    try {
      await lab().kill(owner.id);
      await until('rg-a serving on the survivor', 30_000, async () => (await lab().view(survivor.id))?.groups.get('rg-a') === 'serving');
      await writeNext();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // the rest of the announcement burst
    } finally {
      frames = await capture.stop();
    }
    const garps = gratuitousArps(frames, alias);
    expect(garps.filter((f) => f.senderMac === survivor.frontMac && f.ethSource === survivor.frontMac).length).toBeGreaterThan(0);
    expect(garps.filter((f) => f.senderMac !== survivor.frontMac)).toEqual([]);
    const after = await client.ipJson<{ dst: string; lladdr?: string }[]>('-4', 'neigh', 'show', 'to', alias, 'dev', 'eth1');
    expect(after[0]?.lladdr).toBe(survivor.frontMac);

    await lab().startNode(owner.id);
    await lab().waitSettled(survivor.id);
    await verifyThroughInitiator('after the ARP test');
  });

  it(`${ROUNDS} rounds: SIGKILL of the node serving rg-a under writes, I/O resumes on the other node, no acknowledged write lost`, { timeout: 1_500_000 }, async () => {
    const rounds: { victim: string; pauseMs: number; servedMs: number; loginMs: number; gapMs: number }[] = [];
    const aliases = lab().lab.resourceGroups.flatMap((g) => g.aliasIps).sort();
    for (let r = 1; r <= ROUNDS; r++) {
      const victim = await lab().owner('rg-a');
      expect(victim, `round ${r}: exactly one node serves rg-a`).toBeDefined();
      const survivor = lab().other(victim!.id);
      if (rounds.length > 0) expect(victim!.id, `round ${r} kills the node the last round left serving`).not.toBe(rounds.at(-1)!.victim);

      // Writes run continuously; the kill lands while one is in flight.
      const ackTimes: number[] = [];
      let killedAt = 0;
      let stop = false;
      let reachedKill!: () => void;
      const killPoint = new Promise<void>((resolve) => (reachedKill = resolve));
      const writing = (async () => {
        while (!stop) {
          ackTimes.push(await writeNext());
          if (ackTimes.length === WRITES_BEFORE_KILL) reachedKill();
          if (killedAt > 0 && ackTimes.filter((t) => t > killedAt).length >= WRITES_AFTER_KILL) stop = true;
        }
      })();
      await Promise.race([killPoint, writing]);
      killedAt = performance.now();
      await lab().kill(victim!.id);
      const served = until(`round ${r}: rg-a serving on node ${survivor.id}`, 60_000, async () => (await lab().view(survivor.id))?.groups.get('rg-a') === 'serving').then(
        () => performance.now(),
      );
      // A fresh login (iscsi-inq) through the alias, tried every 100 ms: what an initiator without reconnect backoff sees.
      const loggedIn = until(`round ${r}: a fresh login through rg-a's alias`, 60_000, async () => (await lab().client().exec('iscsi-inq', [rgA().targets[0]!.url], { allowFailure: true, timeoutMs: 10_000 })).code === 0).then(
        () => performance.now(),
      );
      // Handled here too, so a failed write below does not leave them as unhandled rejections.
      served.catch(() => undefined);
      loggedIn.catch(() => undefined);
      await writing;
      const servedAt = await served;
      const loginAt = await loggedIn;
      const firstAfter = ackTimes.find((t) => t > killedAt)!;
      const gapMs = Math.max(...ackTimes.slice(1).map((t, i) => t - ackTimes[i]!));
      rounds.push({ victim: victim!.id, pauseMs: firstAfter - killedAt, servedMs: servedAt - killedAt, loginMs: loginAt - killedAt, gapMs });
      console.log(
        `round ${r}: killed node ${victim!.id}; first acknowledged write through node ${survivor.id} after ${(firstAfter - killedAt).toFixed(0)} ms, ` +
          `rg-a serving there after ${(servedAt - killedAt).toFixed(0)} ms, a fresh login through the alias after ${(loginAt - killedAt).toFixed(0)} ms, ` +
          `longest gap between acknowledgements ${gapMs.toFixed(0)} ms`,
      );

      await lab().startNode(victim!.id);
      await lab().waitSettled(survivor.id);
      // The restarted node answers for no alias (a killed process leaves its addresses configured).
      expect(await lab().aliasesOn(victim!.id), `round ${r}: aliases on the restarted node ${victim!.id}`).toEqual([]);
      expect((await lab().aliasesOn(survivor.id)).sort()).toEqual(aliases);
      await verifyThroughInitiator(`after round ${r}`);
    }

    const longest = rounds.reduce((a, b) => (b.pauseMs > a.pauseMs ? b : a));
    console.log(
      `${ROUNDS} rounds, ${acked.size} acknowledged blocks, 0 lost, ${writer!.sessions} qemu-io session(s); ` +
        `longest pause ${longest.pauseMs.toFixed(0)} ms (round ${rounds.indexOf(longest) + 1}, node ${longest.victim} killed); ` +
        `pauses: ${rounds.map((x) => x.pauseMs.toFixed(0)).join(', ')} ms; rg-a served after: ${rounds.map((x) => x.servedMs.toFixed(0)).join(', ')} ms; ` +
        `fresh login after: ${rounds.map((x) => x.loginMs.toFixed(0)).join(', ')} ms (a reconnect dropped at the dead host is retried by TCP after about 1 s)`,
    );

    // Both copies of va hold every acknowledged block (the nodes are in sync).
    for (const n of lab().lab.nodes) {
      const copy = await readFile(n.volumes.find((v) => v.name === 'va')!.backing);
      expect(lostBlocks(copy, acked), `node ${n.id}'s copy of va`).toEqual([]);
    }
  });
});
