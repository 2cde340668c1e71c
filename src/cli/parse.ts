/** Parsers for command-line values; each throws an Error naming the option. */
import { InvalidArgumentError } from 'commander';

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

/** "1073741824", "1G", "512MiB", "10GB" → bytes. */
export function parseSize(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError(`"${value}" is not a size (bytes, or a number with K/M/G/T, KiB/MiB/GiB/TiB, KB/MB/GB/TB)`);
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidArgumentError(`size "${value}" must be a positive whole number of bytes`);
  return bytes;
}

/** "HOST:PORT", "[v6]:PORT" or "PORT" → { host, port }. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError(`"${value}" is not HOST:PORT`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`port ${m[3]} out of range 0-65535`);
  return { host: m[1] || m[2] || '0.0.0.0', port };
}

/** "USER:SECRET" → credentials (the secret may contain colons). */
export function parseCredentials(value: string): { user: string; secret: string } {
  const i = value.indexOf(':');
  if (i <= 0 || i === value.length - 1) throw new InvalidArgumentError('expected USER:SECRET');
  const secret = value.slice(i + 1);
  if (Buffer.byteLength(secret) < 12 || Buffer.byteLength(secret) > 255) {
    // RFC 7143 §9.2.1: secrets shorter than 96 bits are too easy to guess offline.
    throw new InvalidArgumentError('CHAP secret must be 12 to 255 bytes long');
  }
  return { user: value.slice(0, i), secret };
}

/** An iSCSI name: iqn., eui. or naa. form (RFC 7143 §4.2.7). */
export function parseIqn(value: string): string {
  const ok =
    /^iqn\.\d{4}-\d{2}(\.[a-z0-9-]+)+(:[^\s]+)?$/.test(value) || /^eui\.[0-9A-F]{16}$/.test(value) || /^naa\.[0-9A-F]{16}([0-9A-F]{16})?$/.test(value);
  if (!ok || Buffer.byteLength(value) > 223) {
    throw new InvalidArgumentError(`"${value}" is not a valid iSCSI name (e.g. iqn.2026-11.io.twinsan:vol0, lower case)`);
  }
  return value;
}

export function parseBlockSize(value: string): 512 | 4096 {
  if (value === '512') return 512;
  if (value === '4096') return 4096;
  throw new InvalidArgumentError('block size must be 512 or 4096');
}

/** A physical block size: a power of two from 512 to 1 MiB. */
export function parsePhysicalBlockSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 512 || n > 1024 * 1024 || (n & (n - 1)) !== 0) {
    throw new InvalidArgumentError('physical block size must be a power of two from 512 to 1048576');
  }
  return n;
}
