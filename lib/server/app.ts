// The OpenAI-compatible HTTP server (fastify): /v1/completions, /v1/chat/completions (JSON or
// server-sent events), /v1/models, /health and /metrics, over a pool of sessions of one model.
// `createServer` returns the fastify instance (listen on it); `shutdown()` drains and closes it.
import * as path from 'node:path';
import { timingSafeEqual, createHash } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Draft } from '../draft';
import type { Model } from '../model';
import type { SessionOptions } from '../options';
import { InvalidArgumentError } from '../errors';
import { ApiError, toApiError } from './apiError';
import { trackConnections } from './connections';
import { GenerationJob, ServerContext, serveGeneration } from './generation';
import { ServerMetrics } from './metrics';
import { SessionPool } from './pool';
import { CHATML_STOP, CHATML_TEMPLATE } from './template';
import { RequestLimits, parseChatRequest, parseCompletionRequest } from './validate';

export interface ServerOptions {
  model: Model;
  /** A Chimera draft for the model: every session decodes speculatively. */
  draft?: Draft;
  tree?: SessionOptions['tree'];
  /** Sessions (each with its own KV cache) that generate at once. Default 1. */
  parallel?: number;
  /** Requests that may wait for a session; more are answered 429. Default 64. */
  queueLimit?: number;
  /** When set, every endpoint but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** KV cache size of each session; default the model's (at most 4096). */
  contextSize?: number;
  /** The name /v1/models lists; default the model file's name without its extension. */
  modelId?: string;
  /** The chat template for a model whose file has none; default ChatML (with `<|im_end|>` as a stop string). */
  chatTemplate?: string;
  /** fastify's logger option (default off). */
  logger?: boolean;
  /** Also export the process metrics (memory, CPU, event loop) on /metrics. Default true. */
  processMetrics?: boolean;
}

export type ChimeraServer = FastifyInstance & {
  /** Answers new requests 503, lets the queued and running ones finish, then closes. */
  shutdown(): Promise<void>;
  readonly pool: SessionPool;
  readonly metrics: ServerMetrics;
};

function checkOptions(o: ServerOptions): Required<Pick<ServerOptions, 'parallel' | 'queueLimit'>> {
  const int = (name: string, v: unknown, min: number, def: number) => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 4096)
      throw new InvalidArgumentError(`${name} must be an integer in ${min}..4096, got ${String(v)}`);
    return v;
  };
  if (o.apiKey !== undefined && (typeof o.apiKey !== 'string' || o.apiKey === ''))
    throw new InvalidArgumentError('apiKey must be a non-empty string');
  return { parallel: int('parallel', o.parallel, 1, 1), queueLimit: int('queueLimit', o.queueLimit, 0, 64) };
}

function keyChecker(apiKey: string | undefined): (header: string | undefined) => boolean {
  if (apiKey === undefined) return () => true;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const want = digest(apiKey);
  return (header) => {
    const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
    return m !== null && timingSafeEqual(digest(m[1].trim()), want);
  };
}

