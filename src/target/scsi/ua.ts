/**
 * Unit attention conditions, queued per I_T nexus for one logical unit.
 *
 * A condition is reported (and cleared) by the first command from that
 * nexus other than INQUIRY, REPORT LUNS and REQUEST SENSE; REQUEST SENSE
 * returns it as sense data and clears it. Reset-class conditions (ASC 29h)
 * take precedence: one replaces any earlier 29h entry and goes to the head
 * of the queue. Other conditions queue in arrival order without duplicates,
 * so a queue never holds more entries than there are distinct conditions.
 *
 * The state is plain data (snapshot / restore) so it can be replicated to a
 * peer node.
 */

export interface UnitAttentionCondition {
  readonly asc: number;
  readonly ascq: number;
  /** T10 name, for logs. */
  readonly name: string;
}

/** Named conditions; later steps (reservations, ALUA) raise theirs through establish(). */
export const UnitAttention = {
  POWER_ON_RESET: { asc: 0x29, ascq: 0x00, name: 'POWER ON, RESET, OR BUS DEVICE RESET OCCURRED' },
  POWER_ON_OCCURRED: { asc: 0x29, ascq: 0x01, name: 'POWER ON OCCURRED' },
  SCSI_BUS_RESET_OCCURRED: { asc: 0x29, ascq: 0x02, name: 'SCSI BUS RESET OCCURRED' },
  BUS_DEVICE_RESET_FUNCTION_OCCURRED: { asc: 0x29, ascq: 0x03, name: 'BUS DEVICE RESET FUNCTION OCCURRED' },
  I_T_NEXUS_LOSS_OCCURRED: { asc: 0x29, ascq: 0x07, name: 'I_T NEXUS LOSS OCCURRED' },
  MODE_PARAMETERS_CHANGED: { asc: 0x2a, ascq: 0x01, name: 'MODE PARAMETERS CHANGED' },
  RESERVATIONS_PREEMPTED: { asc: 0x2a, ascq: 0x03, name: 'RESERVATIONS PREEMPTED' },
  RESERVATIONS_RELEASED: { asc: 0x2a, ascq: 0x04, name: 'RESERVATIONS RELEASED' },
  REGISTRATIONS_PREEMPTED: { asc: 0x2a, ascq: 0x05, name: 'REGISTRATIONS PREEMPTED' },
  ASYMMETRIC_ACCESS_STATE_CHANGED: { asc: 0x2a, ascq: 0x06, name: 'ASYMMETRIC ACCESS STATE CHANGED' },
  CAPACITY_DATA_HAS_CHANGED: { asc: 0x2a, ascq: 0x09, name: 'CAPACITY DATA HAS CHANGED' },
  COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: { asc: 0x2f, ascq: 0x00, name: 'COMMANDS CLEARED BY ANOTHER INITIATOR' },
  INQUIRY_DATA_HAS_CHANGED: { asc: 0x3f, ascq: 0x03, name: 'INQUIRY DATA HAS CHANGED' },
  REPORTED_LUNS_DATA_HAS_CHANGED: { asc: 0x3f, ascq: 0x0e, name: 'REPORTED LUNS DATA HAS CHANGED' },
} as const satisfies Record<string, UnitAttentionCondition>;

export interface EstablishOptions {
  /** Every known nexus except this one (e.g. the one whose MODE SELECT changed the parameters). */
  readonly exceptNexus?: string;
  /** Only this nexus. */
  readonly onlyNexus?: string;
}

/** Serialisable state: nexus keys with their pending conditions, head first. */
export interface UnitAttentionSnapshot {
  readonly version: 1;
  readonly nexuses: ReadonlyArray<{ readonly key: string; readonly pending: ReadonlyArray<{ readonly asc: number; readonly ascq: number }> }>;
}

const RESET_ASC = 0x29;

function isByte(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xff;
}

/** `x` as a unit attention snapshot (it comes from the peer as JSON); throws naming what is wrong. */
export function parseUnitAttentionSnapshot(x: unknown): UnitAttentionSnapshot {
  const fail = (what: string): never => {
    throw new Error(`unit attention snapshot: ${what}`);
  };
  if (typeof x !== 'object' || x === null) return fail('not an object');
  const o = x as Record<string, unknown>;
  if (o['version'] !== 1) fail(`unsupported version ${String(o['version'])}`);
  const nexuses = o['nexuses'];
  if (!Array.isArray(nexuses)) return fail('nexuses must be an array');
  nexuses.forEach((n: unknown, i) => {
    if (typeof n !== 'object' || n === null) fail(`nexuses[${i}] is not an object`);
    const { key, pending } = n as Record<string, unknown>;
    if (typeof key !== 'string') fail(`nexuses[${i}].key must be a string`);
    if (!Array.isArray(pending)) return fail(`nexuses[${i}].pending must be an array`);
    pending.forEach((p: unknown, k) => {
      const c = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>;
      if (!isByte(c['asc']) || !isByte(c['ascq'])) fail(`nexuses[${i}].pending[${k}] needs asc and ascq bytes`);
    });
  });
  return x as UnitAttentionSnapshot;
}

