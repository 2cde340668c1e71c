// The dashboard's client of the REST API: JSON requests with the bearer
// token, and the event stream read with fetch (EventSource cannot send an
// Authorization header, and the token must not go in a URL).

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, body) {
    const headers = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    const init = { method, headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    try {
      data = text === '' ? null : JSON.parse(text);
    } catch {
      throw new ApiError(res.status, `unexpected answer from ${method} ${path} (${res.status})`);
    }
    if (!res.ok) throw new ApiError(res.status, data?.message ?? `${method} ${path} failed (${res.status})`, data?.field);
    return data;
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body);
  }

  delete(path) {
    return this.request('DELETE', path);
  }

  /**
   * Reads /api/v1/events/stream until signal aborts, calling onEvent with
   * each event; resolves when the stream ends (the caller reconnects with
   * the last seq it saw).
   */
  async streamEvents(after, onEvent, signal) {
    const query = after === null ? '' : `?after=${after}`;
    const res = await fetch(`/api/v1/events/stream${query}`, {
      headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
      signal,
    });
    if (!res.ok || res.body === null) throw new ApiError(res.status, `event stream refused (${res.status})`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = frame
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('\n');
        if (data !== '') onEvent(JSON.parse(data));
      }
    }
  }
}
