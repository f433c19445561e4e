#!/usr/bin/env node
// Load test of `chimera serve`: starts the server on loopback, runs concurrent streaming clients
// against /v1/completions for a bounded time, stops the server with SIGTERM, and prints one JSON object.
//
//   npm run loadtest -- [--model FILE] [--seconds 30] [--warmup 5] [--clients 64] [--parallel 4]
//                       [--max-tokens 64] [--threads N] [--context N] [--draft FILE] [--max-rss-growth 64]
//
// Each client sends one streaming request after another (a rotating prompt, temperature 0.8, a new seed
// each time) until --seconds have passed, then lets its last request finish. Requests that START during
// the first --warmup seconds are left out of the latency figures; the server's RSS is read at the end of
// the warm-up and after the last request (a flat RSS: no growth per request).
//   requests        requests completed after the warm-up   errors  non-200 answers, broken streams
//   lost            requests still unanswered 60 s after the end (a hung request would show here)
//   ttftMs          time from sending the request to its first text (queue wait included): p50, p99
//   interTokenMs    per request, (last text - first text) / (tokens - 1): the time per output token a
//                   streaming client sees (several chunks often arrive in one read, so per-chunk gaps are 0)
//   tokensPerSecond generated tokens (usage.completion_tokens) of the measured requests / measured time
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');
const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(root, 'models', 'stories260K.gguf') },
    draft: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    clients: { type: 'string', default: '64' },
    parallel: { type: 'string', default: '4' },
    'max-tokens': { type: 'string', default: '64' },
    threads: { type: 'string' },
    context: { type: 'string' },
    'max-rss-growth': { type: 'string', default: '64' },
  },
});
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const clients = Number(args.clients);
const maxTokens = Number(args['max-tokens']);
const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park', 'One day, a big bird',
  'Tom had a red ball', 'The sun was hot and', 'Mom said', 'There was a cat named'];

function startServer() {
  const cli = path.join(root, 'dist', 'cli.js');
  const argv = [cli, 'serve', '--model', args.model, '--port', '0', '--parallel', args.parallel, '--queue', String(clients)];
  if (args.draft) argv.push('--draft', args.draft);
  if (args.threads) argv.push('--threads', args.threads);
  if (args.context) argv.push('--context', args.context);
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const port = new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    exited.then(() => reject(new Error(`chimera serve exited: ${stderr}`)));
  });
  return { child, port, exited, stderr: () => stderr };
}

function rssMB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
}

const percentile = (xs, p) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] * 100) / 100;
};

// One streaming request: resolves to { ok, ttft, gaps, tokens } (times in ms).
async function streamOne(base, prompt, seed) {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0.8, seed, stream: true,
      stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) return { ok: false, why: `status ${res.status}: ${await res.text()}` };
  const decoder = new TextDecoder();
  let buf = '';
  let ttft = null;
  let last = 0;
  let tokens = null;
  let done = false;
  for await (const bytes of res.body) {
    buf += decoder.decode(bytes, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!event.startsWith('data: ')) continue;
      const data = event.slice(6);
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) return { ok: false, why: chunk.error.message };
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      if (chunk.choices?.[0]?.text) {
        const now = performance.now();
        if (ttft === null) ttft = now - t0;
        last = now;
      }
    }
  }
  if (!done || tokens === null) return { ok: false, why: 'stream ended early' };
  const perToken = ttft !== null && tokens > 1 ? (last - t0 - ttft) / (tokens - 1) : null;
  return { ok: true, ttft: ttft ?? performance.now() - t0, perToken, tokens };
}

