// A queue worker: one loaded model and `concurrency` sessions serving generation jobs from a BullMQ
// queue. Each job's chunks go to its Redis stream tagged with the attempt number, so when a worker dies
// mid-job and BullMQ's stalled-job check hands the job to another worker, the client can drop the dead
// attempt's output (reassemble.ts). Input errors fail the job at once (no retry) with a typed error in
// the stream; anything else (Redis trouble) is retried up to the job's attempts.
import * as os from 'node:os';
import type { Job, Worker } from 'bullmq';
import type IORedis from 'ioredis';
import { ChimeraError, InvalidArgumentError } from '../errors';
import type { Model } from '../model';
import type { SessionOptions } from '../options';
import type { Session } from '../session';
import {
  JobData, QueueJobInfo, RedisConnection, bullmq, cancelKey, checkQueueName, connect, encodeError, streamKey, validateJobData,
} from './protocol';
import { JobStream } from './jobStream';

export interface QueueWorkerOptions {
  connection: RedisConnection;
  /** A loaded model; the worker does not dispose it. */
  model: Model;
  /** Options of each session (draft, tree, lookup, contextSize). */
  session?: SessionOptions;
  queue?: string;
  /** Jobs run at once, one session each; default 1. */
  concurrency?: number;
  /** Names this worker in results and logs; default host:pid. */
  id?: string;
  /** BullMQ lock duration: a worker silent this long is presumed dead and its job retried elsewhere. Default 30000. */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs; default lockDurationMs / 2. */
  stalledIntervalMs?: number;
  /** Times one job may stall (its worker die) before it fails; default 2. */
  maxStalledCount?: number;
  /** One line per job event (start, done, error). */
  log?: (line: string) => void;
}

export interface QueueWorker {
  readonly id: string;
  /** Resolves once the worker is connected and taking jobs. */
  ready(): Promise<void>;
  /** Stops taking jobs, lets running ones finish, disposes the sessions and closes connections. */
  close(): Promise<void>;
}

type Processed = Awaited<ReturnType<Session['complete']>> & { job: QueueJobInfo };

export function startQueueWorker(options: QueueWorkerOptions): QueueWorker {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024)
    throw new InvalidArgumentError(`concurrency must be an integer in 1..1024, got ${String(concurrency)}`);
  const lockDuration = options.lockDurationMs ?? 30000;
  if (!Number.isInteger(lockDuration) || lockDuration < 100)
    throw new InvalidArgumentError(`lockDurationMs must be an integer of at least 100, got ${String(lockDuration)}`);
  checkQueueName(options.queue);
  const sessions = Array.from({ length: concurrency }, () => options.model.createSession(options.session ?? {}));
  return new QueueWorkerImpl(options, sessions, lockDuration);
}

class QueueWorkerImpl implements QueueWorker {
  readonly id: string;
  private readonly redis: IORedis;
  private readonly worker: Worker;
  private readonly queueName: string;
  private readonly log: (line: string) => void;
  private closing: Promise<void> | undefined;

  constructor(o: QueueWorkerOptions, private readonly free: Session[], lockDuration: number) {
    this.id = o.id ?? `${os.hostname()}:${process.pid}`;
    this.queueName = checkQueueName(o.queue);
    this.log = o.log ?? (() => undefined);
    this.redis = connect(o.connection, true);
    this.redis.on('error', (err) => this.log(`redis: ${err.message}`));
    this.worker = new (bullmq().Worker)(this.queueName, (job) => this.process(job), {
      connection: this.redis,
      concurrency: free.length,
      lockDuration,
      stalledInterval: o.stalledIntervalMs ?? Math.max(50, Math.floor(lockDuration / 2)),
      maxStalledCount: o.maxStalledCount ?? 2,
    });
    this.worker.on('error', (err) => this.log(`queue: ${err.message}`));
  }

  async ready(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.worker.close();
      for (const s of this.free) s.dispose();
      await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    return this.closing;
  }

  private async process(job: Job): Promise<Processed> {
    const attempt = Math.max(1, job.attemptsStarted);
    const key = streamKey(this.queueName, String(job.id));
    const out = new JobStream(this.redis, key, attempt, this.id);
    let data: JobData;
    try {
      data = validateJobData(job.data);
    } catch (err) {
      return this.fail(job, attempt, out, err);
    }
    const session = this.free.pop();
    if (!session) throw new Error('no free session: concurrency exceeded');  // cannot happen: BullMQ bounds it
    this.log(`job ${job.id} started (attempt ${attempt})`);
    try {
      out.send('start', {});
      const output = await this.watchCancel(String(job.id), (signal) => this.generate(session, data, signal, (c) => out.send('chunk', c)));
      const result = { ...output, job: { id: String(job.id), worker: this.id, attempt } };
      await out.write('done', result);
      this.log(`job ${job.id} done (attempt ${attempt}, ${result.tokens.length} tokens, ${result.stats.tokensPerSecond.toFixed(0)} tok/s)`);
      return result;
    } catch (err) {
      if (!(err instanceof ChimeraError)) throw err;  // Redis trouble: BullMQ retries the job
      return this.fail(job, attempt, out, err);
    } finally {
      this.free.push(session);
    }
  }

  /** Runs one job on a session, passing each chunk on; a prompt replaces the session's context. */
  private async generate(session: Session, data: JobData, signal: AbortSignal,
                         onChunk: (c: { text: string; tokens: number[] }) => void) {
    const it = data.messages ? session.chat(data.messages, { ...data.options, signal })
      : session.generate(data.prompt ?? '', { ...data.options, append: false, signal });
    let step = await it.next();
    while (!step.done) {
      onChunk(step.value);
      step = await it.next();
    }
    return step.value;
  }

  /** Runs `fn` with a signal that fires when the client asks to cancel the job (its cancel key appears). */
  private async watchCancel<T>(jobId: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    const key = cancelKey(this.queueName, jobId);
    const timer = setInterval(() => {
      this.redis.exists(key).then((n) => n > 0 && ac.abort(), () => undefined);
    }, 200);
    try {
      return await fn(ac.signal);
    } finally {
      clearInterval(timer);
    }
  }

  /** An input or model error: tells the client and fails the job without retries. */
  private async fail(job: Job, attempt: number, out: JobStream, err: unknown): Promise<never> {
    const e = encodeError(err);
    this.log(`job ${job.id} failed (attempt ${attempt}): ${e.code}: ${e.message}`);
    await out.write('error', e);
    throw new (bullmq().UnrecoverableError)(`${e.code}: ${e.message}`);
  }
}
