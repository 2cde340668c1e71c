/**
 * The resources of a resource group, in start order (group.ts runs them):
 *
 *   mirror      promote each volume (a new generation id); stop: demote
 *   scsi-state  build each volume's device with its reservations restored from the
 *               snapshot the previous owner replicated; stop: forget the devices
 *   alias-ips   add the RG's addresses; stop: remove them (a move: once the peer serves them)
 *   announce    GARP burst (refresh later) / unsolicited NA; stop: nothing (remove cancels the refresh)
 *   targets     add one target per volume, listed at the alias IPs, and listen there
 *               (commands get NOT READY, ALUA transitioning, until 'alua'); stop: stop replicating the
 *               live SCSI state (dropped sessions are no nexus loss of the initiators'), unlisten, remove the targets
 *   alua        every LU online (active/optimized); stop for a move: quiesce (new commands BUSY) and
 *               wait for the accepted ones to be answered, bounded (past the bound the LUs go back
 *               online and the move is abandoned: group.ts), then hand the final live SCSI state to
 *               the peer; stop otherwise: TRANSITIONING (NOT READY, ALUA transitioning)
 *
 * mirror, scsi-state and alias-ips start together (startsAlongside): none
 * needs another, and none serves anything before 'targets'.
 *
 * Each one is idempotent: it remembers what it did and does it only once;
 * its stop undoes only what is there. Written against narrow ports so the
 * unit tests drive them with fakes.
 */
import type { Resource, StopReason } from './group';
import type { AliasIpConfig } from './config';

export interface PromotableVolume {
  readonly volumeId: string;
  readonly role: 'primary' | 'secondary';
  promote(options?: { force?: boolean }): Promise<void>;
  demote(): Promise<void>;
}

export function mirrorResource(volumes: readonly PromotableVolume[], options: { force?: () => boolean } = {}): Resource {
  return {
    name: 'mirror',
    async start() {
      for (const v of volumes) if (v.role !== 'primary') await v.promote({ force: options.force?.() ?? false });
    },
    async stop() {
      for (const v of [...volumes].reverse()) if (v.role === 'primary') await v.demote();
    },
  };
}

/** What the targets resource needs of one volume's SCSI device. */
export interface ServedDevice {
  /** The iSCSI target name. */
  readonly iqn: string;
  setAvailability(lun: number, availability: 'online' | 'transitioning' | 'moving'): void;
  /** New commands BUSY; resolves once the accepted ones are answered, or at the bound with drained false. */
  quiesce(timeoutMs: number): Promise<{ readonly drained: boolean; readonly inFlight: number }>;
  /** Take commands again (a quiesce that did not drain). */
  resume(): void;
  /** After the drain: put the final live SCSI state (reservations, unit attentions) on the peer, and stop replicating it. */
  handOver(): Promise<void>;
  /** Stop replicating the live SCSI state: what dropping the group's sessions releases is not passed on. */
  detachState(): void;
}

/** How long a planned move waits for in-flight commands before it gives up (and serves on here). */
export const DEFAULT_MOVE_DRAIN_MS = 5000;

export class DrainTimeoutError extends Error {
  override readonly name = 'DrainTimeoutError';
  constructor(
    readonly inFlight: number,
    readonly timeoutMs: number,
  ) {
    super(`${inFlight} command(s) still running after ${timeoutMs} ms`);
  }
}

/** Builds each volume's device (reservations and unit attentions restored); the built ones are kept for 'targets'. */
export class ScsiStateResource<D extends ServedDevice> implements Resource {
  readonly name = 'scsi-state';
  // Building the devices reads only the replicated state and the APTPL file, not the promoted volume.
  readonly startsAlongside = true;
  private built: D[] | null = null;
  constructor(private readonly build: () => Promise<D[]>) {}
  devices(): readonly D[] {
    return this.built ?? [];
  }
  async start(): Promise<void> {
    this.built ??= await this.build();
  }
  async stop(): Promise<void> {
    this.built = null;
  }
  /** A volume's device added to a started group (a volume created in it at run time). */
  add(device: D): void {
    this.built?.push(device);
  }
  /** A volume's device taken out of a started group; the device, if it was there. */
  remove(iqn: string): D | null {
    const i = this.built?.findIndex((d) => d.iqn === iqn) ?? -1;
    return i >= 0 ? this.built!.splice(i, 1)[0]! : null;
  }
}

export interface AliasIpPort {
  add(spec: AliasIpConfig): Promise<unknown>;
  remove(spec: AliasIpConfig): Promise<unknown>;
  announce(spec: AliasIpConfig): Promise<unknown>;
}

/**
 * The RG's alias IPs: every resource reads them at its start, and a change at run time
 * (changeAliases) replaces them here once, for all of them.
 */
export class GroupAddresses {
  constructor(private current: readonly AliasIpConfig[]) {}
  get specs(): readonly AliasIpConfig[] {
    return this.current;
  }
  get addresses(): string[] {
    return this.current.map((s) => s.address);
  }
  set(next: readonly AliasIpConfig[]): void {
    this.current = next;
  }
}

