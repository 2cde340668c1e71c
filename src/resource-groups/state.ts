/**
 * The ownership state of one resource group on one node, and the one
 * function that changes it.
 *
 *   stopped ──start──▶ starting ──started──▶ serving ──stop/fence──▶ stopping ──stopped──▶ stopped
 *      │                  │ start-failed (rolled back) ▶ stopped          │ stop-failed ▶ failed
 *      │                  └ rollback-failed ▶ failed                      │
 *      └──move-in──▶ moving-in ──moved-in──▶ serving ──move-out──▶ moving-out ──moved-out──▶ stopped
                                                   ▲                   │ move-abandoned (the drain did not
                                                   └───────────────────┘ finish in its bound: serve on here)
 *
 * 'failed' means some resource could not be stopped (or rolled back): the
 * node may still hold an alias IP or a primary role, so only a stop (which
 * is idempotent and retries every resource) leaves it.
 *
 * Requests that are already satisfied are accepted as no-ops (start while
 * serving, stop while stopped), as IPaddr2's start/stop are.
 */

export const RG_STATES = {
  stopped: 'this node serves nothing of the RG',
  starting: 'resources are being started in order (mirror primary, SCSI state, alias IPs, announce, targets, ALUA active)',
  serving: 'every resource is up: the alias IPs answer and the targets take commands',
  stopping: 'resources are being stopped in reverse order',
  'moving-out': 'planned switchover to the peer: new commands are refused retryably, in-flight ones drain, then resources stop',
  'moving-in': 'planned switchover from the peer: resources are being started here',
  failed: 'a stop or a rollback left a resource in an unknown state; only stop leaves this state',
} as const;
export type RgState = keyof typeof RG_STATES;

export const RG_EVENTS = {
  start: 'serve the RG (initial start, takeover, or failback request)',
  started: 'every resource started',
  'start-failed': 'a resource failed to start; the started ones were stopped again',
  'rollback-failed': 'a resource failed to start and stopping the started ones failed too',
  stop: 'stop serving (shutdown or operator)',
  fence: 'stop serving at once: lease lost or must-stop, or peer and witness both gone',
  stopped: 'every resource stopped',
  'stop-failed': 'some resource failed to stop',
  'move-out': 'hand the RG to the peer (planned switchover)',
  'moved-out': 'every resource stopped for the switchover',
  'move-abandoned': "in-flight commands did not drain within the bound: the LUs are back online and the RG stays here",
  'move-in': 'take the RG from the peer (planned switchover)',
  'moved-in': 'every resource started for the switchover',
} as const;
export type RgEvent = keyof typeof RG_EVENTS;

export type Transition =
  | { readonly ok: true; readonly next: RgState; /** The request was already satisfied. */ readonly noop: boolean }
  | { readonly ok: false; readonly reason: string };

/** The table: for each state, the events it accepts and the state each leads to. */
export const RG_TRANSITIONS: Readonly<Record<RgState, Partial<Record<RgEvent, RgState>>>> = {
  stopped: { start: 'starting', 'move-in': 'moving-in', stop: 'stopped', fence: 'stopped' },
  starting: { started: 'serving', 'start-failed': 'stopped', 'rollback-failed': 'failed' },
  serving: { start: 'serving', 'move-in': 'serving', stop: 'stopping', fence: 'stopping', 'move-out': 'moving-out' },
  stopping: { stopped: 'stopped', 'stop-failed': 'failed' },
  'moving-out': { 'moved-out': 'stopped', 'move-abandoned': 'serving', 'stop-failed': 'failed', fence: 'moving-out' },
  'moving-in': { 'moved-in': 'serving', 'start-failed': 'stopped', 'rollback-failed': 'failed' },
  failed: { stop: 'stopping', fence: 'stopping' },
};

/** Events that, accepted without a state change, are requests already satisfied. */
const NOOP_REQUESTS: ReadonlySet<RgEvent> = new Set<RgEvent>(['start', 'stop', 'fence', 'move-in']);

/** The one transition function: pure. */
export function transition(state: RgState, event: RgEvent): Transition {
  const next = RG_TRANSITIONS[state][event];
  if (next === undefined) return { ok: false, reason: `${event} is not accepted while ${state}` };
  return { ok: true, next, noop: next === state && NOOP_REQUESTS.has(event) };
}

/** States in which this node may hold any resource of the RG (for status and shutdown). */
export function mayHoldResources(state: RgState): boolean {
  return state !== 'stopped';
}
