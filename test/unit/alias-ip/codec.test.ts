/**
 * The announcement codecs, byte for byte. Expected frames are written out
 * field by field from RFC 826 / RFC 4861, not produced by the encoders; the
 * ICMPv6 checksum was computed separately and is also re-verified here by
 * summing the pseudo-header and message the way a receiver does.
 */
import { describe, expect, it } from 'vitest';
import { encodeGratuitousArp } from '../../../src/alias-ip/arp';
import { ethernetFrame, formatMac, ipv6MulticastMac, isUsableSourceMac, parseMac } from '../../../src/alias-ip/ethernet';
import { ALL_NODES, encodeUnsolicitedNa, icmpv6Checksum } from '../../../src/alias-ip/ndisc';

const MAC = Buffer.from('0274736e000a', 'hex'); // 02:74:73:6e:00:0a
const IPV4 = Buffer.from([198, 18, 0, 10]);
const IPV6 = Buffer.from('fd007157000000000000000000000050', 'hex'); // fd00:7157::50

const hex = (...parts: string[]): Buffer => Buffer.from(parts.join('').replace(/\s+/g, ''), 'hex');

describe('gratuitous ARP', () => {
  it('encodes the request form: broadcast, op 1, sender = target = the address, target MAC zero', () => {
    const expected = hex(
      'ffffffffffff', // destination: broadcast
      '0274736e000a', // source: our MAC
      '0806', // EtherType ARP
      '0001 0800 06 04', // htype Ethernet, ptype IPv4, hlen 6, plen 4
      '0001', // op: request
      '0274736e000a c612000a', // sender MAC, sender IP 198.18.0.10
      '000000000000 c612000a', // target MAC (ignored), target IP = sender IP
      '00'.repeat(18), // padding to 60 bytes
    );
    const frame = encodeGratuitousArp({ mac: MAC, address: IPV4, form: 'request' });
    expect(frame.length).toBe(60);
    expect(frame.toString('hex')).toBe(expected.toString('hex'));
  });

  it('encodes the reply form: op 2 and target MAC = sender MAC (Linux treats it as gratuitous only then)', () => {
    const expected = hex(
      'ffffffffffff 0274736e000a 0806',
      '0001 0800 06 04 0002',
      '0274736e000a c612000a',
      '0274736e000a c612000a',
      '00'.repeat(18),
    );
    expect(encodeGratuitousArp({ mac: MAC, address: IPV4, form: 'reply' }).toString('hex')).toBe(expected.toString('hex'));
  });

  it('refuses addresses of the wrong size', () => {
    expect(() => encodeGratuitousArp({ mac: MAC, address: IPV6, form: 'request' })).toThrow(RangeError);
    expect(() => encodeGratuitousArp({ mac: MAC.subarray(0, 5), address: IPV4, form: 'request' })).toThrow(RangeError);
  });
});

describe('unsolicited neighbour advertisement', () => {
  const expected = hex(
    '333300000001', // destination: all-nodes multicast MAC
    '0274736e000a', // source: our MAC
    '86dd', // EtherType IPv6
    '60000000', // version 6, traffic class 0, flow label 0
    '0020 3a ff', // payload length 32, next header ICMPv6, hop limit 255
    'fd007157000000000000000000000050', // source: the announced address
    'ff020000000000000000000000000001', // destination: ff02::1
    '88 00 0363', // type 136 (NA), code 0, checksum
    '20000000', // flags: Override only (R=0, S=0), reserved
    'fd007157000000000000000000000050', // target address
    '02 01 0274736e000a', // option: target link-layer address, length 1 (8 bytes), MAC
  );

  it('encodes to ff02::1 with the Override flag, hop limit 255 and the target link-layer address option', () => {
    const frame = encodeUnsolicitedNa({ mac: MAC, target: IPV6 });
    expect(frame.length).toBe(86);
    expect(frame.toString('hex')).toBe(expected.toString('hex'));
  });

  it('carries a checksum a receiver verifies (pseudo-header plus message sums to 0xffff)', () => {
    const frame = encodeUnsolicitedNa({ mac: MAC, target: IPV6 });
    const message = frame.subarray(54);
    let sum = 0;
    const add = (b: Buffer): void => {
      for (let i = 0; i < b.length; i += 2) sum += b.readUInt16BE(i);
    };
    add(frame.subarray(22, 38)); // source
    add(frame.subarray(38, 54)); // destination
    sum += message.length + 58; // upper-layer length, next header
    add(message);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
  });

  it('sets Router and clears Override when asked', () => {
    const frame = encodeUnsolicitedNa({ mac: MAC, target: IPV6, override: false, router: true });
    expect(frame[58]).toBe(0x80);
    const zeroed = Buffer.from(frame.subarray(54));
    zeroed.writeUInt16BE(0, 2);
    expect(frame.readUInt16BE(56)).toBe(icmpv6Checksum(IPV6, ALL_NODES, zeroed));
  });

  it('refuses addresses of the wrong size', () => {
    expect(() => encodeUnsolicitedNa({ mac: MAC, target: IPV4 })).toThrow(RangeError);
  });
});

describe('ethernet helpers', () => {
  it('parses and formats MACs', () => {
    expect(parseMac('02:74:73:6E:00:0A')).toEqual(MAC);
    expect(parseMac('02-74-73-6e-00-0a')).toEqual(MAC);
    expect(formatMac(MAC)).toBe('02:74:73:6e:00:0a');
    expect(() => parseMac('02:74:73:6e:00')).toThrow(RangeError);
    expect(() => parseMac('zz:74:73:6e:00:0a')).toThrow(RangeError);
  });

  it('maps an IPv6 group to its 33:33 MAC', () => {
    expect(formatMac(ipv6MulticastMac(ALL_NODES))).toBe('33:33:00:00:00:01');
    expect(formatMac(ipv6MulticastMac(Buffer.from('ff0200000000000000000001ff000050', 'hex')))).toBe('33:33:ff:00:00:50');
  });

  it('accepts only unicast, non-zero source MACs', () => {
    expect(isUsableSourceMac(MAC)).toBe(true);
    expect(isUsableSourceMac(Buffer.alloc(6))).toBe(false);
    expect(isUsableSourceMac(Buffer.from('0180c2000000', 'hex'))).toBe(false);
  });

  it('pads short frames to 60 bytes and leaves long ones alone', () => {
    expect(ethernetFrame(MAC, MAC, 0x0806, Buffer.alloc(10, 1)).length).toBe(60);
    expect(ethernetFrame(MAC, MAC, 0x86dd, Buffer.alloc(100, 1)).length).toBe(114);
  });
});
