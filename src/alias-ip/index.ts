/**
 * Floating (alias) IP addresses for failover: add and remove them
 * idempotently, and announce them with gratuitous ARP / unsolicited
 * neighbour advertisements so the LAN follows a takeover at once.
 *
 *   const aliases = new AliasIpManager({ interfaces: ['eth1'] });
 *   const portal = { address: '198.18.0.10', prefix: 24, interface: 'eth1' };
 *   await aliases.add(portal);        // { changed: true }; again: { changed: false }
 *   await aliases.announce(portal);   // 5 rounds 200 ms apart, refresh 5 s later
 *   await aliases.isServed(portal);   // true
 *   await aliases.remove(portal);     // cancels the refresh, deletes the address
 *   await aliases.removeAll();        // shutdown: only the addresses it owns
 *
 * Modules, each with one job: address.ts (specs), iproute.ts (address
 * management through ip(8)), ethernet.ts / arp.ts / ndisc.ts (frame codecs,
 * no I/O), link.ts (the native AF_PACKET sender), announcer.ts (bursts and
 * refresh), manager.ts (the idempotent API), errors.ts (codes),
 * guard-protocol.ts / guard.ts / guard-main.ts (the alias guard).
 *
 * Alias guard: a node killed while serving (SIGKILL, OOM, crash) would leave
 * its aliases configured, and its host would go on answering ARP and sending
 * RSTs for addresses the peer took over. Given `guard: new AliasGuard(...)`,
 * the manager tells a small child process (dist/alias-ip/guard-main.js,
 * stdin pipe, one JSON line per message) each address it owns, before adding
 * it and after deleting it; when the pipe closes without a "release" (clean
 * shutdown, after removeAll()), the guard deletes those addresses at once
 * and exits. It touches only the allowed interfaces and ignores
 * SIGINT/SIGTERM/SIGHUP (it follows the node's pipe, not its signals).
 */
export { AliasIpManager } from './manager';
export type { AliasIpLogger, AliasIpManagerOptions, ChangeResult } from './manager';
export type { AliasSpec } from './address';
export { DEFAULT_ANNOUNCE_CONFIG } from './announcer';
export type { AnnounceConfig, AnnounceResult } from './announcer';
export type { GarpForm } from './arp';
export { ALIAS_IP_ERROR_CODES, AliasIpError } from './errors';
export type { AliasIpErrorCode } from './errors';
export { TapLocalAnchor } from './anchor';
export type { LocalAnchorPort, TapLocalAnchorOptions } from './anchor';
export { AliasGuard, GUARD_ENTRY, runGuard } from './guard';
export type { AliasGuardOptions, AliasGuardPort, GuardExtension, GuardLogger, GuardOutcome } from './guard';
export { encodeGuardMessage, GuardState, parseGuardMessage } from './guard-protocol';
export type { GuardMessage, GuardPhase } from './guard-protocol';
export { IpRoute2 } from './iproute';
export type { AddressBackend, ConfiguredAddress, InterfaceState } from './iproute';
export { nativeLinkLayer } from './link';
export type { LinkInfo, LinkLayer } from './link';
