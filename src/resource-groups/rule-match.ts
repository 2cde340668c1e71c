/** A decision-table cell: the values a rule applies to, or '*' for any (witness/decision.ts, start-rule.ts). */
export type Match<T> = readonly T[] | '*';

export function matches<T>(m: Match<T>, v: T): boolean {
  return m === '*' || m.includes(v);
}
