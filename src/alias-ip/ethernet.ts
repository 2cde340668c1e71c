/**
 * Ethernet II framing for the announcement codecs (arp.ts, ndisc.ts). No I/O.
 *
 *   0      6      12     14
 *   | dst  | src  | type | payload, padded to 60 bytes (the 64-byte minimum less the FCS the NIC adds)
 */

export const ETHERTYPE = { arp: 0x0806, ipv6: 0x86dd } as const;

export const ETH_HEADER_LENGTH = 14;
/** Shortest frame a NIC puts on the wire, without its 4-byte FCS. */
export const ETH_MIN_FRAME_LENGTH = 60;

export const BROADCAST_MAC: Buffer = Buffer.alloc(6, 0xff);

/** "aa:bb:cc:dd:ee:ff" (or with '-') to 6 bytes; throws RangeError for anything else. */
export function parseMac(text: string): Buffer {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new RangeError(`not a MAC address: ${JSON.stringify(text)}`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(bytes: Buffer): string {
  return [...bytes.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A unicast MAC a host could own: not all zeros, not group (multicast/broadcast). */
export function isUsableSourceMac(mac: Buffer): boolean {
  return mac.length === 6 && (mac[0]! & 0x01) === 0 && mac.some((b) => b !== 0);
}

/** RFC 2464: an IPv6 multicast group maps to 33:33 and its low 32 bits. */
export function ipv6MulticastMac(group: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x33, 0x33]), group.subarray(12, 16)]);
}

/** Header plus payload, zero-padded to the 60-byte minimum. */
export function ethernetFrame(destination: Buffer, source: Buffer, etherType: number, payload: Buffer): Buffer {
  const length = Math.max(ETH_MIN_FRAME_LENGTH, ETH_HEADER_LENGTH + payload.length);
  const frame = Buffer.alloc(length);
  destination.copy(frame, 0, 0, 6);
  source.copy(frame, 6, 0, 6);
  frame.writeUInt16BE(etherType, 12);
  payload.copy(frame, ETH_HEADER_LENGTH);
  return frame;
}
