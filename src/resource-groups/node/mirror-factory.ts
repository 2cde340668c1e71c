/**
 * The real mirror engine behind the node's MirrorNodePort, and what counts
 * as "in sync" in its status. The one file of src/resource-groups/node that names
 * src/mirror's classes.
 */
import { MirrorNode } from '../../mirror';
import type { MirrorStatus } from '../../mirror';
import type { MirrorFactory } from './mirror-port';
import type { DataStanding } from '../start-rule';

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

/**
 * What a volume's mirror status says of this copy against the peer's
 * (start-rule.ts DataStanding). Only a live session's handshake compares the
 * two: while 'connecting' the last peer role seen is stale and says nothing.
 */
export function mirrorDataStanding(status: unknown): DataStanding {
  const s = status as Partial<MirrorStatus> | null;
  if (s === null || typeof s !== 'object') return 'unknown';
  const connected = s.replication === 'in-sync' || s.replication === 'resyncing';
  if (connected && s.peerRole === 'primary') return 'peer-serves';
  if (s.replication === 'split-brain' || s.replication === 'unrelated' || s.replication === 'stopped') return 'blocked';
  if (s.consistent === false || (s.replication === 'resyncing' && s.resync?.direction === 'from-peer')) return 'behind';
  return connected ? 'current' : 'unknown';
}
