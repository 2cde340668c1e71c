/**
 * What the lab reads from, and asks of, a running node: its own view of
 * the resource groups from the status endpoint (docs/node-config.md), and
 * moves through the REST API (docs/api.md), all made from inside the node's
 * namespace by a NamespaceAgent.
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

/** Where each action is asked: move and failback are REST API routes; force exists on the status endpoint only. */
const ACTION_ROUTES: Readonly<Record<NodeAction, { readonly endpoint: 'api' | 'status'; readonly path: (rg: string) => string }>> = {
  move: { endpoint: 'api', path: (rg) => `/api/v1/resource-groups/${encodeURIComponent(rg)}/move` },
  failback: { endpoint: 'api', path: (rg) => `/api/v1/resource-groups/${encodeURIComponent(rg)}/failback` },
  force: { endpoint: 'status', path: (rg) => `/force?rg=${encodeURIComponent(rg)}` },
};

interface StatusBody {
  state?: unknown;
  inSync?: unknown;
  resourceGroups?: { groups?: { name?: unknown; state?: unknown }[] } | null;
}

export class LabNodeApi {
  /** `statusBase`: the status endpoint; `apiBase` and `token`: the REST API. */
  constructor(
    private readonly agent: NamespaceAgent,
    private readonly statusBase: string,
    private readonly apiBase: string,
    private readonly token: string | null,
  ) {}

  /** The node's state; null while it does not answer (not started, dead, still binding). */
  async view(timeoutMs = 2000): Promise<NodeView | null> {
    let answer: HttpAnswer;
    try {
      answer = await this.agent.http(`${this.statusBase}/status`, { timeoutMs });
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

  /** Whether the REST API answers its health check (no token needed). */
  async apiUp(timeoutMs = 2000): Promise<boolean> {
    try {
      return (await this.agent.http(`${this.apiBase}/api/v1/health`, { timeoutMs })).status === 200;
    } catch {
      return false;
    }
  }

  /** A GET of an API path (`/api/v1/...`) with the token. */
  get(apiPath: string, timeoutMs = 5000): Promise<HttpAnswer> {
    return this.agent.http(`${this.apiBase}${apiPath}`, { headers: this.auth(), timeoutMs });
  }

  /** Moves a resource group (planned switchover, failback) or forces a takeover here. */
  action(action: NodeAction, rg: string, timeoutMs = 60_000): Promise<HttpAnswer> {
    const route = ACTION_ROUTES[action];
    const base = route.endpoint === 'api' ? this.apiBase : this.statusBase;
    return this.agent.http(`${base}${route.path(rg)}`, { method: 'POST', headers: route.endpoint === 'api' ? this.auth() : {}, timeoutMs });
  }

  private auth(): Record<string, string> {
    return this.token === null ? {} : { authorization: `Bearer ${this.token}` };
  }
}
