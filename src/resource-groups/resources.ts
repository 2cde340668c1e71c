/**
 * The resources of a resource group, in start order (group.ts runs them):
 *
 *   mirror      promote each volume (a new generation id); stop: demote
 *   scsi-state  build each volume's device with its reservations restored from the
 *               snapshot the previous owner replicated; stop: forget the devices
 *   alias-ips   add the RG's addresses; stop: remove them (a move: once the peer serves them)
 *   announce    GARP burst (refresh later) / unsolicited NA; stop: nothing (remove cancels the refresh)
 *   targets     add one target per volume, listed at the alias IPs, and listen there
 *               (commands get NOT READY, ALUA transitioning, until 'alua'); stop: unlisten, remove the targets
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
}

export interface AliasIpPort {
  add(spec: AliasIpConfig): Promise<unknown>;
  remove(spec: AliasIpConfig): Promise<unknown>;
  announce(spec: AliasIpConfig): Promise<unknown>;
}

export function aliasIpResource(aliases: AliasIpPort, specs: readonly AliasIpConfig[]): Resource {
  const removeAll = async (): Promise<void> => {
    for (const s of [...specs].reverse()) await aliases.remove(s);
  };
  return {
    name: 'alias-ips',
    // Adding the address (a spawn of ip, tens of ms) overlaps the promotion: until 'targets'
    // nothing listens on it, so an early initiator is refused and retries.
    startsAlongside: true,
    async start() {
      for (const s of specs) await aliases.add(s);
    },
    async stop(reason: StopReason) {
      // A move keeps the addresses until the peer serves them (handedOver): with the targets gone,
      // a reconnecting initiator is refused at once (RST) and retries, where a vanished address
      // would leave its SYN unanswered for a whole retransmission timeout (1 s). The peer's GARP
      // moves the initiators over; the overlap is the move's own few tens of ms.
      if (reason !== 'move') await removeAll();
    },
    handedOver: removeAll,
  };
}

export function announceResource(aliases: AliasIpPort, specs: readonly AliasIpConfig[]): Resource {
  return {
    name: 'announce',
    async start() {
      // The burst runs on; waiting for it would delay the targets by ~1 s.
      for (const s of specs) void aliases.announce(s).catch(() => undefined);
    },
    async stop() {},
  };
}

export interface TargetServerPort<D extends ServedDevice> {
  addTarget(device: D, portals: readonly string[]): void;
  removeTarget(iqn: string): Promise<void>;
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
    private readonly specs: readonly AliasIpConfig[],
    private readonly port: number,
  ) {}
  async start(): Promise<void> {
    const portals = this.specs.map((s) => s.address);
    for (const d of this.state.devices()) {
      if (this.server.hasTarget(d.iqn)) continue;
      d.setAvailability(0, 'transitioning');
      this.server.addTarget(d, portals);
    }
    for (const a of portals) {
      if (this.listening.has(a)) continue;
      await this.server.listen(a, this.port);
      this.listening.add(a);
    }
  }
  async stop(): Promise<void> {
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

/** The six resources of one RG, in start order. */
export function resourceGroupResources<D extends ServedDevice>(parts: {
  volumes: readonly PromotableVolume[];
  buildDevices: () => Promise<D[]>;
  aliases: AliasIpPort;
  aliasIps: readonly AliasIpConfig[];
  server: TargetServerPort<D>;
  iscsiPort: number;
  forcePromote?: () => boolean;
  /** Bound on a planned move's drain (default DEFAULT_MOVE_DRAIN_MS). */
  drainMs?: number;
}): Resource[] {
  const state = new ScsiStateResource(parts.buildDevices);
  return [
    mirrorResource(parts.volumes, { force: parts.forcePromote }),
    state,
    aliasIpResource(parts.aliases, parts.aliasIps),
    announceResource(parts.aliases, parts.aliasIps),
    new TargetsResource(parts.server, state, parts.aliasIps, parts.iscsiPort),
    aluaResource(state, parts.drainMs),
  ];
}