// The clients: each sends one streaming request after another until `end`; results go into `stats`.
function runClients(base, stats, warmEnd, end) {
  let seed = 1;
  async function client(k) {
    for (let n = 0; performance.now() < end; n++) {
      const begun = performance.now();
      stats.inFlight++;
      let r;
      try {
        r = await streamOne(base, PROMPTS[(k + n) % PROMPTS.length], seed++);
      } catch (err) {
        r = { ok: false, why: String(err) };
      }
      stats.inFlight--;
      if (!r.ok) {
        stats.errors++;
        if (stats.firstErrors.length < 3) stats.firstErrors.push(r.why);
      } else if (begun < warmEnd) {
        stats.warmupRequests++;
      } else {
        stats.requests++;
        stats.tokens += r.tokens;
        stats.ttft.push(r.ttft);
        if (r.perToken !== null) stats.perToken.push(r.perToken);
      }
    }
  }
  return Promise.all(Array.from({ length: clients }, (_, k) => client(k)));
}

// Resolves to `value` after `ms`, or to what `p` resolves to first.
function within(p, ms, value) {
  let timer;
  return Promise.race([p, new Promise((resolve) => (timer = setTimeout(resolve, ms, value)))]).finally(() => clearTimeout(timer));
}

async function main() {
  const server = startServer();
  const base = `http://127.0.0.1:${await server.port}`;
  const start = performance.now();
  const warmEnd = start + warmup * 1000;
  const stats = { requests: 0, warmupRequests: 0, errors: 0, tokens: 0, inFlight: 0, ttft: [], perToken: [], firstErrors: [] };
  const rss = { warm: null, every5s: [] };
  const warmTimer = setTimeout(() => (rss.warm = rssMB(server.child.pid)), warmup * 1000);
  // The RSS every 5 s, to tell a plateau from steady growth.
  const rssTimer = setInterval(() => rss.every5s.push(rssMB(server.child.pid)), 5000);
  const finished = await within(runClients(base, stats, warmEnd, start + seconds * 1000), seconds * 1000 + 60_000, 'timeout');
  const measured = (performance.now() - warmEnd) / 1000;
  clearTimeout(warmTimer);
  clearInterval(rssTimer);
  rss.end = rssMB(server.child.pid);
  // Continuous batching as the server saw it: forward passes and the sessions sharing each.
  const batching = await fetch(`${base}/metrics`).then((r) => r.text()).then((text) => {
    const metric = (name) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { forwardPasses: metric('chimera_forward_passes_total'),
      sessionsPerPass: Math.round(metric('chimera_batch_sessions_per_pass') * 100) / 100,
      maxSessions: metric('chimera_batch_max_sessions') };
  }, () => null);
  server.child.kill('SIGTERM');
  const exit = await within(server.exited, 30_000, 'no exit in 30 s');
  const cpu = os.cpus();
  const result = {
    machine: `${cpu[0]?.model ?? 'unknown CPU'} (${cpu.length} cores), node ${process.version}`,
    model: path.basename(args.model),
    draft: args.draft ? path.basename(args.draft) : null,
    clients, parallel: Number(args.parallel), maxTokens, seconds, warmupSeconds: warmup,
    requests: stats.requests,
    warmupRequests: stats.warmupRequests,
    errors: stats.errors,
    lost: finished === 'timeout' ? stats.inFlight : 0,
    ttftMs: { p50: percentile(stats.ttft, 50), p99: percentile(stats.ttft, 99) },
    interTokenMs: { p50: percentile(stats.perToken, 50), p99: percentile(stats.perToken, 99) },
    tokens: stats.tokens,
    tokensPerSecond: Math.round((stats.tokens / measured) * 10) / 10,
    serverRssMB: rss,
    batching,
    serverExit: exit,
    ...(stats.firstErrors.length ? { firstErrors: stats.firstErrors } : {}),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  // Exit status 1 (for CI) on an error, a lost request, an unclean server exit, or RSS growth after the
  // warm-up beyond --max-rss-growth MB.
  const grew = rss.warm !== null && rss.end !== null && rss.end - rss.warm > Number(args['max-rss-growth']);
  process.exitCode = result.errors === 0 && result.lost === 0 && exit === 0 && !grew ? 0 : 1;
  if (finished === 'timeout') process.exit();
}

main().catch((err) => {
  process.stderr.write(`loadtest: ${err.stack ?? err}\n`);
  process.exit(1);
});
