/**
 * The commands of `twinsan` that drive a running pair through its REST API,
 * and how any command's failure becomes a message and an exit code.
 */
import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from '../client';
import { CliIo, printable } from '../output';
import { aclCommand } from './acl';
import { addApiOptions } from './context';
import { eventsCommand, jobsCommand, sessionsCommand } from './activity';
import { maintenanceCommand } from './maintenance';
import { pairCommand } from './pair';
import { moveCommand, rgCommand } from './rg';
import { statusCommand } from './status';
import { tokenCommand } from './token';
import { verifyCommand } from './verify';
import { volumeCommand } from './volume';

/**
 * Commands added with addCommand() do not inherit the program's settings, so
 * each tree is set up here: errors are thrown (not process.exit), and output
 * goes to io's streams.
 */
export function withIo(cmd: Command, io: CliIo): Command {
  addApiOptions(cmd);
  setUp(cmd, io);
  return cmd;
}

function setUp(cmd: Command, io: CliIo): void {
  cmd.exitOverride().configureOutput({
    writeOut: (s) => io.stdout.write(s),
    writeErr: (s) => io.stderr.write(s),
  });
  for (const sub of cmd.commands) setUp(sub, io);
}

/** Every API command, ready for program.addCommand(). */
export function apiCommands(io: CliIo): Command[] {
  return [
    statusCommand(io),
    pairCommand(io),
    volumeCommand(io),
    rgCommand(io),
    moveCommand(io),
    aclCommand(io),
    maintenanceCommand(io),
    verifyCommand(io),
    sessionsCommand(io),
    jobsCommand(io),
    eventsCommand(io),
    tokenCommand(io),
  ].map((c) => withIo(c, io));
}

/** Print why a command failed (unless commander already did) and return its exit code (docs/cli.md). */
export function reportError(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) {
    // Commander printed the usage error or the help already; help and --version are not failures.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  const message = err instanceof Error ? err.message : String(err);
  // Messages quote names and text from the API: no control character reaches the terminal (line breaks between a message and its hint stay).
  io.stderr.write(`twinsan: ${message.split('\n').map(printable).join('\n')}\n`);
  return err instanceof CliError ? err.exitCode : EXIT.refused;
}
