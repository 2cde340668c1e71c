/**
 * The pair-wide cluster configuration: the versioned document (document.ts),
 * its named changes (changes.ts), this node's store (store.ts), its
 * replication to the peer (sync.ts) and the diff a node acts on (reconcile.ts).
 */
export { DOCUMENT_FORMAT, OPEN_ACCESS, canonicalJson, contentHash, groupVolumes, seedDocument } from './document';
export type { ChapCredential, ClusterAliasIp, ClusterDocument, ClusterNode, ClusterResourceGroup, ClusterVolume, VolumeAccessConfig } from './document';
export { DOCUMENT_SCHEMA, DocumentShapeError, checkDocument } from './document-schema';
export { CHAP_SECRET_BYTES, applyChange, checkDocumentContent, describeChange } from './changes';
export type { ChangeKind, ChangeMap, ClusterChange } from './changes';
export { CONFIG_FILE, ClusterConfigStore, MERGE_OUTCOMES, mergeDecision } from './store';
export type { ChangeEvent, ConflictEvent, MergeOutcome, RejectedEvent, StoreEvents } from './store';
export { CLUSTER_CONFIG_TOPIC, ClusterSync } from './sync';
export type { ControlPort, SyncState, SyncStatus } from './sync';
export { STEP_ORDER, planReconcile } from './reconcile';
export type { ReconcileStep, ReconcileStepKind } from './reconcile';
export { DEFAULT_EVENT_CAPACITY, EventRing } from './events';
export { DEFAULT_KEEP_FINISHED, JobTable } from './jobs';
export type { JobContext } from './jobs';
