/**
 * What the lab reads from, and asks of, a running node through its HTTP
 * endpoint (the status endpoint of docs/node-config.md), made from inside
 * the node's namespace by a NamespaceAgent.
 */
import type { HttpAnswer, NamespaceAgent } from './ns-agent';

export interface NodeView {
  /** 'starting' | 'running' | 'stopping' | 'stopped' */
  readonly state: string;
  /** Every volume in sync with the peer. */
  readonly inSync: boolean;
  /** Resource group name → its state on this node ('serving', 'stopped', ...). */
  readonly groups: ReadonlyMap<string, string>;
}

export const NODE_ACTIONS = ['move', 'failback', 'force'] as const;
export type NodeAction = (typeof NODE_ACTIONS)[number];

interface StatusBody {
  state?: unknown;
  inSync?: unknown;
  resourceGroups?: { groups?: { name?: unknown; state?: unknown }[] } | null;
}

export class LabNodeApi {
  constructor(
    private readonly agent: NamespaceAgent,
    private readonly base: string,
    private readonly token: string | null,
  ) {}

  private headers(): Record<string, string> {
    return this.token === null ? {} : { authorization: `Bearer ${this.token}` };
  }

  /** The node's state; null while it does not answer (not started, dead, still binding). */
  async view(timeoutMs = 2000): Promise<NodeView | null> {
    let answer: HttpAnswer;
    try {
      answer = await this.agent.http(`${this.base}/status`, { headers: this.headers(), timeoutMs });
    } catch {
      return null;
    }
    if (answer.status !== 200) return null;
    let body: StatusBody;
    try {
      body = JSON.parse(answer.body) as StatusBody;
    } catch {
      return null;
    }
    const groups = new Map<string, string>();
    for (const g of body.resourceGroups?.groups ?? []) if (typeof g.name === 'string' && typeof g.state === 'string') groups.set(g.name, g.state);
    return { state: String(body.state), inSync: body.inSync === true, groups };
  }

  /** POST /<action>?rg=NAME. */
  action(action: NodeAction, rg: string, timeoutMs = 60_000): Promise<HttpAnswer> {
    return this.agent.http(`${this.base}/${action}?rg=${encodeURIComponent(rg)}`, { method: 'POST', headers: this.headers(), timeoutMs });
  }
}
