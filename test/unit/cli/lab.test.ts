/**
 * The lab's plan and files without root: the node configs the lab writes
 * are ones the node accepts and pair up, every address is in 198.18.0.0/15,
 * prefixes are checked, and lab-state.json cannot make `lab down` remove
 * anything outside the lab directory. processAlive tells a zombie from a
 * running process.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRONT_ADDRESSES, GROUPS, LAB_NODE_IDS, REPLICATION_LINKS, STATE_FILE, checkPrefix, namespacesOf, readState } from '../../../src/cli/lab';
import { labNodeConfig } from '../../../src/cli/lab/node-config';
import { processAlive } from '../../../src/cli/lab/netns';
import { parseNodeConfig } from '../../../src/resource-groups';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tsan-lab-unit-'));
  await writeFile(path.join(dir, 'pair.secret'), 'a secret of more than sixteen bytes\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const input = () => ({
  dir,
  clusterId: 'lab-tw',
  secretFile: path.join(dir, 'pair.secret'),
  volumes: GROUPS.map((g, i) => ({ name: g.volume, id: `00000000-0000-4000-8000-00000000000${i}` })),
  sizeBytes: 64 * 1024 * 1024,
});

/** 198.18.0.0/15: 198.18.x.x and 198.19.x.x. */
const inBenchmarkRange = (address: string): boolean => /^198\.1[89]\.\d{1,3}\.\d{1,3}$/.test(address);

describe('lab plan', () => {
  it('writes node configs the node accepts, whose links and heartbeats pair up', async () => {
    const [a, b] = await Promise.all(LAB_NODE_IDS.map((id) => parseNodeConfig(labNodeConfig(id, input()), { file: path.join(dir, `node-${id}.json`) })));
    expect([a!.nodeId, b!.nodeId]).toEqual(['a', 'b']);
    expect(a!.peer.links.map((l) => l.peer)).toEqual(b!.peer.links.map((l) => l.local));
    expect(b!.peer.links.map((l) => l.peer)).toEqual(a!.peer.links.map((l) => l.local));
    expect(a!.heartbeat.peer).toBe(b!.heartbeat.local);
    expect(a!.resourceGroups.map((g) => [g.name, g.preferredNode])).toEqual([
      ['rg-a', 'a'],
      ['rg-b', 'b'],
    ]);
    expect(a!.volumes.map((v) => v.owner)).toEqual(['a', 'b']);
    expect(a!.witness.redis).toBe(`${FRONT_ADDRESSES.witness}:6379`);
  });

  it('uses addresses from 198.18.0.0/15 only', () => {
    const addresses = [
      ...Object.values(FRONT_ADDRESSES),
      ...GROUPS.map((g) => g.alias),
      ...REPLICATION_LINKS.flatMap((l) => [l.a, l.b]),
    ];
    for (const address of addresses) expect(inBenchmarkRange(address), address).toBe(true);
  });

  it('names namespaces after the prefix and refuses prefixes that are not plain names', () => {
    expect(namespacesOf('tw')).toEqual({ switch: 'tw-sw', a: 'tw-a', b: 'tw-b', client: 'tw-client', witness: 'tw-witness' });
    expect(checkPrefix('tw')).toBeNull();
    expect(checkPrefix('tsan-1234x0abc')).toBeNull();
    for (const bad of ['', 'TW', '-tw', 'tw/x', 'tw x', '1tw', 'x'.repeat(41)]) expect(checkPrefix(bad), bad).toMatch(/is not a lab prefix/);
  });
});

describe('lab-state.json', () => {
  it('is null when there is none (nothing to take down)', async () => {
    expect(await readState(path.join(dir, 'no-such-lab'))).toBeNull();
  });

  it('refuses file entries that leave the lab directory', async () => {
    for (const files of [['../outside'], ['/etc/passwd'], ['node-a/../../x']]) {
      const labDir = await mkdtemp(path.join(dir, 'state-'));
      await writeFile(path.join(labDir, STATE_FILE), JSON.stringify({ prefix: 'tw', dirCreated: true, namespaces: ['tw-a'], files }));
      await expect(readState(labDir), JSON.stringify(files)).rejects.toThrow(/not a lab state file/);
    }
  });

  it('refuses namespaces that are not the lab prefix\'s own', async () => {
    const labDir = await mkdtemp(path.join(dir, 'state-'));
    await writeFile(path.join(labDir, STATE_FILE), JSON.stringify({ prefix: 'tw', dirCreated: true, namespaces: ['tw-a', 'production'], files: [] }));
    await expect(readState(labDir)).rejects.toThrow(/production are not those of a lab with prefix "tw"/);
  });

  it('reads a well-formed state back', async () => {
    const labDir = await mkdtemp(path.join(dir, 'state-'));
    const state = { prefix: 'tw', dirCreated: false, namespaces: ['tw-sw', 'tw-a'], files: ['node-a.json', 'node-a'] };
    await writeFile(path.join(labDir, STATE_FILE), JSON.stringify(state));
    expect(await readState(labDir)).toEqual(state);
  });
});

describe('processAlive', () => {
  it('counts a running process as alive and a zombie (exited, unreaped) or a missing pid as gone', async () => {
    // sh starts a short sleep in the background and execs into a long one, which never reaps it: once the
    // short sleep ends (after the exec, so sh cannot have reaped it), it stays a zombie.
    const child = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number((await once(child.stdout!, 'data'))[0].toString().trim());
      expect(Number.isInteger(zombie) && zombie > 1).toBe(true);
      let state = '';
      for (let i = 0; i < 100 && state !== 'Z'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const stat = await readFile(`/proc/${zombie}/stat`, 'utf8');
        state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      }
      expect(state).toBe('Z');
      expect(processAlive(zombie)).toBe(false);
      expect(processAlive(child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    expect(processAlive(child.pid!)).toBe(false);
  });
});
