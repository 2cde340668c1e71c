#!/usr/bin/env node
import { Command } from 'commander';
import { apiCommands, reportError, withIo } from './commands';
import { labCommand } from './lab';
import { nodeCommand } from './node-command';
import { processIo } from './output';
import { targetCommand } from './target-command';

const io = processIo();
const program = new Command('twinsan')
  .description('active/active synchronously mirrored iSCSI storage')
  .version(require('../../package.json').version as string)
  .addCommand(targetCommand())
  .addCommand(withIo(nodeCommand(io), io))
  .addCommand(labCommand())
  // `node start --config` and `node --config` both exist: commander routes options by position
  // only when every ancestor of `start` has positional options, the root included.
  .enablePositionalOptions()
  .exitOverride();
for (const command of apiCommands(io)) program.addCommand(command);

// Exit codes (docs/cli.md): 0 ok, 1 refused by the API or failed, 2 usage, 3 cannot reach the API.
program.parseAsync(process.argv).catch((err: unknown) => {
  process.exitCode = reportError(err, io);
});
