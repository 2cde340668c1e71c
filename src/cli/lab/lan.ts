/**
 * A switched LAN of namespaces: one switch namespace holding a Linux bridge
 * (no STP, no multicast snooping, so floods and ff02::1 reach every port
 * at once), and one namespace per station, each with an `eth1` wired by a
 * veth pair to a bridge port. Both veth ends are created directly inside
 * their namespaces; nothing is ever created in the root namespace.
 *
 *   <prefix>-sw: br0 ─┬─ p-a ══ eth1 (<prefix>-a)
 *                     ├─ p-b ══ eth1 (<prefix>-b)
 *                     └─ p-h ══ eth1 (<prefix>-h)
 */
import { Namespace, NamespaceOptions } from './netns';

export const STATION_IFNAME = 'eth1';

export interface StationSpec {
  /** Role name; the namespace is <prefix>-<name>, the bridge port p-<name> (at most 13 characters). */
  readonly name: string;
  /** Fixed address with prefix, e.g. '198.18.1.1/24' (tests use 198.18.0.0/15 only). */
  readonly ipv4?: string;
  /** Fixed address with prefix, e.g. 'fd00:7157::1/64' (added nodad). */
  readonly ipv6?: string;
  /**
   * Learn new neighbours from gratuitous ARP / unsolicited NA, as many
   * routers do: arp_accept=1, and IPv6 forwarding=1 with accept_untracked_na=1
   * on eth1 (the kernel takes untracked NAs only on a router interface).
   * Otherwise kernel defaults: only entries already there are updated.
   */
  readonly learnUnsolicited?: boolean;
}

export interface Neighbour {
  readonly dst: string;
  readonly lladdr?: string;
  readonly state: readonly string[];
}

export class Station {
  constructor(
    readonly name: string,
    readonly ns: Namespace,
    /** MAC of its eth1, lower case. */
    readonly mac: string,
    readonly spec: StationSpec,
  ) {}

  readonly ifname = STATION_IFNAME;

  /** The neighbour entry for `address` on eth1, if any (`ip -json neigh show to ADDR dev eth1`). */
  async neighbour(address: string): Promise<Neighbour | undefined> {
    const family = address.includes(':') ? '-6' : '-4';
    const entries = await this.ns.ipJson<Neighbour[]>(family, 'neigh', 'show', 'to', address, 'dev', STATION_IFNAME);
    return entries.find((entry) => entry.dst === address);
  }

  /** Polls until the neighbour entry has `mac` (or `timeoutMs` passes); resolves with the last entry seen. */
  async waitForNeighbour(address: string, mac: string, timeoutMs = 2000): Promise<Neighbour | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const entry = await this.neighbour(address);
      if (entry?.lladdr === mac || Date.now() >= deadline) return entry;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Addresses on eth1 as 'A/P' strings (`ip -json addr show dev eth1`). */
  async addresses(): Promise<string[]> {
    const links = await this.ns.ipJson<{ addr_info: { local: string; prefixlen: number; scope: string }[] }[]>(
      'addr',
      'show',
      'dev',
      STATION_IFNAME,
    );
    return links.flatMap((l) => l.addr_info.filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`));
  }
}

export interface Lan {
  /** The namespace names' common prefix. */
  readonly prefix: string;
  readonly switchNs: Namespace;
  readonly stations: ReadonlyMap<string, Station>;
  station(name: string): Station;
  /** Deletes every namespace of the LAN (stations first). Idempotent. */
  destroy(): Promise<void>;
}

/**
 * Builds the LAN: namespaces `<prefix>-sw` and `<prefix>-<station>`. On any
 * failure destroys what it had made and rethrows.
 */
export async function createLan(prefix: string, specs: readonly StationSpec[], options: NamespaceOptions = {}): Promise<Lan> {
  const made: Namespace[] = [];
  const stations = new Map<string, Station>();
  try {
    const sw = await Namespace.create(`${prefix}-sw`, options);
    made.push(sw);
    await sw.ip('link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0', 'forward_delay', '0');
    await sw.ip('link', 'set', 'br0', 'up');
    for (const spec of specs) {
      const ns = await Namespace.create(`${prefix}-${spec.name}`, options);
      made.push(ns);
      const port = `p-${spec.name}`;
      await sw.ip('link', 'add', port, 'type', 'veth', 'peer', 'name', STATION_IFNAME, 'netns', ns.name);
      await sw.ip('link', 'set', port, 'master', 'br0');
      await sw.ip('link', 'set', port, 'up');
      if (spec.learnUnsolicited) {
        await ns.sysctl(`net.ipv4.conf.${STATION_IFNAME}.arp_accept`, 1);
        // The kernel honours accept_untracked_na only on a forwarding (router) interface.
        await ns.sysctl(`net.ipv6.conf.${STATION_IFNAME}.forwarding`, 1);
        await ns.sysctl(`net.ipv6.conf.${STATION_IFNAME}.accept_untracked_na`, 1);
      }
      if (spec.ipv4) await ns.ip('addr', 'add', spec.ipv4, 'dev', STATION_IFNAME);
      if (spec.ipv6) await ns.ip('addr', 'add', spec.ipv6, 'dev', STATION_IFNAME, 'nodad');
      await ns.ip('link', 'set', STATION_IFNAME, 'up');
      const [link] = await ns.ipJson<{ address: string }[]>('link', 'show', 'dev', STATION_IFNAME);
      stations.set(spec.name, new Station(spec.name, ns, link!.address.toLowerCase(), spec));
    }
  } catch (err) {
    for (const ns of made.reverse()) await ns.destroy();
    throw err;
  }
  let destroyed = false;
  return {
    prefix,
    switchNs: made[0]!,
    stations,
    station(name) {
      const s = stations.get(name);
      if (!s) throw new Error(`no station ${name} in this LAN`);
      return s;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const ns of [...made].reverse()) await ns.destroy();
    },
  };
}
