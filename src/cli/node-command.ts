/**
 * `twinsan node start --config FILE` (or `twinsan node --config FILE`): run one node of a mirrored pair
 * (docs/node-config.md) until SIGINT or SIGTERM, then stop gracefully: the
 * iSCSI server first (in-flight commands complete on both copies), then the
 * volumes and the mirror. A second signal while stopping exits at once.
 * SIGUSR2 logs the node's status as one line.
 */
import { Command } from 'commander';
import { UsageError } from './client';
import { addNodeApiCommands } from './commands/nodes';
import type { Logger } from 'pino';
import { startNodeApi } from '../api';
import type { ApiServer } from '../api';
import { applyEnvOverrides, createMirrorNode, loadNodeConfig, mirrorDataStanding, mirrorInSync, NodePairControl, TwinsanNode } from '../resource-groups';
import type { NodeConfig } from '../resource-groups';

const RELEASE = (require('../../package.json') as { version: string }).version;

/** The REST API over the node's PairControl (config.api), once the node runs. */
async function startApi(config: NodeConfig, node: TwinsanNode, log: Logger): Promise<{ control: NodePairControl; server: ApiServer } | null> {
  const api = config.api;
  if (!api) return null;
  const scheme = api.tls ? 'https' : 'http';
  const control = new NodePairControl(node, { apiUrl: `${scheme}://${api.listen}`, release: RELEASE });
  try {
    // Token file (generated or repaired, reported in the log), TLS files, the app, listening.
    const server = await startNodeApi({ config: api, control, logger: log, nodeId: config.nodeId });
    return { control, server };
  } catch (err) {
    control.close();
    throw err;
  }
}
import { createLogger } from './logger';
import { tuneRuntimeForDataPath } from './runtime-tuning';
import { CliIo, processIo } from './output';

export interface NodeCommandOptions {
  config: string;
  logLevel?: string;
}

const CONFIG_HELP = 'node config file (JSON, see docs/node-config.md)';
const LOG_LEVEL_HELP = 'log level (overrides log.level of the config and TWINSAN_LOG_LEVEL)';

/**
 * `twinsan node start --config FILE` runs a node; `twinsan node --config FILE`
 * is its older spelling and stays. `node list` and `node show ID` ask the API.
 * Options are positional so that `node --config` and `node start --config`
 * each reach their own command.
 */
export function nodeCommand(io: CliIo = processIo()): Command {
  const node = new Command('node')
    .description('run one node of a mirrored pair (node start), or look at the nodes of a running pair (node list, node show)')
    .option('--config <file>', `${CONFIG_HELP}; the same as node start --config`)
    .option('--log-level <level>', LOG_LEVEL_HELP)
    .enablePositionalOptions()
    .action(async (opts: Partial<NodeCommandOptions>) => {
      if (opts.config === undefined) throw new UsageError('node: give a subcommand (start, list, show) or --config FILE');
      await runNode({ config: opts.config, ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel } : {}) });
    });
  node
    .command('start')
    .description('run this node: its volumes, their replication, its resource groups and the API, until SIGINT or SIGTERM')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--log-level <level>', LOG_LEVEL_HELP)
    .action(async (opts: NodeCommandOptions) => {
      await runNode(opts);
    });
  addNodeApiCommands(node, io);
  return node;
}

export async function runNode(opts: NodeCommandOptions): Promise<void> {
  tuneRuntimeForDataPath();
  const config = applyEnvOverrides(await loadNodeConfig(opts.config), process.env);
  const log = createLogger(opts.logLevel ?? process.env['TWINSAN_LOG_LEVEL'] ?? config.log.level, { node: config.nodeId });
  const node = new TwinsanNode(config, { log, createMirror: createMirrorNode, inSync: mirrorInSync, dataStanding: mirrorDataStanding });

  // Signals are taken before start(), so one that arrives while starting stops the node once it is up.
  let stopRequested: NodeJS.Signals | null = null;
  let wake: (() => void) | null = null;
  const onStop = (signal: NodeJS.Signals): void => {
    if (stopRequested) {
      log.warn({ signal }, 'second signal while stopping: exiting now');
      log.flush();
      process.exit(1);
    }
    stopRequested = signal;
    wake?.();
  };
  const onStatus = (): void => log.info({ status: node.status() }, 'status');
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  process.on('SIGUSR2', onStatus);
  try {
    log.info({ config: config.file, position: node.layout.local.position, peer: config.peer.nodeId }, 'starting');
    await node.start();
    let api: Awaited<ReturnType<typeof startApi>> = null;
    try {
      api = await startApi(config, node, log);
    } catch (err) {
      await node.close().catch(() => undefined);
      throw err;
    }
    if (api) process.stderr.write(`twinsan node ${config.nodeId}: REST API at ${api.server.url}/api/v1\n`);
    for (const t of node.targets()) for (const url of t.urls) process.stderr.write(`twinsan node ${config.nodeId}: serving ${t.name} at ${url}\n`);
    if (!stopRequested) await new Promise<void>((resolve) => (wake = resolve));
    log.info({ signal: stopRequested }, 'shutting down');
    if (api) {
      await api.server.close().catch((err: unknown) => log.error({ err }, 'closing the API failed'));
      api.control.close();
    }
    await node.close();
    log.info('stopped');
    // Everything is closed, so the process should end by itself; if a stray handle keeps it up, do not hang.
    setTimeout(() => {
      log.warn('still running 5 s after stopping: exiting');
      log.flush();
      process.exit();
    }, 5_000).unref();
  } finally {
    process.off('SIGUSR2', onStatus);
    log.flush();
  }
}
