/**
 * The reservations of one logical unit: the state (state.ts), the commands
 * that change it, and what follows a change (unit attentions, the APTPL
 * store, which I_T nexuses' tasks PREEMPT AND ABORT must abort).
 *
 * Every change is computed from the current state by a pure function and
 * installed only once it is saved (when APTPL is active), so a failed save
 * leaves the state as it was and the command fails. Changes run one at a
 * time (a promise queue), so saves reach the store in order.
 *
 * Unit attentions go to I_T nexuses, known here by the nexus key the
 * transport uses: every command's nexus is observed (observe()) and
 * mapped to its identity; a notice for a registration reaches every known
 * nexus the registration covers.
 */
import type { ReservationClass } from '../command-table';
import type { ItNexus } from '../types';
import type { UnitAttentionQueues } from '../ua';
import { reservationConflict } from './conflicts';
import { persistentReserveOut, ProutEffects, ProutRequest } from './persistent-out';
import { scsi2Release, scsi2Reserve } from './scsi2';
import { covers, EMPTY_PR_STATE, movePort, parseSnapshot, PrState, RegistrantRef, ReservationSnapshot, Scsi2Reservation } from './state';
import { NexusIdentity, nexusIdentity } from './transport-id';

/**
 * Where APTPL state lives across restarts (file-store.ts keeps it next to
 * the backing file). save() must not resolve before the state is durable.
 */
export interface ReservationStore {
  /** The last saved snapshot, or null when nothing was ever saved. */
  load(): Promise<ReservationSnapshot | null>;
  save(snapshot: ReservationSnapshot): Promise<void>;
}

export interface ProutResult {
  readonly conflict: boolean;
  /** Keys of the I_T nexuses whose tasks PREEMPT AND ABORT must abort (never the requester's). */
  readonly abortNexusKeys: readonly string[];
}

const NO_ABORTS: readonly string[] = [];

export class LuReservations {
  private pr: PrState = EMPTY_PR_STATE;
  private scsi2: Scsi2Reservation | null = null;
  /** Nexus key → identity, for every I_T nexus that has used the logical unit. */
  private readonly identities = new Map<string, NexusIdentity>();
  /** The end of the queue of state changes. */
  private tail: Promise<unknown>;
  private loaded: boolean;
  private readonly loading: Promise<void>;
  /** Awaited after each change a command made, before the command completes (live state replication). */
  private afterChange: () => Promise<void> = () => Promise.resolve();

  constructor(
    private readonly unitAttentions: UnitAttentionQueues,
    private readonly store: ReservationStore | null = null,
  ) {
    this.loaded = store === null;
    this.loading = store === null ? Promise.resolve() : this.load(store);
    this.loading.catch(() => undefined); // reported through whenReady()
    this.tail = this.loading.catch(() => undefined);
  }

  /**
   * Called after every change of the state. Changes made by a command
   * (PERSISTENT RESERVE OUT, RESERVE, RELEASE) wait for the returned promise
   * before the command completes, and the next change waits behind it; the
   * others (nexus loss, reset) do not wait.
   */
  onChange(hook: () => Promise<void>): void {
    this.afterChange = hook;
  }

  /** PTPL_C: a store is configured, so APTPL can be honoured. */
  get persistCapable(): boolean {
    return this.store !== null;
  }

  /** The APTPL state has been loaded (always true without a store). */
  get ready(): boolean {
    return this.loaded;
  }

  /** Resolves once the APTPL state is loaded; rejects if loading failed. */
  whenReady(): Promise<void> {
    return this.loading;
  }

  private async load(store: ReservationStore): Promise<void> {
    const saved = await store.load();
    if (saved !== null) {
      const snapshot = parseSnapshot(saved);
      // Only APTPL state survives a restart, and PRGENERATION starts over at power on (SPC-4 6.16.2).
      // (A restore() while loading wins: it is newer than the file.)
      if (snapshot.aptpl && this.pr === EMPTY_PR_STATE) {
        this.pr = { generation: 0, aptpl: true, registrations: snapshot.registrations, reservation: snapshot.reservation };
      }
    }
    this.loaded = true;
  }

  /** The persistent reservation state (read-only view for PERSISTENT RESERVE IN). */
  get persistent(): PrState {
    return this.pr;
  }

  /** The SCSI-2 reservation holder, if any. */
  get scsi2Holder(): Scsi2Reservation | null {
    return this.scsi2;
  }

  /** Remember the nexus (the dispatcher calls this for every command) and return its identity. */
  observe(nexus: ItNexus): NexusIdentity {
    let id = this.identities.get(nexus.key);
    if (!id) {
      id = nexusIdentity(nexus);
      this.identities.set(nexus.key, id);
    }
    return id;
  }

  /** Whether a command is in RESERVATION CONFLICT (conflicts.ts has the rules). */
  conflicts(nexus: ItNexus, rowClass: ReservationClass, cdb: Buffer): boolean {
    if (this.scsi2 === null && this.pr.reservation === null) return false;
    return reservationConflict(this.pr, this.scsi2, this.observe(nexus), rowClass, cdb);
  }

