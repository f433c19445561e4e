#!/usr/bin/env node
// Continuous batching: aggregate decode throughput of N concurrent sessions of one model against one
// session, on the same model, in one run.
//
//   node bench/batch.js [--model=wide-f16|wide-q8_0|wide-q4_k_m|PATH.gguf] [--draft=PATH] [--sessions=1,2,4,8,16,32]
//                       [--tokens=N] [--threads=N] [--modes=plain,auto] [--reps=N]
//
// For each mode (plain: no draft; auto: the model's trained draft with tree 'auto') and each N, N
// sessions are prefilled with N different story openings (not timed), then all N decode `tokens`
// greedy tokens at once (Promise.all of complete() calls continuing their contexts). Aggregate tok/s =
// all generated tokens / the wall time of that phase. Every session's tokens are checked against its
// prompt decoded alone by a plain session first, so batching (and speculation) is shown to change nothing.
// With --reps=R, each N's fastest of R runs counts (the runs of all N taken in turn, R rounds).
// Output: one JSON line per (mode, N): {"type":"batch", mode, sessions, reps, aggregateTokPerSec, speedup
// (vs N = 1 of the same mode), passes, sessionsPerPass, rowsPerPass, msPerPass, busy (the share of the wall
// time the model spent in passes), tokensPerStep, identical}.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const MODELS_DIR = path.join(__dirname, 'models');
const PROMPTS = ['Once upon a time', 'Lily and Tom', 'The cat', 'One day, a little boy named Tim', 'The sun was hot and',
  'Sara had a red ball', 'There was a big tree', 'Mom said', 'The dog ran to the park', 'A bird sat on', 'Ben had a toy',
  'It was a rainy day', 'The little girl', 'Max was a big dog', 'In the garden', 'The boy saw a'];

function parseArgs(argv) {
  const a = { model: 'wide-f16', draft: null, sessions: [1, 2, 4, 8, 16, 32], tokens: 32, threads: 2,
    modes: ['plain', 'auto'], reps: 1 };
  for (const arg of argv) {
    const [k, v] = arg.split('=');
    if (k === '--model') a.model = v;
    else if (k === '--draft') a.draft = v;
    else if (k === '--sessions') a.sessions = v.split(',').map(Number);
    else if (k === '--tokens') a.tokens = Number(v);
    else if (k === '--threads') a.threads = Number(v);
    else if (k === '--modes') a.modes = v.split(',');
    else if (k === '--reps') a.reps = Number(v);
    else throw new Error(`unknown argument ${arg}`);
  }
  if (a.sessions.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--sessions: positive integers');
  return a;
}

function modelFiles(a) {
  const m = /^wide-(f16|q8_0|q4_k_m)$/.exec(a.model);
  if (m) {
    const file = path.join(MODELS_DIR, `wide-stories260K-${m[1]}.gguf`);
    const draft = path.join(MODELS_DIR, `wide-stories260K-${m[1]}.chimera.safetensors`);
    if (!fs.existsSync(file) || !fs.existsSync(draft)) {
      const { makeWide, parseArgs: wideArgs } = require(path.join(__dirname, '..', 'tools', 'wide-stories', 'make.js'));
      process.stderr.write(`building ${path.basename(file)} once (stories260K widened to the 1.1B shape)\n`);
      makeWide(wideArgs(['--dtype', m[1], '--out', MODELS_DIR, '--quiet']));
    }
    return { file, draft: a.draft ?? draft };
  }
  return { file: a.model, draft: a.draft };
}

const round = (x, d = 2) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

// N sessions: prefill (untimed), then decode `tokens` tokens each, all at once.
async function runSessions(model, n, a, sessionOptions, first = 0) {
  const sessions = Array.from({ length: n }, () => model.createSession({ contextSize: 256, ...sessionOptions }));
  const greedy = { temperature: 0, stopOnEos: false };
  await Promise.all(sessions.map((s, i) => s.complete(PROMPTS[(first + i) % PROMPTS.length], { ...greedy, maxTokens: 1 })));
  const before = model.batchStats();
  const t0 = performance.now();
  const results = await Promise.all(sessions.map((s) => s.complete('', { ...greedy, maxTokens: a.tokens })));
  const ms = performance.now() - t0;
  const after = model.batchStats();
  for (const s of sessions) s.dispose();
  const passes = after.passes - before.passes;
  let steps = 0, emitted = 0;
  for (const r of results) {
    if (r.stats.steps) { steps += r.stats.steps; emitted += r.stats.tokensPerStep * r.stats.steps; }
  }
  return {
    tokens: results.map((r) => r.tokens),
    generated: results.reduce((k, r) => k + r.tokens.length, 0),
    ms,
    passes,
    sessionsPerPass: passes ? (after.sessionSteps - before.sessionSteps) / passes : null,
    rowsPerPass: passes ? (after.rows - before.rows) / passes : null,
    msPerPass: passes ? (after.passMs - before.passMs) / passes : null,
    busy: (after.passMs - before.passMs) / ms,
    treeSteps: steps,
    tokensPerStep: steps ? emitted / steps : null,
  };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const { loadModel } = require(path.join(__dirname, '..', 'dist'));
  const files = modelFiles(a);
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  process.stdout.write(JSON.stringify({ type: 'machine', cpu, cores: os.cpus().length, threads: a.threads,
    load: os.loadavg().map((x) => round(x)), model: path.basename(files.file) }) + '\n');
  const model = await loadModel(files.file, { threads: a.threads });
  const draft = a.modes.includes('auto') && files.draft ? await model.loadDraft(files.draft) : null;
  // Alone: each prompt's greedy tokens with one plain session (what every batched run must equal).
  const reference = [];
  for (let i = 0; i < Math.min(PROMPTS.length, Math.max(...a.sessions)); i++)
    reference.push((await runSessions(model, 1, a, {}, i)).tokens[0]);
  for (const mode of a.modes) {
    if (mode !== 'plain' && !draft) { process.stderr.write(`mode ${mode}: no draft, skipped\n`); continue; }
    const options = mode === 'plain' ? {} : { draft, tree: mode };
    // The repetitions go round the session counts (not one count at a time), so each count's best run is
    // taken over the same stretch of time as the others': the memory speed of these machines drifts,
    // and the ratios should not carry the drift.
    const best = new Map();
    for (let r = 0; r < a.reps; r++) {
      for (const n of a.sessions) {
        const run = await runSessions(model, n, a, options);
        if (!best.has(n) || run.ms < best.get(n).ms) best.set(n, run);
      }
    }
    let base = null;
    for (const n of a.sessions) {
      const run = best.get(n);
      let identical = true;
      run.tokens.forEach((t, i) => {
        if (JSON.stringify(reference[i % PROMPTS.length]) !== JSON.stringify(t)) identical = false;
      });
      const tps = (1000 * run.generated) / run.ms;
      if (n === 1) base = tps;
      process.stdout.write(JSON.stringify({
        type: 'batch', mode, sessions: n, tokensEach: a.tokens, reps: a.reps, aggregateTokPerSec: round(tps),
        perSessionTokPerSec: round(tps / n), speedup: base ? round(tps / base) : null, passes: run.passes,
        sessionsPerPass: round(run.sessionsPerPass), rowsPerPass: round(run.rowsPerPass),
        msPerPass: round(run.msPerPass, 1), busy: round(run.busy, 3),
        treeSteps: run.treeSteps, tokensPerStep: round(run.tokensPerStep), identical,
      }) + '\n');
    }
  }
  if (draft) draft.dispose();
  model.dispose();
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
