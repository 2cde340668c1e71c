/** The receiver's de-duplication of requests by seq (src/mirror/link/replay-window.ts). */
import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../../../../src/mirror/link/replay-window';

describe('ReplayWindow', () => {
  it('a new seq, then pending while handled, then done with the recorded reply', () => {
    const w = new ReplayWindow<string, string>(8);
    expect(w.check(1)).toEqual({ state: 'new' });
    w.begin(1, 'link0');
    expect(w.check(1)).toEqual({ state: 'pending', via: 'link0' });
    expect(w.complete(1, 'reply-1')).toBe('link0');
    expect(w.check(1)).toEqual({ state: 'done', reply: 'reply-1' });
  });

  it('a copy of a pending request moves where the reply goes', () => {
    const w = new ReplayWindow<string, string>(8);
    w.begin(5, 'link0');
    w.redirect(5, 'link1');
    expect(w.check(5)).toEqual({ state: 'pending', via: 'link1' });
    expect(w.complete(5, 'r')).toBe('link1');
    // Completing twice (or something forgotten) reports nowhere to send.
    expect(w.complete(5, 'again')).toBeNull();
    expect(w.complete(6, 'never begun')).toBeNull();
  });

  it('forgets everything below the ack floor and calls copies below it stale', () => {
    const w = new ReplayWindow<string, string>(8);
    for (let s = 1; s <= 4; s++) {
      w.begin(s, 'l');
      w.complete(s, `r${s}`);
    }
    w.advanceFloor(3);
    expect(w.size).toBe(2);
    expect(w.floor).toBe(3);
    expect(w.check(2)).toEqual({ state: 'stale' });
    expect(w.check(3)).toEqual({ state: 'done', reply: 'r3' });
    w.advanceFloor(2); // never goes back
    expect(w.floor).toBe(3);
  });

  it('keeps at most `capacity` answered entries, never dropping pending ones, and counts what it drops above the floor', () => {
    const w = new ReplayWindow<string, string>(2);
    w.begin(1, 'l'); // stays pending: the requester's floor stays at 1
    for (let s = 2; s <= 5; s++) {
      w.begin(s, 'l');
      w.complete(s, `r${s}`);
    }
    expect(w.check(1)).toEqual({ state: 'pending', via: 'l' });
    expect(w.check(2)).toEqual({ state: 'new' });
    expect(w.check(3)).toEqual({ state: 'new' });
    expect(w.check(4)).toEqual({ state: 'done', reply: 'r4' });
    expect(w.check(5)).toEqual({ state: 'done', reply: 'r5' });
    expect(w.overflows).toBe(2);
  });

  it('a floor far above the entries forgets them all; one inside a sparse range forgets only those below', () => {
    const w = new ReplayWindow<string, string>(8);
    for (const s of [10, 2 ** 33, 2 ** 33 + 7]) {
      w.begin(s, 'l');
      w.complete(s, `r${s}`);
    }
    w.advanceFloor(2 ** 33 + 1);
    expect(w.size).toBe(1);
    expect(w.check(2 ** 33)).toEqual({ state: 'stale' });
    expect(w.check(2 ** 33 + 7)).toEqual({ state: 'done', reply: `r${2 ** 33 + 7}` });
    w.advanceFloor(2 ** 40);
    expect(w.size).toBe(0);
  });

  it('an entry that was pending when trimming passed it is the first dropped once answered', () => {
    const w = new ReplayWindow<string, string>(2);
    w.begin(1, 'l');
    for (let s = 2; s <= 4; s++) {
      w.begin(s, 'l');
      w.complete(s, `r${s}`);
    }
    // 2 was dropped; 1 is still pending behind it.
    expect(w.check(2)).toEqual({ state: 'new' });
    w.complete(1, 'r1');
    // Three answered for two places: the oldest answered one goes, whatever order they were answered in.
    expect(w.check(1)).toEqual({ state: 'new' });
    expect(w.check(3)).toEqual({ state: 'done', reply: 'r3' });
    expect(w.check(4)).toEqual({ state: 'done', reply: 'r4' });
    expect(w.overflows).toBe(2);
  });

  it('clear() forgets everything (the peer restarted)', () => {
    const w = new ReplayWindow<string, string>(4);
    w.begin(9, 'l');
    w.advanceFloor(5);
    w.clear();
    expect(w.size).toBe(0);
    expect(w.floor).toBe(0);
    expect(w.check(1)).toEqual({ state: 'new' });
    expect(w.complete(9, 'x')).toBeNull();
  });
});
