// Which connections have a response in flight, so that closing the server can end the idle ones
// at once and each busy one as soon as its response is done. (Node's own closeIdleConnections misses a
// keep-alive connection whose request waited while another client's connection was torn down.)
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionTracker {
  /** Ends idle connections now and busy ones when their responses finish. */
  closeWhenIdle(): void;
}

export function trackConnections(server: Server): ConnectionTracker {
  const inFlight = new Map<Socket, number>();
  let closing = false;
  server.on('connection', (s: Socket) => {
    inFlight.set(s, 0);
    s.once('close', () => inFlight.delete(s));
  });
  server.on('request', (req, res) => {
    const s = req.socket;
    inFlight.set(s, (inFlight.get(s) ?? 0) + 1);
    res.once('close', () => {
      const n = Math.max(0, (inFlight.get(s) ?? 1) - 1);
      if (inFlight.has(s)) inFlight.set(s, n);
      if (closing && n === 0) s.destroy();
    });
  });
  return {
    closeWhenIdle() {
      closing = true;
      for (const [s, n] of inFlight) if (n === 0) s.destroy();
    },
  };
}
