/**
 * The namespace lab's own safety properties: stale cleanup deletes only
 * namespaces whose creating process is gone, and destroy() leaves no process
 * or namespace behind. Needs root.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, LAB_PREFIX, Namespace, newRunId, removeStaleNamespaces, requireRoot } from './lab';

const made: Namespace[] = [];

beforeAll(() => requireRoot('test/e2e/alias-ip-lab.test.ts', ['ip']));
afterAll(async () => {
  for (const ns of made) await ns.destroy();
});

async function namespaceNames(): Promise<string[]> {
  const listed = await exec('ip', ['netns', 'list']);
  return listed.stdout.split('\n').map((line) => line.split(' ')[0] ?? '').filter(Boolean);
}

describe('lab namespaces', () => {
  it('removeStaleNamespaces deletes those of dead runs and keeps those of live ones', async () => {
    const deadPid = spawnSync('true').pid!; // exited: its pid is no run's any more
    const stale = await Namespace.create(`${LAB_PREFIX}${deadPid}x0000-stale`);
    made.push(stale);
    const live = await Namespace.create(`${LAB_PREFIX}${newRunId()}-live`);
    made.push(live);

    const removed = await removeStaleNamespaces();
    expect(removed).toContain(stale.name);
    expect(removed).not.toContain(live.name);
    const names = await namespaceNames();
    expect(names).not.toContain(stale.name);
    expect(names).toContain(live.name);
  });

  it('destroy() stops the processes it started inside and deletes the namespace', async () => {
    const ns = await Namespace.create(`${LAB_PREFIX}${newRunId()}-proc`);
    made.push(ns);
    const sleeper = ns.spawn('sleep', ['600']);
    const pids = await exec('ip', ['netns', 'pids', ns.name]);
    expect(pids.stdout.trim().split(/\s+/)).toContain(String(sleeper.child.pid));
    await ns.destroy();
    expect(sleeper.child.exitCode !== null || sleeper.child.signalCode !== null).toBe(true);
    expect(await namespaceNames()).not.toContain(ns.name);
  });

  it('refuses names without the lab prefix', async () => {
    await expect(Namespace.create('not-a-lab-name')).rejects.toThrow(/start with tsan-/);
  });
});
