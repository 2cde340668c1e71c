#!/usr/bin/env node
import { reportError } from './commands';
import { processIo } from './output';
import { buildProgram } from './program';

const io = processIo();
// Exit codes (docs/cli.md): 0 ok, 1 refused by the API or failed, 2 usage, 3 cannot reach the API.
buildProgram(io)
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.exitCode = reportError(err, io);
  });
