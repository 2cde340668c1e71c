/**
 * The node's end of the node guard (protocol.ts): the alias guard's pipe
 * (AliasGuard, which AliasIpManager drives) with the lease terms the node
 * holds, the witness to release them at, and the death notice to send.
 */
import path from 'node:path';
import { AliasGuard } from '../../alias-ip';
import type { GuardLogger } from '../../alias-ip';
import { encodeNodeGuardMessage } from './protocol';
import type { DeathNotice, WitnessAddress } from './protocol';

/** dist/resource-groups/guard/main.js, also when this module runs from src/ (vitest). */
export const NODE_GUARD_ENTRY = __filename.endsWith('.ts')
  ? path.resolve(__dirname, '..', '..', '..', 'dist', 'resource-groups', 'guard', 'main.js')
  : path.join(__dirname, 'main.js');

export interface NodeGuardOptions {
  readonly interfaces: readonly string[];
  readonly log: GuardLogger;
  /** Default NODE_GUARD_ENTRY run by this node binary. */
  readonly command?: readonly string[];
}

export class NodeGuard extends AliasGuard {
  constructor(options: NodeGuardOptions) {
    super({ interfaces: options.interfaces, log: options.log, command: options.command ?? [process.execPath, NODE_GUARD_ENTRY] });
  }

  /** Where the node's lease terms are released if it dies. */
  witness(address: WitnessAddress): Promise<void> {
    return this.sendLine(encodeNodeGuardMessage({ op: 'witness', ...address }));
  }

  /** The node holds `rg`'s lease term `epoch` (a newer term replaces the older). */
  lease(rg: string, epoch: number): Promise<void> {
    return this.sendLine(encodeNodeGuardMessage({ op: 'lease', rg, epoch }));
  }

  /** The node no longer holds a term of `rg`'s lease. */
  unlease(rg: string): Promise<void> {
    return this.sendLine(encodeNodeGuardMessage({ op: 'unlease', rg }));
  }

  /** The signed 'died' heartbeat to send the peer if the node dies. */
  notice(notice: DeathNotice): Promise<void> {
    return this.sendLine(encodeNodeGuardMessage({ op: 'notice', ...notice }));
  }
}
