/**
 * Gratuitous ARP (RFC 826, RFC 5227 §3 "ARP Announcement"). No I/O.
 *
 * Both forms announce "IP is at MAC" to the broadcast domain; the sender and
 * target protocol addresses are both the announced address. Receivers differ
 * in which form refreshes their caches (Linux takes either; some switches and
 * old stacks only one), so the announcer can send one or both:
 *
 *   request: op 1, target hardware address 00:00:00:00:00:00 (ignored by receivers)
 *   reply:   op 2, target hardware address = sender's (Linux requires it to
 *            treat a reply as gratuitous)
 *
 * ARP payload (28 bytes, after the Ethernet header, destination ff:ff:ff:ff:ff:ff):
 *   htype 1 | ptype 0x0800 | hlen 6 | plen 4 | op | sha | spa | tha | tpa
 */
import { BROADCAST_MAC, ETHERTYPE, ethernetFrame } from './ethernet';

export const ARP_OPERATION = { request: 1, reply: 2 } as const;
export type GarpForm = keyof typeof ARP_OPERATION;

export const ARP_PAYLOAD_LENGTH = 28;

const HTYPE_ETHERNET = 1;
const PTYPE_IPV4 = 0x0800;

export interface GarpFields {
  /** The announcing interface's MAC (6 bytes). */
  readonly mac: Buffer;
  /** The IPv4 address being announced (4 bytes). */
  readonly address: Buffer;
  readonly form: GarpForm;
}

/** One gratuitous ARP frame, 60 bytes (42 plus padding). */
export function encodeGratuitousArp({ mac, address, form }: GarpFields): Buffer {
  if (mac.length !== 6) throw new RangeError('mac must be 6 bytes');
  if (address.length !== 4) throw new RangeError('address must be 4 bytes (IPv4)');
  const arp = Buffer.alloc(ARP_PAYLOAD_LENGTH);
  arp.writeUInt16BE(HTYPE_ETHERNET, 0);
  arp.writeUInt16BE(PTYPE_IPV4, 2);
  arp.writeUInt8(6, 4);
  arp.writeUInt8(4, 5);
  arp.writeUInt16BE(ARP_OPERATION[form], 6);
  mac.copy(arp, 8);
  address.copy(arp, 14);
  if (form === 'reply') mac.copy(arp, 18); // request: stays zero
  address.copy(arp, 24);
  return ethernetFrame(BROADCAST_MAC, mac, ETHERTYPE.arp, arp);
}
