#!/usr/bin/env node
// Lookup decoding, measured (README: "Lookup decoding"). On held-out story prompts ("open"), and on
// copy-heavy prompts ("copy": the model's own story from a held-out opening, then that opening again, so
// the continuation repeats the story), alternating engines prompt by prompt, greedy (outputs must equal
// plain decoding):
//   - chimera plain;
//   - chimera lookup with a corpus cache: n-grams of stories260K's own sampled stories (--stories, 1,000
//     by default; the wide model computes stories260K's function, so they are its own text too), no draft;
//   - chimera lookup on the session's tokens only (open-ended stories: it must not hurt);
//   - node-llama-cpp 3.21.1 plain and with its prompt-lookup predictor (InputLookupTokenPredictor),
//     same GGUF, same prompt ids, same threads.
// on stories260K (models/) and the wide F16 model (bench/models, built when missing). Output: one JSON
// object per (model, engine) and a summary per model.
//   node bench/lookup.js [--stories=1000] [--tokens=64] [--prompts=10] [--threads=2] [--models=stories260K,wide-f16]
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { HELD_OUT, ensureWideFiles } = require('./lib/wide');

const REPO = path.resolve(__dirname, '..');
const MODELS_DIR = path.join(__dirname, 'models');
const round = (x, d = 3) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const log = (...m) => process.stderr.write(`[lookup-bench] ${m.join(' ')}\n`);
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function parseArgs(argv) {
  const a = { stories: 1000, tokens: 64, prompts: HELD_OUT.length, threads: 2, models: ['stories260K', 'wide-f16'] };
  for (const arg of argv) {
    const [k, v] = arg.replace(/^--/, '').split('=');
    if (k === 'models') a.models = v.split(',');
    else if (k in a) a[k] = Number(v);
    else throw new Error(`unknown argument ${arg}`);
  }
  return a;
}

