/**
 * Where each node sits in the pair, and the ALUA target port groups that
 * follow from it.
 *
 * The node whose id sorts first (JavaScript string order, the same rule the
 * replication links use to pick the connection they keep) is position 1,
 * the other position 2. Both nodes compute the same answer from the two ids
 * alone, with nothing to agree on at run time.
 *
 * - ALUA target port group id = position (1 or 2).
 * - Relative target port id = position, unless the config overrides it
 *   (iscsi.relativeTargetPortId here, peer.relativeTargetPortId for the
 *   peer's; both nodes must then be configured alike).
 * - Portal group tag = position, unless iscsi.portalGroupTag says otherwise:
 *   the two nodes' target ports for one IQN are then distinct SCSI target
 *   ports ("iqn,t,0x0001" and "iqn,t,0x0002"), as persistent reservations
 *   and multipath need.
 *
 * Every target a node serves reports both groups (REPORT TARGET PORT
 * GROUPS describes the whole pair): the owner's group active/optimized and
 * preferred, the other group standby, since the peer does not serve the
 * volume until it takes it over (step 4 moves these states on failover).
 */
import { AluaGroupOptions, AluaOptions, AluaState } from '../../target/scsi';

export type Position = 1 | 2;

export interface PairMember {
  readonly nodeId: string;
  readonly position: Position;
}

export interface PairLayout {
  readonly local: PairMember;
  readonly peer: PairMember;
}

export function pairLayout(nodeId: string, peerNodeId: string): PairLayout {
  if (nodeId === peerNodeId) throw new RangeError(`node id and peer node id are both ${JSON.stringify(nodeId)}`);
  const first = nodeId < peerNodeId;
  return {
    local: { nodeId, position: first ? 1 : 2 },
    peer: { nodeId: peerNodeId, position: first ? 2 : 1 },
  };
}

/** The ALUA groups of a target this node serves as owner. */
export function ownerAluaGroups(layout: PairLayout, ports: { readonly local: number; readonly peer: number }): AluaOptions {
  const groups: AluaGroupOptions[] = [
    { id: layout.local.position, ports: [ports.local], state: AluaState.ACTIVE_OPTIMIZED, preferred: true },
    { id: layout.peer.position, ports: [ports.peer], state: AluaState.STANDBY },
  ];
  return {
    groups: groups.sort((a, b) => a.id - b.id),
    localGroup: layout.local.position,
  };
}
