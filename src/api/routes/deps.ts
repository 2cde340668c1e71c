import type { PairControl } from '../../resource-groups';
import type { TokenStore } from '../token-store';

/** What route handlers use. */
export interface RouteDeps {
  readonly control: PairControl;
  readonly tokens: TokenStore;
  readonly nodeId: string;
}
