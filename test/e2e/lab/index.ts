/**
 * Network-namespace lab for e2e tests. Needs root; touches only namespaces
 * it creates, named `tsan-<run id>-<role>`, and tests use addresses from
 * 198.18.0.0/15 and fd00:7157::/64 only. The namespace and bridge helpers
 * themselves are product code in src/cli/lab (they build `twinsan lab`);
 * netns.ts and lan.ts here add the tests' naming and stale cleanup.
 *
 * netns.ts
 *   requireRoot(what, tools?)            throws a clear error unless uid 0 and ip/tcpdump exist
 *   newRunId()                           '<pid>x<hex>': unique per run, pid for stale detection
 *   removeStaleNamespaces()              deletes tsan-* namespaces whose creating pid is dead
 *   Namespace.create(name)               ip netns add + lo up; deleted at process exit if still there
 *     ns.ip(...args) / ns.ipJson(...)    ip -n NAME ... (stdout / parsed -json output)
 *     ns.exec(cmd, args, {allowFailure, timeoutMs})   ip netns exec NAME cmd ... to completion
 *     ns.spawn(cmd, args, label)         long-running LabProcess { child, exited, stop() }
 *     ns.sysctl(key, value)              per-namespace net.* sysctl
 *     ns.destroy()                       stop processes, kill leftovers inside, ip netns del
 *   exec(cmd, args, options)             a root-namespace command (used only for ip netns ...)
 *   listNamespaces() / namespacePids(name) / deleteNamespace(name) / processAlive(pid)
 *
 * lan.ts
 *   createLan(runId, [{ name, ipv4?, ipv6?, learnUnsolicited? }])
 *     -> Lan { switchNs, stations, station(name), destroy() }
 *     switch namespace tsan-<run>-sw with bridge br0 (no STP, no snooping);
 *     per station a namespace tsan-<run>-<name> with eth1 on a bridge port.
 *     learnUnsolicited: arp_accept=1, IPv6 forwarding=1 and accept_untracked_na=1
 *     on eth1 (learns new entries from GARP/NA, like many routers);
 *     otherwise kernel defaults (only existing entries are updated).
 *   Station { name, ns, mac, ifname: 'eth1', neighbour(addr), waitForNeighbour(addr, mac, ms), addresses() }
 *
 * capture.ts
 *   startCapture(ns, ifname, filterWords) -> { stop(): CapturedFrame[] }   tcpdump -w, waits until listening
 *   parsePcap(buffer)                    classic pcap -> { atMs, data }[]
 *   arpFrames / gratuitousArps(frames, ip) / neighborAdverts(frames)        decoded views
 *
 * agents.ts
 *   startAliasIpAgent(ns, managerOptions) -> AliasIpAgent { add, remove, isServed, announce, removeAll, owned, log, stop }
 *     runs AliasIpManager from dist/ in a child process inside the namespace
 *   compiledModule(dir)                  dist/<dir>/index.js, refusing a missing or stale build
 *   startUdpEcho(ns, port, label) / udpProbe(ns, address, port, ms)      who answers for an address
 *   arping(ns, ifname, address, count)   MACs that answered ARP requests
 *
 * node-pair.ts (imported directly, not re-exported here)
 *   NodePair.create({ name, statusPort }) -> LAN a/b/h, redis witness in h, both node configs
 *     (rg1 with v1 and alias 198.18.0.50, preferred node a); startBoth(), start(x), kill(x),
 *     status(x), rgState(x), post(x, '/move?rg=rg1'), tail(x), ns(x), destroy()
 *   until(what, ms, probe)               poll every 100 ms
 *
 * stamped-load.mjs  (run in h) stamped 4 KiB writes through one session, retried on
 *                   BUSY / UA / NOT READY / reconnect; "stop" on stdin: read back, one JSON line
 * pr-client.mjs     (run in h) PERSISTENT RESERVE IN/OUT and writes as one initiator, JSON out
 *
 * Cleanup: destroy the Lan in afterAll (and in a finally); the process exit
 * hook deletes any namespace still alive; removeStaleNamespaces() at the start
 * of a file clears what a crashed earlier run left.
 */
export * from './agents';
export * from './capture';
export * from './lan';
export * from './netns';
