// Runs one generation request on a pool session: waits for a session (bounded queue), cancels the
// generation when the client disconnects, answers as one JSON object or as a stream of server-sent
// events, and records the metrics. Shared by /v1/completions and /v1/chat/completions.
import { performance } from 'node:perf_hooks';
import type { FastifyReply } from 'fastify';
import { ContextFullError } from '../errors';
import type { Chunk, CompletionResult, Session } from '../session';
import { toApiError } from './apiError';
import type { ServerMetrics } from './metrics';
import type { SessionPool } from './pool';
import { Endpoint, finishReason, newHead, streamChunk, usageChunk, usageOf, wholeResponse } from './responses';
import { SseStream } from './sse';

/** What the request handlers share. */
export interface ServerContext {
  pool: SessionPool;
  metrics: ServerMetrics;
  modelId: string;
  /** True once shutdown began: responses then close their connection. */
  draining(): boolean;
}

export interface GenerationJob {
  endpoint: Endpoint;
  route: string;
  stream: boolean;
  includeUsage: boolean;
  /** Starts the generation on a session; `signal` aborts it. */
  start(session: Session, signal: AbortSignal): AsyncGenerator<Chunk, CompletionResult, undefined>;
}

// Iterates a generation to its result; a full context ends it like max_tokens does.
async function runToEnd(it: AsyncGenerator<Chunk, CompletionResult, undefined>, onChunk: (c: Chunk) => void): Promise<CompletionResult> {
  try {
    for (;;) {
      const step = await it.next();
      if (step.done) return step.value;
      onChunk(step.value);
    }
  } catch (err) {
    if (err instanceof ContextFullError && err.result) return err.result as CompletionResult;
    throw err;
  }
}

// The prompt's length in tokens: what the cache already held of it plus what was computed.
const promptLength = (r: CompletionResult) => r.stats.promptTokensReused + r.stats.promptTokensEvaluated;

export async function serveGeneration(ctx: ServerContext, reply: FastifyReply, job: GenerationJob): Promise<object | undefined> {
  const t0 = performance.now();
  const ac = new AbortController();
  const res = reply.raw;
  const onClose = () => {
    if (!res.writableFinished) ac.abort();
  };
  res.on('close', onClose);
  let session: Session;
  try {
    session = await ctx.pool.acquire(ac.signal);
  } catch (err) {
    res.off('close', onClose);
    if (ac.signal.aborted) return clientGone(ctx, reply, job);
    throw err;
  }
  try {
    const firstText = () => ctx.metrics.timeToFirstToken.observe((performance.now() - t0) / 1000);
    const it = job.start(session, ac.signal);
    return job.stream ? await streamed(ctx, reply, job, it, firstText, ac.signal) : await whole(ctx, reply, job, it, firstText, ac.signal);
  } finally {
    res.off('close', onClose);
    ctx.pool.release(session);
  }
}

function clientGone(ctx: ServerContext, reply: FastifyReply, job: GenerationJob): undefined {
  // 499: nginx's "client closed request"; nothing can be sent any more.
  ctx.metrics.requests.inc({ endpoint: job.route, status: '499' });
  reply.hijack();
  // The socket may still look open from here (a half-closed connection): close it.
  reply.raw.destroy();
  return undefined;
}

async function whole(ctx: ServerContext, reply: FastifyReply, job: GenerationJob,
  it: AsyncGenerator<Chunk, CompletionResult, undefined>, firstText: () => void, signal: AbortSignal): Promise<object | undefined> {
  let first = true;
  const r = await runToEnd(it, (c) => {
    if (first && c.tokens.length > 0) firstText();
    first &&= c.tokens.length === 0;
  });
  if (signal.aborted) return clientGone(ctx, reply, job);
  ctx.metrics.generation(promptLength(r), r.stats);
  if (ctx.draining()) reply.header('connection', 'close');
  return wholeResponse(job.endpoint, newHead(job.endpoint, ctx.modelId), r, usageOf(promptLength(r), r));
}

async function streamed(ctx: ServerContext, reply: FastifyReply, job: GenerationJob,
  it: AsyncGenerator<Chunk, CompletionResult, undefined>, firstText: () => void, signal: AbortSignal): Promise<undefined> {
  const head = newHead(job.endpoint, ctx.modelId);
  const sse = new SseStream(reply.raw, ctx.draining);
  let started = false;
  // Nothing is sent before the first chunk, so an error in the prompt (too long, a template that
  // refuses the messages) is still an HTTP error status.
  const begin = (text: string) => {
    started = true;
    reply.hijack();
    sse.send(streamChunk(job.endpoint, head, text, null, true));
  };
  let r: CompletionResult;
  try {
    r = await runToEnd(it, (c) => {
      if (c.tokens.length > 0 && !started) firstText();
      if (!started) begin(c.text);
      else if (c.text !== '') sse.send(streamChunk(job.endpoint, head, c.text, null));
    });
  } catch (err) {
    if (!started) throw err;
    // Mid-stream the status line is gone: the error becomes the last event.
    sse.send(toApiError(err).body());
    sse.end();
    return undefined;
  }
  if (signal.aborted) return clientGone(ctx, reply, job);
  if (!started) begin('');
  ctx.metrics.generation(promptLength(r), r.stats);
  sse.send(streamChunk(job.endpoint, head, '', finishReason(r)));
  if (job.includeUsage) sse.send(usageChunk(job.endpoint, head, usageOf(promptLength(r), r)));
  sse.end();
  return undefined;
}
