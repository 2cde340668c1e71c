/**
 * SendTargets (RFC 7143 §11.10.2, Appendix C): builds the text response
 * listing targets and their addresses. The address reported is the one the
 * initiator reached us on, so targets served on alias IPs are reported on
 * the alias IP.
 */
import { IscsiTarget, initiatorAllowed } from './target-port';
import { decodeText, encodeText } from './text';

export interface SendTargetsDirectory {
  /** Targets reachable through the given local address and port. */
  targetsAt(localAddress: string, localPort: number): Iterable<IscsiTarget>;
  readonly portalGroupTag: number;
}

export interface SendTargetsContext {
  readonly sessionType: 'Normal' | 'Discovery';
  /** Target of a normal session. */
  readonly sessionTarget: string | null;
  readonly initiatorName: string;
  readonly localAddress: string;
  readonly localPort: number;
  readonly directory: SendTargetsDirectory;
}

export function formatPortal(address: string, port: number, tpgt: number): string {
  const host = address.includes(':') ? `[${address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')}]` : address;
  const plain = /^\[\d+\.\d+\.\d+\.\d+\]$/.test(host) ? host.slice(1, -1) : host;
  return `${plain}:${port},${tpgt}`;
}

/** Answer a full-feature-phase text request; only SendTargets is served, other keys are NotUnderstood. */
export function buildSendTargetsResponse(request: Buffer, ctx: SendTargetsContext): Buffer {
  const pairs = decodeText(request);
  const out: Array<[string, string]> = [];
  for (const [key, value] of pairs) {
    if (key !== 'SendTargets') {
      out.push([key, 'NotUnderstood']);
      continue;
    }
    for (const target of selectTargets(value, ctx)) {
      out.push(['TargetName', target.name]);
      out.push(['TargetAddress', formatPortal(ctx.localAddress, ctx.localPort, ctx.directory.portalGroupTag)]);
    }
  }
  return encodeText(out);
}

function selectTargets(value: string, ctx: SendTargetsContext): IscsiTarget[] {
  const visible = [...ctx.directory.targetsAt(ctx.localAddress, ctx.localPort)].filter((t) => initiatorAllowed(t, ctx.initiatorName));
  if (ctx.sessionType === 'Discovery') {
    if (value === 'All') return visible;
    return visible.filter((t) => t.name === value);
  }
  // Normal session: only its own target may be reported (empty value or its name).
  const own = value === '' || value === ctx.sessionTarget ? ctx.sessionTarget : null;
  return visible.filter((t) => t.name === own);
}
