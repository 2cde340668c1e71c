/**
 * `twinsan target`: serve one volume as LUN 0 of one iSCSI target until
 * SIGINT or SIGTERM, then shut down gracefully (in-flight commands finish,
 * data is synced, the backing store is closed).
 */
import { createHash } from 'node:crypto';
import { Command, Option } from 'commander';
import { FileBackingStore } from '../block';
import { IscsiServer } from '../target/iscsi';
import { FileReservationStore, LogicalUnit, ScsiTargetDevice } from '../target/scsi';
import { createLogger } from './logger';
import { tuneRuntimeForDataPath } from './runtime-tuning';
import { parseBlockSize, parseCredentials, parseIqn, parseListen, parsePhysicalBlockSize, parseSize } from './parse';

export interface TargetCommandOptions {
  listen: { host: string; port: number };
  iqn: string;
  backing: string;
  size?: number;
  create?: boolean;
  thin?: boolean;
  direct?: boolean;
  blockSize: 512 | 4096;
  physicalBlockSize?: number;
  chap?: { user: string; secret: string };
  mutualChap?: { user: string; secret: string };
  allow?: string[];
  volumeId?: string;
  logLevel?: string;
}

/**
 * A volume's stable id when none is given: derived from the target name, so
 * the device identity (serial, NAA) is the same on every node and release
 * that serves the target.
 */
export function volumeIdFromIqn(iqn: string): string {
  const h = createHash('sha256').update(`twinsan-volume:${iqn}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Where `twinsan target` keeps the APTPL persistent reservations of a volume: next to its backing file. */
export function reservationFilePath(backing: string): string {
  return `${backing}.twinsan-pr.json`;
}

export function targetCommand(): Command {
  return new Command('target')
    .description('serve one file or block device as LUN 0 of an iSCSI target')
    .requiredOption('--listen <host:port>', 'portal address to listen on', parseListen)
    .requiredOption('--iqn <iqn>', 'target name', parseIqn)
    .requiredOption('--backing <path>', 'backing file or block device')
    .option('--size <bytes>', 'volume size (with --create, or to check an existing file)', parseSize)
    .option('--create', 'create the backing file if it does not exist')
    .option('--thin', 'thin provisioned: sparse file, UNMAP frees space')
    .option('--direct', 'open the backing store with O_DIRECT')
    .addOption(new Option('--block-size <bytes>', 'logical block size').argParser(parseBlockSize).default(512))
    .option(
      '--physical-block-size <bytes>',
      'physical block size reported to initiators (alignment hint; default: the logical block size)',
      parsePhysicalBlockSize,
    )
    .option('--chap <user:secret>', 'require CHAP from initiators', parseCredentials)
    .option('--mutual-chap <user:secret>', 'credentials the target presents for mutual CHAP', parseCredentials)
    .option('--allow <initiator-iqn...>', 'only these initiators may log in')
    .option('--volume-id <uuid>', 'stable volume id for device identity (default: derived from --iqn)')
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error)')
    .action(async (opts: TargetCommandOptions) => {
      await runTarget(opts);
    });
}

export async function runTarget(opts: TargetCommandOptions): Promise<void> {
  tuneRuntimeForDataPath();
  const log = createLogger(opts.logLevel, { component: 'target' });
  if (opts.mutualChap && !opts.chap) throw new Error('--mutual-chap needs --chap');
  const store = await FileBackingStore.open(opts.backing, {
    create: opts.create ?? false,
    thin: opts.thin ?? false,
    direct: opts.direct ?? false,
    ...(opts.size !== undefined ? { sizeBytes: opts.size } : {}),
  });
  if (opts.size !== undefined && store.sizeBytes !== opts.size) {
    if (store.sizeBytes < opts.size) {
      await store.resize(opts.size);
    } else {
      await store.close();
      throw new Error(`--size ${opts.size} is smaller than the existing backing store (${store.sizeBytes} bytes); refusing to shrink`);
    }
  }
  if (store.sizeBytes % opts.blockSize !== 0 || store.sizeBytes === 0) {
    await store.close();
    throw new Error(`backing store size ${store.sizeBytes} is not a positive multiple of the ${opts.blockSize}-byte block size`);
  }
  const lu = new LogicalUnit({
    store,
    blockSize: opts.blockSize,
    physicalBlockSize: opts.physicalBlockSize ?? opts.blockSize,
    thin: opts.thin ?? false,
    identity: { volumeId: opts.volumeId ?? volumeIdFromIqn(opts.iqn) },
    // Persistent reservations made with APTPL=1 survive restarts in this file.
    reservationStore: new FileReservationStore(reservationFilePath(opts.backing)),
  });
  try {
    await lu.reservations.whenReady();
  } catch (err) {
    await store.close();
    throw err;
  }
  const device = new ScsiTargetDevice({ name: opts.iqn, luns: new Map([[0, lu]]) });
  const server = new IscsiServer({ log });
  server.addTarget({
    name: opts.iqn,
    device,
    allowedInitiators: opts.allow && opts.allow.length > 0 ? opts.allow : null,
    ...(opts.chap
      ? {
          chap: {
            user: opts.chap.user,
            secret: opts.chap.secret,
            ...(opts.mutualChap ? { mutualUser: opts.mutualChap.user, mutualSecret: opts.mutualChap.secret } : {}),
          },
        }
      : {}),
  });
  device.setAbortTasksHandler((lun, nexusKeys) => server.abortTasks(opts.iqn, lun, nexusKeys));
  // The handlers go in before the port accepts: a SIGINT/SIGTERM sent as soon as
  // it does (before the code after listen() has run) shuts down, it does not kill.
  let stop: ((signal: NodeJS.Signals) => void) | null = null;
  let early: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop) stop(signal);
    else early ??= signal;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let port: number;
  try {
    port = await server.listen(opts.listen.host, opts.listen.port);
  } catch (err) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw err;
  }
  log.info({ iqn: opts.iqn, backing: opts.backing, sizeBytes: store.sizeBytes, port, thin: store.thin }, 'target ready');

  await new Promise<void>((resolve) => {
    let stopping = false;
    stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      server
        .close()
        .then(() => store.close())
        .then(
          () => resolve(),
          (err: unknown) => {
            log.error({ err }, 'shutdown failed');
            process.exitCode = 1;
            resolve();
          },
        );
    };
    if (early) stop(early);
  });
  log.info('stopped');
  log.flush();
}
