/**
 * In-memory stand-ins for the manager's two collaborators: FakeAddresses
 * (an AddressBackend holding a namespace's interfaces and addresses) and
 * FakeLink (a LinkLayer that records frames with their send times).
 */
import { Alias, ipv4Bytes, ipv6Bytes } from '../../../src/alias-ip/address';
import { AliasIpError } from '../../../src/alias-ip/errors';
import { AddressBackend, ConfiguredAddress, InterfaceState } from '../../../src/alias-ip/iproute';
import { LinkInfo, LinkLayer } from '../../../src/alias-ip/link';

export const MAC_ETH1 = Buffer.from('0274736e0001', 'hex');

export class FakeAddresses implements AddressBackend {
  readonly links = new Map<string, ConfiguredAddress[]>();
  readonly calls: string[] = [];
  /** Runs before the next add/remove (to simulate a concurrent change or a failure). */
  beforeNextChange: (() => void) | undefined;

  constructor(interfaces: readonly string[]) {
    for (const name of interfaces) this.links.set(name, []);
  }

  /** Puts an address in place behind the manager's back (as an operator would). */
  configure(ifname: string, address: string, prefix: number, flags: Partial<ConfiguredAddress> = {}): void {
    const family = address.includes(':') ? 6 : 4;
    this.links.get(ifname)!.push({
      interface: ifname,
      family,
      address,
      bytes: family === 4 ? ipv4Bytes(address) : ipv6Bytes(address),
      prefix,
      secondary: false,
      tentative: false,
      dadFailed: false,
      ...flags,
    });
  }

  unconfigure(ifname: string, address: string): void {
    const list = this.links.get(ifname)!;
    this.links.set(ifname, list.filter((a) => a.address !== address));
  }

  addresses(ifname: string): string[] {
    return this.links.get(ifname)!.map((a) => `${a.address}/${a.prefix}`);
  }

  async list(): Promise<InterfaceState[]> {
    return [...this.links].map(([name, addresses], i) => ({ name, index: i + 1, up: true, addresses: [...addresses] }));
  }

  async add(alias: Alias, options: { readonly dad: boolean }): Promise<void> {
    this.calls.push(`add ${alias.address}/${alias.prefix} dev ${alias.interface}${options.dad ? '' : ' nodad'}`);
    this.runHook();
    const list = this.links.get(alias.interface);
    if (!list) throw new AliasIpError('ECOMMAND', `Cannot find device "${alias.interface}"`);
    if (list.some((a) => a.bytes.equals(alias.bytes))) throw new AliasIpError('ECOMMAND', 'Address already assigned', { sysCode: 'EEXIST' });
    this.configure(alias.interface, alias.address, alias.prefix);
  }

  async remove(address: Pick<ConfiguredAddress, 'interface' | 'family' | 'address' | 'prefix'>): Promise<void> {
    this.calls.push(`del ${address.address}/${address.prefix} dev ${address.interface}`);
    this.runHook();
    const list = this.links.get(address.interface)!;
    if (!list.some((a) => a.address === address.address && a.prefix === address.prefix)) {
      throw new AliasIpError('ECOMMAND', 'Address not found', { sysCode: 'EADDRNOTAVAIL' });
    }
    this.unconfigure(address.interface, address.address);
  }

  private runHook(): void {
    const hook = this.beforeNextChange;
    this.beforeNextChange = undefined;
    hook?.();
  }
}

export interface SentFrame {
  readonly ifname: string;
  readonly frame: Buffer;
  readonly at: number;
}

export class FakeLink implements LinkLayer {
  readonly sent: SentFrame[] = [];
  hwType = 1;
  mac: Buffer = MAC_ETH1;
  failSend: Error | undefined;

  info(ifname: string): LinkInfo {
    if (ifname === 'missing0') throw new AliasIpError('ELINK', 'no such device', { sysCode: 'ENODEV' });
    return { index: 2, mac: this.mac, mtu: 1500, hwType: this.hwType };
  }

  send(ifname: string, frame: Buffer): void {
    if (this.failSend) throw this.failSend;
    this.sent.push({ ifname, frame, at: Date.now() });
  }

  /** ARP op (1/2) or 'na' per frame. */
  kinds(): string[] {
    return this.sent.map(({ frame }) => (frame.readUInt16BE(12) === 0x0806 ? `arp${frame.readUInt16BE(20)}` : 'na'));
  }
}

export const silentLogger = { info: (): void => undefined, warn: (): void => undefined };
