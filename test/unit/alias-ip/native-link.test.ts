/**
 * The native link-layer functions, without sending anything: interface
 * lookup of the loopback device, and the argument and errno paths of
 * packetSend, all of which fail before a frame could leave. (Frames are sent
 * only in test/e2e, inside network namespaces the test creates.)
 */
import { describe, expect, it } from 'vitest';
import { AliasIpError } from '../../../src/alias-ip/errors';
import { nativeLinkLayer } from '../../../src/alias-ip/link';
import { packetIo } from '../../../src/block/native';

describe('interfaceInfo', () => {
  it('reports index, MAC, MTU and hardware type of lo', () => {
    expect(packetIo.interfaceInfo('lo')).toEqual({ index: 1, mac: '00:00:00:00:00:00', mtu: expect.any(Number), hwType: 772 });
    const info = nativeLinkLayer.info('lo');
    expect(info.mac).toEqual(Buffer.alloc(6));
    expect(info.mtu).toBeGreaterThanOrEqual(1280);
  });

  it('fails with ENODEV for a missing interface, naming the ioctl', () => {
    expect(() => packetIo.interfaceInfo('tsan-none0')).toThrow(
      expect.objectContaining({ code: 'ENODEV', errno: 19, syscall: 'ioctl(SIOCGIFINDEX)', path: 'tsan-none0' }),
    );
    let caught: unknown;
    try {
      nativeLinkLayer.info('tsan-none0');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AliasIpError);
    expect(caught).toMatchObject({ code: 'ELINK', sysCode: 'ENODEV' });
    expect((caught as Error).message).toMatch(/^interface lookup on tsan-none0 failed: ENODEV/);
  });

  it('refuses names the kernel could not hold', () => {
    expect(() => packetIo.interfaceInfo('')).toThrow(RangeError);
    expect(() => packetIo.interfaceInfo('x'.repeat(16))).toThrow(RangeError);
    expect(() => packetIo.interfaceInfo('a/b')).toThrow(RangeError);
    expect(() => packetIo.interfaceInfo(7 as unknown as string)).toThrow(TypeError);
  });
});

describe('packetSend argument and errno paths', () => {
  it('checks the frame before anything else', () => {
    expect(() => packetIo.packetSend('tsan-none0', 'frame' as unknown as Buffer)).toThrow(TypeError);
    expect(() => packetIo.packetSend('tsan-none0', Buffer.alloc(13))).toThrow(RangeError);
  });

  it('fails with ENODEV for a missing interface', () => {
    expect(() => packetIo.packetSend('tsan-none0', Buffer.alloc(60))).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });
});
