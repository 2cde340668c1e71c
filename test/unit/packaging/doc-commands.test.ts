/**
 * Every `twinsan ...` command line in the deployment and setup docs is one
 * the CLI accepts: the command exists, its options are known, required
 * ones are given and values parse. Each line is parsed by the real command
 * tree (src/cli/program.ts) and stopped before its action runs, so nothing
 * is sent anywhere. (docs/walkthrough.md's commands are also run against an
 * API: walkthrough.test.ts.)
 */
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import type { CliIo, InStream } from '../../../src/cli/output';
import { buildProgram } from '../../../src/cli/program';
import { codeBlocks, splitWords } from './parsers';
import { read, REPO } from './repo';

const DOCS = ['README.md', 'docs/deploy.md', 'docs/walkthrough.md', 'docs/esxi.md', 'docs/kvm.md', 'docker/README.md', 'docs/lab.md', 'docs/cli.md'];

/**
 * The twinsan command lines of a Markdown text: in code blocks, direct or after
 * `docker compose ... exec SERVICE`; and inline code spans that start with `twinsan `.
 */
export function twinsanCommands(markdown: string): string[][] {
  const out: string[][] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) {
      for (const m of line.matchAll(/`(twinsan [^`]+)`/g)) {
        const argv = splitWords(m[1]!).slice(1);
        // Prose names command groups (`twinsan volume`) and shows forms with placeholders (`--rg NAME`)
        // or synopsis syntax (`[--thin]`, `enter|exit`): not command lines.
        if (argv.length >= 2 && !argv.some((w) => w.includes('...') || /^[A-Z][A-Z_/@]*$/.test(w) || /[[\]|]/.test(w))) out.push(argv);
      }
    }
  }
  for (const block of codeBlocks(markdown)) {
    for (let i = 0; i < block.length; i++) {
      let line = block[i]!;
      while (/\\\s*$/.test(line) && i + 1 < block.length) line = `${line.replace(/\\\s*$/, '')} ${block[++i]!.trim()}`;
      // A shell prompt ("$ twinsan status" above its output) is not part of the command.
      const words = splitWords(line.replace(/\s+#.*$/, '').replace(/^\s*\$\s+/, ''));
      const exec = words.indexOf('exec');
      const at = words[0] === 'twinsan' ? 0 : words[0] === 'docker' && exec > 0 && words[exec + 2] === 'twinsan' ? exec + 2 : -1;
      if (at >= 0) out.push(words.slice(at + 1));
    }
  }
  return out;
}

class StopBeforeAction extends Error {}

/** Parse argv with the real command tree; resolves with the command path that would run, or rejects with the usage error. */
async function parseOnly(argv: readonly string[]): Promise<string> {
  let stderr = '';
  const io: CliIo = {
    stdout: { write: () => true },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Object.assign(new PassThrough(), { isTTY: false }) as PassThrough & InStream,
    env: {},
    sleep: async () => undefined,
  };
  const program = buildProgram(io).configureOutput({ writeOut: () => undefined, writeErr: (s) => (stderr += s) });
  let ran = '';
  program.hook('preAction', (_root, action) => {
    const names: string[] = [];
    for (let c: typeof action | null = action; c && c !== program; c = c.parent) names.unshift(c.name());
    ran = names.join(' ');
    throw new StopBeforeAction();
  });
  try {
    await program.parseAsync(['node', 'twinsan', ...argv]);
  } catch (err) {
    if (err instanceof StopBeforeAction) return ran;
    if (err instanceof CommanderError) throw new Error(`twinsan ${argv.join(' ')}: ${stderr.trim() || err.message}`);
    throw err;
  }
  throw new Error(`twinsan ${argv.join(' ')}: no action would run`);
}

describe('twinsan command lines in the docs', () => {
  it('finds command lines, direct and through docker compose exec, with continuations', () => {
    const md = ['Run `twinsan move rg1` or `ip addr`, see `twinsan volume` and `twinsan rg show NAME`.', '```sh', 'twinsan rg create a --preferred n \\', '    --alias 1.2.3.4/24@eth1   # comment', 'docker compose -f x.yaml exec node-a twinsan status', 'echo twinsan', '```'].join('\n');
    expect(twinsanCommands(md)).toEqual([['move', 'rg1'], ['rg', 'create', 'a', '--preferred', 'n', '--alias', '1.2.3.4/24@eth1'], ['status']]);
  });

  it('refuses what the CLI refuses (so the check below can fail)', async () => {
    await expect(parseOnly(['rg', 'create', 'a', '--alias', '1.2.3.4/24@eth1'])).rejects.toThrow(/--preferred/);
    await expect(parseOnly(['volume', 'create', 'v', '--size', 'ten', '--rg', 'a'])).rejects.toThrow(/size/);
    await expect(parseOnly(['nonsense'])).rejects.toThrow(/unknown command/);
    await expect(parseOnly(['node', 'start', '--config', '/etc/twinsan/node.json'])).resolves.toBe('node start');
  });

  for (const doc of DOCS) {
    it(`${doc}: every twinsan command parses`, async () => {
      const commands = twinsanCommands(read(path.join(REPO, doc)));
      expect(commands.length, `${doc} shows no twinsan command`).toBeGreaterThan(0);
      for (const argv of commands) await parseOnly(argv);
    });
  }
});
