/**
 * What the copy manager of one logical unit remembers about EXTENDED COPY
 * commands, per I_T nexus and list identifier: the commands running now
 * (their list ids must be unique) and the status of those whose LIST ID
 * USAGE asked to hold it (00b), for RECEIVE COPY RESULTS / COPY STATUS.
 * Only copies that passed parameter list validation are remembered; a
 * nexus' records go when the nexus does. At most HELD_PER_NEXUS statuses
 * are held per nexus (the oldest go first, as SPC-4 allows when resources
 * run short).
 */

/** COPY MANAGER STATUS field values. */
export const CopyManagerStatus = {
  COMPLETED: 0x00,
  COMPLETED_WITH_ERRORS: 0x01,
  IN_PROGRESS_FOREGROUND: 0x10,
} as const;
export type CopyManagerStatus = (typeof CopyManagerStatus)[keyof typeof CopyManagerStatus];

export const HELD_PER_NEXUS = 32;

export interface CopyStatus {
  readonly status: CopyManagerStatus;
  readonly segmentsProcessed: number;
  readonly bytesTransferred: number;
}

/** A running copy: progress is reported through it, then finish() once. */
export interface CopyOperation {
  progress(segmentsProcessed: number, bytesTransferred: number): void;
  finish(ok: boolean): void;
}

interface HeldRecord {
  status: CopyManagerStatus;
  segmentsProcessed: number;
  bytesTransferred: number;
}

export class CopyResults {
  private readonly running = new Map<string, Set<number>>();
  private readonly held = new Map<string, Map<number, HeldRecord>>();
  private active = 0;

  /** Copies running on this copy manager now (all nexuses). */
  get activeCount(): number {
    return this.active;
  }

  /**
   * Start a copy. Returns null when the nexus already runs a copy with this
   * list id (OPERATION IN PROGRESS). `unique` is false for LIST ID USAGE 11b
   * (no list id): such copies are neither checked nor held.
   */
  begin(nexusKey: string, listId: number, unique: boolean, hold: boolean): CopyOperation | null {
    let ids = this.running.get(nexusKey);
    if (unique && ids?.has(listId)) return null;
    if (unique) {
      if (!ids) {
        ids = new Set();
        this.running.set(nexusKey, ids);
      }
      ids.add(listId);
    }
    const record: HeldRecord = { status: CopyManagerStatus.IN_PROGRESS_FOREGROUND, segmentsProcessed: 0, bytesTransferred: 0 };
    if (unique && hold) this.hold(nexusKey, listId, record);
    else if (unique) this.held.get(nexusKey)?.delete(listId); // a new copy with this id: the old status is stale
    this.active++;
    let done = false;
    return {
      progress: (segments, bytes) => {
        record.segmentsProcessed = segments;
        record.bytesTransferred = bytes;
      },
      finish: (ok) => {
        if (done) return;
        done = true;
        this.active--;
        record.status = ok ? CopyManagerStatus.COMPLETED : CopyManagerStatus.COMPLETED_WITH_ERRORS;
        if (unique) this.running.get(nexusKey)?.delete(listId);
      },
    };
  }

  /** The status held for (nexus, list id), if any. */
  status(nexusKey: string, listId: number): CopyStatus | undefined {
    const r = this.held.get(nexusKey)?.get(listId);
    return r ? { ...r } : undefined;
  }

  /** Forget a nexus (its session ended). */
  forget(nexusKey: string): void {
    this.held.delete(nexusKey);
    this.running.delete(nexusKey);
  }

  private hold(nexusKey: string, listId: number, record: HeldRecord): void {
    let map = this.held.get(nexusKey);
    if (!map) {
      map = new Map();
      this.held.set(nexusKey, map);
    }
    map.delete(listId);
    map.set(listId, record);
    while (map.size > HELD_PER_NEXUS) map.delete(map.keys().next().value!);
  }
}
