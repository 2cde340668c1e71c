/**
 * The local-route anchor: an IPv4 alias dies with the process that serves it.
 *
 * The kernel delivers a packet locally when the local routing table says so,
 * and for a configured address it says so through a route it adds itself
 * ("local A dev eth1 proto kernel"). The manager replaces that route with
 * one through a TAP device this process created and holds open
 * ("local A dev twa<pid>"), without a persistence flag: the kernel deletes
 * the device, and the route with it, when the descriptor closes, which for a
 * killed process is during its exit, before any initiator can react to the
 * connections it lost. From then on the dead host neither answers ARP for
 * the address (it is no longer a local address) nor resets connections to
 * it: an initiator's reconnect SYN is dropped, and its TCP retransmission a
 * second later reaches the node that took the address over. Left alone, the
 * dead host's kernel would refuse that SYN at once, and libiscsi answers a
 * refused reconnect with a back-off counted in whole seconds (up to 2 s
 * with QEMU's once-a-second event timer) before it tries again.
 *
 * The address itself stays on its interface (ARP requests arriving there,
 * duplicate checks and `ip addr` all see it as before); the guard process
 * removes it soon after a death. IPv6 local routes belong to the address
 * (addrconf) and cannot be replaced this way: IPv6 aliases rely on the
 * guard alone.
 */
import { closeSync } from 'node:fs';
import { packetIo } from '../block/native';
import { Alias } from './address';
import { AliasIpError } from './errors';
import { IpRunner, findIpCommand, spawnIp } from './iproute';

export interface LocalAnchorPort {
  /** Routes the IPv4 alias's local delivery through the anchor device (idempotent). */
  anchor(alias: Alias): Promise<void>;
  /** Removes that route if it is there. */
  unanchor(alias: Alias): Promise<void>;
  /** Deletes the device (and every route through it). */
  close(): void;
}

export interface TapLocalAnchorOptions {
  /** The device name, unique in the network namespace (default twa<pid>). */
  readonly name?: string;
  /** Runs ip(8); default the one in PATH, 10 s per command. */
  readonly run?: IpRunner;
  /** Creates the process-bound device; default the native addon's tapOpen. */
  readonly openTap?: (name: string) => number;
}

export class TapLocalAnchor implements LocalAnchorPort {
  readonly name: string;
  private fd: number | null = null;
  private opening: Promise<void> | null = null;
  private closed = false;
  private readonly run: IpRunner;

  constructor(private readonly options: TapLocalAnchorOptions = {}) {
    this.name = options.name ?? `twa${process.pid}`;
    this.run = options.run ?? spawnIp(findIpCommand(), 10_000);
  }

  /** Creates the device now (else the first anchor() does). Rejects with AliasIpError EANCHOR. */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new AliasIpError('EANCHOR', `anchor device ${this.name} is closed`));
    this.opening ??= this.open().catch((err: unknown) => {
      this.opening = null;
      throw err;
    });
    return this.opening;
  }

  async anchor(alias: Alias): Promise<void> {
    if (alias.family !== 4) return;
    await this.ready();
    await this.run(['-4', 'route', 'replace', 'local', alias.address, 'dev', this.name, 'table', 'local']);
  }

  async unanchor(alias: Alias): Promise<void> {
    if (alias.family !== 4 || this.fd === null) return;
    try {
      await this.run(['-4', 'route', 'del', 'local', alias.address, 'dev', this.name, 'table', 'local']);
    } catch (err) {
      // Absent already ("No such process"): nothing to undo.
      if (!/No such process|ESRCH/.test((err as Error).message)) throw err;
    }
  }

  close(): void {
    this.closed = true;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private async open(): Promise<void> {
    let fd: number;
    try {
      fd = (this.options.openTap ?? packetIo.tapOpen)(this.name);
    } catch (err) {
      throw new AliasIpError('EANCHOR', `cannot create the anchor device ${this.name}: ${(err as Error).message}`, { cause: err });
    }
    this.fd = fd;
    try {
      await this.run(['link', 'set', 'dev', this.name, 'up']);
    } catch (err) {
      // close() may have run meanwhile and closed it already: the number may be another file's by now.
      if (this.fd === fd) closeSync(fd);
      this.fd = null;
      throw new AliasIpError('EANCHOR', `cannot bring the anchor device ${this.name} up: ${(err as Error).message}`, { cause: err });
    }
  }
}