const aliasKey = (s: AliasIpConfig): string => `${s.address}/${s.prefix}@${s.interface}`;

/** The alias IPs this node holds for the group: added on start, the ones no longer wanted removed by prune(). */
export class AliasIpResource implements Resource {
  readonly name = 'alias-ips';
  // Adding the address (a spawn of ip, tens of ms) overlaps the promotion: until 'targets'
  // nothing listens on it, so an early initiator is refused and retries.
  readonly startsAlongside = true;
  /** What this node added (or was adding when it failed): what a stop removes. */
  private readonly held = new Map<string, AliasIpConfig>();
  constructor(
    private readonly aliases: AliasIpPort,
    private readonly addresses: GroupAddresses,
  ) {}
  async start(): Promise<void> {
    await this.addMissing();
  }
  /** Adds the group's addresses not held yet; resolves with those it added. */
  async addMissing(): Promise<AliasIpConfig[]> {
    const added: AliasIpConfig[] = [];
    for (const s of this.addresses.specs) {
      if (this.held.has(aliasKey(s))) continue;
      this.held.set(aliasKey(s), s);
      await this.aliases.add(s);
      added.push(s);
    }
    return added;
  }
  async stop(reason: StopReason): Promise<void> {
    // A move keeps the addresses until the peer serves them (handedOver): with the targets gone,
    // a reconnecting initiator is refused at once (RST) and retries, where a vanished address
    // would leave its SYN unanswered for a whole retransmission timeout (1 s). The peer's GARP
    // moves the initiators over; the overlap is the move's own few tens of ms.
    if (reason !== 'move') await this.removeWhere(() => true);
  }
  handedOver(): Promise<void> {
    return this.removeWhere(() => true);
  }
  /** Removes the held addresses the group no longer has (after the targets stopped listening there). */
  prune(): Promise<void> {
    const wanted = new Set(this.addresses.specs.map(aliasKey));
    return this.removeWhere((key) => !wanted.has(key));
  }
  private async removeWhere(pick: (key: string) => boolean): Promise<void> {
    for (const [key, s] of [...this.held].reverse()) {
      if (!pick(key)) continue;
      await this.aliases.remove(s);
      this.held.delete(key);
    }
  }
}

export function aliasIpResource(aliases: AliasIpPort, specs: readonly AliasIpConfig[]): Resource {
  return new AliasIpResource(aliases, new GroupAddresses(specs));
}

export function announceResource(aliases: AliasIpPort, addresses: GroupAddresses): Resource {
  return {
    name: 'announce',
    async start() {
      // The burst runs on; waiting for it would delay the targets by ~1 s.
      for (const s of addresses.specs) void aliases.announce(s).catch(() => undefined);
    },
    async stop() {},
  };
}

export interface TargetServerPort<D extends ServedDevice> {
  addTarget(device: D, portals: readonly string[]): void;
  removeTarget(iqn: string): Promise<void>;
  /** A served target's portals change (sessions through an address left out end). */
  setPortals(iqn: string, portals: readonly string[]): Promise<void>;
  hasTarget(iqn: string): boolean;
  listen(host: string, port: number): Promise<number>;
  unlisten(host: string, port: number): Promise<boolean>;
}

export class TargetsResource<D extends ServedDevice> implements Resource {
  readonly name = 'targets';
  private listening = new Set<string>();
  constructor(
    private readonly server: TargetServerPort<D>,
    private readonly state: ScsiStateResource<D>,
    private readonly addresses: GroupAddresses,
    private readonly port: number,
  ) {}
  async start(): Promise<void> {
    const portals = this.addresses.addresses;
    for (const d of this.state.devices()) {
      if (this.server.hasTarget(d.iqn)) continue;
      d.setAvailability(0, 'transitioning');
      this.server.addTarget(d, portals);
    }
    await this.listenAt(portals);
  }
  /**
   * The group's addresses changed while served: listen at the new ones, list the targets at the
   * current ones only, stop listening at the old ones. The targets stay; their LUs keep taking commands.
   */
  async retarget(): Promise<void> {
    const portals = this.addresses.addresses;
    await this.listenAt(portals);
    for (const d of this.state.devices()) if (this.server.hasTarget(d.iqn)) await this.server.setPortals(d.iqn, portals);
    for (const a of [...this.listening]) {
      if (portals.includes(a)) continue;
      await this.server.unlisten(a, this.port);
      this.listening.delete(a);
    }
  }
  private async listenAt(portals: readonly string[]): Promise<void> {
    for (const a of portals) {
      if (this.listening.has(a)) continue;
      await this.server.listen(a, this.port);
      this.listening.add(a);
    }
  }
  async stop(): Promise<void> {
    // Dropping the sessions is the target's doing, not an I_T nexus loss of the initiators'.
    for (const d of this.state.devices()) d.detachState();
    for (const a of [...this.listening]) {
      await this.server.unlisten(a, this.port);
      this.listening.delete(a);
    }
    for (const d of this.state.devices()) if (this.server.hasTarget(d.iqn)) await this.server.removeTarget(d.iqn);
  }
}

