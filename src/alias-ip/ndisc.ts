/**
 * Unsolicited neighbour advertisement (RFC 4861 §4.4, §7.2.6). No I/O.
 *
 * The IPv6 counterpart of gratuitous ARP: "target is at MAC", sent to the
 * all-nodes group ff02::1 (Ethernet 33:33:00:00:00:01) with the Override flag
 * so that receivers replace a cached link-layer address, Solicited clear (it
 * answers no solicitation), hop limit 255 (receivers drop anything less: it
 * proves the sender is on-link), and a Target Link-Layer Address option.
 *
 *   Ethernet 14 | IPv6 40 | ICMPv6 NA 24 | option type 2, length 1 (8 bytes), MAC
 *
 * The IPv6 source is the target address itself (an address of the sending
 * interface, as §7.2.6 asks). ICMPv6 checksum over the pseudo-header of
 * RFC 8200 §8.1.
 */
import { ETHERTYPE, ethernetFrame, ipv6MulticastMac } from './ethernet';

export const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;
export const IPPROTO_ICMPV6 = 58;
export const ND_OPTION_TARGET_LINK_LAYER_ADDRESS = 2;

/** ff02::1 */
export const ALL_NODES: Buffer = Buffer.from('ff020000000000000000000000000001', 'hex');

export const NA_FLAGS = { router: 0x80, solicited: 0x40, override: 0x20 } as const;

const IPV6_HEADER_LENGTH = 40;
const NA_LENGTH = 24;
const OPTION_LENGTH = 8;

export interface UnsolicitedNaFields {
  /** The advertising interface's MAC (6 bytes). */
  readonly mac: Buffer;
  /** The IPv6 address being announced (16 bytes). */
  readonly target: Buffer;
  /** Default true: receivers replace the link-layer address they have cached. */
  readonly override?: boolean;
  /** Default false: the sender is a host, not a router. */
  readonly router?: boolean;
}

/** One unsolicited NA frame: 86 bytes. */
export function encodeUnsolicitedNa({ mac, target, override = true, router = false }: UnsolicitedNaFields): Buffer {
  if (mac.length !== 6) throw new RangeError('mac must be 6 bytes');
  if (target.length !== 16) throw new RangeError('target must be 16 bytes (IPv6)');

  const icmp = Buffer.alloc(NA_LENGTH + OPTION_LENGTH);
  icmp.writeUInt8(ICMPV6_NEIGHBOR_ADVERTISEMENT, 0);
  icmp.writeUInt8(0, 1); // code
  // bytes 2-3: checksum, filled below
  icmp.writeUInt8((override ? NA_FLAGS.override : 0) | (router ? NA_FLAGS.router : 0), 4);
  // bytes 5-7: reserved
  target.copy(icmp, 8);
  icmp.writeUInt8(ND_OPTION_TARGET_LINK_LAYER_ADDRESS, 24);
  icmp.writeUInt8(1, 25); // option length in units of 8 bytes
  mac.copy(icmp, 26);
  icmp.writeUInt16BE(icmpv6Checksum(target, ALL_NODES, icmp), 2);

  const ip = Buffer.alloc(IPV6_HEADER_LENGTH);
  ip.writeUInt32BE(0x60000000, 0); // version 6, traffic class 0, flow label 0
  ip.writeUInt16BE(icmp.length, 4);
  ip.writeUInt8(IPPROTO_ICMPV6, 6);
  ip.writeUInt8(255, 7); // hop limit
  target.copy(ip, 8);
  ALL_NODES.copy(ip, 24);

  return ethernetFrame(ipv6MulticastMac(ALL_NODES), mac, ETHERTYPE.ipv6, Buffer.concat([ip, icmp]));
}

/**
 * The ICMPv6 checksum: one's complement of the one's-complement sum of the
 * pseudo-header (source, destination, upper-layer length, next header 58)
 * and the message with its checksum field zero.
 */
export function icmpv6Checksum(source: Buffer, destination: Buffer, message: Buffer): number {
  const pseudo = Buffer.alloc(40);
  source.copy(pseudo, 0);
  destination.copy(pseudo, 16);
  pseudo.writeUInt32BE(message.length, 32);
  pseudo.writeUInt32BE(IPPROTO_ICMPV6, 36);
  let sum = onesComplementSum(pseudo, 0);
  sum = onesComplementSum(message, sum);
  return ~sum & 0xffff;
}

function onesComplementSum(data: Buffer, start: number): number {
  let sum = start;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2 === 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