// The corpus: stories260K's stories sampled from BOS (temperature 1, seeds 1..n), cached as JSON.
async function corpus(dist, n, threads) {
  const file = path.join(MODELS_DIR, `stories260K-samples-${n}.json`);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  log(`sampling ${n} stories from stories260K (once; cached in ${path.relative(REPO, file)})`);
  const model = await dist.loadModel(path.join(REPO, 'models', 'stories260K.gguf'), { threads });
  const s = model.createSession({ contextSize: 512 });
  const texts = [];
  for (let i = 0; i < n; i++) {
    const r = await s.complete('', { temperature: 1, topK: 0, topP: 1, maxTokens: 256, seed: i + 1, append: false });
    texts.push(r.text);
  }
  s.dispose();
  await model.dispose();
  fs.mkdirSync(MODELS_DIR, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(texts));
  return texts;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dist = require(path.join(REPO, 'dist'));
  const texts = await corpus(dist, args.stories, args.threads);
  const nlc = await import('node-llama-cpp');
  const llama = await nlc.getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true,
    progressLogs: false, maxThreads: args.threads, logLevel: nlc.LlamaLogLevel.error });
  const files = {
    'stories260K': path.join(REPO, 'models', 'stories260K.gguf'),
    'wide-f16': path.join(MODELS_DIR, 'wide-stories260K-f16.gguf'),
  };
  for (const name of args.models) {
    if (name === 'wide-f16')
      ensureWideFiles({ name, dtype: 'f16', file: files[name], draftFile: files[name].replace('.gguf', '.chimera.safetensors') }, log);
    const model = await dist.loadModel(files[name], { threads: args.threads, gpu: false });
    const cache = await model.buildLookupCache(texts);
    const sessions = {
      plain: model.createSession({ contextSize: 512 }),
      'lookup corpus': model.createSession({ contextSize: 512, lookup: { corpus: cache } }),
      'lookup session': model.createSession({ contextSize: 512, lookup: true }),
    };
    const lmodel = await llama.loadModel({ modelPath: files[name], gpuLayers: 0 });
    const lctx = await lmodel.createContext({ contextSize: 512, batchSize: 512, sequences: 2,
      threads: { ideal: args.threads, min: args.threads } });
    const seqs = { 'node-llama-cpp plain': lctx.getSequence(),
      'node-llama-cpp lookup': lctx.getSequence({ tokenPredictor: new nlc.InputLookupTokenPredictor() }) };
    const t = {};
    const add = (k, ms, n, stats) => {
      const e = (t[k] = t[k] ?? { ms: 0, tokens: 0, steps: 0, emitted: 0, bySource: { prompt: 0, session: 0, corpus: 0 } });
      e.ms += ms;
      e.tokens += n - 1;
      if (stats && stats.steps) {
        e.steps += stats.steps;
        e.emitted += stats.tokensPerStep * stats.steps;
        for (const s of Object.keys(e.bySource)) e.bySource[s] += stats.acceptedBySource?.[s] ?? 0;
      }
    };
    let identical = true;
    const opts = { maxTokens: args.tokens, temperature: 0, stopOnEos: false, append: false };
    await sessions.plain.complete(HELD_OUT[0], { ...opts, maxTokens: 8 });  // warm-up
    const open = HELD_OUT.slice(0, args.prompts);
    const copy = [];
    for (const p of open) copy.push(`${p}${(await sessions.plain.complete(p, { ...opts, maxTokens: 96 })).text}\n\n${p}`);
    for (const [set, prompts] of [['open', open], ['copy', copy]]) {
      for (const k of Object.keys(t)) delete t[k];
      for (const [i, p] of prompts.entries()) {
        log(`${name} ${set}: prompt ${i + 1}/${prompts.length}`);
        const ref = await sessions.plain.complete(p, opts);
        add('chimera plain', ref.stats.msGenerate, args.tokens);
        for (const k of ['lookup corpus', 'lookup session']) {
          const r = await sessions[k].complete(p, opts);
          add(`chimera ${k}`, r.stats.msGenerate, args.tokens, r.stats);
          if (r.tokens.join() !== ref.tokens.join()) identical = false;
        }
        for (const [k, seq] of Object.entries(seqs)) {
          await seq.clearHistory();
          const times = [];
          let n = 0;
          for await (const tok of seq.evaluate(ref.promptTokens, { temperature: 0, yieldEogToken: true })) {
            void tok;
            times.push(performance.now());
            if (++n >= args.tokens) break;
          }
          add(k, times[args.tokens - 1] - times[0], args.tokens);
        }
      }
      const rate = (k) => (1000 * t[k].tokens) / t[k].ms;
      for (const [k, e] of Object.entries(t))
        emit({ type: 'lookup-run', model: name, prompts: set, engine: k, threads: args.threads, promptCount: prompts.length,
          genTokens: args.tokens, decodeTokPerSec: round(rate(k), 2), tokensPerStep: e.steps ? round(e.emitted / e.steps) : null,
          ...(e.steps ? { acceptedBySource: e.bySource } : {}) });
      emit({ type: 'lookup-summary', model: name, prompts: set, threads: args.threads, corpusStories: texts.length,
        corpusContexts: cache.info.contexts,
        corpusSpeedup: round(rate('chimera lookup corpus') / rate('chimera plain')),
        sessionSpeedup: round(rate('chimera lookup session') / rate('chimera plain')),
        llamaCppLookupSpeedup: round(rate('node-llama-cpp lookup') / rate('node-llama-cpp plain')),
        corpusVsLlamaCppLookup: round(rate('chimera lookup corpus') / rate('node-llama-cpp lookup')),
        sessionVsLlamaCppLookup: round(rate('chimera lookup session') / rate('node-llama-cpp lookup')),
        greedyIdenticalToPlain: identical });
    }
    for (const s of Object.values(sessions)) s.dispose();
    cache.dispose();
    await model.dispose();
    await lctx.dispose();
    await lmodel.dispose();
    if (!identical) process.exitCode = 1;
  }
  await llama.dispose();
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(2);
});
