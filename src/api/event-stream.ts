/**
 * GET /api/v1/events/stream: server-sent events fed by control.subscribe().
 * Live events that arrive while the missed ones (after= or Last-Event-ID)
 * are fetched are held and sent after them, each seq once. A client that
 * does not read is cut off once a bounded amount is queued for it, and
 * every stream ends (unsubscribing) on disconnect or when the app closes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventRecord, PairControl } from '../resource-groups';
import { ApiError } from './errors';

/** Bytes we let pile up for a client that does not read before dropping it. */
const MAX_QUEUED_BYTES = 1 << 20;
const KEEPALIVE_MS = 15_000;
/** Missed events are replayed in pages of this many. */
const REPLAY_PAGE = 1000;
/** Live events held while a backlog is replayed; past this the stream ends rather than grow. */
const MAX_HELD_EVENTS = 10_000;
/** Open streams per app; more are refused (each holds a subscription and a socket). */
export const MAX_EVENT_STREAMS = 64;

/** Streams open on an app, ended when it closes. */
export class EventStreams {
  private readonly open = new Set<() => void>();

  add(end: () => void): () => void {
    this.open.add(end);
    return () => this.open.delete(end);
  }

  get size(): number {
    return this.open.size;
  }

  closeAll(): void {
    for (const end of [...this.open]) end();
  }
}

function parseAfter(request: FastifyRequest<{ Querystring: { readonly after?: string } }>): number | null {
  if (request.query.after !== undefined) return Number(request.query.after);
  const header = request.headers['last-event-id'];
  if (header === undefined) return null;
  if (typeof header !== 'string' || !/^[0-9]{1,15}$/.test(header)) throw new ApiError(400, 'header Last-Event-ID must be an event sequence number', 'Last-Event-ID');
  return Number(header);
}

export function frame(event: EventRecord): string {
  return `id: ${event.seq}\nevent: ${event.kind.replace(/[\r\n]/g, ' ')}\ndata: ${JSON.stringify(event)}\n\n`;
}

export async function streamEvents(
  control: PairControl,
  request: FastifyRequest<{ Querystring: { readonly after?: string } }>,
  reply: FastifyReply,
): Promise<void> {
  const after = parseAfter(request);
  const streams = request.server.eventStreams;
  if (streams.size >= MAX_EVENT_STREAMS) throw new ApiError(503, `too many open event streams (${MAX_EVENT_STREAMS}); close one and retry`);
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(': twinsan events\n\n');

  let lastSeq = after ?? -1;
  let held: EventRecord[] | null = after === null ? null : [];
  let ended = false;
  const send = (event: EventRecord): void => {
    if (ended || event.seq <= lastSeq) return;
    lastSeq = event.seq;
    res.write(frame(event));
    if (res.writableLength > MAX_QUEUED_BYTES) {
      request.log.warn({ queuedBytes: res.writableLength }, 'event stream client is not reading; closing its stream');
      end();
    }
  };
  const unsubscribe = control.subscribe((event) => {
    if (held === null) send(event);
    else if (held.length < MAX_HELD_EVENTS) held.push(event);
    else {
      request.log.warn({ held: held.length }, 'events arrive faster than the backlog replays; closing the stream (the client reconnects from its last id)');
      end();
    }
  });
  const keepalive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
  keepalive.unref();
  const started = process.hrtime.bigint();
  const forget = streams.add(() => end());
  function end(): void {
    if (ended) return;
    ended = true;
    clearInterval(keepalive);
    unsubscribe();
    forget();
    res.end();
    request.log.info(
      { method: request.method, route: request.routeOptions.url, statusCode: 200, ms: Number(process.hrtime.bigint() - started) / 1e6 },
      'event stream closed',
    );
  }
  res.on('close', end);
  res.on('error', end);

  if (after !== null) {
    try {
      // Page forward until a short page; a client too slow for the backlog is cut off by send().
      for (;;) {
        const from = lastSeq;
        const page = await control.events(from, REPLAY_PAGE);
        for (const event of page) send(event);
        if (ended || page.length < REPLAY_PAGE || lastSeq === from) break;
      }
    } catch (err) {
      request.log.warn({ err }, 'could not replay missed events');
    }
    const pending = held ?? [];
    held = null;
    for (const event of pending) send(event);
  }
}
