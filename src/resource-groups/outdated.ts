/**
 * Outdated copies (witness/README.md "Outdated copies"): what this node
 * writes to the witness's per-group record of the copy that lacks writes,
 * and whether a clean shutdown may tell the peer 'bye'. Pure; NodeGroups
 * carries it out every heartbeat interval.
 */

export const OUTDATED_RECORD_ACTIONS = {
  'mark-peer': "serving with a volume out of sync: the peer's copy lacks (or is about to lack) writes acknowledged here",
  'clear-peer': 'serving with every volume in sync: no copy is outdated',
  'clear-self': "standing by with every volume in sync: a record naming this node is stale (the owner may have died before clearing it)",
  leave: 'standing by out of sync: only the owner knows whether this copy is outdated',
} as const;
export type OutdatedRecordAction = keyof typeof OUTDATED_RECORD_ACTIONS;

const TABLE: Readonly<Record<'serving' | 'standby', Readonly<Record<'in-sync' | 'out-of-sync', OutdatedRecordAction>>>> = {
  serving: { 'in-sync': 'clear-peer', 'out-of-sync': 'mark-peer' },
  standby: { 'in-sync': 'clear-self', 'out-of-sync': 'leave' },
};

export function outdatedRecordAction(serving: boolean, inSync: boolean): OutdatedRecordAction {
  return TABLE[serving ? 'serving' : 'standby'][inSync ? 'in-sync' : 'out-of-sync'];
}

/**
 * Whether a clean shutdown may say 'bye', which lets the peer take the
 * groups served here over at once (without a witness: at all). Not while a
 * served group is out of sync: the peer's copy lacks writes acknowledged
 * here and must not be served.
 */
export function byeAllowed(groups: readonly { readonly serving: boolean; readonly inSync: boolean }[]): boolean {
  return groups.every((g) => !g.serving || g.inSync);
}
