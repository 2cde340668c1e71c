/**
 * The link layer the announcer sends through: interface lookup and one-frame
 * sends, by default the native addon's AF_PACKET functions
 * (native/src/packet_ops.cc, through src/block/native.ts). Both are
 * synchronous: a few ioctls and one non-blocking sendto per frame.
 */
import { packetIo } from '../block/native';
import { parseMac } from './ethernet';
import { AliasIpError } from './errors';

/** ARPHRD_ETHER: Ethernet, and everything that frames like it (veth, bridge, bond, macvlan, VLAN). */
export const ARPHRD_ETHER = 1;

export interface LinkInfo {
  readonly index: number;
  readonly mac: Buffer;
  readonly mtu: number;
  /** ARPHRD_* of the interface. */
  readonly hwType: number;
}

export interface LinkLayer {
  /** Throws AliasIpError ELINK (sysCode 'ENODEV' for a missing interface). */
  info(ifname: string): LinkInfo;
  /** Sends one whole Ethernet frame; throws AliasIpError ELINK. */
  send(ifname: string, frame: Buffer): void;
}

export const nativeLinkLayer: LinkLayer = {
  info(ifname) {
    const info = callNative(ifname, 'interface lookup', () => packetIo.interfaceInfo(ifname));
    return { index: info.index, mac: parseMac(info.mac), mtu: info.mtu, hwType: info.hwType };
  },
  send(ifname, frame) {
    callNative(ifname, 'frame send', () => packetIo.packetSend(ifname, frame));
  },
};

function callNative<T>(ifname: string, what: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    const sysCode = (err as { code?: unknown }).code;
    throw new AliasIpError('ELINK', `${what} on ${ifname} failed: ${(err as Error).message}`, {
      cause: err,
      ...(typeof sysCode === 'string' ? { sysCode } : {}),
    });
  }
}
