/**
 * `twinsan token rotate [--out FILE]`: replace the API token. The old token
 * stops working at once, so every client's token file needs the new one;
 * --out writes it (mode 0600, atomically) instead of printing it.
 */
import { chmod, open, rename, unlink } from 'node:fs/promises';
import { Command } from 'commander';
import { CliError, ConnectionOptions, EXIT } from '../client';
import type { CliIo } from '../output';
import { apiAction, markApi, asObject, note, out, printJson } from './context';

/** Write the token where only its owner can read it, replacing the file in one step. */
export async function writeTokenFile(file: string, token: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${token}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, 0o600); // the umask may have taken bits away, never added: still, be exact
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

export function tokenCommand(io: CliIo): Command {
  const token = new Command('token').description('the API bearer token');
  markApi(
    token.command('rotate').description('generate a new API token; the current one stops working').option('--out <file>', 'write the new token to this file (mode 0600) instead of printing it'),
  ).action(
    apiAction<ConnectionOptions & { out?: string }>(io, async (ctx, _args, opts) => {
      const res = await ctx.client.post('/api/v1/token/rotate');
      const body = asObject<{ token?: unknown }>(res, 'the token');
      if (typeof body.token !== 'string' || body.token === '') throw new CliError('unexpected answer from the API: no token in it', EXIT.refused);
      if (opts.out !== undefined) {
        try {
          await writeTokenFile(opts.out, body.token);
        } catch (err) {
          // The old token is gone already: the new one must not be lost with the file.
          io.stdout.write(`${body.token}\n`);
          throw new CliError(`token rotated, but writing ${opts.out} failed (${(err as NodeJS.ErrnoException).code ?? String(err)}); the new token is printed above`, EXIT.refused);
        }
        note(ctx, `new token written to ${opts.out} (mode 0600); the old token no longer works`);
        return;
      }
      if (ctx.json) return printJson(ctx, res);
      out(ctx, body.token);
      note(ctx, 'the old token no longer works: update the token file of every client');
    }),
  );
  return token;
}
