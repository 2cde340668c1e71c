/**
 * Logical unit identity: everything an initiator uses to recognise a volume
 * (INQUIRY vendor/product/revision, VPD 0x80 unit serial number, VPD 0x83
 * NAA and T10 vendor id designators).
 *
 * All of it is derived from the volume id and the configured strings only.
 * It must never depend on the node, the host name, the software version or
 * the time: both nodes of a mirrored pair present the same LU, and
 * multipath keys off these bytes. test/unit/scsi/identity.test.ts pins them.
 *
 * Derivation (frozen; changing it renames every volume):
 * - canonical volume id: trimmed, lower-cased.
 * - unit serial number: a UUID volume id gives its 32 hex digits without
 *   dashes; any other id gives the first 32 hex digits of
 *   SHA-256("twinsan-serial:" + canonical id).
 * - NAA designator, type 6 (IEEE Registered Extended), 16 bytes:
 *     NAA=6 | COMPANY ID (24 bits) | VENDOR SPECIFIC IDENTIFIER (36 bits) |
 *     VENDOR SPECIFIC IDENTIFIER EXTENSION (64 bits)
 *   COMPANY ID is TWINSAN_COMPANY_ID, a fixed value in IEEE CID format
 *   (low nibble of the first octet 0xA: locally administered, not
 *   registered to anyone). The 100 vendor-specific bits are the first 100
 *   bits of SHA-256("twinsan-naa:" + canonical id).
 * - T10 vendor id designator: the 8-byte vendor field followed by the unit
 *   serial number.
 *
 * Both nodes of a pair present byte-identical standard INQUIRY data, VPD
 * 0x80 and the logical unit designators of VPD 0x83 (NAA, T10 vendor id)
 * for a volume. The only bytes that differ between the nodes are the
 * target port designators VPD 0x83 appends after them (association 01b):
 * RELATIVE TARGET PORT IDENTIFIER and TARGET PORT GROUP, which name the
 * port the command came through. They must differ: that is how multipath
 * (ALUA) tells the paths through the two nodes apart while the NAA tells it
 * they lead to one LU. Nothing here may depend on the node, port, host,
 * software or package version: INQUIRY's PRODUCT REVISION LEVEL is a
 * configured string (default IDENTITY_DEFAULTS.revision), not the release.
 */
import { createHash } from 'node:crypto';

/** Fixed 24-bit company id used in NAA designators. Never change it. */
export const TWINSAN_COMPANY_ID = 0x7a5a11;

export const IDENTITY_DEFAULTS = {
  vendor: 'TWINSAN',
  product: 'twinsan volume',
  revision: '0001',
} as const;

export interface LuIdentityOptions {
  /** Stable volume id (normally a UUID); the root of every identifier. */
  readonly volumeId: string;
  /** T10 vendor identification, up to 8 printable ASCII characters. */
  readonly vendor?: string;
  /** Product identification, up to 16 printable ASCII characters. */
  readonly product?: string;
  /** Product revision level, up to 4 printable ASCII characters. */
  readonly revision?: string;
}

export interface LuIdentity {
  readonly volumeId: string;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  /** VPD 0x80 PRODUCT SERIAL NUMBER (ASCII). */
  readonly serial: string;
  /** 16-byte NAA IEEE Registered Extended designator. */
  readonly naa: Buffer;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PRINTABLE = /^[\x20-\x7e]*$/;

function checkAscii(what: string, value: string, max: number): string {
  if (!PRINTABLE.test(value) || value.length > max) {
    throw new RangeError(`${what} must be at most ${max} printable ASCII characters: ${JSON.stringify(value)}`);
  }
  return value;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function canonicalVolumeId(volumeId: string): string {
  const c = volumeId.trim().toLowerCase();
  if (c.length === 0) throw new RangeError('volumeId must not be empty');
  return c;
}

export function unitSerialNumber(volumeId: string): string {
  const c = canonicalVolumeId(volumeId);
  if (UUID.test(c)) return c.replace(/-/g, '');
  return sha256(`twinsan-serial:${c}`).subarray(0, 16).toString('hex');
}

export function naaDesignator(volumeId: string): Buffer {
  const h = sha256(`twinsan-naa:${canonicalVolumeId(volumeId)}`);
  const b = Buffer.alloc(16);
  const cid = TWINSAN_COMPANY_ID;
  b[0] = 0x60 | ((cid >> 20) & 0x0f);
  b[1] = (cid >> 12) & 0xff;
  b[2] = (cid >> 4) & 0xff;
  b[3] = ((cid & 0x0f) << 4) | (h[0]! >> 4);
  for (let i = 4; i < 16; i++) b[i] = ((h[i - 4]! & 0x0f) << 4) | (h[i - 3]! >> 4);
  return b;
}

export function resolveIdentity(options: LuIdentityOptions): LuIdentity {
  const volumeId = canonicalVolumeId(options.volumeId);
  return {
    volumeId,
    vendor: checkAscii('vendor', options.vendor ?? IDENTITY_DEFAULTS.vendor, 8),
    product: checkAscii('product', options.product ?? IDENTITY_DEFAULTS.product, 16),
    revision: checkAscii('revision', options.revision ?? IDENTITY_DEFAULTS.revision, 4),
    serial: unitSerialNumber(volumeId),
    naa: naaDesignator(volumeId),
  };
}

/** An ASCII field left-aligned and padded with spaces to `width` bytes. */
export function asciiField(value: string, width: number): Buffer {
  return Buffer.from(value.padEnd(width, ' ').slice(0, width), 'latin1');
}
