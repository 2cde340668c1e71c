import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { BlockIoError } from '../../../src/block';

/** A scratch directory under os.tmpdir(); call remove() in afterAll. */
export function scratchDir(): { dir: string; file(name: string): string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'twinsan-block-'));
  let n = 0;
  return {
    dir,
    file: (name: string) => path.join(dir, `${n++}-${name}`),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Asserts that `promise` rejects with a BlockIoError carrying `code`. */
export async function expectBlockIoError(promise: Promise<unknown>, code: string): Promise<BlockIoError> {
  const err: unknown = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BlockIoError);
  expect((err as BlockIoError).code).toBe(code);
  return err as BlockIoError;
}

/** A buffer of `length` bytes with a recognisable pattern from `seed`. */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 31 + i * 7 + 1) & 0xff;
  return b;
}