  private enqueue<T>(change: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(change);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** PERSISTENT RESERVE OUT: apply, save if APTPL is (or was) active, then announce. */
  persistentReserveOut(nexus: ItNexus, req: ProutRequest): Promise<ProutResult> {
    return this.enqueue(async () => {
      const id = this.observe(nexus);
      const base = this.pr;
      const outcome = persistentReserveOut(base, id, req, { ptplCapable: this.persistCapable });
      if (outcome.conflict) return { conflict: true, abortNexusKeys: NO_ABORTS };
      if (!outcome.changed) return { conflict: false, abortNexusKeys: NO_ABORTS };
      if (this.store && (outcome.state.aptpl || base.aptpl)) {
        await this.store.save({ version: 1, ...outcome.state, scsi2: null });
      }
      if (this.pr !== base) throw new Error('reservation state was replaced while PERSISTENT RESERVE OUT was being saved');
      this.pr = outcome.state;
      const abortNexusKeys = this.announce(outcome.effects, nexus);
      await this.afterChange();
      return { conflict: false, abortNexusKeys };
    });
  }

  /** Queue the notices' unit attentions; return the nexus keys whose tasks are to be aborted. */
  private announce(effects: ProutEffects, requester: ItNexus): string[] {
    for (const n of effects.notices) {
      for (const key of this.nexusKeysCoveredBy(n.to, requester)) this.unitAttentions.establish(n.condition, { onlyNexus: key });
    }
    return effects.abort.length === 0 ? [] : this.nexusKeysCoveredBy(effects.abort, requester);
  }

  private nexusKeysCoveredBy(regs: readonly RegistrantRef[], requester: ItNexus): string[] {
    const keys: string[] = [];
    for (const [key, id] of this.identities) {
      if (key !== requester.key && regs.some((r) => covers(r, id))) keys.push(key);
    }
    return keys;
  }

  /** RESERVE (6)/(10). Returns true on RESERVATION CONFLICT. */
  reserve(nexus: ItNexus): Promise<boolean> {
    return this.enqueue(async () => {
      const out = scsi2Reserve(this.pr, this.scsi2, this.observe(nexus));
      await this.setScsi2(out.scsi2);
      return out.conflict;
    });
  }

  /** RELEASE (6)/(10). Returns true on RESERVATION CONFLICT. */
  release(nexus: ItNexus): Promise<boolean> {
    return this.enqueue(async () => {
      const out = scsi2Release(this.pr, this.scsi2, this.observe(nexus));
      await this.setScsi2(out.scsi2);
      return out.conflict;
    });
  }

  /** Install a SCSI-2 holder; a change is replicated before the command completes. */
  private async setScsi2(next: Scsi2Reservation | null): Promise<void> {
    if (sameScsi2(this.scsi2, next)) return;
    this.scsi2 = next;
    await this.afterChange();
  }

  /** Logical unit reset, target reset: the SCSI-2 reservation is released; persistent reservations stay. */
  reset(): void {
    if (this.scsi2 === null) return;
    this.scsi2 = null;
    void this.afterChange();
  }

  /** I_T nexus loss: its SCSI-2 reservation is released; it is forgotten. Registrations stay. */
  nexusLost(nexusKey: string): void {
    const id = this.identities.get(nexusKey);
    if (id && this.scsi2 && this.scsi2.initiator === id.initiator && this.scsi2.relativeTargetPortId === id.relativeTargetPortId) {
      this.scsi2 = null;
      void this.afterChange();
    }
    this.identities.delete(nexusKey);
  }

  /**
   * The logical unit is now reached through another target port (a
   * resource group moved with its alias IPs to the peer node, by a planned
   * move or a takeover): registrations made through port `from` now cover
   * port `to`, as the initiators' paths moved with the address, and so does
   * a SCSI-2 reservation held through `from`. The failover is not an I_T
   * nexus loss the initiator caused (its initiator port reconnects with the
   * same ISID to the same address), so the reservation stays with that
   * initiator port until it releases it or a reset does. Call it on an idle
   * logical unit, after restore().
   */
  targetPortMoved(from: number, to: number): void {
    const pr = movePort(this.pr, from, to);
    const scsi2 = this.scsi2?.relativeTargetPortId === from ? { initiator: this.scsi2.initiator, relativeTargetPortId: to } : this.scsi2;
    if (pr === this.pr && scsi2 === this.scsi2) return;
    this.pr = pr;
    this.scsi2 = scsi2;
    void this.afterChange();
  }

  /** The whole state as plain JSON. */
  snapshot(): ReservationSnapshot {
    return { version: 1, ...this.pr, scsi2: this.scsi2 };
  }

  /**
   * Replace the whole state (a takeover installing the peer's replica).
   * Call it on an idle logical unit: a PERSISTENT RESERVE OUT still being
   * saved then fails rather than overwrite the restored state.
   */
  restore(snapshot: ReservationSnapshot): void {
    const s = parseSnapshot(snapshot);
    this.pr = { generation: s.generation, aptpl: s.aptpl, registrations: s.registrations, reservation: s.reservation };
    this.scsi2 = s.scsi2;
  }
}

function sameScsi2(a: Scsi2Reservation | null, b: Scsi2Reservation | null): boolean {
  return a === b || (a !== null && b !== null && a.initiator === b.initiator && a.relativeTargetPortId === b.relativeTargetPortId);
}
