/**
 * The volume handshake, pure: what each side says when a volume connects
 * (VolumeHello), and what the two then do (decideVolume).
 *
 * Both nodes evaluate decideVolume, each from its own side, on the same two
 * hellos, and reach mirror-image answers (the tests check this for every
 * combination): decideSync's rules (generations.ts) plus the engine's own
 * checks, which use only what both hellos carry.
 *
 * Engine checks around the sync rules:
 *   - sizes or region sizes differ: refused (EMISMATCH), before anything;
 *   - split brain and unrelated replicas are reported as such;
 *   - otherwise both primary: refused (EDUALPRIMARY), neither replicates;
 *   - when a rule lets either side be the source (same-current-unclean,
 *     neither-changed: the union of both bitmaps is copied and either copy is
 *     correct) and exactly one side is primary, the primary is the source:
 *     its data must not change under its initiators;
 *   - any other resync whose target is the primary is refused
 *     (ETARGETPRIMARY): demote it, let the resync run, then promote.
 *
 * Wire form. VolumeHello (replication.proto) has no fields for the
 * `consistent` and `primary-crashed` flags that decideSync needs from both
 * sides. Until it gains them they travel, with the rest of this engine's
 * additions, as a small JSON object in the hello's payload (HelloExtension);
 * a hello without it is a protocol error. Keep that in this file only.
 */
import { Complete, Generations as WireGenerations, Role, VolumeHello } from '../protocol';
import { Generations, Side, SyncDecision, SyncRuleName, decideSync, generationsProblem } from '../generations';
import { MirrorError } from '../errors';
import { VolumeRole } from './types';

/** What one side says about its replica when the volume connects. */
export interface HelloState {
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly regionSize: number;
  readonly role: VolumeRole;
  readonly generations: Generations;
  readonly dirtyBytes: number;
  readonly consistent: boolean;
  readonly primaryCrashed: boolean;
}

/** The hello's payload (see the header). Version 1. */
interface HelloExtension {
  readonly v: 1;
  readonly consistent: boolean;
  readonly primaryCrashed: boolean;
}

export type VolumeDecision =
  | SyncDecision
  | { readonly kind: 'refused'; readonly code: 'EMISMATCH' | 'EDUALPRIMARY' | 'ETARGETPRIMARY'; readonly detail: string };

/** Rules under which either side is a correct source (generations.ts says so for each). */
const EITHER_SIDE_RULES: readonly SyncRuleName[] = ['same-current-unclean', 'neither-changed'];

export function decideVolume(local: HelloState, peer: HelloState, localWinsTies: boolean): VolumeDecision {
  if (local.sizeBytes !== peer.sizeBytes || local.regionSize !== peer.regionSize) {
    return {
      kind: 'refused',
      code: 'EMISMATCH',
      detail: `local replica is ${local.sizeBytes} bytes in ${local.regionSize}-byte regions, the peer's ${peer.sizeBytes} in ${peer.regionSize}`,
    };
  }
  const d = decideSync(local.generations, peer.generations, {
    localDirty: local.dirtyBytes > 0,
    peerDirty: peer.dirtyBytes > 0,
    localCrashedPrimary: local.primaryCrashed,
    peerCrashedPrimary: peer.primaryCrashed,
    localConsistent: local.consistent,
    peerConsistent: peer.consistent,
    localWinsTies,
  });
  if (d.kind === 'split-brain' || d.kind === 'unrelated') return d;
  if (local.role === 'primary' && peer.role === 'primary') {
    return { kind: 'refused', code: 'EDUALPRIMARY', detail: 'both nodes are primary for the volume; demote one' };
  }
  if (d.kind !== 'resync') return d;
  const primary: Side | null = local.role === 'primary' ? 'local' : peer.role === 'primary' ? 'peer' : null;
  if (primary === null) return d;
  if (EITHER_SIDE_RULES.includes(d.rule) && local.consistent && peer.consistent) return { ...d, source: primary };
  if (d.source !== primary) {
    return {
      kind: 'refused',
      code: 'ETARGETPRIMARY',
      detail: `rule ${d.rule} makes the ${primary} replica, which is primary, the resync target; demote it first`,
    };
  }
  return d;
}

/** The decision as the other node reaches it (for tests and logs). */
export function mirrorVolumeDecision(d: VolumeDecision): VolumeDecision {
  if (d.kind !== 'resync') return d;
  return { ...d, source: d.source === 'local' ? 'peer' : 'local' };
}

// ---------------------------------------------------------------------------
// Wire form.

export function toWireGenerations(g: Generations): WireGenerations {
  return { current: g.current, bitmap: g.bitmap ?? '', history: [...g.history] };
}

export function fromWireGenerations(w: Complete<WireGenerations>): Generations {
  const g: Generations = { current: w.current, bitmap: w.bitmap === '' ? null : w.bitmap, history: [...w.history] };
  const problem = generationsProblem(g);
  if (problem) throw new MirrorError('EPROTO', `malformed generations from the peer: ${problem}`);
  return g;
}

export function encodeHello(h: HelloState): { hello: VolumeHello; payload: Buffer } {
  const ext: HelloExtension = { v: 1, consistent: h.consistent, primaryCrashed: h.primaryCrashed };
  return {
    hello: {
      volumeId: h.volumeId,
      sizeBytes: h.sizeBytes,
      regionSize: h.regionSize,
      generations: toWireGenerations(h.generations),
      role: h.role === 'primary' ? Role.PRIMARY : Role.SECONDARY,
      dirtyBytes: h.dirtyBytes,
      blockSize: 0,
    },
    payload: Buffer.from(JSON.stringify(ext), 'utf8'),
  };
}

export function decodeHello(body: Complete<VolumeHello>, payload: readonly Buffer[]): HelloState {
  let ext: Partial<HelloExtension>;
  try {
    ext = JSON.parse(Buffer.concat(payload).toString('utf8')) as Partial<HelloExtension>;
  } catch {
    throw new MirrorError('EPROTO', `volume hello for ${body.volumeId} without its extension (consistent/crashed flags)`);
  }
  if (ext === null || typeof ext !== 'object' || ext.v !== 1 || typeof ext.consistent !== 'boolean' || typeof ext.primaryCrashed !== 'boolean') {
    throw new MirrorError('EPROTO', `volume hello for ${body.volumeId} has a malformed extension`);
  }
  const role = body.role === Role.PRIMARY ? 'primary' : body.role === Role.SECONDARY ? 'secondary' : null;
  if (role === null) throw new MirrorError('EPROTO', `volume hello for ${body.volumeId} with role ${body.role}`);
  return {
    volumeId: body.volumeId,
    sizeBytes: body.sizeBytes,
    regionSize: body.regionSize,
    role,
    generations: fromWireGenerations(body.generations),
    dirtyBytes: body.dirtyBytes,
    consistent: ext.consistent,
    primaryCrashed: ext.primaryCrashed,
  };
}
