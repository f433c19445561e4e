// The queue client: enqueues generation jobs on a BullMQ queue served by `chimera worker` processes
// (any number, on any machines sharing the Redis server) and streams each job's output back from its
// Redis stream. A job retried after a worker died is reassembled into one clean stream and exactly one
// result (reassemble.ts).
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type IORedis from 'ioredis';
import { ChatMessage } from '../chat';
import { AbortError, DisposedError, QueueError } from '../errors';
import { ChatOptions } from '../session';
import { GenerateOptions, checkInteger, checkObject } from '../options';
import {
  JobData, PROTOCOL_VERSION, QueueChatResult, QueueChunk, QueueCompletionResult, RedisConnection,
  bullmq, cancelKey, checkQueueName, connect, decodeEntry, decodeError, streamKey, validateJobData,
} from './protocol';
import { AttemptReassembler } from './reassemble';

export interface QueueClientOptions {
  /** 'redis://host:port' or ioredis options. */
  connection: RedisConnection;
  /** The queue's name (the workers' --queue); default 'chimera'. */
  queue?: string;
  /** Tries per job when workers fail (BullMQ `attempts`); default 3. Stalled jobs are retried by the workers. */
  attempts?: number;
  /** How long one blocking read waits before the job's state is checked, in ms; default 1000. */
  pollMs?: number;
  /** How long Redis may take to accept a job before generate() fails with QueueError, in ms; default 10000. */
  enqueueTimeoutMs?: number;
}

export interface QueueClient {
  /** Streams a job's chunks; the generator's return value is the result (with `job`: id, worker, attempt). */
  generate(prompt: string | number[], options?: GenerateOptions): AsyncGenerator<QueueChunk, QueueCompletionResult, undefined>;
  generate(input: { messages: ChatMessage[] }, options?: ChatOptions): AsyncGenerator<QueueChunk, QueueChatResult, undefined>;
  /** generate() to the end. */
  complete(prompt: string | number[], options?: GenerateOptions): Promise<QueueCompletionResult>;
  complete(input: { messages: ChatMessage[] }, options?: ChatOptions): Promise<QueueChatResult>;
  /** Stops pending reads (they reject with DisposedError) and closes the connections. Idempotent. */
  close(): Promise<void>;
}

type Input = string | number[] | { messages: ChatMessage[] };

/** The job data for an input and options; throws InvalidArgumentError before anything is enqueued. */
function jobData(input: Input, options: ChatOptions | GenerateOptions): JobData {
  const { signal: _signal, ...rest } = checkObject('options', options) as GenerateOptions & ChatOptions;
  const isChat = typeof input === 'object' && input !== null && !Array.isArray(input);
  const data = isChat ? { v: PROTOCOL_VERSION, messages: (input as { messages: ChatMessage[] }).messages, options: rest }
    : { v: PROTOCOL_VERSION, prompt: input as string | number[], options: rest };
  return validateJobData(data);
}

export function createQueueClient(options: QueueClientOptions): QueueClient {
  const o = checkObject('options', options) as unknown as QueueClientOptions;
  const queueName = checkQueueName(o.queue);
  const attempts = checkInteger('attempts', o.attempts, 1, 100) ?? 3;
  const pollMs = checkInteger('pollMs', o.pollMs, 10, 60000) ?? 1000;
  const enqueueTimeoutMs = checkInteger('enqueueTimeoutMs', o.enqueueTimeoutMs, 1, 3600000) ?? 10000;
  return new Client(connect(o.connection, false), queueName, attempts, pollMs, enqueueTimeoutMs);
}

class Client implements QueueClient {
  private readonly queue: Queue;
  private readonly readers = new Set<IORedis>();
  private closed = false;

  constructor(private readonly redis: IORedis, private readonly queueName: string,
              private readonly attempts: number, private readonly pollMs: number,
              private readonly enqueueTimeoutMs: number) {
    this.queue = new (bullmq().Queue)(queueName, { connection: redis });
    // Connection errors surface on the commands that fail; an unhandled 'error' event would crash.
    this.queue.on('error', () => undefined);
    redis.on('error', () => undefined);
  }

  generate(input: Input, options: GenerateOptions | ChatOptions = {}): AsyncGenerator<QueueChunk, never, undefined> {
    // Validated now, so a bad argument throws here rather than at the first next().
    const data = jobData(input, options);
    if (this.closed) throw new DisposedError('the queue client has been closed');
    return this.run(data, options.signal) as AsyncGenerator<QueueChunk, never, undefined>;
  }

