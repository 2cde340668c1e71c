/**
 * Alias IPs on a real (namespaced) LAN: two nodes a and b, a host h that
 * learns neighbours from unsolicited ARP/NA (like many routers), a host g
 * with kernel defaults (updates only entries it already has), all on one
 * bridge. The manager runs inside each node's namespace as a child process;
 * h captures with tcpdump.
 *
 * Needs root. Addresses: 198.18.1.0/24 and fd00:7157::/64, inside the lab only.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentError,
  AliasIpAgent,
  AliasSpecJson,
  CapturedFrame,
  Lan,
  arping,
  createLan,
  gratuitousArps,
  neighborAdverts,
  newRunId,
  removeStaleNamespaces,
  requireRoot,
  startAliasIpAgent,
  startCapture,
  startUdpEcho,
  udpProbe,
} from './lab';

const PORTAL: AliasSpecJson = { address: '198.18.1.50', prefix: 24, interface: 'eth1' };
const PORTAL6: AliasSpecJson = { address: 'fd00:7157::50', prefix: 64, interface: 'eth1' };
const ECHO_PORT = 7157;
/** Shortened from the 5 s default to keep the test short; the first burst keeps the defaults (5 × 200 ms, both forms). */
const REFRESH_MS = 2000;
/** 200 ms less the receive-timestamp jitter allowed for. */
const MIN_GAP_MS = 150;
const MANAGER_OPTIONS = { interfaces: ['eth1'], announce: { garpRefreshDelayMs: REFRESH_MS } };

let lan: Lan | undefined;
let agentA: AliasIpAgent;
let agentB: AliasIpAgent;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const the = (name: string) => lan!.station(name);

beforeAll(async () => {
  requireRoot('test/e2e/alias-ip.test.ts', ['ip', 'tcpdump', 'arping']);
  await removeStaleNamespaces();
  lan = await createLan(newRunId(), [
    { name: 'a', ipv4: '198.18.1.1/24', ipv6: 'fd00:7157::1/64' },
    { name: 'b', ipv4: '198.18.1.2/24', ipv6: 'fd00:7157::2/64' },
    { name: 'h', ipv4: '198.18.1.100/24', ipv6: 'fd00:7157::100/64', learnUnsolicited: true },
    { name: 'g', ipv4: '198.18.1.101/24', ipv6: 'fd00:7157::101/64' },
  ]);
  agentA = await startAliasIpAgent(the('a').ns, MANAGER_OPTIONS);
  agentB = await startAliasIpAgent(the('b').ns, MANAGER_OPTIONS);
  await startUdpEcho(the('a').ns, ECHO_PORT, 'a');
  await startUdpEcho(the('b').ns, ECHO_PORT, 'b');
});

afterAll(async () => {
  await lan?.destroy();
});

/** Runs `body` with a capture on h's eth1, always stopping it; resolves with the frames. */
async function capturedOnHost(body: () => Promise<void>): Promise<CapturedFrame[]> {
  const capture = await startCapture(the('h').ns, 'eth1', ['arp', 'or', 'icmp6']);
  let frames: CapturedFrame[] = [];
  try {
    await body();
  } finally {
    frames = await capture.stop();
  }
  return frames;
}

/** Waits (bounded) until the agent has logged a line matching `pattern` after its first `skip` lines. */
async function waitForLog(agent: AliasIpAgent, pattern: RegExp, skip: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!agent.log().slice(skip).some((line) => pattern.test(line))) {
    if (Date.now() > deadline) throw new Error(`no log line ${pattern} within ${timeoutMs} ms: ${agent.log().slice(skip).join(' | ')}`);
    await sleep(50);
  }
}

const REFRESH_SENT = /^info alias refresh announcement sent .*"address":"198\.18\.1\.50"/;

