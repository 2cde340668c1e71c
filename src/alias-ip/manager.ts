/**
 * AliasIpManager: the floating (alias) addresses of one node, on the
 * interfaces it was told it may touch.
 *
 * Every action first asks "do we already serve this address?" and does only
 * what is missing, so add, remove and removeAll can be repeated safely (the
 * IPaddr2 discipline): add of a served address and remove of an absent one
 * succeed without a change. Changes are made one at a time (one queue per
 * manager) and, if ip(8) fails because the state changed underneath, the
 * state is read again and the call succeeds when it already holds.
 *
 * Ownership: the manager owns the addresses it added, and, unless
 * `adoptExisting: false`, those add() found already in place (a restart after
 * a crash leaves them behind: left alone at shutdown, two nodes would answer
 * for them). removeAll(), for clean shutdown, removes owned addresses only;
 * remove(spec) removes the address it names whoever put it there, with
 * whatever prefix it has (the intent is "stop serving it").
 *
 * It works in the network namespace of the process: ip(8) and the packet
 * socket both act in the caller's namespace.
 *
 * IPv4 caveat: the kernel deletes the secondaries of a subnet with its
 * primary address unless net.ipv4.conf.IF.promote_secondaries=1. Give an
 * interface its fixed address before any alias in the same subnet, so that
 * the aliases are the secondaries.
 */
import { Alias, AliasSpec, describeSpec, formatAddress, isValidInterfaceName, parseAlias } from './address';
import { AnnounceConfig, AnnounceResult, Announcer, AnnouncerLogger, DEFAULT_ANNOUNCE_CONFIG, resolveAnnounceConfig } from './announcer';
import { AliasIpError } from './errors';
import { LocalAnchorPort } from './anchor';
import { AliasGuardPort } from './guard';
import { AddressBackend, ConfiguredAddress, InterfaceState, IpRoute2 } from './iproute';
import { LinkLayer, nativeLinkLayer } from './link';

export type AliasIpLogger = AnnouncerLogger;

export interface AliasIpManagerOptions {
  /** The only interfaces the manager may touch; anything else is refused with ENOTALLOWED. */
  readonly interfaces: readonly string[];
  /** Announcement defaults (5 rounds 200 ms apart, both ARP forms, refresh after 5 s); announce() may override per call. */
  readonly announce?: Partial<AnnounceConfig>;
  /**
   * IPv6: run duplicate address detection and wait for it (failing with
   * EDADFAILED when another node holds the address). Default false: added
   * `nodad`, as keepalived adds its addresses, so a takeover is immediate.
   */
  readonly ipv6Dad?: boolean;
  /** Bound on the DAD wait; default 5000 ms. */
  readonly dadTimeoutMs?: number;
  /** Whether add() takes ownership of an address it finds already configured. Default true. */
  readonly adoptExisting?: boolean;
  /** Address management; default iproute2. */
  readonly addressBackend?: AddressBackend;
  /** Frame sending; default the native AF_PACKET functions. */
  readonly link?: LinkLayer;
  /** pino-compatible; default silent. */
  readonly logger?: AliasIpLogger;
  /**
   * Told of every owned address (hold before adding, drop after deleting) so
   * it can delete them if this process dies; see guard.ts. Default none.
   */
  readonly guard?: AliasGuardPort;
  /**
   * Routes each IPv4 alias's local delivery through a device that dies with
   * this process (anchor.ts), so a killed node stops answering for its
   * addresses at once. Default none. A failing anchor is logged and the
   * address served without it.
   */
  readonly anchor?: LocalAnchorPort;
}

export interface ChangeResult {
  /** True when the call changed the system (ran ip addr add/del). */
  readonly changed: boolean;
}

const SILENT: AliasIpLogger = { info: () => undefined, warn: () => undefined };
const DAD_POLL_MS = 100;

/** Where an alias's address currently is. */
interface Located {
  readonly iface: InterfaceState | undefined;
  /** On the alias's own interface. */
  readonly here: ConfiguredAddress | undefined;
  /** On some other interface of the namespace. */
  readonly elsewhere: ConfiguredAddress | undefined;
}

