/**
 * Errors of the alias-IP manager: one registry of codes, each with what it
 * means. Every failure of AliasIpManager is an AliasIpError with one of
 * these codes; the message names the interface and address concerned.
 */

export const ALIAS_IP_ERROR_CODES = {
  EINVAL: 'a bad address, prefix length, interface name or option',
  ENOTALLOWED: 'the interface is not in the list the manager was given: it touches no other',
  ENODEV: 'the interface does not exist in this network namespace',
  EADDRINUSE: 'the address is already configured on another interface of this namespace',
  EPREFIX: 'the address is configured on the interface with another prefix length',
  ENOTSERVED: 'announce was asked for an address this node does not serve (it would poison neighbour caches)',
  EDADFAILED: 'IPv6 duplicate address detection failed: another node answers for the address',
  ENOTETHER: 'the interface is not an Ethernet-like link, so ARP and neighbour discovery frames cannot be sent on it',
  ECOMMAND: 'an ip(8) command failed or printed output that could not be parsed (the message quotes its stderr)',
  ELINK: 'the link layer failed: interface lookup or frame send (the system errno is in sysCode)',
  EANCHOR: 'the process-bound anchor device for local routes could not be created or brought up (anchor.ts)',
} as const;

export type AliasIpErrorCode = keyof typeof ALIAS_IP_ERROR_CODES;

export class AliasIpError extends Error {
  override readonly name = 'AliasIpError';
  constructor(
    readonly code: AliasIpErrorCode,
    message: string,
    options?: { cause?: unknown; sysCode?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.sysCode !== undefined) this.sysCode = options.sysCode;
  }

  /** For ELINK and ECOMMAND: the errno name of the underlying failure ('ENETDOWN', 'EPERM'...), when known. */
  readonly sysCode?: string;
}
