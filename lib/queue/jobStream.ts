// A job's output stream as one attempt writes it. Entries are sent without waiting for each reply (one
// connection keeps them in order, so the stream costs the generation no round trips); the first failure
// is kept and raised by the next awaited write. The stream's expiry is renewed every so many entries,
// so a long job's stream outlives it by STREAM_TTL_SECONDS.
import type IORedis from 'ioredis';
import { EntryType, STREAM_TTL_SECONDS, entryFields } from './protocol';

const RENEW_EVERY = 256;

export class JobStream {
  private failure: unknown;
  private count = 0;

  constructor(private readonly redis: IORedis, private readonly key: string,
              private readonly attempt: number, private readonly worker: string) {}

  /** Sends an entry; does not wait for Redis. */
  send(type: EntryType, data: unknown): Promise<unknown> {
    const p = this.redis.xadd(this.key, '*', ...entryFields(type, this.attempt, this.worker, data));
    p.catch((err) => (this.failure ??= err));
    if (this.count++ % RENEW_EVERY === 0 || type === 'done' || type === 'error')
      this.redis.expire(this.key, STREAM_TTL_SECONDS).catch((err) => (this.failure ??= err));
    return p;
  }

  /** Sends an entry and waits until it, and every entry before it, is stored; throws the first failure. */
  async write(type: EntryType, data: unknown): Promise<void> {
    await this.send(type, data).catch(() => undefined);
    if (this.failure !== undefined) throw this.failure;
  }
}
