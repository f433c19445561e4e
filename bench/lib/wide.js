// The wide-stories cases of the benchmark: stories260K widened exactly to the TinyLlama-1.1B shape
// (bench/make-wide-stories.js), a memory-bound model with real behaviour, with its trained Chimera draft
// widened the same way. On held-out story prompts, alternating engines prompt by prompt:
//   chimera plain and chimera tree 'auto' (greedy: outputs must be identical; and sampled at
//   temperature 0.8, top-p 0.95), node-llama-cpp plain and node-llama-cpp with its prompt-lookup
//   predictor (InputLookupTokenPredictor) on the same GGUF and prompt ids.
// Output lines:
//   {"type":"wide-run", model, engine, mode, sampling, decodeTokPerSec, tokensPerStep, ...}  one per mode
//   {"type":"wide-summary", model, autoSpeedupGreedy, autoSpeedupSampled, lookupSpeedupLlamaCpp, ...}
//   {"type":"verify-cost", model, msPerForward, relative, gflops}  a forward over n rows against one
//                                     decode step, and the matrix GFLOP/s it achieves (2 n params / time)
// decode tok/s = (generated tokens - 1) / decode time, summed over the prompts (the first token comes
// from the prefill), as in run.js.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { verifyCost } = require('./speculative');

// Story openings in the TinyStories style. The draft was trained on text the model wrote from BOS plus
// 1-3 sampled tokens, so none of these is a training prompt (the same as bench/draft-acceptance.js).
const HELD_OUT = ['Once upon a time', 'Lily and Tom', 'The cat', 'One day, a little boy named Tim', 'The sun was hot and',
  'Sara had a red ball', 'There was a big tree', 'Mom said', 'The dog ran to the park', 'A bird sat on'];
const SAMPLED = { temperature: 0.8, topP: 0.95, topK: 0 };

const round = (x, d = 3) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

// Builds the wide model and draft when missing (about half a minute for F16).
function ensureWideFiles(c, log) {
  if (fs.existsSync(c.file) && fs.existsSync(c.draftFile)) return;
  const { makeWide, parseArgs } = require(path.join(__dirname, '..', '..', 'tools', 'wide-stories', 'make.js'));
  log(`${c.name}: building ${path.basename(c.file)} once (stories260K widened to the 1.1B shape)`);
  makeWide(parseArgs(['--dtype', c.dtype, '--out', path.dirname(c.file), '--quiet']));
}

class Totals {
  constructor() { this.ms = 0; this.tokens = 0; this.steps = 0; this.emitted = 0; }
  add(decodeMs, n, stats) {
    this.ms += decodeMs;
    this.tokens += n - 1;
    if (stats && stats.steps) { this.steps += stats.steps; this.emitted += stats.tokensPerStep * stats.steps; }
  }
  get tokPerSec() { return this.ms > 0 ? (1000 * this.tokens) / this.ms : null; }
}

