/**
 * The alias guard's protocol and state, no I/O.
 *
 * A node process that dies without a clean shutdown (SIGKILL, OOM kill, a
 * crash) leaves its alias addresses configured: the kernel keeps them, the
 * host goes on answering ARP for them and resetting connections to them,
 * fighting the peer that took them over. The guard is a small process the
 * node spawns with a pipe on its stdin; the node tells it, one JSON line per
 * message, which addresses it holds:
 *
 *   {"op":"allow","interface":"eth1"}        the guard may touch eth1 (only allowed interfaces)
 *   {"op":"hold","address":"198.18.0.10","prefix":24,"interface":"eth1"}   written before ip addr add
 *   {"op":"drop","address":"198.18.0.10","prefix":24,"interface":"eth1"}   written after ip addr del
 *   {"op":"release"}                         clean shutdown: remove nothing, exit
 *
 * End of input without "release" means the node died: the guard deletes
 * every address still held, then exits. A pipe keeps what was written before
 * the writer died, so a "hold" the node wrote before adding an address is
 * read even when the node is killed right after.
 */
import { Alias, AliasSpec, isValidInterfaceName, parseAlias } from './address';
import { AliasIpError } from './errors';

/** Longest line the guard accepts; the longest real message is ~120 bytes. */
export const GUARD_MAX_LINE_BYTES = 1024;

export type GuardMessage =
  | { readonly op: 'allow'; readonly interface: string }
  | { readonly op: 'hold'; readonly alias: AliasSpec }
  | { readonly op: 'drop'; readonly alias: AliasSpec }
  | { readonly op: 'release' };

export type GuardOp = GuardMessage['op'];

/** One line (with its newline) for a message. */
export function encodeGuardMessage(message: GuardMessage): string {
  const body =
    message.op === 'hold' || message.op === 'drop'
      ? { op: message.op, address: message.alias.address, prefix: message.alias.prefix, interface: message.alias.interface }
      : message;
  return `${JSON.stringify(body)}\n`;
}

interface RawMessage {
  op?: unknown;
  address?: unknown;
  prefix?: unknown;
  interface?: unknown;
}

/** The parser of each op's fields (after the line was JSON with an op). */
const FIELD_PARSERS: { readonly [K in GuardOp]: (raw: RawMessage) => GuardMessage } = {
  allow: (raw) => {
    if (typeof raw.interface !== 'string' || !isValidInterfaceName(raw.interface)) {
      throw new AliasIpError('EINVAL', `guard message allow: bad interface ${JSON.stringify(raw.interface)}`);
    }
    return { op: 'allow', interface: raw.interface };
  },
  hold: (raw) => ({ op: 'hold', alias: aliasFields('hold', raw) }),
  drop: (raw) => ({ op: 'drop', alias: aliasFields('drop', raw) }),
  release: () => ({ op: 'release' }),
};

function aliasFields(op: string, raw: RawMessage): AliasSpec {
  if (typeof raw.address !== 'string' || typeof raw.prefix !== 'number' || typeof raw.interface !== 'string') {
    throw new AliasIpError('EINVAL', `guard message ${op}: needs address (string), prefix (number) and interface (string)`);
  }
  const spec = { address: raw.address, prefix: raw.prefix, interface: raw.interface };
  parseAlias(spec); // validates, throws EINVAL naming what is wrong
  return spec;
}

/** Parses one line (without its newline); throws AliasIpError EINVAL on anything else. */
export function parseGuardMessage(line: string): GuardMessage {
  if (Buffer.byteLength(line) > GUARD_MAX_LINE_BYTES) throw new AliasIpError('EINVAL', `guard message longer than ${GUARD_MAX_LINE_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new AliasIpError('EINVAL', `guard message is not JSON: ${line.slice(0, 60)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new AliasIpError('EINVAL', 'guard message must be a JSON object');
  const op = (raw as RawMessage).op;
  if (typeof op !== 'string' || !Object.hasOwn(FIELD_PARSERS, op)) throw new AliasIpError('EINVAL', `guard message: unknown op ${JSON.stringify(op)}`);
  return FIELD_PARSERS[op as GuardOp](raw as RawMessage);
}

/** Guarding: addresses are removed if input ends; released: the node shut down cleanly, nothing is removed. */
export type GuardPhase = 'guarding' | 'released';

/**
 * What the guard knows: the interfaces it may touch and the addresses the
 * node holds. Every change goes through apply(); endOfInput() says what to
 * delete.
 */
export class GuardState {
  private readonly allowed = new Set<string>();
  private readonly held = new Map<string, Alias>();
  private phaseNow: GuardPhase = 'guarding';

  constructor(interfaces: readonly string[] = []) {
    for (const name of interfaces) {
      if (!isValidInterfaceName(name)) throw new AliasIpError('EINVAL', `guard: bad interface name ${JSON.stringify(name)}`);
      this.allowed.add(name);
    }
  }

  get phase(): GuardPhase {
    return this.phaseNow;
  }

  /** The addresses held now. */
  heldAddresses(): Alias[] {
    return [...this.held.values()];
  }

  /** Applies one message; throws AliasIpError (ENOTALLOWED, EINVAL) for one it must refuse, leaving the state as it was. */
  apply(message: GuardMessage): void {
    if (this.phaseNow === 'released') throw new AliasIpError('EINVAL', `guard message ${message.op} after release`);
    (this.transitions[message.op] as (m: GuardMessage) => void)(message);
  }

  /** The addresses to delete now that input has ended: all held while guarding, none once released. */
  endOfInput(): Alias[] {
    return this.phaseNow === 'released' ? [] : this.heldAddresses();
  }

  /** One transition per op: the only place the state changes. */
  private readonly transitions: { readonly [K in GuardOp]: (message: Extract<GuardMessage, { op: K }>) => void } = {
    allow: (m) => void this.allowed.add(m.interface),
    hold: (m) => {
      const alias = parseAlias(m.alias);
      if (!this.allowed.has(alias.interface)) {
        throw new AliasIpError('ENOTALLOWED', `guard: interface ${alias.interface} is not one it may touch (allowed: ${[...this.allowed].join(', ') || 'none'})`);
      }
      this.held.set(alias.key, alias);
    },
    // By address, whatever the prefix: the manager's remove(spec) stops serving the address.
    drop: (m) => void this.held.delete(parseAlias(m.alias).key),
    release: () => {
      this.phaseNow = 'released';
      this.held.clear();
    },
  };
}
