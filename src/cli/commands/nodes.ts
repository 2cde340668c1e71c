/** `twinsan node list`, `twinsan node show ID` (subcommands of `twinsan node`, which also starts a node). */
import type { Command } from 'commander';
import type { NodeInfo } from '../../resource-groups';
import type { CliIo } from '../output';
import { apiAction, apiCommand, getArray, getObject, out, printJson, seg } from './context';
import { nodeBlock, nodesTable } from './views';

export function addNodeApiCommands(node: Command, io: CliIo): void {
  apiCommand(node, 'list', 'both nodes of the pair: state, maintenance, groups owned, release, protocol').action(
    apiAction(io, async (ctx) => {
      const { value, res } = await getArray<NodeInfo>(ctx, '/api/v1/nodes', 'the node list');
      if (ctx.json) return printJson(ctx, res);
      out(ctx, nodesTable(value));
    }),
  );
  apiCommand(node, 'show <id>', 'one node').action(
    apiAction(io, async (ctx, [id]) => {
      const { value, res } = await getObject<NodeInfo>(ctx, `/api/v1/nodes/${seg(id!)}`, `node ${id}`, { fields: { id: 'ID' } });
      if (ctx.json) return printJson(ctx, res);
      out(ctx, nodeBlock(value));
    }),
  );
}
