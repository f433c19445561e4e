// A pool of sessions (each with its own KV cache) and the bounded queue in front of it: at most
// `size` requests generate at once, at most `queueLimit` wait, and a request beyond that is refused.
import type { Session } from '../session';
import { ApiError } from './apiError';

interface Waiter {
  resolve(s: Session): void;
  reject(err: unknown): void;
}

export class SessionPool {
  private readonly free: Session[];
  private readonly waiting: Waiter[] = [];
  private busy = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(readonly sessions: Session[], readonly queueLimit: number, private readonly onChange: () => void = () => {}) {
    this.free = [...sessions];
  }

  get active(): number {
    return this.busy;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * A free session, or a place in the queue until one is released. Rejects with a 429 when the queue
   * is full, and with `signal`'s reason when it aborts while waiting (the place is given up).
   */
  acquire(signal?: AbortSignal): Promise<Session> {
    const s = this.free.pop();
    if (s) {
      this.busy++;
      this.onChange();
      return Promise.resolve(s);
    }
    if (this.waiting.length >= this.queueLimit)
      return Promise.reject(new ApiError(429, `the server is busy: ${this.busy} requests generating and ` +
        `${this.waiting.length} waiting (the queue holds ${this.queueLimit}); retry later`, 'rate_limit_error', null, 'queue_full'));
    return new Promise<Session>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (session) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(session);
        },
        reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        this.onChange();
        this.checkIdle();
        reject(signal?.reason ?? new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.onChange();
    });
  }

  /** Gives a session back: to the first waiter, else to the free list. */
  release(s: Session): void {
    const next = this.waiting.shift();
    if (next) {
      next.resolve(s);
    } else {
      this.busy--;
      this.free.push(s);
    }
    this.onChange();
    this.checkIdle();
  }

  /** Resolves when nothing generates and nothing waits. */
  idle(): Promise<void> {
    if (this.busy === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.busy !== 0 || this.waiting.length !== 0) return;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }
}
