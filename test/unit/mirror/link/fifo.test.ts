/** The send queue (src/mirror/link/fifo.ts). */
import { describe, expect, it } from 'vitest';
import { Fifo } from '../../../../src/mirror/link/fifo';

describe('Fifo', () => {
  it('gives items back in order across its compactions', () => {
    const q = new Fifo<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.push(next++);
      for (let i = 0; i < 90; i++) expect(q.shift()).toBe(expected++);
    }
    expect(q.length).toBe(next - expected);
    expect(q.peek()).toBe(expected);
    expect([...q]).toEqual(Array.from({ length: next - expected }, (_, i) => expected + i));
  });

  it('retains the items a predicate accepts, in order', () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 10; i++) q.push(i);
    q.shift();
    q.retain((n) => n % 2 === 0);
    expect([...q]).toEqual([2, 4, 6, 8]);
    expect(q.shift()).toBe(2);
  });

  it('is empty when drained', () => {
    const q = new Fifo<string>();
    expect(q.shift()).toBeUndefined();
    q.push('a');
    expect(q.shift()).toBe('a');
    expect(q.length).toBe(0);
    expect(q.peek()).toBeUndefined();
  });
});
