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
 * refresh), manager.ts (the idempotent API), errors.ts (codes).
 */
export { AliasIpManager } from './manager';
export type { AliasIpLogger, AliasIpManagerOptions, ChangeResult } from './manager';
export type { AliasSpec } from './address';
export { DEFAULT_ANNOUNCE_CONFIG } from './announcer';
export type { AnnounceConfig, AnnounceResult } from './announcer';
export type { GarpForm } from './arp';
export { ALIAS_IP_ERROR_CODES, AliasIpError } from './errors';
export type { AliasIpErrorCode } from './errors';
export { IpRoute2 } from './iproute';
export type { AddressBackend, ConfiguredAddress, InterfaceState } from './iproute';
export { nativeLinkLayer } from './link';
export type { LinkInfo, LinkLayer } from './link';