function nameOf(asc: number, ascq: number): string {
  for (const c of Object.values(UnitAttention)) if (c.asc === asc && c.ascq === ascq) return c.name;
  return `ASC ${asc.toString(16).padStart(2, '0')}h ASCQ ${ascq.toString(16).padStart(2, '0')}h`;
}

export class UnitAttentionQueues {
  /** Every nexus this logical unit has seen, with its pending conditions (head first). */
  private readonly queues = new Map<string, UnitAttentionCondition[]>();
  private changed: (() => void) | null = null;

  /** Called after every change of the pending conditions (not after restore()), e.g. to replicate them. */
  onChange(cb: (() => void) | null): void {
    this.changed = cb;
  }

  /** Whether the nexus has been seen. */
  knows(nexusKey: string): boolean {
    return this.queues.has(nexusKey);
  }

  /** Nexus keys known to this logical unit. */
  nexusKeys(): string[] {
    return [...this.queues.keys()];
  }

  /**
   * Register a nexus on its first command. A new nexus starts with
   * POWER ON, RESET, OR BUS DEVICE RESET OCCURRED. Returns true when new.
   */
  admit(nexusKey: string): boolean {
    if (this.queues.has(nexusKey)) return false;
    this.queues.set(nexusKey, [UnitAttention.POWER_ON_RESET]);
    this.changed?.();
    return true;
  }

  /** Queue a condition for every known nexus (or the chosen ones). */
  establish(condition: UnitAttentionCondition, options: EstablishOptions = {}): void {
    let any = false;
    for (const [key, queue] of this.queues) {
      if (options.exceptNexus !== undefined && key === options.exceptNexus) continue;
      if (options.onlyNexus !== undefined && key !== options.onlyNexus) continue;
      enqueue(queue, condition);
      any = true;
    }
    if (any) this.changed?.();
  }

  /** The condition that would be reported next, without clearing it. */
  peek(nexusKey: string): UnitAttentionCondition | undefined {
    return this.queues.get(nexusKey)?.[0];
  }

  /** Report and clear the next condition. */
  take(nexusKey: string): UnitAttentionCondition | undefined {
    const queue = this.queues.get(nexusKey);
    if (!queue || queue.length === 0) return undefined;
    const head = queue.shift();
    this.changed?.();
    return head;
  }

  /** Drop pending conditions of one nexus that match. */
  clear(nexusKey: string, match: (c: UnitAttentionCondition) => boolean = () => true): void {
    const queue = this.queues.get(nexusKey);
    if (!queue) return;
    const keep = queue.filter((c) => !match(c));
    if (keep.length === queue.length) return;
    queue.length = 0;
    queue.push(...keep);
    this.changed?.();
  }

  /** Pending conditions of one nexus, head first (a copy). */
  pending(nexusKey: string): UnitAttentionCondition[] {
    return [...(this.queues.get(nexusKey) ?? [])];
  }

  /** Forget a nexus entirely (its session ended). */
  forget(nexusKey: string): void {
    if (this.queues.delete(nexusKey)) this.changed?.();
  }

  snapshot(): UnitAttentionSnapshot {
    return {
      version: 1,
      nexuses: [...this.queues].map(([key, queue]) => ({ key, pending: queue.map((c) => ({ asc: c.asc, ascq: c.ascq })) })),
    };
  }

  /**
   * Rename the nexuses (after a takeover their sessions arrive through this
   * node's target port): `rename` gives each key its new one, or null to
   * drop it. Conditions of nexuses that end up with one key are merged.
   */
  rekey(rename: (key: string) => string | null): void {
    const old = [...this.queues];
    this.queues.clear();
    for (const [key, queue] of old) {
      const to = rename(key);
      if (to === null) continue;
      const into = this.queues.get(to);
      if (!into) this.queues.set(to, queue);
      else for (const c of queue) enqueue(into, c);
    }
    this.changed?.();
  }

  /**
   * Replace the whole state with a snapshot (e.g. received from the peer).
   * A malformed snapshot throws and changes nothing.
   */
  restore(snapshot: UnitAttentionSnapshot): void {
    const checked = parseUnitAttentionSnapshot(snapshot);
    this.queues.clear();
    for (const n of checked.nexuses) {
      this.queues.set(n.key, n.pending.map((p) => ({ asc: p.asc, ascq: p.ascq, name: nameOf(p.asc, p.ascq) })));
    }
  }
}

function enqueue(queue: UnitAttentionCondition[], condition: UnitAttentionCondition): void {
  if (condition.asc === RESET_ASC) {
    const i = queue.findIndex((c) => c.asc === RESET_ASC);
    if (i >= 0) queue.splice(i, 1);
    queue.unshift(condition);
    return;
  }
  if (queue.some((c) => c.asc === condition.asc && c.ascq === condition.ascq)) return;
  queue.push(condition);
}
