/**
 * The real mirror engine behind the node's MirrorNodePort, and what counts
 * as "in sync" in its status. The one file of src/resource-groups/node that names
 * src/mirror's classes.
 */
import { MirrorNode } from '../../mirror';
import type { MirrorStatus } from '../../mirror';
import type { MirrorFactory } from './mirror-port';

export const createMirrorNode: MirrorFactory = (options) => {
  const node = new MirrorNode(options);
  return Object.assign(node, {
    onPeer(cb: (state: 'up' | 'down') => void): () => void {
      node.on('peer', cb);
      return () => node.off('peer', cb);
    },
  });
};

/** Both replicas hold the same data and writes are replicated: in-sync, and this replica is consistent. */
export function mirrorInSync(status: unknown): boolean {
  const s = status as Partial<MirrorStatus> | null;
  return s !== null && typeof s === 'object' && s.replication === 'in-sync' && s.consistent === true;
}