function gaps(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

describe('IPv4 alias: takeover, refresh, failover', () => {
  it('a takes 198.18.1.50: 5 rounds of GARP 200 ms apart and a refresh; hosts map it to a', async () => {
    const a = the('a');
    const logsBefore = agentA.log().length;
    const frames = await capturedOnHost(async () => {
      expect(await agentA.add(PORTAL)).toEqual({ changed: true });
      const started = Date.now();
      const result = await agentA.announce(PORTAL);
      expect(result).toMatchObject({ framesSent: 10, cancelled: false });
      expect(result.refreshAt! - started).toBeGreaterThan(REFRESH_MS - 100);

      // h learns from the GARPs alone (arp_accept=1): no traffic to .50 yet.
      expect((await the('h').waitForNeighbour(PORTAL.address, a.mac))?.lladdr).toBe(a.mac);
      // g (kernel defaults) resolves .50 on first use: a answers.
      expect(await udpProbe(the('g').ns, PORTAL.address, ECHO_PORT)).toBe('a');
      expect((await the('g').neighbour(PORTAL.address))?.lladdr).toBe(a.mac);

      await waitForLog(agentA, REFRESH_SENT, logsBefore);
      await sleep(100);
    });

    const garps = gratuitousArps(frames, PORTAL.address);
    expect(garps.length).toBe(20); // 5 rounds × (request + reply), then the same again as refresh
    for (const f of garps) {
      expect(f).toMatchObject({ ethSource: a.mac, ethDestination: 'ff:ff:ff:ff:ff:ff', senderMac: a.mac });
      expect(f.targetMac).toBe(f.op === 1 ? '00:00:00:00:00:00' : a.mac);
    }
    expect(garps.map((f) => f.op)).toEqual(Array(10).fill([1, 2]).flat());
    const requests = garps.filter((f) => f.op === 1).map((f) => f.atMs);
    const firstBurst = gaps(requests.slice(0, 5));
    // The sender waits 200 ms between rounds; receive timestamps add some jitter on a busy machine.
    for (const gap of firstBurst) {
      expect(gap).toBeGreaterThanOrEqual(MIN_GAP_MS);
      expect(gap).toBeLessThan(500);
    }
    expect(requests[5]! - requests[0]!).toBeGreaterThanOrEqual(REFRESH_MS - 50);
    expect(requests[5]! - requests[0]!).toBeLessThan(REFRESH_MS + 1000);
    for (const gap of gaps(requests.slice(5))) expect(gap).toBeGreaterThanOrEqual(MIN_GAP_MS);
    console.info(
      `[alias-ip e2e] a's GARPs seen by h: ${garps.length} (first burst gaps ${firstBurst.map((g) => g.toFixed(0)).join('/')} ms, ` +
        `refresh ${(requests[5]! - requests[0]!).toFixed(0)} ms after the first)`,
    );
  });

  it('failover: a gives .50 up (its pending refresh dies with it), b takes it; both hosts move to b', async () => {
    const a = the('a');
    const b = the('b');
    let removedAt = 0;
    let bAnnouncedAt = 0;
    const aLogsBefore = agentA.log().length;
    const bLogsBefore = agentB.log().length;
    const frames = await capturedOnHost(async () => {
      // a announces again (say after a link flap), then loses the address before the refresh is due.
      await agentA.announce(PORTAL);
      expect(await agentA.remove(PORTAL)).toEqual({ changed: true });
      removedAt = Date.now();
      expect(await agentA.remove(PORTAL)).toEqual({ changed: false });
      expect(await agentA.isServed(PORTAL)).toBe(false);

      expect(await agentB.add(PORTAL)).toEqual({ changed: true });
      const result = await agentB.announce(PORTAL);
      bAnnouncedAt = Date.now();
      expect(result.framesSent).toBe(10);

      // No traffic in between: the GARPs alone moved both caches.
      expect((await the('h').waitForNeighbour(PORTAL.address, b.mac, 500))?.lladdr).toBe(b.mac);
      const onG = await the('g').waitForNeighbour(PORTAL.address, b.mac, 500);
      expect(onG?.lladdr).toBe(b.mac);
      console.info(`[alias-ip e2e] after b's GARPs: h ${PORTAL.address} lladdr ${b.mac}; g lladdr ${onG?.lladdr} state ${onG?.state.join(',')}`);

      // Traffic to .50 now reaches b.
      expect(await udpProbe(the('g').ns, PORTAL.address, ECHO_PORT)).toBe('b');
      expect(await udpProbe(the('h').ns, PORTAL.address, ECHO_PORT)).toBe('b');
      expect(await arping(the('h').ns, 'eth1', PORTAL.address)).toEqual([b.mac]);

      // Past b's refresh, which is due after the moment a's cancelled one would have fired.
      await waitForLog(agentB, REFRESH_SENT, bLogsBefore);
      await sleep(Math.max(100, removedAt + REFRESH_MS + 500 - Date.now()));
      expect(agentA.log().slice(aLogsBefore).some((line) => REFRESH_SENT.test(line))).toBe(false);
      expect((await the('g').neighbour(PORTAL.address))?.lladdr).toBe(b.mac);
      expect((await the('h').neighbour(PORTAL.address))?.lladdr).toBe(b.mac);
    });

    const fromA = gratuitousArps(frames, PORTAL.address).filter((f) => f.ethSource === a.mac);
    const fromB = gratuitousArps(frames, PORTAL.address).filter((f) => f.ethSource === b.mac);
    expect(fromA.length).toBe(10); // a's second announcement, and no refresh after its remove
    expect(Math.max(...fromA.map((f) => f.atMs))).toBeLessThan(removedAt + 50);
    expect(fromB.length).toBe(20); // burst and refresh
    expect(Math.min(...fromB.map((f) => f.atMs))).toBeGreaterThan(removedAt - 50);
    expect(bAnnouncedAt).toBeGreaterThan(removedAt);
    console.info(`[alias-ip e2e] failover capture on h: ${fromA.length} GARPs from a (none after its remove), ${fromB.length} from b`);
  });

  it('b shuts down cleanly: removeAll removes .50 and leaves its fixed address', async () => {
    expect(await agentB.removeAll()).toEqual([PORTAL]);
    expect(await the('b').addresses()).toEqual(['198.18.1.2/24', 'fd00:7157::2/64']);
    expect(await agentB.removeAll()).toEqual([]);
  });
});

describe('IPv6 alias: unsolicited neighbour advertisements', () => {
  it('a takes fd00:7157::50 and announces it with 5 NAs; then b takes over and the hosts follow', async () => {
    const a = the('a');
    const b = the('b');
    const frames = await capturedOnHost(async () => {
      expect(await agentA.add(PORTAL6)).toEqual({ changed: true });
      expect((await agentA.announce(PORTAL6, { garpRefreshDelayMs: 0 })).framesSent).toBe(5);
      // h creates the entry from the NA alone (accept_untracked_na=1).
      expect((await the('h').waitForNeighbour(PORTAL6.address, a.mac))?.lladdr).toBe(a.mac);
      // g resolves by neighbour solicitation on first use: a answers.
      expect(await udpProbe(the('g').ns, PORTAL6.address, ECHO_PORT)).toBe('a');
      expect((await the('g').neighbour(PORTAL6.address))?.lladdr).toBe(a.mac);

      expect(await agentA.remove(PORTAL6)).toEqual({ changed: true });
      expect(await agentB.add(PORTAL6)).toEqual({ changed: true });
      expect((await agentB.announce(PORTAL6, { garpRefreshDelayMs: 0 })).framesSent).toBe(5);
      const onG = await the('g').waitForNeighbour(PORTAL6.address, b.mac, 500);
      expect(onG?.lladdr).toBe(b.mac);
      expect((await the('h').waitForNeighbour(PORTAL6.address, b.mac, 500))?.lladdr).toBe(b.mac);
      console.info(`[alias-ip e2e] after b's NAs: g ${PORTAL6.address} lladdr ${onG?.lladdr} state ${onG?.state.join(',')}`);
      expect(await udpProbe(the('g').ns, PORTAL6.address, ECHO_PORT)).toBe('b');
    });

    const unsolicited = neighborAdverts(frames).filter((na) => na.target === PORTAL6.address && !na.solicited);
    const fromA = unsolicited.filter((na) => na.ethSource === a.mac);
    const fromB = unsolicited.filter((na) => na.ethSource === b.mac);
    expect(fromA.length).toBe(5);
    expect(fromB.length).toBe(5);
    for (const [na, mac] of [...fromA.map((na) => [na, a.mac] as const), ...fromB.map((na) => [na, b.mac] as const)]) {
      expect(na).toMatchObject({
        ethDestination: '33:33:00:00:00:01',
        ipSource: PORTAL6.address,
        ipDestination: 'ff02::1',
        hopLimit: 255,
        override: true,
        router: false,
        targetMac: mac,
      });
    }
    for (const gap of gaps(fromA.map((na) => na.atMs))) expect(gap).toBeGreaterThanOrEqual(MIN_GAP_MS);
    console.info(`[alias-ip e2e] NAs for ${PORTAL6.address} seen by h: ${fromA.length} from a, ${fromB.length} from b`);
    expect(await agentB.remove(PORTAL6)).toEqual({ changed: true });
  });
});

/** From `ns`, a TCP connection to host:port: 'connected', 'refused' (a reset came back) or 'no answer' within `waitMs`. */
async function tcpProbe(ns: { exec(cmd: string, args: readonly string[], o?: { timeoutMs?: number }): Promise<{ stdout: string }> }, host: string, port: number, waitMs: number): Promise<string> {
  const script =
    `const s=require('net').connect({host:${JSON.stringify(host)},port:${port}});` +
    `s.on('connect',()=>{console.log('connected');process.exit(0)});` +
    `s.on('error',(e)=>{console.log(e.code==='ECONNREFUSED'?'refused':e.code);process.exit(0)});` +
    `setTimeout(()=>{console.log('no answer');process.exit(0)},${waitMs});`;
  return (await ns.exec(process.execPath, ['-e', script], { timeoutMs: waitMs + 10_000 })).stdout.trim();
}

// The anchor device needs the TUN/TAP driver's /dev/net/tun; without it the manager serves aliases unanchored (anchor.ts).
describe.skipIf(!existsSync('/dev/net/tun'))('anchored local routes: a killed process stops answering for its IPv4 alias at once', () => {
  it('while it lives the alias is local through its TAP device; killed, the address is still configured but connections to it are dropped, not refused, and ARP for it goes unanswered', async () => {
    const a = the('a');
    const g = the('g');
    const spec = { address: '198.18.1.90', prefix: 24, interface: 'eth1' };
    const agent = await startAliasIpAgent(a.ns, { ...MANAGER_OPTIONS, anchor: true });
    try {
      await agent.add(spec);
      await agent.listen(spec.address, 3260);
      const local = (await a.ns.ip('route', 'show', 'table', 'local', spec.address)).trim();
      expect(local).toMatch(/^local 198\.18\.1\.90 dev twa\d+/);
      expect(await tcpProbe(g.ns, spec.address, 3260, 3000)).toBe('connected');
      // Without a listener the live host refuses: what a dead host would do if its route were left behind.
      expect(await tcpProbe(g.ns, spec.address, 3261, 3000)).toBe('refused');

      agent.process.child.kill('SIGKILL');
      await agent.process.exited;
      // No guard here: the address stays on eth1, only the route through the dead process's device is gone.
      expect(await a.addresses()).toContain('198.18.1.90/24');
      expect((await a.ns.ip('route', 'show', 'table', 'local', spec.address)).trim()).toBe('');
      expect(await tcpProbe(g.ns, spec.address, 3261, 1500)).toBe('no answer');
      await g.ns.ip('neigh', 'flush', 'dev', 'eth1');
      expect(await arping(g.ns, 'eth1', spec.address, 2)).toEqual([]);
    } finally {
      await agent.stop().catch(() => undefined);
      await a.ns.ip('addr', 'del', '198.18.1.90/24', 'dev', 'eth1').catch(() => undefined);
    }
  });
});

describe('idempotence and ownership on a real interface', () => {
  it('add twice gives one address; remove twice is no error', async () => {
    const a = the('a');
    const spec = { address: '198.18.1.60', prefix: 24, interface: 'eth1' };
    expect(await agentA.add(spec)).toEqual({ changed: true });
    expect(await agentA.add(spec)).toEqual({ changed: false });
    expect((await a.addresses()).filter((x) => x === '198.18.1.60/24')).toHaveLength(1);
    expect(await agentA.isServed(spec)).toBe(true);
    expect(await agentA.remove(spec)).toEqual({ changed: true });
    expect(await agentA.remove(spec)).toEqual({ changed: false });
    expect(await a.addresses()).not.toContain('198.18.1.60/24');
  });

  it('removeAll removes only what the manager owns', async () => {
    const a = the('a');
    const ours = [
      { address: '198.18.1.61', prefix: 24, interface: 'eth1' },
      { address: '198.18.1.62', prefix: 32, interface: 'eth1' },
      { address: 'fd00:7157::61', prefix: 64, interface: 'eth1' },
    ];
    for (const spec of ours) await agentA.add(spec);
    await a.ns.ip('addr', 'add', '198.18.1.70/24', 'dev', 'eth1'); // an operator's, never given to the manager
    expect(await agentA.removeAll()).toEqual(ours);
    const left = await a.addresses();
    expect(left).toEqual(expect.arrayContaining(['198.18.1.1/24', '198.18.1.70/24', 'fd00:7157::1/64']));
    for (const spec of ours) expect(left).not.toContain(`${spec.address}/${spec.prefix}`);
  });

  it('refuses interfaces outside its list, naming them, and announcing addresses it does not serve', async () => {
    const err = await agentA.add({ address: '198.18.1.80', prefix: 24, interface: 'lo' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toMatchObject({ code: 'ENOTALLOWED' });
    expect((err as Error).message).toMatch(/interface lo is not one this manager may touch/);
    await expect(agentA.announce(PORTAL)).rejects.toMatchObject({ code: 'ENOTSERVED' });
    expect(await the('a').addresses()).not.toContain('198.18.1.80/24');
  });
});
