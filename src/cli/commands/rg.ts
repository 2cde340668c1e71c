/** `twinsan rg list|show|create|update|delete|move|failback`, and `twinsan move RG`. */
import { isIP } from 'node:net';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { AliasIp, CreateResourceGroupRequest, ResourceGroupInfo, UpdateResourceGroupRequest } from '../../resource-groups';
import { ConnectionOptions, UsageError } from '../client';
import { CliIo, duration } from '../output';
import { apiAction, markApi, apiCommand, asObject, Ctx, getArray, getObject, note, out, printJson, seg } from './context';
import { groupBlock, groupsTable } from './views';

const GROUP_FIELDS = {
  name: 'NAME',
  preferredNode: '--preferred',
  aliasIps: '--alias',
  failback: '--failback',
} as const;

/** Linux interface names: 1..15 bytes, no "/", ":" is allowed for legacy aliases but not whitespace. */
const IFACE = /^[^\s/]{1,15}$/;

/** "198.18.0.50/24@eth1" → { address, prefix, interface }. */
export function parseAlias(value: string): AliasIp {
  const m = /^([^/@\s]+)\/(\d{1,3})@(.+)$/.exec(value);
  if (!m) throw new InvalidArgumentError(`"${value}" is not ADDRESS/PREFIX@INTERFACE (e.g. 198.18.0.50/24@eth1)`);
  const address = m[1]!;
  const prefixText = m[2]!;
  const iface = m[3]!;
  const family = isIP(address);
  if (family === 0) throw new InvalidArgumentError(`"${address}" in "${value}" is not an IPv4 or IPv6 address`);
  const prefix = Number(prefixText);
  const max = family === 4 ? 32 : 128;
  if (prefix < 1 || prefix > max) throw new InvalidArgumentError(`prefix /${prefix} in "${value}" must be 1 to ${max}`);
  if (!IFACE.test(iface)) throw new InvalidArgumentError(`"${iface}" in "${value}" is not an interface name`);
  return { address, prefix, interface: iface };
}

function collectAlias(value: string, previous: AliasIp[] | undefined): AliasIp[] {
  return [...(previous ?? []), parseAlias(value)];
}

const failbackOption = (): Option =>
  new Option('--failback <mode>', 'auto: move back to the preferred node once it is back and in sync; manual: only on `rg failback`').choices([
    'auto',
    'manual',
  ]);

interface CreateOptions extends ConnectionOptions {
  preferred: string;
  alias: AliasIp[];
  failback?: 'auto' | 'manual';
}
type UpdateOptions = ConnectionOptions & Partial<Omit<CreateOptions, keyof ConnectionOptions>>;

/** `rg move` and `move`: planned switchover; the API answers once the other node serves the group. */
async function moveGroup(ctx: Ctx, name: string, action: 'move' | 'failback'): Promise<void> {
  const started = Date.now();
  if (!ctx.json) note(ctx, `${action === 'move' ? 'moving' : 'failing back'} ${name} ...`);
  const res = await ctx.client.post(`/api/v1/resource-groups/${seg(name)}/${action}`);
  if (ctx.json) return printJson(ctx, res);
  const g = asObject<ResourceGroupInfo>(res, 'the resource group');
  out(ctx, `${g.name}: ${g.state} on ${g.owner ?? 'no node'} (${duration(Date.now() - started)})`);
}

export function moveCommand(io: CliIo): Command {
  const move = new Command('move').description('move a resource group to the other node (planned switchover; same as `rg move`)').argument('<rg>', 'resource group');
  return addMoveAction(markApi(move), io);
}

function addMoveAction(cmd: Command, io: CliIo): Command {
  return cmd.action(apiAction(io, (ctx, [name]) => moveGroup(ctx, name!, 'move')));
}

export function rgCommand(io: CliIo): Command {
  const rg = new Command('rg').description('resource groups: the alias IPs and volumes that fail over together');

  apiCommand(rg, 'list', 'every resource group: state, owner, preferred node, alias IPs, volumes').action(
    apiAction(io, async (ctx) => {
      const { value, res } = await getArray<ResourceGroupInfo>(ctx, '/api/v1/resource-groups', 'the resource group list');
      if (ctx.json) return printJson(ctx, res);
      out(ctx, value.length ? groupsTable(value) : 'no resource groups');
    }),
  );

  apiCommand(rg, 'show <name>', 'one resource group').action(
    apiAction(io, async (ctx, [name]) => {
      const { value, res } = await getObject<ResourceGroupInfo>(ctx, `/api/v1/resource-groups/${seg(name!)}`, `resource group ${name}`);
      if (ctx.json) return printJson(ctx, res);
      out(ctx, groupBlock(value));
    }),
  );

  apiCommand(rg, 'create <name>', 'create a resource group')
    .requiredOption('--preferred <node>', 'node that serves it when both are up')
    .requiredOption('--alias <address/prefix@interface>', 'alias IP it is served on (repeat for more)', collectAlias)
    .addOption(failbackOption())
    .action(
      apiAction<CreateOptions>(io, async (ctx, [name], opts) => {
        const body: CreateResourceGroupRequest = {
          name: name!,
          preferredNode: opts.preferred,
          aliasIps: opts.alias,
          ...(opts.failback ? { failback: opts.failback } : {}),
        };
        const res = await ctx.client.post('/api/v1/resource-groups', { body, fields: GROUP_FIELDS });
        if (ctx.json) return printJson(ctx, res);
        out(ctx, groupBlock(asObject<ResourceGroupInfo>(res, 'the resource group')));
      }),
    );

  apiCommand(rg, 'update <name>', 'change the preferred node, the alias IPs (the list given replaces the old one) or failback')
    .option('--preferred <node>', 'node that serves it when both are up')
    .option('--alias <address/prefix@interface>', 'alias IP (repeat for more; replaces every alias IP)', collectAlias)
    .addOption(failbackOption())
    .action(
      apiAction<UpdateOptions>(io, async (ctx, [name], opts) => {
        const body: UpdateResourceGroupRequest = {
          ...(opts.preferred !== undefined ? { preferredNode: opts.preferred } : {}),
          ...(opts.alias !== undefined ? { aliasIps: opts.alias } : {}),
          ...(opts.failback !== undefined ? { failback: opts.failback } : {}),
        };
        if (Object.keys(body).length === 0) throw new UsageError('rg update: nothing to change (give --preferred, --alias or --failback)');
        const res = await ctx.client.request('PATCH', `/api/v1/resource-groups/${seg(name!)}`, { body, fields: GROUP_FIELDS });
        if (ctx.json) return printJson(ctx, res);
        out(ctx, groupBlock(asObject<ResourceGroupInfo>(res, 'the resource group')));
      }),
    );

  apiCommand(rg, 'delete <name>', 'delete a resource group (it must have no volumes)').action(
    apiAction(io, async (ctx, [name]) => {
      const res = await ctx.client.request('DELETE', `/api/v1/resource-groups/${seg(name!)}`);
      if (ctx.json) return printJson(ctx, res);
      note(ctx, `deleted resource group ${name}`);
    }),
  );

  addMoveAction(apiCommand(rg, 'move <name>', 'move it to the other node (planned switchover)'), io);

  apiCommand(rg, 'failback <name>', 'move it back to its preferred node (once that node is in sync)').action(
    apiAction(io, (ctx, [name]) => moveGroup(ctx, name!, 'failback')),
  );

  return rg;
}