export class AliasIpManager {
  private readonly allowed: Set<string>;
  private readonly backend: AddressBackend;
  private readonly announcer: Announcer;
  private readonly announceConfig: AnnounceConfig;
  private readonly logger: AliasIpLogger;
  private readonly ipv6Dad: boolean;
  private readonly dadTimeoutMs: number;
  private readonly adoptExisting: boolean;
  private readonly owned = new Map<string, Alias>();
  private readonly guard: AliasGuardPort | undefined;
  private readonly anchorPort: LocalAnchorPort | undefined;
  private anchorWarned = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: AliasIpManagerOptions) {
    if (!options || !Array.isArray(options.interfaces) || options.interfaces.length === 0) {
      throw new AliasIpError('EINVAL', 'AliasIpManager needs the list of interfaces it may touch');
    }
    const bad = options.interfaces.find((name) => !isValidInterfaceName(name));
    if (bad !== undefined) throw new AliasIpError('EINVAL', `bad interface name in the allowed list: ${JSON.stringify(bad)}`);
    this.allowed = new Set(options.interfaces);
    this.backend = options.addressBackend ?? new IpRoute2();
    this.logger = options.logger ?? SILENT;
    this.announceConfig = resolveAnnounceConfig(DEFAULT_ANNOUNCE_CONFIG, options.announce);
    this.ipv6Dad = options.ipv6Dad ?? false;
    this.dadTimeoutMs = options.dadTimeoutMs ?? 5000;
    this.adoptExisting = options.adoptExisting ?? true;
    this.guard = options.guard;
    this.anchorPort = options.anchor;
    for (const name of this.allowed) void this.guard?.allow(name);
    this.announcer = new Announcer({
      link: options.link ?? nativeLinkLayer,
      stillServed: (alias) => this.served(alias),
      logger: this.logger,
    });
  }

  /** Lets the manager touch one more interface (a resource group added at run time). */
  allow(interfaceName: string): void {
    if (!isValidInterfaceName(interfaceName)) throw new AliasIpError('EINVAL', `bad interface name ${JSON.stringify(interfaceName)}`);
    this.allowed.add(interfaceName);
    void this.guard?.allow(interfaceName);
  }

  /** The interfaces this manager may touch. */
  get interfaces(): string[] {
    return [...this.allowed];
  }

  /** True exactly when add(spec) would have nothing to do: the address is on the interface with this prefix (and not DAD-failed). */
  async isServed(spec: AliasSpec): Promise<boolean> {
    return this.served(this.check(spec));
  }

  /** Configures the address unless it already is. Does not announce: call announce() next. */
  async add(spec: AliasSpec): Promise<ChangeResult> {
    const alias = this.check(spec);
    return this.exclusive(async () => {
      const found = this.assertAddable(alias, await this.locate(alias));
      if (found) {
        if (this.adoptExisting) await this.own(alias);
        if (this.owned.has(alias.key)) await this.anchor(alias);
        if (found.tentative && this.ipv6Dad) await this.awaitDad(alias, false);
        return { changed: false };
      }
      // The guard hears of it before the kernel has it: a death right after the add is covered.
      const wasOwned = this.owned.has(alias.key);
      await this.guard?.hold(alias);
      try {
        await this.backend.add(alias, { dad: this.ipv6Dad });
      } catch (err) {
        // Added by someone else meanwhile? Then the state we want holds.
        if (!this.assertAddable(alias, await this.locate(alias))) {
          if (!wasOwned) await this.guard?.drop(alias);
          throw err;
        }
        if (this.adoptExisting) await this.own(alias);
        else if (!wasOwned) await this.guard?.drop(alias);
        if (this.owned.has(alias.key)) await this.anchor(alias);
        return { changed: false };
      }
      this.owned.set(alias.key, alias);
      await this.anchor(alias);
      this.logger.info({ address: alias.address, prefix: alias.prefix, interface: alias.interface }, 'alias address added');
      if (alias.family === 6 && this.ipv6Dad) await this.awaitDad(alias, true);
      return { changed: true };
    });
  }

  /**
   * Stops serving the address: cancels its announcements at once (a burst
   * in progress sends no further round), then deletes it from the interface
   * if it is there, whatever its prefix length.
   */
  async remove(spec: AliasSpec): Promise<ChangeResult> {
    const alias = this.check(spec);
    this.announcer.cancel(alias.key);
    return this.exclusive(async () => {
      this.announcer.cancel(alias.key); // again: an announce() queued before us may have started one
      const changed = await this.deleteIfPresent(alias);
      this.owned.delete(alias.key);
      await this.guard?.drop(alias); // after the delete: a death before it leaves the guard to delete it
      return { changed };
    });
  }

  /**
   * Announces the address with a burst of gratuitous ARP (IPv4) or
   * unsolicited NA (IPv6), resolving when the first burst has been sent; the
   * refresh burst follows on a timer. Refused with ENOTSERVED when the
   * address is not on the interface: announcing it would steal it.
   */
  async announce(spec: AliasSpec, overrides: Partial<AnnounceConfig> = {}): Promise<AnnounceResult> {
    const alias = this.check(spec);
    const config = resolveAnnounceConfig(this.announceConfig, overrides);
    // The check and the start of the burst happen inside the queue, so a
    // remove() queued after this call cancels the burst it started.
    const started = await this.exclusive(async () => {
      if (!(await this.served(alias))) {
        throw new AliasIpError('ENOTSERVED', `${describeSpec(spec)}: not served by this node, not announcing it`);
      }
      return { burst: this.announcer.announce(alias, config) }; // wrapped: the queue must not wait for the burst
    });
    const result = await started.burst;
    this.logger.info({ address: alias.address, interface: alias.interface, frames: result.framesSent }, 'alias address announced');
    return result;
  }

  /**
   * Clean shutdown: cancels every pending announcement and removes the
   * addresses this manager owns (and nothing else), continuing past
   * failures. Resolves with what it removed; rejects with the first failure
   * once all were tried.
   */
  async removeAll(): Promise<AliasSpec[]> {
    this.announcer.cancelAll();
    return this.exclusive(async () => {
      this.announcer.cancelAll();
      const removed: AliasSpec[] = [];
      const failures: unknown[] = [];
      for (const alias of [...this.owned.values()]) {
        try {
          if (await this.deleteIfPresent(alias)) removed.push(toSpec(alias));
          this.owned.delete(alias.key);
          await this.guard?.drop(alias);
        } catch (err) {
          failures.push(err);
        }
      }
      if (failures.length > 0) throw failures[0];
      return removed;
    });
  }

  /**
   * Clean shutdown, after removeAll(): tells the guard to remove nothing and
   * exit, and deletes the anchor device. An address removeAll() could not delete stays (the guard would
   * fail the same way); the next start-up removes it.
   */
  async releaseGuard(): Promise<void> {
    await this.exclusive(async () => {
      await this.guard?.release();
      this.anchorPort?.close();
    });
  }

  /** The addresses this manager owns (see the class comment). */
  ownedAddresses(): AliasSpec[] {
    return [...this.owned.values()].map(toSpec);
  }

  /** Parses the spec and checks the interface is one we may touch. */
  private check(spec: AliasSpec): Alias {
    const alias = parseAlias(spec);
    if (!this.allowed.has(alias.interface)) {
      throw new AliasIpError(
        'ENOTALLOWED',
        `interface ${alias.interface} is not one this manager may touch (allowed: ${[...this.allowed].join(', ')})`,
      );
    }
    return alias;
  }

  private async own(alias: Alias): Promise<void> {
    if (!this.owned.has(alias.key)) await this.guard?.hold(alias);
    this.owned.set(alias.key, alias);
  }

  private async served(alias: Alias): Promise<boolean> {
    const { here } = await this.locate(alias);
    return here !== undefined && here.prefix === alias.prefix && !here.dadFailed;
  }

  private async locate(alias: Alias): Promise<Located> {
    const links = await this.backend.list();
    const iface = links.find((link) => link.name === alias.interface);
    let here: ConfiguredAddress | undefined;
    let elsewhere: ConfiguredAddress | undefined;
    for (const link of links) {
      for (const address of link.addresses) {
        if (address.family !== alias.family || !address.bytes.equals(alias.bytes)) continue;
        if (link.name === alias.interface) here = address;
        else elsewhere ??= address;
      }
    }
    return { iface, here, elsewhere };
  }

  /** The address if already configured as asked, undefined if it can be added; throws when it cannot. */
  private assertAddable(alias: Alias, { iface, here, elsewhere }: Located): ConfiguredAddress | undefined {
    const where = describeSpec(alias);
    if (!iface) throw new AliasIpError('ENODEV', `${where}: no interface ${alias.interface} in this network namespace`);
    if (elsewhere) {
      throw new AliasIpError('EADDRINUSE', `${where}: ${elsewhere.address} is already configured on ${elsewhere.interface}`);
    }
    if (!here) return undefined;
    if (here.prefix !== alias.prefix) {
      throw new AliasIpError('EPREFIX', `${where}: ${here.address} is configured on ${alias.interface} as /${here.prefix}`);
    }
    if (here.dadFailed) {
      throw new AliasIpError('EDADFAILED', `${where}: duplicate address detection failed: another node holds ${here.address}`);
    }
    return here;
  }

  /** Through the anchor device, when there is one; a failure costs speed at failover, not the address. */
  private async anchor(alias: Alias): Promise<void> {
    if (!this.anchorPort || alias.family !== 4) return;
    try {
      await this.anchorPort.anchor(alias);
    } catch (err) {
      if (!this.anchorWarned) this.logger.warn({ err: (err as Error).message }, 'cannot anchor alias local routes to this process; a crash leaves them to the guard');
      this.anchorWarned = true;
    }
  }

  /**
   * Deletes the address, and first its anchored local route (else the kernel
   * would go on delivering to it). A route that will not go does not keep the
   * address: it is deleted anyway (fencing must not wait on a route), and the
   * route deletion is tried once more after it, failing the call if it stays.
   */
  private async deleteIfPresent(alias: Alias): Promise<boolean> {
    const unanchored = await this.anchorPort?.unanchor(alias).then(
      () => true,
      (err: unknown) => {
        this.logger.warn({ address: alias.address, err: (err as Error).message }, 'cannot remove the anchored local route; deleting the address first');
        return false;
      },
    );
    try {
      return await this.deleteAddress(alias);
    } finally {
      if (unanchored === false) await this.anchorPort!.unanchor(alias);
    }
  }

  private async deleteAddress(alias: Alias): Promise<boolean> {
    const { here } = await this.locate(alias);
    if (!here) return false;
    try {
      await this.backend.remove(here);
    } catch (err) {
      if ((await this.locate(alias)).here) throw err;
      return false; // gone meanwhile
    }
    this.logger.info({ address: here.address, prefix: here.prefix, interface: here.interface }, 'alias address removed');
    return true;
  }

  /** Waits for the tentative flag to clear; on DAD failure removes an address we added and throws. */
  private async awaitDad(alias: Alias, weAdded: boolean): Promise<void> {
    const deadline = Date.now() + this.dadTimeoutMs;
    for (;;) {
      const { here } = await this.locate(alias);
      if (!here) throw new AliasIpError('EDADFAILED', `${describeSpec(alias)}: address vanished during duplicate address detection`);
      if (here.dadFailed) {
        if (weAdded) {
          await this.deleteIfPresent(alias);
          this.owned.delete(alias.key);
          await this.guard?.drop(alias);
        }
        throw new AliasIpError('EDADFAILED', `${describeSpec(alias)}: duplicate address detection failed: another node holds ${formatAddress(alias.bytes)}`);
      }
      if (!here.tentative) return;
      if (Date.now() >= deadline) {
        throw new AliasIpError('EDADFAILED', `${describeSpec(alias)}: still tentative after ${this.dadTimeoutMs} ms of duplicate address detection`);
      }
      await new Promise((resolve) => setTimeout(resolve, DAD_POLL_MS));
    }
  }

  /** Runs `task` after every earlier one has settled. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function toSpec(alias: Alias): AliasSpec {
  return { address: alias.address, prefix: alias.prefix, interface: alias.interface };
}