async function runWideSpeculation(c, args, emit, log, getLlama) {
  const { loadModel } = require(path.join(__dirname, '..', '..', 'dist'));
  const N = args.tokens ?? 64;
  const prompts = HELD_OUT.slice(0, args.prompts ?? HELD_OUT.length);
  const model = await loadModel(c.file, { threads: args.threads, gpu: false });
  const prefix = model.tokenize(c.words.join(' ')).slice(0, c.promptTokens);
  const cost = await verifyCost(model, c, prefix, 2);
  // Multiply-adds per row: every layer's seven matrices and the output matrix.
  const i = model.info;
  const kvd = (i.embeddingLength * i.kvHeads) / i.heads;
  const params = i.layers * (2 * i.embeddingLength ** 2 + 2 * i.embeddingLength * kvd + 3 * i.embeddingLength * i.feedForwardLength) +
    i.vocabSize * i.embeddingLength;
  emit({ type: 'verify-cost', model: c.name, threads: args.threads, prefixTokens: prefix.length, ...cost,
    gflops: params ? Object.fromEntries(Object.entries(cost.msPerForward).map(([n, ms]) => [n, round((2 * n * params) / ms / 1e6, 1)])) : null });
  const draft = await model.loadDraft(c.draftFile, { dtype: c.draftDtype });
  const nlc = await import('node-llama-cpp');
  const llama = await getLlama();
  const lmodel = await llama.loadModel({ modelPath: c.file, gpuLayers: 0 });
  const lctx = await lmodel.createContext({ contextSize: 512, batchSize: 512, sequences: 2,
    threads: { ideal: args.threads, min: args.threads } });
  const lplain = lctx.getSequence();
  const llookup = lctx.getSequence({ tokenPredictor: new nlc.InputLookupTokenPredictor() });
  const sessions = {
    plain: model.createSession({ contextSize: 512 }),
    auto: model.createSession({ contextSize: 512, draft, tree: 'auto' }),
  };
  const t = {};
  const total = (k) => (t[k] = t[k] ?? new Totals());
  let identical = true, llamaAgrees = 0;
  try {
    const warm = { maxTokens: 8, temperature: 0, stopOnEos: false, append: false };
    await sessions.plain.complete(prompts[0], warm);
    for (const [i, p] of prompts.entries()) {
      log(`${c.name}: prompt ${i + 1}/${prompts.length}`);
      const greedy = { maxTokens: N, temperature: 0, stopOnEos: false, append: false };
      const a = await sessions.plain.complete(p, greedy);
      total('chimera plain greedy').add(a.stats.msGenerate, N);
      const b = await sessions.auto.complete(p, greedy);
      total('chimera auto greedy').add(b.stats.msGenerate, N, b.stats);
      if (b.tokens.join() !== a.tokens.join()) identical = false;
      const ids = a.promptTokens;
      for (const [name, seq] of [['node-llama-cpp plain greedy', lplain], ['node-llama-cpp lookup greedy', llookup]]) {
        await seq.clearHistory();
        const times = [], toks = [];
        for await (const tok of seq.evaluate(ids, { temperature: 0, yieldEogToken: true })) {
          times.push(performance.now());
          toks.push(tok);
          if (toks.length >= N) break;
        }
        total(name).add(times[N - 1] - times[0], N);
        if (name.includes('plain') && toks.join() === a.tokens.join()) llamaAgrees++;
      }
      const sampled = { ...SAMPLED, maxTokens: N, stopOnEos: false, append: false, seed: 1000 + i };
      const s1 = await sessions.plain.complete(p, sampled);
      total('chimera plain sampled').add(s1.stats.msGenerate, N);
      const s2 = await sessions.auto.complete(p, sampled);
      total('chimera auto sampled').add(s2.stats.msGenerate, N, s2.stats);
    }
    for (const [k, v] of Object.entries(t)) {
      const [engine, mode, sampling] = k.split(' ');
      emit({ type: 'wide-run', model: c.name, engine, mode, sampling, threads: args.threads, prompts: prompts.length,
        genTokens: N, decodeTokPerSec: round(v.tokPerSec, 2), tokensPerStep: v.steps ? round(v.emitted / v.steps) : null,
        ...(engine === 'node-llama-cpp' && mode === 'lookup' ? { predictions: llookup.tokenPredictions } : {}) });
    }
    const r = (x, y) => round(t[x].tokPerSec / t[y].tokPerSec);
    emit({ type: 'wide-summary', model: c.name, threads: args.threads, draftDtype: draft.info.dtype,
      draftBytes: draft.info.weightBytes, baseBytes: model.info.weightBytes,
      autoSpeedupGreedy: r('chimera auto greedy', 'chimera plain greedy'),
      autoSpeedupSampled: r('chimera auto sampled', 'chimera plain sampled'),
      chimeraAutoVsLlamaCppPlain: r('chimera auto greedy', 'node-llama-cpp plain greedy'),
      chimeraAutoVsLlamaCppLookup: r('chimera auto greedy', 'node-llama-cpp lookup greedy'),
      llamaCppLookupSpeedup: r('node-llama-cpp lookup greedy', 'node-llama-cpp plain greedy'),
      chimeraPlainVsLlamaCppPlain: r('chimera plain greedy', 'node-llama-cpp plain greedy'),
      greedyIdenticalToPlain: identical, llamaCppSameGreedyPrompts: `${llamaAgrees}/${prompts.length}` });
    if (!identical) throw new Error('speculative greedy output differs from plain');
  } finally {
    for (const s of Object.values(sessions)) s.dispose();
    draft.dispose();
    await model.dispose();
    await lctx.dispose();
    await lmodel.dispose();
  }
}

module.exports = { runWideSpeculation, ensureWideFiles, HELD_OUT };
