/**
 * Cleanup that runs even when a test fails.
 *
 * A resource made inside a test is released when that test finishes
 * (onTestFinished); one made in beforeAll/describe is released after the
 * file (afterAll, registered when this module is imported by a test file).
 * Whatever is still alive when the worker process exits is killed
 * synchronously from an 'exit' hook.
 */
import { afterAll, onTestFinished } from 'vitest';

export interface Disposable {
  /** Names the resource in cleanup warnings. */
  readonly label: string;
  dispose(): Promise<void>;
  disposeSync(): void;
}

const live = new Set<Disposable>();
let exitHookInstalled = false;

/** Track `resource` until it is disposed; returns it for chaining. */
export function track<T extends Disposable>(resource: T): T {
  live.add(resource);
  installExitHook();
  try {
    onTestFinished(() => release(resource));
  } catch {
    // Not inside a test (beforeAll, describe body): the afterAll below releases it.
  }
  return resource;
}

/** Dispose one resource now (idempotent). */
export async function release(resource: Disposable): Promise<void> {
  if (!live.delete(resource)) return;
  try {
    await resource.dispose();
  } catch (e) {
    console.warn(`cleanup of ${resource.label} failed: ${(e as Error).message}`);
    resource.disposeSync();
  }
}

/** Dispose everything still tracked, newest first. */
export async function releaseAll(): Promise<void> {
  for (const resource of [...live].reverse()) await release(resource);
}

afterAll(releaseAll);

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const resource of live) {
      try {
        resource.disposeSync();
      } catch {
        // best effort while exiting
      }
    }
  });
}
