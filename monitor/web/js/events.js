// Reads the server-sent events of GET /api/v1/events with fetch and a
// stream reader, because EventSource cannot send an Authorization
// header. A dropped stream is reopened with Last-Event-ID, so the
// server replays what was missed from its backlog.

import { authHeaders, ApiError, reportUnauthorized } from './api.js';

const minRetryMs = 1000;
const maxRetryMs = 15000;

// EventStream delivers each event's decoded data to onEvent and reports
// its state to onStatus: "connecting", "live", "reconnecting" or
// "unauthorized".
export class EventStream {
  constructor({ onEvent, onStatus }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.lastEventID = null;
    this.retryMs = minRetryMs;
    this.controller = null;
    this.timer = null;
  }

  // start opens the stream, closing any stream already open. Call it
  // again after the token changed.
  start() {
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    this.onStatus('connecting');
    this.run(controller.signal).catch(() => {
      if (!controller.signal.aborted) this.retry();
    });
  }

  stop() {
    clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  retry() {
    this.onStatus('reconnecting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.start(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, maxRetryMs);
  }

  async run(signal) {
    const headers = authHeaders({ Accept: 'text/event-stream' });
    if (this.lastEventID !== null) headers['Last-Event-ID'] = this.lastEventID;
    const resp = await fetch('/api/v1/events', { headers, signal, cache: 'no-store' });
    if (resp.status === 401) {
      this.onStatus('unauthorized');
      reportUnauthorized(new ApiError(401, await resp.json().catch(() => null)));
      return;
    }
    if (!resp.ok || !resp.body) throw new Error(`events: HTTP ${resp.status}`);

    this.retryMs = minRetryMs;
    this.onStatus('live');
    await this.read(resp.body, signal);
    if (!signal.aborted) this.retry();
  }

  // read parses the text/event-stream format: fields up to a blank
  // line make one event, and lines starting with ":" are comments.
  async read(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done || signal.aborted) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, '');
        buffer = buffer.slice(end + 1);
        if (line === '') {
          if (data.length > 0) this.dispatch(data.join('\n'));
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const fieldValue = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(fieldValue);
        if (field === 'id') this.lastEventID = fieldValue;
      }
    }
  }

  dispatch(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return; // an event this page does not understand
    }
    this.onEvent(event);
  }
}
