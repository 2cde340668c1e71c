/**
 * `twinsan maintenance enter|exit NODE`: evacuate every resource group from a
 * node (planned moves) or end maintenance (its groups fail back once in
 * sync). Both start a job; the command follows it with a progress bar unless
 * --no-wait.
 */
import { Command, Option } from 'commander';
import type { JobInfo } from '../../resource-groups';
import type { ConnectionOptions } from '../client';
import type { CliIo } from '../output';
import { apiAction, apiCommand, asObject, DEFAULT_INTERVAL_MS, followJob, note, out, parseInterval, printJson, seg } from './context';
import { jobBlock } from './views';

export interface WaitOptions extends ConnectionOptions {
  /** false with --no-wait */
  wait: boolean;
  interval: number;
}

/** --no-wait and --interval, for commands that start a job. */
export function addWaitOptions(cmd: Command): Command {
  return cmd
    .option('--no-wait', 'print the job and return at once instead of following it')
    .addOption(new Option('--interval <ms>', 'how often to poll the job').argParser(parseInterval).default(DEFAULT_INTERVAL_MS));
}

const STEPS = {
  enter: { method: 'POST', title: (node: string) => `evacuate ${node}`, description: 'put a node in maintenance: move every resource group it owns to its peer' },
  exit: { method: 'DELETE', title: (node: string) => `end maintenance ${node}`, description: 'end maintenance: the node takes its resource groups back once resynced' },
} as const;

export function maintenanceCommand(io: CliIo): Command {
  const maintenance = new Command('maintenance').description('take a node out of service and back (rolling upgrades)');
  for (const [name, step] of Object.entries(STEPS)) {
    addWaitOptions(apiCommand(maintenance, `${name} <node>`, step.description)).action(
      apiAction<WaitOptions>(io, async (ctx, [node], opts) => {
        const res = await ctx.client.request(step.method, `/api/v1/nodes/${seg(node!)}/maintenance`, { fields: { id: 'NODE' } });
        if (!opts.wait) {
          if (ctx.json) return printJson(ctx, res);
          const job = asObject<JobInfo>(res, 'the job');
          out(ctx, jobBlock(job));
          return note(ctx, `follow it with: twinsan jobs ${job.id} --wait`);
        }
        await followJob(ctx, res, step.title(node!), opts.interval);
      }),
    );
  }
  return maintenance;
}
