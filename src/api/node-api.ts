/**
 * startNodeApi: the API of a running node from its config's `api` section
 * (listen, tokenFile, tls file paths): opens the token file (reporting a
 * first start or a repaired mode, never the token), reads the TLS files,
 * builds the app and listens. `twinsan node` calls this with its
 * PairControl; the node itself does not depend on the API.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ApiConfig, PairControl } from '../resource-groups';
import { buildApp } from './app';
import { startApiServer } from './server';
import type { ApiServer, ApiTls } from './server';
import { TokenStore } from './token-store';

export interface NodeApiOptions {
  readonly config: ApiConfig;
  readonly control: PairControl;
  readonly logger: Logger;
  readonly nodeId: string;
  readonly dashboard?: boolean;
}

export interface NodeApi extends ApiServer {
  readonly tokens: TokenStore;
}

async function readTls(tls: NonNullable<ApiConfig['tls']>): Promise<ApiTls> {
  const read = async (what: string, file: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new Error(`API TLS ${what} ${file} cannot be read: ${(err as Error).message}`);
    }
  };
  return { cert: await read('certificate', tls.cert), key: await read('key', tls.key) };
}

export async function startNodeApi(options: NodeApiOptions): Promise<NodeApi> {
  const { config, logger } = options;
  const { store, created, repairedMode } = await TokenStore.open(config.tokenFile);
  if (created) logger.info({ tokenFile: config.tokenFile }, 'API token generated (mode 0600); clients read it from the token file');
  if (repairedMode !== null) {
    logger.warn({ tokenFile: config.tokenFile, mode: `0${repairedMode.toString(8)}` }, `API token file was mode 0${repairedMode.toString(8)}, readable or writable by others; repaired to 0600 (rotate the token if others may have read it)`);
  }
  const tls = config.tls === null ? undefined : await readTls(config.tls);
  const app = buildApp({ control: options.control, tokens: store, logger, nodeId: options.nodeId, dashboard: options.dashboard ?? true });
  try {
    const server = await startApiServer({ app, listen: config.listen, ...(tls === undefined ? {} : { tls }) });
    return { ...server, tokens: store, close: () => server.close() };
  } catch (err) {
    await app.close();
    throw err;
  }
}
