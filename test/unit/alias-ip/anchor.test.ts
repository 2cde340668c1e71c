/**
 * The local-route anchor: the commands TapLocalAnchor runs (device created
 * once, brought up, IPv4 local routes replaced through it, IPv6 left alone,
 * a missing route on removal tolerated), its failures, and the manager's
 * ordering (anchored after the add, unanchored before the delete, a failing
 * anchor costing nothing but a warning).
 */
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AliasIpError, AliasIpManager, AliasSpec, LocalAnchorPort, TapLocalAnchor } from '../../../src/alias-ip';
import { Alias, parseAlias } from '../../../src/alias-ip/address';
import { FakeAddresses, FakeLink, silentLogger } from './fakes';

const V4: AliasSpec = { address: '198.18.0.10', prefix: 24, interface: 'eth1' };
const V6: AliasSpec = { address: 'fd00:7157::50', prefix: 64, interface: 'eth1' };

function anchorWith(fail: RegExp | null = null, tapFails = false): { anchor: TapLocalAnchor; commands: string[]; opened: string[]; fds: number[] } {
  const commands: string[] = [];
  const opened: string[] = [];
  const fds: number[] = [];
  const anchor = new TapLocalAnchor({
    name: 'twa-test',
    run: async (args) => {
      const line = args.join(' ');
      commands.push(line);
      if (fail && fail.test(line)) throw new AliasIpError('ECOMMAND', `ip ${line}: exit 2: RTNETLINK answers: No such process`);
      return '';
    },
    openTap: (name) => {
      if (tapFails) throw Object.assign(new Error('EPERM: Operation not permitted, open \'/dev/net/tun\''), { code: 'EPERM' });
      opened.push(name);
      const fd = openSync('/dev/null', 'r'); // a real descriptor for close() to close
      fds.push(fd);
      return fd;
    },
  });
  return { anchor, commands, opened, fds };
}

describe('TapLocalAnchor', () => {
  it('creates its device once, brings it up, and routes each IPv4 alias locally through it', async () => {
    const { anchor, commands, opened } = anchorWith();
    await anchor.anchor(parseAlias(V4));
    await anchor.anchor(parseAlias({ ...V4, address: '198.18.0.11' }));
    expect(opened).toEqual(['twa-test']);
    expect(commands).toEqual([
      'link set dev twa-test up',
      '-4 route replace local 198.18.0.10 dev twa-test table local',
      '-4 route replace local 198.18.0.11 dev twa-test table local',
    ]);
    await anchor.unanchor(parseAlias(V4));
    expect(commands.at(-1)).toBe('-4 route del local 198.18.0.10 dev twa-test table local');
    anchor.close();
  });

  it('leaves IPv6 aliases alone (their local routes belong to the address)', async () => {
    const { anchor, commands, opened } = anchorWith();
    await anchor.anchor(parseAlias(V6));
    await anchor.unanchor(parseAlias(V6));
    expect(opened).toEqual([]);
    expect(commands).toEqual([]);
  });

  it('tolerates a route already gone on removal, and reports other failures', async () => {
    const gone = anchorWith(/route del/);
    await gone.anchor.anchor(parseAlias(V4));
    await expect(gone.anchor.unanchor(parseAlias(V4))).resolves.toBeUndefined();
    gone.anchor.close();
    const broken = anchorWith(/route replace/);
    await expect(broken.anchor.anchor(parseAlias(V4))).rejects.toThrow(/No such process/);
    broken.anchor.close();
  });

  it('says why it cannot create the device (EANCHOR), and tries again next time', async () => {
    const { anchor } = anchorWith(null, true);
    const err = await anchor.anchor(parseAlias(V4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AliasIpError);
    expect((err as AliasIpError).code).toBe('EANCHOR');
    expect((err as Error).message).toMatch(/cannot create the anchor device twa-test: EPERM/);
    await expect(anchor.ready()).rejects.toThrow(/EANCHOR|cannot create/);
  });

  it('closes its descriptor once and is unusable afterwards', async () => {
    const { anchor, fds } = anchorWith();
    await anchor.ready();
    anchor.close();
    expect(() => closeSync(fds[0]!)).toThrow(/EBADF/);
    anchor.close();
    await expect(anchor.anchor(parseAlias(V4))).rejects.toThrow(/closed/);
  });
});

class RecordingAnchor implements LocalAnchorPort {
  readonly events: string[] = [];
  failing = false;
  constructor(private readonly addresses: FakeAddresses) {}
  async anchor(alias: Alias): Promise<void> {
    if (this.failing) throw new AliasIpError('EANCHOR', 'no /dev/net/tun');
    this.events.push(`anchor ${alias.address} (addresses: ${this.addresses.addresses('eth1').join(' ')})`);
  }
  async unanchor(alias: Alias): Promise<void> {
    this.events.push(`unanchor ${alias.address} (addresses: ${this.addresses.addresses('eth1').join(' ')})`);
  }
  close(): void {
    this.events.push('close');
  }
}

describe('AliasIpManager with an anchor', () => {
  function setup(): { manager: AliasIpManager; anchor: RecordingAnchor; addresses: FakeAddresses; warnings: string[] } {
    const addresses = new FakeAddresses(['eth1']);
    addresses.configure('eth1', '198.18.0.1', 24);
    const anchor = new RecordingAnchor(addresses);
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_o: object, m: string) => void warnings.push(m) };
    const manager = new AliasIpManager({ interfaces: ['eth1'], addressBackend: addresses, link: new FakeLink(), logger, anchor });
    return { manager, anchor, addresses, warnings };
  }

  it('anchors after the address is configured, and unanchors before it is deleted', async () => {
    const { manager, anchor } = setup();
    await manager.add(V4);
    await manager.remove(V4);
    expect(anchor.events).toEqual([
      'anchor 198.18.0.10 (addresses: 198.18.0.1/24 198.18.0.10/24)',
      'unanchor 198.18.0.10 (addresses: 198.18.0.1/24 198.18.0.10/24)',
    ]);
  });

  it('anchors an address it adopts, unanchors on removeAll, and deletes the device when the guard is released', async () => {
    const { manager, anchor, addresses } = setup();
    addresses.configure('eth1', '198.18.0.10', 24); // left behind by a crashed run
    expect(await manager.add(V4)).toEqual({ changed: false });
    await manager.removeAll();
    await manager.releaseGuard();
    expect(anchor.events.map((e) => e.split(' (')[0])).toEqual(['anchor 198.18.0.10', 'unanchor 198.18.0.10', 'close']);
  });

  it('serves the address without the anchor when it fails, warning once', async () => {
    const { manager, anchor, warnings } = setup();
    anchor.failing = true;
    expect(await manager.add(V4)).toEqual({ changed: true });
    expect(await manager.add({ ...V4, address: '198.18.0.11' })).toEqual({ changed: true });
    expect(await manager.isServed(V4)).toBe(true);
    expect(warnings.filter((w) => /cannot anchor/.test(w))).toHaveLength(1);
  });
});