  async complete(input: Input, options: GenerateOptions | ChatOptions = {}): Promise<never> {
    const it = this.generate(input, options);
    for (;;) {
      const step = await it.next();
      if (step.done) return step.value;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.readers) r.disconnect();
    await this.queue.close().catch(() => undefined);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async *run(data: JobData, signal: AbortSignal | undefined): AsyncGenerator<QueueChunk, unknown, undefined> {
    if (signal?.aborted) throw new AbortError('aborted before the job was enqueued');
    const jobId = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    try {
      const added = this.queue.add('generate', data, {
        jobId, attempts: this.attempts, removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 },
      });
      // Redis out of reach would otherwise keep the job in ioredis's offline queue without end.
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not take the job within ${this.enqueueTimeoutMs} ms`)), this.enqueueTimeoutMs);
      });
      added.catch(() => undefined);
      await Promise.race([added, late]);
    } catch (err) {
      if (this.closed) throw new DisposedError('the queue client was closed while enqueueing a job');
      throw new QueueError(`cannot enqueue the job: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    const reader = this.redis.duplicate({ maxRetriesPerRequest: null });
    reader.on('error', () => undefined);
    this.readers.add(reader);
    const key = streamKey(this.queueName, jobId);
    let ended = false;
    try {
      const result = yield* this.follow(reader, key, jobId, signal);
      ended = true;
      return result;
    } catch (err) {
      ended = true;
      // Whatever a command was doing when close() cut the connections.
      if (this.closed && !(err instanceof DisposedError)) throw new DisposedError('the queue client was closed while waiting for a job');
      throw err;
    } finally {
      this.readers.delete(reader);
      reader.disconnect();
      // The consumer left the loop early (break, return): the job is not wanted any more.
      if (!ended && !this.closed) void this.cancel(jobId).catch(() => undefined);
    }
  }

  /** Reads the job's stream until the current attempt's result or error. */
  private async *follow(reader: IORedis, key: string, jobId: string, signal: AbortSignal | undefined):
      AsyncGenerator<QueueChunk, unknown, undefined> {
    const merge = new AttemptReassembler();
    let last = '0';
    let cancelled = false;
    for (;;) {
      if (signal?.aborted && !cancelled) {
        cancelled = true;
        // A running job stops within a step and its result (aborted: true) arrives like any other.
        if (await this.cancel(jobId)) throw new AbortError('aborted before a worker took the job');
      }
      const entries = await this.read(reader, key, last);
      if (entries.length === 0) {
        await this.checkAlive(jobId, reader, key, last);
        continue;
      }
      for (const raw of entries) {
        last = raw[0];
        const e = decodeEntry(raw);
        if (!e || !merge.admit(e)) continue;
        if (e.type === 'chunk') {
          const d = e.data as { text: string; tokens: number[] };
          const out = merge.chunk(d.text, d.tokens);
          if (out) yield out;
        } else if (e.type === 'done') {
          const r = e.data as { text: string; tokens: number[] };
          const out = merge.finish(r.text, r.tokens);
          if (out) yield out;
          await this.redis.del(key).catch(() => undefined);
          return e.data;
        } else if (e.type === 'error') {
          throw decodeError(e.data);
        }
      }
    }
  }

  private async read(reader: IORedis, key: string, last: string): Promise<[string, string[]][]> {
    if (this.closed) throw new DisposedError('the queue client was closed while waiting for a job');
    try {
      const r = (await reader.xread('BLOCK', this.pollMs, 'STREAMS', key, last)) as [string, [string, string[]][]][] | null;
      return r?.[0]?.[1] ?? [];
    } catch (err) {
      if (this.closed) throw new DisposedError('the queue client was closed while waiting for a job');
      throw new QueueError(`reading the job's output failed: ${(err as Error).message}`);
    }
  }

  /** After a read with nothing new: a job that failed or vanished will write nothing more. */
  private async checkAlive(jobId: string, reader: IORedis, key: string, last: string): Promise<void> {
    const job = await bullmq().Job.fromId(this.queue, jobId);
    const state = job ? await job.getState() : 'missing';
    if (state !== 'failed' && state !== 'missing' && state !== 'unknown') return;
    // The last entries may have landed just after the read: the caller reads again if so.
    const more = (await reader.xread('STREAMS', key, last)) as unknown[] | null;
    if (more) return;
    if (state === 'failed') throw new QueueError(`job ${jobId} failed: ${job?.failedReason ?? 'no reason given'}`);
    throw new QueueError(`job ${jobId} is no longer in queue '${this.queueName}' and wrote no result`);
  }

  /** Asks the worker to stop the job; true when no worker had it yet and it was removed. */
  private async cancel(jobId: string): Promise<boolean> {
    await this.redis.set(cancelKey(this.queueName, jobId), '1', 'EX', 3600).catch(() => undefined);
    const job = await bullmq().Job.fromId(this.queue, jobId).catch(() => undefined);
    // Only a job no worker holds can be removed (remove() refuses a locked one).
    return job ? job.remove().then(() => true, () => false) : false;
  }
}
