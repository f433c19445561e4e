// Server-sent events on a raw HTTP response: `data: <json>\n\n` per event, `data: [DONE]` at the end.
// Writes to a response whose client has gone are dropped (its generation is being cancelled).
import type { ServerResponse } from 'node:http';

export class SseStream {
  private started = false;

  constructor(private readonly res: ServerResponse, private readonly closeAfter: () => boolean) {}

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  /** Sends the status line and headers (once, before the first event). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      // While the server drains, the connection closes after this response.
      ...(this.closeAfter() ? { connection: 'close' } : {}),
    });
  }

  send(data: object | string): void {
    this.start();
    if (!this.open) return;
    this.res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  end(): void {
    this.start();
    if (this.open) this.res.end('data: [DONE]\n\n');
  }
}