export function createServer(options: ServerOptions): ChimeraServer {
  const { parallel, queueLimit } = checkOptions(options);
  const { model } = options;
  const sessions = Array.from({ length: parallel }, () =>
    model.createSession({ contextSize: options.contextSize, draft: options.draft, tree: options.draft ? options.tree : undefined }));
  const batchStats = () => {
    try {
      return model.batchStats();
    } catch {
      return undefined;  // the model was disposed under the server
    }
  };
  const metrics = new ServerMetrics(parallel, options.processMetrics ?? true, batchStats);
  const pool = new SessionPool(sessions, queueLimit, () => {
    metrics.queueLength.set(pool.queued);
    metrics.activeSessions.set(pool.active);
  });
  const modelId = options.modelId ?? path.basename(model.info.path).replace(/\.[^.]+$/, '');
  let draining = false;
  const ctx: ServerContext = { pool, metrics, modelId, draining: () => draining };
  const limits: RequestLimits = { modelIds: [modelId, path.basename(model.info.path)], contextSize: sessions[0].contextSize };

  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 8 << 20 });
  const authorized = keyChecker(options.apiKey);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (draining) {
      reply.header('connection', 'close');
      throw new ApiError(503, 'the server is shutting down', 'unavailable_error', null, 'shutting_down');
    }
    if (req.url.split('?')[0] !== '/health' && !authorized(req.headers.authorization))
      throw new ApiError(401, 'a valid API key is required: Authorization: Bearer <key>', 'invalid_request_error', null, 'invalid_api_key');
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.inc({ endpoint: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  app.setErrorHandler((err, req, reply) => {
    const e = toApiError(err);
    if (e.status >= 500) req.log.error(err);
    if (e.status === 429) reply.header('retry-after', '1');
    return reply.status(e.status).send(e.body());
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send(new ApiError(404, `no route ${req.method} ${req.url}`, 'invalid_request_error', null, 'not_found').body()));

  registerRoutes(app, ctx, limits, options, model);

  // Closing waits for the queued and running requests, then ends the connections as they go idle
  // (kept-alive ones would hold the close open) and frees the sessions.
  const connections = trackConnections(app.server);
  app.addHook('preClose', async () => {
    await pool.idle();
    connections.closeWhenIdle();
  });
  app.addHook('onClose', async () => {
    for (const s of sessions) s.dispose();
  });
  app.decorate('shutdown', () => {
    draining = true;
    return app.close();
  });
  app.decorate('pool', { getter: () => pool });
  app.decorate('metrics', { getter: () => metrics });
  return app as unknown as ChimeraServer;
}

function registerRoutes(app: FastifyInstance, ctx: ServerContext, limits: RequestLimits, options: ServerOptions, model: Model): void {
  const created = Math.floor(Date.now() / 1000);
  app.get('/health', async () => ({ status: 'ok', model: ctx.modelId, active: ctx.pool.active, queued: ctx.pool.queued }));
  const entry = { id: ctx.modelId, object: 'model', created, owned_by: 'chimera-llm' };
  app.get('/v1/models', async () => ({ object: 'list', data: [entry] }));
  app.get('/v1/models/:id', async (req) => {
    const { id } = req.params as { id: string };
    if (!limits.modelIds.includes(id))
      throw new ApiError(404, `model '${id}' is not served here`, 'invalid_request_error', 'model', 'model_not_found');
    return entry;
  });
  app.get('/metrics', async (req, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.post('/v1/completions', async (req, reply) => {
    const r = parseCompletionRequest(req.body, limits);
    const job: GenerationJob = {
      endpoint: 'completion', route: '/v1/completions', stream: r.stream, includeUsage: r.includeUsage,
      start: (session, signal) => session.generate(r.prompt, { ...r.options, append: false, signal }),
    };
    return serveGeneration(ctx, reply, job);
  });

  // A model without a chat template gets the fallback (ChatML unless options.chatTemplate).
  const hasTemplate = (model.info.tokenizer.chatTemplate ?? '').trim() !== '';
  const template = hasTemplate ? undefined : options.chatTemplate ?? CHATML_TEMPLATE;
  const extraStop = !hasTemplate && options.chatTemplate === undefined ? [CHATML_STOP] : [];
  app.post('/v1/chat/completions', async (req, reply) => {
    const r = parseChatRequest(req.body, limits);
    const stop = [...(r.options.stop ?? []), ...extraStop];
    const job: GenerationJob = {
      endpoint: 'chat', route: '/v1/chat/completions', stream: r.stream, includeUsage: r.includeUsage,
      start: (session, signal) =>
        session.chat(r.messages, { ...r.options, stop: stop.length > 0 ? stop : undefined, template, signal }),
    };
    return serveGeneration(ctx, reply, job);
  });
}
