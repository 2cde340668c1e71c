/**
 * What a node must do to match a new cluster document: a pure diff of the
 * document it acted on last and the new one, as named steps. The node
 * (node/reconciler.ts) carries them out in order: removals first (they free
 * names, IQNs and addresses), then groups, then volumes, then access.
 */
import { canonicalJson, type ClusterDocument, type ClusterResourceGroup, type ClusterVolume } from './document';

export type ReconcileStep =
  | { readonly kind: 'volume-remove'; readonly volume: ClusterVolume }
  | { readonly kind: 'rg-remove'; readonly group: ClusterResourceGroup }
  | { readonly kind: 'rg-add'; readonly group: ClusterResourceGroup }
  | { readonly kind: 'rg-update'; readonly group: ClusterResourceGroup; readonly previous: ClusterResourceGroup }
  | { readonly kind: 'volume-add'; readonly volume: ClusterVolume }
  | { readonly kind: 'volume-grow'; readonly volume: ClusterVolume; readonly fromBytes: number }
  | { readonly kind: 'access-apply'; readonly volume: ClusterVolume }
  | { readonly kind: 'maintenance'; readonly node: string; readonly on: boolean };
export type ReconcileStepKind = ReconcileStep['kind'];

/** The order steps run in. */
export const STEP_ORDER: readonly ReconcileStepKind[] = ['volume-remove', 'rg-remove', 'rg-add', 'rg-update', 'volume-add', 'volume-grow', 'access-apply', 'maintenance'];

const same = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

export function planReconcile(previous: ClusterDocument, next: ClusterDocument): ReconcileStep[] {
  const steps: ReconcileStep[] = [];
  const prevVolumes = new Map(previous.volumes.map((v) => [v.id, v]));
  const nextVolumes = new Map(next.volumes.map((v) => [v.id, v]));
  for (const v of previous.volumes) if (!nextVolumes.has(v.id)) steps.push({ kind: 'volume-remove', volume: v });
  const prevGroups = new Map(previous.resourceGroups.map((g) => [g.name, g]));
  const nextGroups = new Map(next.resourceGroups.map((g) => [g.name, g]));
  for (const g of previous.resourceGroups) if (!nextGroups.has(g.name)) steps.push({ kind: 'rg-remove', group: g });
  for (const g of next.resourceGroups) {
    const p = prevGroups.get(g.name);
    if (!p) steps.push({ kind: 'rg-add', group: g });
    else if (!same(p, g)) steps.push({ kind: 'rg-update', group: g, previous: p });
  }
  for (const v of next.volumes) {
    const p = prevVolumes.get(v.id);
    if (!p) {
      steps.push({ kind: 'volume-add', volume: v });
      continue;
    }
    if (v.sizeBytes > p.sizeBytes) steps.push({ kind: 'volume-grow', volume: v, fromBytes: p.sizeBytes });
    if (!same(p.access, v.access)) steps.push({ kind: 'access-apply', volume: v });
  }
  for (const n of next.nodes) {
    const p = previous.nodes.find((x) => x.id === n.id);
    if (p && p.maintenance !== n.maintenance) steps.push({ kind: 'maintenance', node: n.id, on: n.maintenance });
  }
  return steps.sort((a, b) => STEP_ORDER.indexOf(a.kind) - STEP_ORDER.indexOf(b.kind));
}
