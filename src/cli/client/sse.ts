/**
 * Server-sent events decoder (the text/event-stream format of the HTML
 * standard, §9.2): chunks in, complete messages out. No I/O; the client feeds
 * it what the socket delivers, split anywhere.
 */

export interface SseMessage {
  readonly event: string;
  readonly data: string;
  readonly id: string | null;
}

/** A line longer than this is refused: an event stream of twinsan events never has one, and memory stays bounded. */
export const SSE_MAX_LINE = 1024 * 1024;
export const SSE_MAX_MESSAGE = 4 * SSE_MAX_LINE;

export class SseDecoder {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private dataChars = 0;
  private id: string | null = null;
  /** A chunk ended in CR: a following LF belongs to the same line end. */
  private pendingCr = false;
  private readonly fields: Readonly<Record<string, (value: string) => void>> = {
    event: (v) => (this.event = v),
    data: (v) => {
      this.dataChars += v.length + 1;
      if (this.dataChars > SSE_MAX_MESSAGE) throw new Error(`event stream message longer than ${SSE_MAX_MESSAGE} characters`);
      this.data.push(v);
    },
    id: (v) => {
      if (!v.includes('\0')) this.id = v;
    },
  };

  /** Decode one chunk; returns the messages it completes, oldest first. Throws when a line exceeds SSE_MAX_LINE. */
  push(chunk: string): SseMessage[] {
    let text = chunk;
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const m = /\r\n|\r|\n/g;
      m.lastIndex = start;
      const hit = m.exec(this.buffer);
      if (!hit) break;
      // A CR at the very end may be the first half of CRLF split across chunks.
      if (hit[0] === '\r' && hit.index === this.buffer.length - 1) this.pendingCr = true;
      const message = this.line(this.buffer.slice(start, hit.index));
      if (message) out.push(message);
      start = hit.index + hit[0].length;
    }
    this.buffer = this.buffer.slice(start);
    if (this.buffer.length > SSE_MAX_LINE) throw new Error(`event stream line longer than ${SSE_MAX_LINE} characters`);
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // a comment: the server's keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    // Unknown fields (and "retry", which only matters to reconnecting browsers) are ignored, as the standard says.
    const apply = Object.hasOwn(this.fields, field) ? this.fields[field] : undefined;
    apply?.(value);
    return null;
  }

  private dispatch(): SseMessage | null {
    const data = this.data;
    const event = this.event || 'message';
    this.data = [];
    this.dataChars = 0;
    this.event = '';
    if (data.length === 0) return null;
    return { event, data: data.join('\n'), id: this.id };
  }
}
