import { describe, expect, it } from 'vitest';
import { IntMap, SlotList } from '../../../src/block';

/** A deterministic pseudo-random sequence (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

describe('IntMap', () => {
  it('matches a Map under random inserts, overwrites and deletes', () => {
    const next = rng(7);
    const m = new IntMap<number>();
    const ref = new Map<number, number>();
    for (let step = 0; step < 50_000; step++) {
      // Few distinct keys so that probe runs collide, wrap and shift back.
      const key = next() % 300;
      const op = next() % 3;
      if (op === 0) {
        expect(m.delete(key)).toBe(ref.delete(key));
      } else {
        m.set(key, step);
        ref.set(key, step);
      }
      if (step % 499 === 0) {
        expect(m.size).toBe(ref.size);
        for (let k = 0; k < 300; k++) {
          expect(m.get(k)).toBe(ref.get(k));
          expect(m.has(k)).toBe(ref.has(k));
        }
      }
    }
    expect(m.values().sort((a, b) => a - b)).toEqual([...ref.values()].sort((a, b) => a - b));
    expect(m.keyList().sort((a, b) => a - b)).toEqual([...ref.keys()].sort((a, b) => a - b));
  });

  it('takes 32-bit tags and sequence numbers beyond 2^32', () => {
    const m = new IntMap<string>();
    const keys = [0, 1, 0xffffffff, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
    keys.forEach((k, i) => m.set(k, `v${i}`));
    keys.forEach((k, i) => expect(m.get(k)).toBe(`v${i}`));
    expect(m.size).toBe(keys.length);
    expect(m.get(2)).toBeUndefined();
    expect(m.delete(2 ** 32)).toBe(true);
    expect(m.has(2 ** 32)).toBe(false);
    expect(m.get(2 ** 32 + 1)).toBe('v4');
  });

  it('does not resize while its size swings between empty and the queue depth', () => {
    const m = new IntMap<number>();
    let key = 0;
    const fill = (): void => {
      for (let i = 0; i < 40; i++) m.set(key++, i);
    };
    fill();
    const cap = m.capacity;
    for (let cycle = 0; cycle < 2000; cycle++) {
      for (const k of m.keyList()) m.delete(k);
      fill();
      expect(m.capacity).toBe(cap);
    }
  });

  it('refuses keys that are not non-negative safe integers, and finds nothing for them', () => {
    const m = new IntMap<number>();
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
      expect(() => m.set(bad, 1)).toThrow(RangeError);
      expect(m.get(bad)).toBeUndefined();
      expect(m.delete(bad)).toBe(false);
    }
    expect(m.size).toBe(0);
  });

  it('follows the peak size, not the history: steady churn keeps the table small', () => {
    const m = new IntMap<number>();
    for (let seq = 0; seq < 100_000; seq++) {
      m.set(seq, seq);
      if (seq >= 32) m.delete(seq - 32);
    }
    expect(m.size).toBe(32);
    expect(m.capacity).toBeLessThanOrEqual(128);
    for (let seq = 100_000 - 32; seq < 100_000; seq++) expect(m.get(seq)).toBe(seq);
    // Grows for a burst, shrinks once the churn after it stays small.
    for (let k = 0; k < 5000; k++) m.set(1_000_000 + k, k);
    expect(m.capacity).toBeGreaterThanOrEqual(8192);
    for (let k = 0; k < 5000; k++) m.delete(1_000_000 + k);
    expect(m.size).toBe(32);
    for (let seq = 100_000; seq < 300_000; seq++) {
      m.set(seq, seq);
      m.delete(seq - 32);
    }
    expect(m.size).toBe(32);
    expect(m.capacity).toBeLessThanOrEqual(128);
    for (let seq = 300_000 - 32; seq < 300_000; seq++) expect(m.get(seq)).toBe(seq);
    m.clear();
    expect(m.size).toBe(0);
    expect(m.get(100_000 - 1)).toBeUndefined();
  });
});

describe('SlotList', () => {
  interface Item {
    id: number;
    slot: number;
  }
  const item = (id: number): Item => ({ id, slot: -1 });
  const ids = (l: SlotList<Item>): number[] => Array.from({ length: l.size }, (_, i) => l.at(i).id).sort((a, b) => a - b);

  it('adds and removes in any order, keeping every item once', () => {
    const l = new SlotList<Item>();
    const items = Array.from({ length: 10 }, (_, i) => item(i));
    for (const it of items) l.add(it);
    expect(l.remove(items[3]!)).toBe(true);
    expect(l.remove(items[9]!)).toBe(true);
    expect(l.remove(items[0]!)).toBe(true);
    expect(ids(l)).toEqual([1, 2, 4, 5, 6, 7, 8]);
    for (let i = 0; i < l.size; i++) expect(l.at(i).slot).toBe(i);
    expect(items[3]!.slot).toBe(-1);
  });

  it('ignores an item it does not hold and refuses one already in a list', () => {
    const a = new SlotList<Item>();
    const b = new SlotList<Item>();
    const x = item(1);
    const y = item(2);
    a.add(x);
    b.add(y);
    expect(b.remove(x)).toBe(false);
    expect(a.remove(y)).toBe(false);
    expect(() => b.add(x)).toThrow(/already/);
    expect(a.remove(x)).toBe(true);
    expect(a.remove(x)).toBe(false);
    b.clear();
    expect(b.size).toBe(0);
    expect(y.slot).toBe(-1);
  });
});
