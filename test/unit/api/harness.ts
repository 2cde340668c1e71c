/** Builds the API over a FakeControl with a fresh token file and a captured log. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp, TokenStore } from '../../../src/api';
import { FakeControl } from './fake-control';

export interface Harness {
  readonly app: FastifyInstance;
  readonly control: FakeControl;
  readonly tokens: TokenStore;
  readonly dir: string;
  /** Every log line written so far. */
  readonly logs: string[];
  readonly auth: { authorization: string };
  close(): Promise<void>;
}

export async function harness(options: { dashboard?: boolean } = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-api-'));
  const { store } = await TokenStore.open(path.join(dir, 'api-token'));
  const logs: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void logs.push(line) });
  const control = new FakeControl();
  const app = buildApp({ control, tokens: store, logger, nodeId: 'node-a', ...options });
  await app.ready();
  return {
    app,
    control,
    tokens: store,
    dir,
    logs,
    get auth() {
      return { authorization: `Bearer ${store.current()}` };
    },
    async close() {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Ports for the tests that listen (this project's test range). */
/** One port per listening test, so test files running in parallel never collide. */
export const TEST_PORTS = { tls: 23101, plain: 23102, sse: 23103, dashboard: 23104, nodeApiTls: 23105, nodeApiPlain: 23106 } as const;
