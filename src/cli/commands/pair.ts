/** `twinsan pair create --peer-api URL`, `twinsan pair status`. */
import { Command, InvalidArgumentError } from 'commander';
import type { PairInfo } from '../../resource-groups';
import type { ConnectionOptions } from '../client';
import type { CliIo } from '../output';
import { apiAction, apiCommand, asObject, getObject, out, printJson } from './context';
import { pairBlock } from './views';

/** An http(s) URL with nothing after the host and port path-wise that would surprise the API. */
export function parseHttpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL (e.g. https://198.18.0.2:8443)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`"${value}" must be an http:// or https:// URL`);
  return value;
}

export function pairCommand(io: CliIo): Command {
  const pair = new Command('pair').description('the HA pair: form it, see its state');
  apiCommand(pair, 'create', "form the pair: point this node (--api) at its peer's API")
    .requiredOption('--peer-api <url>', "the peer node's API base URL, e.g. https://198.18.0.2:8443", parseHttpUrl)
    .action(
      apiAction<ConnectionOptions & { peerApi: string }>(io, async (ctx, _args, opts) => {
        const res = await ctx.client.post('/api/v1/pair', { body: { peerApi: opts.peerApi }, fields: { peerApi: '--peer-api' } });
        if (ctx.json) return printJson(ctx, res);
        out(ctx, pairBlock(asObject<PairInfo>(res, 'the pair')));
      }),
    );
  apiCommand(pair, 'status', 'the pair, its nodes and replication links').action(
    apiAction(io, async (ctx) => {
      const { value, res } = await getObject<PairInfo>(ctx, '/api/v1/pair', 'the pair');
      if (ctx.json) return printJson(ctx, res);
      out(ctx, pairBlock(value));
    }),
  );
  return pair;
}