export function aluaResource<D extends ServedDevice>(state: ScsiStateResource<D>, drainMs = DEFAULT_MOVE_DRAIN_MS): Resource {
  return {
    name: 'alua',
    async start() {
      for (const d of state.devices()) d.setAvailability(0, 'online');
    },
    async stop(reason: StopReason) {
      if (reason !== 'move') {
        // NOT READY, ALUA transitioning: retryable.
        for (const d of state.devices()) d.setAvailability(0, 'transitioning');
        return;
      }
      // A move: BUSY (retryable) while the commands already accepted drain.
      const devices = state.devices();
      const outcomes = await Promise.all(devices.map((d) => d.quiesce(drainMs)));
      const running = outcomes.reduce((n, o) => n + o.inFlight, 0);
      if (outcomes.some((o) => !o.drained)) {
        for (const d of devices) d.resume();
        throw new DrainTimeoutError(running, drainMs);
      }
      await Promise.all(devices.map((d) => d.handOver()));
    },
  };
}

export interface GroupResourceParts<D extends ServedDevice> {
  volumes: readonly PromotableVolume[];
  buildDevices: () => Promise<D[]>;
  aliases: AliasIpPort;
  aliasIps: readonly AliasIpConfig[];
  server: TargetServerPort<D>;
  iscsiPort: number;
  forcePromote?: () => boolean;
  /** Bound on a planned move's drain (default DEFAULT_MOVE_DRAIN_MS). */
  drainMs?: number;
}

/** The six resources of one RG, and the change of its alias IPs at run time. */
export interface LiveGroupResources<D extends ServedDevice = ServedDevice> {
  readonly resources: readonly Resource[];
  /**
   * The group's alias IPs become `next`. Served here (`serving`): the new addresses are added and
   * announced (GARP / unsolicited NA), the targets listen and are listed there and nowhere else, then
   * the old addresses go; the targets and their LUs are not stopped. Not served: the next start uses them.
   * Run it between the group's operations (ResourceGroup.whileIdle).
   */
  changeAliases(next: readonly AliasIpConfig[], serving: boolean): Promise<void>;
  /**
   * A volume joins the group. Served here (the volume is primary here already): its device is built,
   * its target added at the group's addresses and brought online; the other volumes' targets are not
   * touched. Either way a later start or takeover promotes and serves it with the others.
   */
  addVolume(volume: PromotableVolume, buildDevice: () => Promise<D>, serving: boolean): Promise<void>;
  /** A volume leaves the group (it is being deleted). Served here: its target goes, the others stay. */
  removeVolume(volumeId: string, iqn: string, serving: boolean): Promise<void>;
}

export function liveGroupResources<D extends ServedDevice>(parts: GroupResourceParts<D>): LiveGroupResources<D> {
  const state = new ScsiStateResource(parts.buildDevices);
  const addresses = new GroupAddresses(parts.aliasIps);
  // The mirror resource reads this list at each start and stop: volumes join and leave at run time.
  const volumes = [...parts.volumes];
  const aliasIps = new AliasIpResource(parts.aliases, addresses);
  const targets = new TargetsResource(parts.server, state, addresses, parts.iscsiPort);
  return {
    resources: [mirrorResource(volumes, { force: parts.forcePromote }), state, aliasIps, announceResource(parts.aliases, addresses), targets, aluaResource(state, parts.drainMs)],
    async changeAliases(next, serving) {
      addresses.set(next);
      if (!serving) return;
      for (const s of await aliasIps.addMissing()) void parts.aliases.announce(s).catch(() => undefined);
      await targets.retarget();
      await aliasIps.prune();
    },
    async addVolume(volume, buildDevice, serving) {
      if (!volumes.some((v) => v.volumeId === volume.volumeId)) volumes.push(volume);
      if (!serving) return;
      if (volume.role !== 'primary') throw new Error(`volume ${volume.volumeId} is not primary here: it cannot join a group served here in place`);
      const device = await buildDevice();
      state.add(device);
      await targets.start();
      device.setAvailability(0, 'online');
    },
    async removeVolume(volumeId, iqn, serving) {
      const i = volumes.findIndex((v) => v.volumeId === volumeId);
      if (i >= 0) volumes.splice(i, 1);
      if (!serving) return;
      // Dropping its sessions is the target's doing, not an I_T nexus loss of the initiators'.
      state.remove(iqn)?.detachState();
      if (parts.server.hasTarget(iqn)) await parts.server.removeTarget(iqn);
    },
  };
}

/** The six resources of one RG, in start order. */
export function resourceGroupResources<D extends ServedDevice>(parts: GroupResourceParts<D>): Resource[] {
  return [...liveGroupResources(parts).resources];
}
