/** `twinsan verify VOLUME [--repair]`: compare both copies of a volume, block by block. */
import { Command, Option } from 'commander';
import type { JobInfo, VerifyRequest } from '../../resource-groups';

import type { CliIo } from '../output';
import { apiAction, markApi, asObject, followJob, note, out, printJson, seg } from './context';
import { addWaitOptions, WaitOptions } from './maintenance';
import { jobBlock } from './views';

interface VerifyOptions extends WaitOptions {
  repair?: boolean;
  algorithm?: 'sha256' | 'crc32c';
}

/** What the job's result says, for the last line. */
function summary(job: JobInfo): string {
  const r = job.result ?? {};
  const parts = Object.entries(r)
    .filter(([, v]) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')
    .map(([k, v]) => `${k} ${String(v)}`);
  return parts.length ? parts.join(', ') : 'no result reported';
}

export function verifyCommand(io: CliIo): Command {
  const cmd = new Command('verify')
    .description("compare the volume's two copies; --repair copies the owner's blocks over differing ones")
    .argument('<volume>', 'volume name')
    .option('--repair', "repair differences from the serving node's copy")
    .addOption(new Option('--algorithm <name>', 'block digest').choices(['sha256', 'crc32c']));
  return addWaitOptions(markApi(cmd)).action(
    apiAction<VerifyOptions>(io, async (ctx, [volume], opts) => {
      const body: VerifyRequest = { ...(opts.repair ? { repair: true } : {}), ...(opts.algorithm ? { algorithm: opts.algorithm } : {}) };
      const res = await ctx.client.post(`/api/v1/volumes/${seg(volume!)}/verify`, { body, fields: { repair: '--repair', algorithm: '--algorithm' } });
      if (!opts.wait) {
        if (ctx.json) return printJson(ctx, res);
        const job = asObject<JobInfo>(res, 'the job');
        out(ctx, jobBlock(job));
        return note(ctx, `follow it with: twinsan jobs ${job.id} --wait`);
      }
      const job = await followJob(ctx, res, `verify ${volume}`, opts.interval);
      if (!ctx.json) out(ctx, `${volume}: ${summary(job)}`);
    }),
  );
}
