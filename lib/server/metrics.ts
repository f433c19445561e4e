// The server's Prometheus metrics (prom-client, on a registry of their own so that several servers
// can live in one process): requests by status, tokens, per-request speed, time to first token, the
// queue, the sessions generating, tokens per speculative step, and continuous batching (forward passes
// and the sessions sharing each, read from the model when /metrics is scraped).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchStats } from '../addonTypes';
import type { GenerationStats } from '../session';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'endpoint' | 'status'>;
  readonly promptTokens: Counter;
  readonly generatedTokens: Counter;
  readonly tokensPerSecond: Histogram;
  readonly timeToFirstToken: Histogram;
  readonly tokensPerStep: Histogram;
  readonly queueLength: Gauge;
  readonly activeSessions: Gauge;
  readonly sessions: Gauge;

  constructor(poolSize: number, processMetrics = true, batchStats?: () => BatchStats | undefined) {
    const registers = [this.registry];
    if (batchStats) {
      let passesSeen = 0;
      new Counter({
        name: 'chimera_forward_passes_total', help: 'Forward passes run for the sessions (concurrent sessions share passes)', registers,
        collect() {
          const s = batchStats();
          if (s && s.passes > passesSeen) this.inc(s.passes - passesSeen);
          if (s) passesSeen = s.passes;
        },
      });
      new Gauge({
        name: 'chimera_batch_sessions_per_pass', help: 'Sessions sharing a forward pass, mean since start (continuous batching)', registers,
        collect() {
          const s = batchStats();
          this.set(s && s.passes > 0 ? s.sessionSteps / s.passes : 0);
        },
      });
      new Gauge({
        name: 'chimera_batch_max_sessions', help: 'The most sessions one forward pass has held', registers,
        collect() {
          this.set(batchStats()?.maxSessions ?? 0);
        },
      });
    }
    this.requests = new Counter({
      name: 'chimera_requests_total', help: 'HTTP requests answered, by endpoint and status code',
      labelNames: ['endpoint', 'status'], registers,
    });
    this.promptTokens = new Counter({ name: 'chimera_prompt_tokens_total', help: 'Prompt tokens of completed requests', registers });
    this.generatedTokens = new Counter({ name: 'chimera_generated_tokens_total', help: 'Tokens generated', registers });
    this.tokensPerSecond = new Histogram({
      name: 'chimera_request_tokens_per_second', help: 'Decoding speed of each request (generated tokens / generation time)',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000], registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'chimera_time_to_first_token_seconds', help: 'From the request arriving to its first generated text (queue wait included)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
    });
    this.tokensPerStep = new Histogram({
      name: 'chimera_tokens_per_step', help: 'Speculative decoding: tokens emitted per verification step, per request',
      buckets: [1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8], registers,
    });
    this.queueLength = new Gauge({ name: 'chimera_queue_length', help: 'Requests waiting for a session', registers });
    this.activeSessions = new Gauge({ name: 'chimera_active_sessions', help: 'Sessions generating now (the batch size)', registers });
    this.sessions = new Gauge({ name: 'chimera_sessions', help: 'Sessions in the pool (--parallel)', registers });
    this.sessions.set(poolSize);
    if (processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'chimera_' });
  }

  /** Records a finished generation. */
  generation(promptTokens: number, stats: GenerationStats): void {
    this.promptTokens.inc(promptTokens);
    this.generatedTokens.inc(stats.generatedTokens);
    if (stats.generatedTokens > 0 && stats.tokensPerSecond > 0) this.tokensPerSecond.observe(stats.tokensPerSecond);
    if (stats.speculative && stats.steps) this.tokensPerStep.observe(stats.tokensPerStep ?? 0);
  }
}
