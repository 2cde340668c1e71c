/**
 * Alias address specs: validation and conversion to wire bytes. No I/O.
 *
 * Addresses are compared as bytes, never as text, so "fd00:7157:0::50" and
 * ip(8)'s canonical "fd00:7157::50" are the same address.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { AliasIpError } from './errors';

/** What callers pass: `{ address: '198.18.0.10', prefix: 24, interface: 'eth1' }`. */
export interface AliasSpec {
  readonly address: string;
  readonly prefix: number;
  readonly interface: string;
}

export type IpFamily = 4 | 6;

/** A validated spec with the address in bytes (4 or 16). */
export interface Alias extends AliasSpec {
  readonly family: IpFamily;
  readonly bytes: Buffer;
  /** Identifies the address (not the interface): family and hex bytes. */
  readonly key: string;
}

const IFNAMSIZ = 16;

/** The kernel's rule for interface names: 1-15 bytes, no '/', ':' or white space. */
export function isValidInterfaceName(name: string): boolean {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    Buffer.byteLength(name) < IFNAMSIZ &&
    !/[/:\s]/.test(name) &&
    name !== '.' &&
    name !== '..'
  );
}

/** Validates a spec; throws AliasIpError EINVAL naming what is wrong. */
export function parseAlias(spec: AliasSpec): Alias {
  const where = describeSpec(spec);
  if (spec === null || typeof spec !== 'object') throw new AliasIpError('EINVAL', 'alias spec must be an object');
  if (!isValidInterfaceName(spec.interface)) throw new AliasIpError('EINVAL', `${where}: bad interface name`);
  let family: IpFamily;
  let bytes: Buffer;
  if (isIPv4(spec.address)) {
    family = 4;
    bytes = ipv4Bytes(spec.address);
  } else if (isIPv6(spec.address) && !spec.address.includes('%')) {
    family = 6;
    bytes = ipv6Bytes(spec.address);
  } else {
    throw new AliasIpError('EINVAL', `${where}: not an IPv4 or IPv6 address`);
  }
  const maxPrefix = family === 4 ? 32 : 128;
  if (!Number.isInteger(spec.prefix) || spec.prefix < 1 || spec.prefix > maxPrefix) {
    throw new AliasIpError('EINVAL', `${where}: prefix must be an integer from 1 to ${maxPrefix}`);
  }
  const unusable = family === 4 ? unusableIpv4(bytes) : unusableIpv6(bytes);
  if (unusable) throw new AliasIpError('EINVAL', `${where}: ${unusable} address cannot be an alias`);
  return {
    address: spec.address,
    prefix: spec.prefix,
    interface: spec.interface,
    family,
    bytes,
    key: `${family}:${bytes.toString('hex')}`,
  };
}

export function describeSpec(spec: Partial<AliasSpec> | null | undefined): string {
  if (!spec || typeof spec !== 'object') return String(spec);
  return `${String(spec.address)}/${String(spec.prefix)} on ${String(spec.interface)}`;
}

/** Dotted quad to 4 bytes. The caller has checked it with isIPv4. */
export function ipv4Bytes(text: string): Buffer {
  return Buffer.from(text.split('.').map((part) => Number(part)));
}

/**
 * Any RFC 4291 text form (with "::" and an optional dotted-quad tail) to 16
 * bytes. The caller has checked it with isIPv6; zone ids are not accepted.
 */
export function ipv6Bytes(text: string): Buffer {
  let hex = text;
  const lastColon = hex.lastIndexOf(':');
  if (hex.slice(lastColon + 1).includes('.')) {
    // "::ffff:198.18.0.1" -> "::ffff:c612:1"
    const q = ipv4Bytes(hex.slice(lastColon + 1));
    hex = `${hex.slice(0, lastColon + 1)}${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  let words: number[];
  const gap = hex.indexOf('::');
  if (gap >= 0) {
    const left = groups(hex.slice(0, gap));
    const right = groups(hex.slice(gap + 2));
    words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    words = groups(hex);
  }
  const out = Buffer.alloc(16);
  words.forEach((word, i) => out.writeUInt16BE(word, i * 2));
  return out;
}

/** Text form of 4 or 16 address bytes, for messages (IPv6 with the longest zero run as "::"). */
export function formatAddress(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(bytes.readUInt16BE(i));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function unusableIpv4(b: Buffer): string | undefined {
  if (b[0] === 0) return 'an unspecified ("this network")';
  if (b[0] === 127) return 'a loopback';
  if (b[0]! >= 224 && b[0]! < 240) return 'a multicast';
  if (b[0]! >= 240) return 'a reserved or broadcast';
  return undefined;
}

function unusableIpv6(b: Buffer): string | undefined {
  if (b.every((x) => x === 0)) return 'the unspecified';
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return 'the loopback';
  if (b[0] === 0xff) return 'a multicast';
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'a link-local';
  return undefined;
}
