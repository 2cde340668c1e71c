/**
 * The `twinsan` command tree, built without parsing anything: bin.ts runs
 * it on process.argv, tests parse documented command lines with it.
 */
import { Command } from 'commander';
import { addConnectionOptions } from './client';
import { apiCommands, withIo } from './commands';
import { labCommand } from './lab';
import { nodeCommand } from './node-command';
import type { CliIo } from './output';
import { quickstartCommand } from './quickstart';
import { targetCommand } from './target-command';

export function buildProgram(io: CliIo): Command {
  const program = new Command('twinsan')
    .description('active/active synchronously mirrored iSCSI storage')
    .version((require('../../package.json') as { version: string }).version)
    .addCommand(targetCommand())
    .addCommand(withIo(nodeCommand(io), io))
    .addCommand(labCommand())
    .addCommand(quickstartCommand())
    // `node start --config` and `node --config` both exist: commander routes options by position
    // only when every ancestor of `start` has positional options, the root included.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  for (const command of apiCommands(io)) program.addCommand(command);
  // The connection options may also come before the command (`alias twinsan='twinsan --ca FILE'`).
  return addConnectionOptions(program);
}
