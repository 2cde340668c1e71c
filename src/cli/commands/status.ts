/** `twinsan status`: the pair, both nodes, every resource group and volume on one screen. */
import { Command } from 'commander';
import type { NodeInfo, PairInfo, ResourceGroupInfo, VolumeInfo } from '../../resource-groups';

import type { CliIo } from '../output';
import { apiAction, markApi, getArray, getObject, out } from './context';
import { groupsTable, nodesTable, pairBlock, volumesTable } from './views';

export function statusCommand(io: CliIo): Command {
  return markApi(new Command('status').description('the pair, its nodes, resource groups and volumes at a glance')).action(
    apiAction(io, async (ctx) => {
      const [pair, nodes, groups, volumes] = await Promise.all([
        getObject<PairInfo>(ctx, '/api/v1/pair', 'the pair'),
        getArray<NodeInfo>(ctx, '/api/v1/nodes', 'the node list'),
        getArray<ResourceGroupInfo>(ctx, '/api/v1/resource-groups', 'the resource group list'),
        getArray<VolumeInfo>(ctx, '/api/v1/volumes', 'the volume list'),
      ]);
      if (ctx.json) {
        // Each part exactly as the API sent it.
        return out(ctx, `{"pair":${pair.res.text},"nodes":${nodes.res.text},"resourceGroups":${groups.res.text},"volumes":${volumes.res.text}}`);
      }
      const attention = [
        ...nodes.value.filter((n) => n.state !== 'up').map((n) => `node ${n.id} is ${n.state}`),
        ...groups.value.filter((g) => g.state !== 'serving').map((g) => `resource group ${g.name} is ${g.state}`),
        ...groups.value.filter((g) => g.state === 'serving' && g.owner !== g.preferredNode).map((g) => `resource group ${g.name} runs away from its preferred node ${g.preferredNode}`),
        ...volumes.value.filter((v) => v.mirror.state !== 'in-sync').map((v) => `volume ${v.name} is ${v.mirror.state}`),
      ];
      out(
        ctx,
        [
          pairBlock(pair.value),
          'NODES',
          nodesTable(nodes.value),
          'RESOURCE GROUPS',
          groups.value.length ? groupsTable(groups.value) : 'none\n',
          'VOLUMES',
          volumes.value.length ? volumesTable(volumes.value) : 'none\n',
          attention.length ? `ATTENTION\n${attention.map((a) => `  ${a}`).join('\n')}\n` : 'all nodes up, all groups serving on their preferred node, all volumes in sync\n',
        ].join('\n'),
      );
    }),
  );
}
