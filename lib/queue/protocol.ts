// The wire protocol between queue clients and `chimera worker` processes: what a BullMQ job carries,
// the per-job Redis stream its output is written to (one entry per chunk, each tagged with the attempt
// that wrote it), the result's job metadata, and Redis connection options. Both sides validate here.
import type IORedis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { ChatMessage, checkMessages } from '../chat';
import { ChimeraError, InvalidArgumentError, QueueError, fromNative } from '../errors';
import { GenerateOptions, checkObject, validateGenerateOptions } from '../options';
import type { ChatResult, Chunk, CompletionResult } from '../session';

/** The queue name when none is given (client and worker). */
export const DEFAULT_QUEUE = 'chimera';
/** Version of the job data; a worker refuses jobs of another version with a typed error. */
export const PROTOCOL_VERSION = 1;
/** How long a job's output stream is kept after its last entry, in seconds. */
export const STREAM_TTL_SECONDS = 3600;

/** Generation options that travel with a job: GenerateOptions without `signal` and `append`, plus a chat template. */
export type JobOptions = Omit<GenerateOptions, 'signal' | 'append'> & { template?: string };

/** A job's data: a prompt (text or token ids) or a conversation, and its options. */
export interface JobData {
  v: number;
  prompt?: string | number[];
  messages?: ChatMessage[];
  options: JobOptions;
}

/** Where and by whom a queued result was made. */
export interface QueueJobInfo {
  /** The BullMQ job id. */
  id: string;
  /** The worker that produced the result (`--id`, default host:pid). */
  worker: string;
  /** 1 for the first try; more when an earlier worker died or stalled mid-job. */
  attempt: number;
}

export type QueueCompletionResult = CompletionResult & { job: QueueJobInfo };
export type QueueChatResult = ChatResult & { job: QueueJobInfo };

/**
 * A streamed chunk. `restart: true` only when a retried job's output differs from what was already
 * streamed (a greedy job on identical machines never does): discard the text received so far; this
 * chunk's text starts the output again. The chunks since the last restart always join to the result's text.
 */
export interface QueueChunk extends Chunk {
  restart?: true;
}

export type EntryType = 'start' | 'chunk' | 'done' | 'error';

/** One decoded stream entry. */
export interface StreamEntry {
  id: string;
  type: EntryType;
  attempt: number;
  worker: string;
  data: unknown;
}

/** A queue name as both sides accept it (it becomes part of Redis keys). */
export function checkQueueName(name: unknown): string {
  const q = name ?? DEFAULT_QUEUE;
  if (typeof q !== 'string' || !/^[\w.-]{1,200}$/.test(q))
    throw new InvalidArgumentError(`queue must be a name of letters, digits, '_', '.' or '-', got '${String(q)}'`);
  return q;
}

/** The Redis key of a job's output stream (outside BullMQ's own key space). */
export function streamKey(queue: string, jobId: string): string {
  return `chimera:stream:${queue}:${jobId}`;
}

/** A key whose presence asks the worker running the job to stop it (the client's AbortSignal). */
export function cancelKey(queue: string, jobId: string): string {
  return `chimera:cancel:${queue}:${jobId}`;
}

/** XADD field list of an entry. */
export function entryFields(type: EntryType, attempt: number, worker: string, data: unknown): string[] {
  return ['t', type, 'a', String(attempt), 'w', worker, 'd', JSON.stringify(data ?? null)];
}

/** Decodes one XREAD entry ([id, [field, value, ...]]); undefined for entries this version does not know. */
export function decodeEntry(raw: [string, string[]]): StreamEntry | undefined {
  const [id, list] = raw;
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) f[list[i]] = list[i + 1];
  const attempt = Number(f.a);
  if (!['start', 'chunk', 'done', 'error'].includes(f.t) || !Number.isInteger(attempt)) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(f.d ?? 'null');
  } catch {
    return undefined;
  }
  return { id, type: f.t as EntryType, attempt, worker: f.w ?? '', data };
}

/** Checks a job's input (client before enqueueing, worker before running); throws InvalidArgumentError. */
export function validateJobData(value: unknown): JobData {
  const d = checkObject('job data', value) as Partial<JobData>;
  if (d.v !== PROTOCOL_VERSION)
    throw new InvalidArgumentError(`job data version ${String(d.v)} is not ${PROTOCOL_VERSION}: client and worker versions differ`);
  if ((d.prompt === undefined) === (d.messages === undefined))
    throw new InvalidArgumentError('a job needs exactly one of prompt (text or token ids) and messages');
  if (d.prompt !== undefined && typeof d.prompt !== 'string' &&
      (!Array.isArray(d.prompt) || d.prompt.some((t) => !Number.isInteger(t) || t < 0 || t > 0x7fffffff)))
    throw new InvalidArgumentError('prompt must be a string or an array of non-negative integer token ids');
  if (d.messages !== undefined) checkMessages(d.messages);
  const options = checkObject('options', d.options) as JobOptions & { signal?: unknown; append?: unknown };
  if (options.signal !== undefined) throw new InvalidArgumentError('signal cannot travel with a job');
  if (options.append !== undefined) throw new InvalidArgumentError('append is not a queue option: every job starts a fresh context');
  if (options.template !== undefined && typeof options.template !== 'string') throw new InvalidArgumentError('template must be a string');
  if (options.template !== undefined && d.messages === undefined) throw new InvalidArgumentError('template is for messages only');
  validateGenerateOptions(options as GenerateOptions);
  return { v: PROTOCOL_VERSION, prompt: d.prompt, messages: d.messages, options };
}

/** An error as a stream entry's data. */
export function encodeError(err: unknown): { code: string; message: string } {
  if (err instanceof ChimeraError) return { code: err.code, message: err.message };
  return { code: 'E_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** A stream entry's error data as the matching typed error. */
export function decodeError(data: unknown): ChimeraError {
  const e = fromNative(data);
  if (e instanceof ChimeraError) return e;
  const message = (data as { message?: unknown } | null)?.message;
  return new QueueError(`the worker failed: ${typeof message === 'string' ? message : JSON.stringify(data)}`);
}

/**
 * bullmq and ioredis, loaded on first use: requiring them takes about 140 ms, which every other user
 * of the library (and every CLI command) would otherwise pay.
 */
export function bullmq(): typeof import('bullmq') {
  return require('bullmq') as typeof import('bullmq');
}

function ioredis(): typeof IORedis {
  return (require('ioredis') as typeof import('ioredis')).default;
}

/** 'redis://host:port' or ioredis options. */
export type RedisConnection = string | RedisOptions;

/**
 * An ioredis connection. `blocking`: for BullMQ workers and blocking reads, which must wait through
 * reconnects (maxRetriesPerRequest null); otherwise commands fail after a few retries instead of hanging.
 */
export function connect(connection: RedisConnection, blocking: boolean): IORedis {
  const extra: RedisOptions = { maxRetriesPerRequest: blocking ? null : 3 };
  if (typeof connection === 'string') {
    if (!/^rediss?:\/\//.test(connection))
      throw new InvalidArgumentError(`connection must be a redis:// or rediss:// URL or ioredis options, got '${connection}'`);
    return new (ioredis())(connection, extra);
  }
  if (connection === null || typeof connection !== 'object')
    throw new InvalidArgumentError('connection must be a redis:// URL or ioredis options');
  return new (ioredis())({ ...connection, ...extra });
}
