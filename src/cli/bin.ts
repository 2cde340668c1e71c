#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { labCommand } from './lab';
import { nodeCommand } from './node-command';
import { targetCommand } from './target-command';

const program = new Command('twinsan')
  .description('active/active synchronously mirrored iSCSI storage')
  .version(require('../../package.json').version as string)
  .addCommand(targetCommand())
  .addCommand(nodeCommand())
  .addCommand(labCommand())
  .exitOverride();

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
    return;
  }
  process.stderr.write(`twinsan: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
