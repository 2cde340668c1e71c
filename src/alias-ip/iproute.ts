/**
 * Address management through iproute2: `ip -json addr show` to read,
 * `ip addr add|del` to change. Always spawned with an argument array (no
 * shell), in the caller's network namespace. Parsing is a pure function of
 * ip's JSON so it is tested without running ip.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { Alias, IpFamily, ipv4Bytes, ipv6Bytes } from './address';
import { AliasIpError } from './errors';

/** One address as the kernel reports it. */
export interface ConfiguredAddress {
  readonly interface: string;
  readonly family: IpFamily;
  /** As ip prints it (canonical text). */
  readonly address: string;
  readonly bytes: Buffer;
  readonly prefix: number;
  /** IPv4: not the primary address of its subnet on the interface. */
  readonly secondary: boolean;
  /** IPv6: duplicate address detection still running. */
  readonly tentative: boolean;
  /** IPv6: duplicate address detection found another owner. */
  readonly dadFailed: boolean;
}

export interface InterfaceState {
  readonly name: string;
  readonly index: number;
  readonly up: boolean;
  readonly addresses: readonly ConfiguredAddress[];
}

/** What AliasIpManager needs from address management; IpRoute2 is the real one. */
export interface AddressBackend {
  /** Every interface of the namespace with its addresses. */
  list(): Promise<InterfaceState[]>;
  /** Adds the alias; IPv6 without duplicate address detection unless `dad`. */
  add(alias: Alias, options: { readonly dad: boolean }): Promise<void>;
  /** Deletes exactly this address/prefix from the interface. */
  remove(address: Pick<ConfiguredAddress, 'interface' | 'family' | 'address' | 'prefix'>): Promise<void>;
}

/** Runs `ip ARGS...` and resolves with its stdout; rejects with AliasIpError ECOMMAND. */
export type IpRunner = (args: readonly string[]) => Promise<string>;

export interface IpRoute2Options {
  /** Path of ip(8); default: found in PATH, /usr/sbin or /sbin. */
  readonly ipCommand?: string;
  /** Per command; default 10 s. */
  readonly timeoutMs?: number;
  /** Replaces the spawning of ip (unit tests). */
  readonly run?: IpRunner;
}

export class IpRoute2 implements AddressBackend {
  private readonly run: IpRunner;

  constructor(options: IpRoute2Options = {}) {
    this.run = options.run ?? spawnIp(options.ipCommand ?? findIpCommand(), options.timeoutMs ?? 10_000);
  }

  async list(): Promise<InterfaceState[]> {
    return parseIpAddrJson(await this.run(['-json', 'addr', 'show']));
  }

  async add(alias: Alias, options: { readonly dad: boolean }): Promise<void> {
    await this.run(addArgs(alias, options));
  }

  async remove(address: Pick<ConfiguredAddress, 'interface' | 'family' | 'address' | 'prefix'>): Promise<void> {
    await this.run([`-${address.family}`, 'addr', 'del', `${address.address}/${address.prefix}`, 'dev', address.interface]);
  }
}

/**
 * `ip -4 addr add A/P brd + dev X` (broadcast derived from the prefix, as
 * ifconfig and IPaddr2 set it; none for /31 and /32), or
 * `ip -6 addr add A/P dev X [nodad]`.
 */
export function addArgs(alias: Alias, options: { readonly dad: boolean }): string[] {
  const args = [`-${alias.family}`, 'addr', 'add', `${alias.address}/${alias.prefix}`];
  if (alias.family === 4 && alias.prefix <= 30) args.push('brd', '+');
  args.push('dev', alias.interface);
  if (alias.family === 6 && !options.dad) args.push('nodad');
  return args;
}

interface IpJsonAddress {
  family?: unknown;
  local?: unknown;
  prefixlen?: unknown;
  secondary?: unknown;
  tentative?: unknown;
  dadfailed?: unknown;
}

interface IpJsonLink {
  ifindex?: unknown;
  ifname?: unknown;
  flags?: unknown;
  addr_info?: unknown;
}

/** Parses `ip -json addr show` output; throws AliasIpError ECOMMAND on anything unexpected. */
export function parseIpAddrJson(text: string): InterfaceState[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new AliasIpError('ECOMMAND', `ip -json addr show printed no JSON: ${text.slice(0, 80)}`, { cause: err });
  }
  if (!Array.isArray(parsed)) throw new AliasIpError('ECOMMAND', 'ip -json addr show: expected an array of links');
  const links: InterfaceState[] = [];
  for (const link of parsed as IpJsonLink[]) {
    // Links deleted while ip ran appear as bare {} or without addr_info.
    if (typeof link?.ifname !== 'string' || typeof link.ifindex !== 'number') continue;
    const name = link.ifname;
    const addresses: ConfiguredAddress[] = [];
    for (const entry of Array.isArray(link.addr_info) ? (link.addr_info as IpJsonAddress[]) : []) {
      const family = entry.family === 'inet' ? 4 : entry.family === 'inet6' ? 6 : undefined;
      if (family === undefined || typeof entry.local !== 'string' || typeof entry.prefixlen !== 'number') continue;
      addresses.push({
        interface: name,
        family,
        address: entry.local,
        bytes: family === 4 ? ipv4Bytes(entry.local) : ipv6Bytes(entry.local),
        prefix: entry.prefixlen,
        secondary: entry.secondary === true,
        tentative: entry.tentative === true,
        dadFailed: entry.dadfailed === true,
      });
    }
    const flags = Array.isArray(link.flags) ? link.flags : [];
    links.push({ name, index: link.ifindex, up: flags.includes('UP'), addresses });
  }
  return links;
}

/** Best-effort errno name for ip's stderr (its netlink errors are printed as text). */
export function errnoFromIpStderr(stderr: string): string | undefined {
  const table: ReadonlyArray<[RegExp, string]> = [
    [/Operation not permitted/i, 'EPERM'],
    [/File exists|already assigned/i, 'EEXIST'],
    [/Cannot assign requested address|Address not found/i, 'EADDRNOTAVAIL'],
    [/Cannot find device|does not exist|No such device/i, 'ENODEV'],
    [/Invalid argument|Invalid prefix|invalid/i, 'EINVAL'],
  ];
  return table.find(([pattern]) => pattern.test(stderr))?.[1];
}

export function spawnIp(command: string, timeoutMs: number): IpRunner {
  return (args) =>
    new Promise<string>((resolve, reject) => {
      execFile(command, [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout);
          return;
        }
        const detail = stderr.trim() || err.message;
        const sysCode = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : errnoFromIpStderr(stderr);
        const status = err.killed ? `timed out after ${timeoutMs} ms` : `exit ${String(err.code)}`;
        reject(
          new AliasIpError('ECOMMAND', `${command} ${args.join(' ')}: ${status}: ${detail}`, {
            cause: err,
            ...(sysCode ? { sysCode } : {}),
          }),
        );
      });
    });
}

/** ip(8) from PATH, else the Debian locations PATH may lack for non-login shells. */
export function findIpCommand(): string {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'ip');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return 'ip';
}
