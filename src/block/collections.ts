/**
 * Collections for per-command bookkeeping on the hot paths (the iSCSI task
 * table, the peer channel's outstanding requests, the replay window, the
 * range locks). They live here because block is the lowest layer that both
 * target and mirror import.
 *
 * Why not Map and Set: V8 keeps a Map or Set in an insertion-ordered hash
 * table. A delete leaves a hole, so a table that sees steady inserts and
 * deletes is rebuilt every few dozen operations, and the table it replaces
 * keeps both a pointer to its successor (for live iterators) and the
 * entries it held. Once any of those tables reaches the old generation (a
 * mark-compact promotes the current one), the dead table holds its
 * successor alive through every minor collection, that one the next, and so
 * on: every table since, and every command it held, is copied and then
 * promoted until the next mark-compact. Measured on the mirrored write path
 * (docs/performance.md, "Sixth round"): ~1.6 MB promoted per scavenge, all
 * of it garbage. These structures reuse their slots, clear a slot when its
 * entry goes, and drop whole arrays only when they grow or shrink, after
 * clearing them, so a dead array never holds a command alive.
 *
 * No library: the point is this memory behaviour, which general-purpose
 * hash-map packages do not promise (most wrap Map).
 */

const MIN_CAPACITY = 16;

/**
 * A hash map from non-negative safe integers (ITTs, sequence numbers) to
 * values: open addressing, linear probing, deletion by backward shift (no
 * tombstones, so steady churn never rebuilds the table). Iteration order is
 * unspecified.
 */
export class IntMap<V> {
  private keys: Float64Array;
  private vals: (V | undefined)[];
  private used: Uint8Array;
  private mask: number;
  private shift: number;
  private count = 0;
  /** The most entries held since the last shrink check, and the deletes since then. */
  private peak = 0;
  private churn = 0;

  constructor(initialCapacity = MIN_CAPACITY) {
    const cap = capacityFor(initialCapacity);
    this.keys = new Float64Array(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
  }

  get size(): number {
    return this.count;
  }

  /** Slots allocated (for tests: memory follows the peak, not the history). */
  get capacity(): number {
    return this.mask + 1;
  }

  get(key: number): V | undefined {
    const i = this.find(key);
    return i < 0 ? undefined : this.vals[i];
  }

  has(key: number): boolean {
    return this.find(key) >= 0;
  }

  set(key: number, value: V): this {
    checkKey(key);
    let i = this.home(key);
    while (this.used[i] === 1) {
      if (this.keys[i] === key) {
        this.vals[i] = value;
        return this;
      }
      i = (i + 1) & this.mask;
    }
    this.used[i] = 1;
    this.keys[i] = key;
    this.vals[i] = value;
    this.count++;
    if (this.count > this.peak) this.peak = this.count;
    if (this.count * 2 > this.mask + 1) this.resize((this.mask + 1) * 2);
    return this;
  }

  delete(key: number): boolean {
    let hole = this.find(key);
    if (hole < 0) return false;
    this.count--;
    // Backward shift: pull later entries of the probe run into the hole
    // when their home slot is not between the hole and them.
    let j = hole;
    for (;;) {
      j = (j + 1) & this.mask;
      if (this.used[j] === 0) break;
      const home = this.home(this.keys[j]!);
      const between = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (between) continue;
      this.keys[hole] = this.keys[j]!;
      this.vals[hole] = this.vals[j];
      hole = j;
    }
    this.used[hole] = 0;
    this.vals[hole] = undefined;
    // Shrink only when the table stayed mostly empty for a while (4 deletes
    // per slot), so a size that swings with the queue depth never resizes.
    const cap = this.mask + 1;
    if (++this.churn >= cap * 4) {
      if (cap > MIN_CAPACITY && this.peak * 8 < cap) this.resize(capacityFor(this.peak));
      this.churn = 0;
      this.peak = this.count;
    }
    return true;
  }

  clear(): void {
    this.used.fill(0);
    this.vals.fill(undefined);
    this.count = 0;
    this.peak = 0;
    this.churn = 0;
  }

  /** The values, in no particular order (a snapshot: the map may change while it is used). */
  values(): V[] {
    const out: V[] = [];
    for (let i = 0; i <= this.mask; i++) if (this.used[i] === 1) out.push(this.vals[i] as V);
    return out;
  }

  /** The keys, in no particular order (a snapshot). */
  keyList(): number[] {
    const out: number[] = [];
    for (let i = 0; i <= this.mask; i++) if (this.used[i] === 1) out.push(this.keys[i]!);
    return out;
  }

  private find(key: number): number {
    if (!Number.isSafeInteger(key) || key < 0) return -1;
    let i = this.home(key);
    while (this.used[i] === 1) {
      if (this.keys[i] === key) return i;
      i = (i + 1) & this.mask;
    }
    return -1;
  }

  /** Fibonacci hashing of the key's low and high 32 bits; the top bits index the table. */
  private home(key: number): number {
    const h = Math.imul((key >>> 0) ^ Math.imul((key / 4294967296) >>> 0, 0x85ebca6b), 0x9e3779b1);
    return h >>> this.shift;
  }

  private resize(cap: number): void {
    const { keys, vals, used } = this;
    this.keys = new Float64Array(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
    this.count = 0;
    this.churn = 0;
    for (let i = 0; i < used.length; i++) {
      if (used[i] === 1) this.set(keys[i]!, vals[i] as V);
    }
    vals.fill(undefined);
  }
}

function capacityFor(n: number): number {
  let cap = MIN_CAPACITY;
  while (cap < n * 2) cap *= 2;
  return cap;
}

function checkKey(key: number): void {
  if (!Number.isSafeInteger(key) || key < 0) throw new RangeError(`IntMap key ${key} is not a non-negative safe integer`);
}

/** What a SlotList stores: the list keeps the item's position in `slot` (-1 when not in a list). */
export interface Slotted {
  slot: number;
}

/**
 * An unordered set of objects with O(1) add and remove: a dense array, each
 * item knowing its index; removal moves the last item into the gap and
 * clears the last slot. For holders scanned linearly (range locks).
 */
export class SlotList<T extends Slotted> {
  private items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The item at `i` (0 <= i < size). */
  at(i: number): T {
    return this.items[i]!;
  }

  add(item: T): void {
    if (item.slot >= 0) throw new Error('item is already in a list');
    item.slot = this.items.length;
    this.items.push(item);
  }

  /** Removes `item` if it is in this list; true when it was. */
  remove(item: T): boolean {
    const i = item.slot;
    if (i < 0 || this.items[i] !== item) return false;
    const last = this.items.pop()!;
    if (last !== item) {
      this.items[i] = last;
      last.slot = i;
    }
    item.slot = -1;
    return true;
  }

  clear(): void {
    for (const item of this.items) item.slot = -1;
    this.items = [];
  }
}
