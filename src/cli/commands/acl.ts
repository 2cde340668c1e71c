/** `twinsan acl show VOLUME`, `twinsan acl set VOLUME ...`: initiator ACLs, CHAP and mutual CHAP (secrets are write-only). */
import { Command } from 'commander';
import type { AccessInfo, UpdateAccessRequest } from '../../resource-groups';
import { ConnectionOptions, UsageError } from '../client';
import type { CliIo } from '../output';
import { parseIqn } from '../parse';
import { resolveSecret } from '../secret';
import { apiAction, apiCommand, asObject, getObject, out, printJson, seg } from './context';
import { accessBlock } from './views';

const ACCESS_FIELDS = {
  allowedInitiators: '--allow',
  chap: '--chap',
  'chap.user': '--chap',
  'chap.secret': 'the CHAP secret',
  mutualChap: '--mutual-chap',
  'mutualChap.user': '--mutual-chap',
  'mutualChap.secret': 'the mutual CHAP secret',
} as const;

interface SetOptions extends ConnectionOptions {
  allow?: string[];
  any?: boolean;
  /** a user name, or false for --no-chap */
  chap?: string | false;
  chapSecretFile?: string;
  chapSecret?: string;
  mutualChap?: string | false;
  mutualChapSecretFile?: string;
  mutualChapSecret?: string;
}

function collectIqn(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), parseIqn(value)];
}

export function aclCommand(io: CliIo): Command {
  const acl = new Command('acl').description('who may log in to a volume: initiator names, CHAP, mutual CHAP');

  apiCommand(acl, 'show <volume>', 'allowed initiators and CHAP users (secrets are never shown)').action(
    apiAction(io, async (ctx, [volume]) => {
      const { value, res } = await getObject<AccessInfo>(ctx, `/api/v1/volumes/${seg(volume!)}/access`, `access of ${volume}`);
      if (ctx.json) return printJson(ctx, res);
      out(ctx, accessBlock(value));
    }),
  );

  apiCommand(acl, 'set <volume>', 'change who may log in; what is not given stays as it is')
    .option('--allow <iqn...>', 'only these initiators may log in (replaces the list)', collectIqn)
    .option('--any', 'any initiator may log in')
    .option('--chap <user>', 'require CHAP with this user name; the secret from --chap-secret-file or a prompt')
    .option('--chap-secret-file <file>', 'file holding the CHAP secret (- for stdin); 12 to 16 characters work with every initiator')
    .option('--chap-secret <secret>', 'the CHAP secret on the command line (readable by other users: warned)')
    .option('--no-chap', 'turn CHAP (and mutual CHAP) off')
    .option('--mutual-chap <user>', 'user name the target answers with (mutual CHAP); the secret from --mutual-chap-secret-file or a prompt')
    .option('--mutual-chap-secret-file <file>', 'file holding the mutual CHAP secret (- for stdin)')
    .option('--mutual-chap-secret <secret>', 'the mutual CHAP secret on the command line (warned)')
    .option('--no-mutual-chap', 'turn mutual CHAP off')
    .action(
      apiAction<SetOptions>(io, async (ctx, [volume], opts) => {
        if (opts.allow && opts.any) throw new UsageError('give --allow or --any, not both');
        if (typeof opts.chap !== 'string' && (opts.chapSecretFile !== undefined || opts.chapSecret !== undefined)) {
          throw new UsageError('a CHAP secret needs --chap USER');
        }
        if (typeof opts.mutualChap !== 'string' && (opts.mutualChapSecretFile !== undefined || opts.mutualChapSecret !== undefined)) {
          throw new UsageError('a mutual CHAP secret needs --mutual-chap USER');
        }
        if (opts.chap === false && typeof opts.mutualChap === 'string') throw new UsageError('mutual CHAP needs CHAP: --no-chap turns both off');
        if (opts.chapSecretFile === '-' && opts.mutualChapSecretFile === '-') throw new UsageError('only one secret can come from stdin');

        const body: {
          allowedInitiators?: UpdateAccessRequest['allowedInitiators'];
          chap?: UpdateAccessRequest['chap'];
          mutualChap?: UpdateAccessRequest['mutualChap'];
        } = {};
        if (opts.any) body.allowedInitiators = null;
        else if (opts.allow) body.allowedInitiators = opts.allow;
        if (opts.chap === false) body.chap = null;
        else if (typeof opts.chap === 'string') {
          const secret = await resolveSecret(
            io,
            { file: opts.chapSecretFile, value: opts.chapSecret },
            { file: '--chap-secret-file', value: '--chap-secret', what: `CHAP secret for ${opts.chap}` },
          );
          body.chap = { user: opts.chap, secret };
        }
        if (opts.mutualChap === false) body.mutualChap = null;
        else if (typeof opts.mutualChap === 'string') {
          const secret = await resolveSecret(
            io,
            { file: opts.mutualChapSecretFile, value: opts.mutualChapSecret },
            { file: '--mutual-chap-secret-file', value: '--mutual-chap-secret', what: `mutual CHAP secret for ${opts.mutualChap}` },
          );
          body.mutualChap = { user: opts.mutualChap, secret };
        }
        if (Object.keys(body).length === 0) {
          throw new UsageError('acl set: nothing to change (give --allow, --any, --chap, --no-chap, --mutual-chap or --no-mutual-chap)');
        }
        const res = await ctx.client.request('PUT', `/api/v1/volumes/${seg(volume!)}/access`, { body, fields: ACCESS_FIELDS });
        if (ctx.json) return printJson(ctx, res);
        out(ctx, accessBlock(asObject<AccessInfo>(res, 'the access settings')));
      }),
    );

  return acl;
}
