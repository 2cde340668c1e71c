/**
 * `twinsan lab up | start-node | down`: the one-machine failover lab
 * (lab.ts). Needs root. Progress goes to stderr, the summary to stdout.
 */
import { Command, InvalidArgumentError } from 'commander';
import path from 'node:path';
import { parseSize } from '../parse';
import { LabFile } from './lab-file';
import { DEFAULT_VOLUME_SIZE, TWINSAN_BIN, labDown, labStartNode, labUp } from './lab';
import { checkPrefix, isLabNodeId } from './plan';

const progress = (line: string): void => {
  process.stderr.write(`twinsan lab: ${line}\n`);
};

function parsePrefix(value: string): string {
  const problem = checkPrefix(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600) throw new InvalidArgumentError(`"${value}" is not a number of seconds (0-3600)`);
  return n;
}

/** The command line that runs `twinsan ARGS` the way this process was run. */
export function twinsanCommand(...args: string[]): string {
  const bin = path.relative(process.cwd(), TWINSAN_BIN);
  return ['node', bin.startsWith('..') ? TWINSAN_BIN : bin, ...args].join(' ');
}

/** What to do with a running lab: where to log in, how to fail over, how to stop. */
export function labSummary(lab: LabFile, dir: string): string {
  const lines = [`lab ${lab.prefix} is up (${path.join(dir, 'lab.json')})`, ''];
  for (const g of lab.resourceGroups) {
    const node = lab.nodes.find((n) => n.id === g.preferredNode)!;
    for (const t of g.targets) lines.push(`  ${g.name} on node ${node.id} (alias ${g.aliasIps.join(', ')}): ${t.url}`);
  }
  const rgA = lab.resourceGroups[0]!;
  const owner = lab.nodes.find((n) => n.id === rgA.preferredNode)!;
  const url = rgA.targets[0]!.url;
  lines.push(
    '',
    `log in from the client namespace ${lab.client.netns}:`,
    `  ip netns exec ${lab.client.netns} iscsi-inq ${url}`,
    `  ip netns exec ${lab.client.netns} qemu-io -f raw -c 'write -P 0x5a 0 1M' -c 'read -P 0x5a 0 1M' ${url}`,
    '',
    `fail ${rgA.name} over (kill node ${owner.id}; node ${lab.nodes.find((n) => n.id !== owner.id)!.id} takes it over within about 2 s):`,
    `  kill -9 ${owner.pid}`,
    `then bring node ${owner.id} back (it resyncs and stays standby; failback is manual):`,
    `  ${twinsanCommand('lab', 'start-node', '--dir', dir, owner.id)}`,
    `  ip netns exec ${lab.client.netns} ${twinsanCommand('rg', 'failback', rgA.name, '--api', owner.api, '--token-file', owner.tokenFile)}`,
    '',
    `the REST API of each node, from the client namespace (tokens in ${lab.nodes.map((n) => n.tokenFile).join(', ')}):`,
    `  ip netns exec ${lab.client.netns} ${twinsanCommand('rg', 'list', '--api', owner.api, '--token-file', owner.tokenFile)}`,
    `  ip netns exec ${lab.client.netns} curl -s -H "Authorization: Bearer $(cat ${owner.tokenFile})" ${owner.api}/api/v1/resource-groups`,
    `a node's own view: ip netns exec ${owner.netns} curl -s ${owner.status}/status`,
    `take it all down: ${twinsanCommand('lab', 'down', '--dir', dir)}`,
  );
  return `${lines.join('\n')}\n`;
}

export function labCommand(): Command {
  const lab = new Command('lab').description('a complete HA pair on this machine in network namespaces (root): nodes a and b, a client, a redis witness');

  lab
    .command('up')
    .description('build the lab, start the witness and both nodes, wait until rg-a and rg-b serve and are in sync, write DIR/lab.json')
    .requiredOption('--dir <dir>', 'directory for lab.json, node configs, data and logs (created if missing)')
    .option('--prefix <prefix>', 'namespace name prefix: <prefix>-a, -b, -client, -witness, -sw', parsePrefix, 'tw')
    .option('--size <bytes>', `size of each volume (default ${DEFAULT_VOLUME_SIZE / 1024 / 1024} MiB)`, parseSize)
    .option('--timeout <seconds>', 'how long to wait for the pair to serve and be in sync', parseSeconds, 120)
    .action(async (opts: { dir: string; prefix: string; size?: number; timeout: number }) => {
      const aborter = new AbortController();
      const onSignal = (): void => aborter.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const up = await labUp({
          dir: opts.dir,
          prefix: opts.prefix,
          ...(opts.size !== undefined ? { volumeSizeBytes: opts.size } : {}),
          readyTimeoutMs: opts.timeout * 1000,
          log: progress,
          signal: aborter.signal,
        });
        process.stdout.write(labSummary(up, path.resolve(opts.dir)));
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  lab
    .command('start-node')
    .description('start a lab node that was killed (updates its pid in lab.json) and wait until it runs')
    .requiredOption('--dir <dir>', 'the lab directory')
    .argument('<id>', 'node id: a or b')
    .option('--timeout <seconds>', 'how long to wait for the node to run', parseSeconds, 60)
    .action(async (id: string, opts: { dir: string; timeout: number }) => {
      if (!isLabNodeId(id)) throw new Error(`"${id}" is not a lab node (a or b)`);
      const node = await labStartNode(opts.dir, id, { readyTimeoutMs: opts.timeout * 1000, log: progress });
      process.stdout.write(`node ${node.id} running, pid ${node.pid}\n`);
    });

  lab
    .command('down')
    .description('stop every process of the lab, delete its namespaces and the files it made; safe to repeat')
    .requiredOption('--dir <dir>', 'the lab directory')
    .action(async (opts: { dir: string }) => {
      const removed = await labDown(opts.dir, { log: progress });
      process.stdout.write(removed ? `lab in ${path.resolve(opts.dir)} removed\n` : `no lab in ${path.resolve(opts.dir)} (nothing to remove)\n`);
    });

  return lab;
}
