/** `twinsan volume create|list|show|resize|delete`. */
import { Command, Option } from 'commander';
import type { CreateVolumeRequest, VolumeInfo } from '../../resource-groups';
import { ApiResponse, CliError, ConnectionOptions, EXIT } from '../client';
import { bytes, CliIo, startProgress } from '../output';
import { parseBlockSize, parseIqn, parseSize } from '../parse';
import { apiAction, apiCommand, asObject, Ctx, DEFAULT_INTERVAL_MS, getArray, getObject, note, out, parseInterval, printJson, seg } from './context';
import { mirrorText, volumeBlock, volumesTable } from './views';

/** The API fields of a volume request and the options that set them, for error messages. */
const VOLUME_FIELDS = {
  name: 'NAME',
  sizeBytes: '--size',
  resourceGroup: '--rg',
  thin: '--thin',
  blockSize: '--block-size',
  iqn: '--iqn',
} as const;

interface CreateOptions extends ConnectionOptions {
  size: number;
  rg: string;
  thin?: boolean;
  blockSize?: 512 | 4096;
  iqn?: string;
}

interface ShowOptions extends ConnectionOptions {
  watch?: boolean;
  interval: number;
}

export function volumeCommand(io: CliIo): Command {
  const volume = new Command('volume').description('mirrored volumes: create, list, show, resize, delete');

  apiCommand(volume, 'create <name>', "create a mirrored volume on both nodes, exported through its resource group's alias IPs")
    .requiredOption('--size <size>', 'size: bytes, or with K/M/G/T (binary: 10G = 10 GiB)', parseSize)
    .requiredOption('--rg <group>', 'resource group that serves it')
    .option('--thin', 'thin provisioned (sparse; UNMAP frees space)')
    .addOption(new Option('--block-size <bytes>', 'logical block size, 512 or 4096 (default 512)').argParser(parseBlockSize))
    .option('--iqn <iqn>', "target name (default: from the cluster's IQN prefix and the name)", parseIqn)
    .action(
      apiAction<CreateOptions>(io, async (ctx, [name], opts) => {
        const body: CreateVolumeRequest = {
          name: name!,
          sizeBytes: opts.size,
          thin: opts.thin ?? false,
          resourceGroup: opts.rg,
          ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
          ...(opts.iqn !== undefined ? { iqn: opts.iqn } : {}),
        };
        const res = await ctx.client.post('/api/v1/volumes', { body, fields: VOLUME_FIELDS });
        if (ctx.json) return printJson(ctx, res);
        out(ctx, volumeBlock(asObject<VolumeInfo>(res, 'the volume')));
      }),
    );

  apiCommand(volume, 'list', 'every volume: size, group, owner, mirror state, sessions').action(
    apiAction(io, async (ctx) => {
      const { value, res } = await getArray<VolumeInfo>(ctx, '/api/v1/volumes', 'the volume list');
      if (ctx.json) return printJson(ctx, res);
      out(ctx, value.length ? volumesTable(value) : 'no volumes');
    }),
  );

  apiCommand(volume, 'show <name>', 'one volume: IQN, size, owner, mirror state, URLs')
    .option('--watch', 'while the mirror resyncs, follow it with a progress bar until it is in sync')
    .addOption(new Option('--interval <ms>', 'poll interval of --watch').argParser(parseInterval).default(DEFAULT_INTERVAL_MS))
    .action(
      apiAction<ShowOptions>(io, async (ctx, [name], opts) => {
        const { value, res } = await getObject<VolumeInfo>(ctx, `/api/v1/volumes/${seg(name!)}`, `volume ${name}`);
        if (!opts.watch) {
          if (ctx.json) return printJson(ctx, res);
          return out(ctx, volumeBlock(value));
        }
        if (!ctx.json) out(ctx, volumeBlock(value));
        await watchResync(ctx, value, res, opts.interval);
      }),
    );

  apiCommand(volume, 'resize <name>', 'grow a volume online (initiators are told the capacity changed)')
    .requiredOption('--size <size>', 'new size: bytes, or with K/M/G/T', parseSize)
    .action(
      apiAction<ConnectionOptions & { size: number }>(io, async (ctx, [name], opts) => {
        const res = await ctx.client.request('PATCH', `/api/v1/volumes/${seg(name!)}`, { body: { sizeBytes: opts.size }, fields: VOLUME_FIELDS });
        if (ctx.json) return printJson(ctx, res);
        out(ctx, volumeBlock(asObject<VolumeInfo>(res, 'the volume')));
      }),
    );

  apiCommand(volume, 'delete <name>', 'delete a volume on both nodes (refused while initiators are logged in, unless --force)')
    .option('--force', 'delete even with initiators logged in (their sessions end)')
    .action(
      apiAction<ConnectionOptions & { force?: boolean }>(io, async (ctx, [name], opts) => {
        const res = await ctx.client.request('DELETE', `/api/v1/volumes/${seg(name!)}`, { query: { force: opts.force ? true : undefined } });
        if (ctx.json) return printJson(ctx, res);
        note(ctx, `deleted volume ${name}`);
      }),
    );

  return volume;
}

/** --watch: poll while resyncing, bar on stderr; ends in sync (exit 0) or in another state (exit 1). */
async function watchResync(ctx: Ctx, first: VolumeInfo, firstRes: ApiResponse, intervalMs: number): Promise<void> {
  let v = first;
  let res = firstRes;
  if (v.mirror.state === 'resyncing') {
    const progress = startProgress(ctx.io.stderr, `resync ${v.name}`);
    try {
      while (v.mirror.state === 'resyncing') {
        progress.update(v.mirror.resyncProgress ?? 0, `${bytes(v.mirror.outOfSyncBytes)} to go`);
        await ctx.io.sleep(intervalMs);
        ({ value: v, res } = await getObject<VolumeInfo>(ctx, `/api/v1/volumes/${seg(v.name)}`, `volume ${v.name}`));
      }
    } finally {
      progress.finish(`${v.name}: ${mirrorText(v.mirror)}`);
    }
  } else {
    note(ctx, `${v.name}: ${mirrorText(v.mirror)} (not resyncing)`);
  }
  if (ctx.json) printJson(ctx, res);
  if (v.mirror.state !== 'in-sync') throw new CliError(`${v.name}: the mirror is ${v.mirror.state}, not in sync`, EXIT.refused);
}
