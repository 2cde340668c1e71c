/** A turn's output (src/target/iscsi/output-batch.ts): small buffers copied into runs, large ones by reference, onSent in order. */
import { describe, expect, it } from 'vitest';
import { ChunkWriter, OutputBatch } from '../../../src/target/iscsi/output-batch';

/** A writer that records writes and holds their callbacks until told. */
function recordingWriter(): ChunkWriter & { writes: Buffer[]; corks: number; uncorks: number; complete(index: number): void } {
  const held: ((() => void) | undefined)[] = [];
  const w = {
    writes: [] as Buffer[],
    corks: 0,
    uncorks: 0,
    write(chunk: Buffer, done?: () => void) {
      w.writes.push(chunk);
      held.push(done);
    },
    cork: () => void w.corks++,
    uncork: () => void w.uncorks++,
    complete(index: number) {
      held[index]?.();
    },
  };
  return w;
}

const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

describe('OutputBatch', () => {
  it('copies the headers and small data of a turn into one write and releases their PDUs at once', () => {
    const batch = new OutputBatch();
    const sent: string[] = [];
    for (let i = 0; i < 15; i++) {
      batch.push(bytes(48, i));
      batch.push(bytes(512, 100 + i));
      batch.onSent(() => sent.push(`pdu${i}`));
    }
    const w = recordingWriter();
    batch.flush(w);
    expect(w.writes).toHaveLength(1);
    expect(w.corks).toBe(0);
    const expected = Buffer.concat(Array.from({ length: 15 }, (_, i) => Buffer.concat([bytes(48, i), bytes(512, 100 + i)])));
    expect(w.writes[0]!.equals(expected)).toBe(true);
    expect(sent).toEqual(Array.from({ length: 15 }, (_, i) => `pdu${i}`));
    expect(batch.empty).toBe(true);
  });

  it('writes large data by reference between copied runs, in order, and releases it only once the socket is done with it', () => {
    const batch = new OutputBatch();
    const sent: string[] = [];
    const large = bytes(64 * 1024, 7);
    batch.push(bytes(48, 1));
    batch.push(large);
    batch.onSent(() => sent.push('large'));
    batch.push(bytes(48, 2));
    batch.push(bytes(1024, 3));
    batch.onSent(() => sent.push('after'));
    const w = recordingWriter();
    batch.flush(w);
    expect(w.writes.map((b) => b.length)).toEqual([48, 64 * 1024, 48 + 1024]);
    expect(w.writes[1]).toBe(large);
    expect(w.corks).toBe(1);
    expect(w.uncorks).toBe(1);
    // Both wait for the large write: callbacks run in write order.
    expect(sent).toEqual([]);
    w.complete(1);
    expect(sent).toEqual(['large', 'after']);
  });

  it('writes a lone buffer as it is and releases it from its write callback', () => {
    const batch = new OutputBatch();
    const sent: string[] = [];
    const only = bytes(48, 9);
    batch.push(only);
    batch.onSent(() => sent.push('only'));
    const w = recordingWriter();
    batch.flush(w);
    expect(w.writes).toEqual([only]);
    expect(w.writes[0]).toBe(only);
    expect(sent).toEqual([]);
    w.complete(0);
    expect(sent).toEqual(['only']);
  });

  it('cuts copied runs at 256 KiB', () => {
    const batch = new OutputBatch();
    for (let i = 0; i < 600; i++) batch.push(bytes(512, i));
    const w = recordingWriter();
    batch.flush(w);
    expect(w.writes.map((b) => b.length)).toEqual([512 * 512, 88 * 512]);
    expect(Buffer.concat(w.writes).equals(Buffer.concat(Array.from({ length: 600 }, (_, i) => bytes(512, i))))).toBe(true);
  });

  it("copies a small turn whole, 4 KiB data included, but passes a busy turn's data segments by reference", () => {
    const qd1 = new OutputBatch();
    const sent: string[] = [];
    qd1.push(bytes(48, 1));
    qd1.push(bytes(4096, 2));
    qd1.onSent(() => sent.push('qd1'));
    const w1 = recordingWriter();
    qd1.flush(w1);
    expect(w1.writes.map((b) => b.length)).toEqual([48 + 4096]);
    expect(sent).toEqual(['qd1']);

    const busy = new OutputBatch();
    const data = Array.from({ length: 8 }, (_, i) => bytes(4096, 10 + i));
    for (const d of data) {
      busy.push(bytes(48, 0));
      busy.push(d);
    }
    const w2 = recordingWriter();
    busy.flush(w2);
    expect(w2.writes.map((b) => b.length)).toEqual(data.flatMap(() => [48, 4096]));
    data.forEach((d, i) => expect(w2.writes[2 * i + 1]).toBe(d));
  });

  it('discards without writing and still releases every PDU', () => {
    const batch = new OutputBatch();
    const sent: number[] = [];
    batch.push(bytes(48, 1));
    batch.push(bytes(64 * 1024, 1));
    batch.onSent(() => sent.push(1));
    batch.discard();
    expect(sent).toEqual([1]);
    const w = recordingWriter();
    batch.flush(w);
    expect(w.writes).toEqual([]);
  });
});
