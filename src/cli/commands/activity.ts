/** `twinsan sessions`, `twinsan jobs [ID] [--wait]`, `twinsan events [--follow]`: what is happening on the pair. */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { EventRecord, JobInfo, SessionInfo } from '../../resource-groups';
import { ApiResponse, CliError, ConnectError, ConnectionOptions, EXIT, SseMessage } from '../client';
import type { CliIo } from '../output';
import { apiAction, markApi, Ctx, DEFAULT_INTERVAL_MS, followJob, getArray, getObject, note, out, parseInterval, printJson, seg } from './context';
import { eventLine, eventsTable, jobBlock, jobsTable, sessionsTable } from './views';

export function sessionsCommand(io: CliIo): Command {
  return markApi(new Command('sessions').description('initiators logged in: to which volume, on which node, through which portal')).action(
    apiAction(io, async (ctx) => {
      const { value, res } = await getArray<SessionInfo>(ctx, '/api/v1/sessions', 'the session list');
      if (ctx.json) return printJson(ctx, res);
      out(ctx, value.length ? sessionsTable(value) : 'no sessions');
    }),
  );
}

interface JobsOptions extends ConnectionOptions {
  wait?: boolean;
  interval: number;
}

export function jobsCommand(io: CliIo): Command {
  const cmd = new Command('jobs')
    .description('long-running actions (verify, evacuate, failback, move, resync); with an ID, that job')
    .argument('[id]', 'one job')
    .option('--wait', 'with an ID: follow the job with a progress bar until it ends')
    .addOption(new Option('--interval <ms>', 'how often to poll with --wait').argParser(parseInterval).default(DEFAULT_INTERVAL_MS));
  return markApi(cmd).action(
    apiAction<JobsOptions>(io, async (ctx, [id], opts) => {
      if (id === undefined) {
        if (opts.wait) throw new CliError('--wait needs a job ID', EXIT.usage);
        const { value, res } = await getArray<JobInfo>(ctx, '/api/v1/jobs', 'the job list');
        if (ctx.json) return printJson(ctx, res);
        return out(ctx, value.length ? jobsTable(value) : 'no jobs');
      }
      const { value, res } = await getObject<JobInfo>(ctx, `/api/v1/jobs/${seg(id)}`, `job ${id}`);
      if (opts.wait) {
        await followJob(ctx, res, `${value.kind} ${value.subject}`, opts.interval);
        return;
      }
      if (ctx.json) return printJson(ctx, res);
      out(ctx, jobBlock(value));
    }),
  );
}

function parseCount(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

interface EventsOptions extends ConnectionOptions {
  after?: number;
  limit: number;
  follow?: boolean;
}

/** Events per GET while paging to the newest; the API answers at most EVENT_PAGE_MAX at once. */
const EVENT_PAGE = 500;
const EVENT_PAGE_MAX = 1000;
/** --follow: reconnect attempts after the stream breaks, waiting 1, 2, 4, ... s between them. */
const FOLLOW_RETRIES = 6;
const FOLLOW_MAX_BACKOFF_MS = 16_000;

function isEventRecord(v: unknown): v is EventRecord {
  return typeof v === 'object' && v !== null && typeof (v as { seq?: unknown }).seq === 'number';
}

/**
 * The newest `limit` events (paging from the start; the node keeps a bounded
 * log, and only `limit` are held here), or with --after one page from there.
 */
async function recentEvents(ctx: Ctx, opts: EventsOptions): Promise<{ events: EventRecord[]; single: ApiResponse | null }> {
  if (opts.after !== undefined) {
    const { value, res } = await getArray<EventRecord>(ctx, '/api/v1/events', 'the event list', {
      query: { after: opts.after, limit: opts.limit },
      fields: { after: '--after', limit: '--limit' },
    });
    return { events: [...value], single: res };
  }
  let events: EventRecord[] = [];
  let after = 0;
  let pages = 0;
  let seen = 0;
  let last: ApiResponse | null = null;
  for (;;) {
    const { value, res } = await getArray<EventRecord>(ctx, '/api/v1/events', 'the event list', { query: { after, limit: EVENT_PAGE } });
    pages++;
    seen += value.length;
    last = res;
    events = [...events, ...value].slice(-opts.limit);
    const next = value.length ? value[value.length - 1]!.seq : after;
    // A short page is the end; a page that does not advance would loop forever.
    if (value.length < EVENT_PAGE || next <= after) break;
    after = next;
  }
  // One page, nothing cut off: --json can print it exactly as it came.
  return { events, single: pages === 1 && seen === events.length ? last : null };
}

async function follow(ctx: Ctx, lastSeq: number): Promise<never> {
  let seq = lastSeq;
  let failures = 0;
  /** raw: the event's JSON as the stream carried it (what --json prints). */
  const print = (e: EventRecord, raw: string): void => {
    if (e.seq <= seq) return;
    seq = e.seq;
    failures = 0;
    out(ctx, ctx.json ? raw : eventLine(e));
  };
  for (;;) {
    try {
      await ctx.client.stream('/api/v1/events/stream', { after: seq }, (m: SseMessage) => {
        let data: unknown;
        try {
          data = JSON.parse(m.data) as unknown;
        } catch {
          return; // not an event (a heartbeat or a message this release does not know)
        }
        if (isEventRecord(data)) print(data, m.data);
      });
      throw new ConnectError(ctx.client.url('/api/v1/events/stream').href, 'the server ended the event stream', null);
    } catch (err) {
      if (!(err instanceof ConnectError) || failures >= FOLLOW_RETRIES) throw err;
      const wait = Math.min(FOLLOW_MAX_BACKOFF_MS, 1000 * 2 ** failures);
      failures++;
      note(ctx, `event stream lost (${err.message.split('\n')[0]}); reconnecting in ${wait / 1000} s`);
      // The stream replays what was missed from after= on when it reconnects.
      await ctx.io.sleep(wait);
    }
  }
}

export function eventsCommand(io: CliIo): Command {
  const cmd = new Command('events')
    .description('the event log: failovers, moves, config changes, split brain ...')
    .option('--after <seq>', 'events after this sequence number (one page) instead of the newest', parseCount('--after', 0, 999_999_999_999_999))
    .addOption(new Option('--limit <n>', 'how many events').argParser(parseCount('--limit', 1, EVENT_PAGE_MAX)).default(50))
    .option('--follow', 'then keep printing new events as they happen (one line, or one JSON object, each)');
  return markApi(cmd).action(
    apiAction<EventsOptions>(io, async (ctx, _args, opts) => {
      const { events, single } = await recentEvents(ctx, opts);
      if (opts.follow) {
        for (const e of events) out(ctx, ctx.json ? JSON.stringify(e) : eventLine(e));
        await follow(ctx, events.length ? events[events.length - 1]!.seq : (opts.after ?? 0));
      }
      if (ctx.json) return single ? printJson(ctx, single) : out(ctx, JSON.stringify(events));
      out(ctx, events.length ? eventsTable(events) : 'no events');
    }),
  );
}
