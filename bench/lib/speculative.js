// Speculative-decoding cases of the benchmark, run on chimera-llm alone (node-llama-cpp has no tree
// verification):
//   {"type":"verify-cost", ...}   the cost of one forward pass over n tokens with logits for every row
//                                 (what verifying an n-node tree costs: the tree mask changes which
//                                 cache slots each row reads, not the work), relative to n = 1
//   {"type":"speculative", ...}   plain vs Chimera greedy decoding in the same run: tokens/step,
//                                 tokens/s, draft and verify time; stories260K and the default model
//                                 also with their trained drafts (models/*.chimera.safetensors)
//   {"type":"projection", ...}    on the large models: the speedup a tree would give there, from this
//                                 model's measured verify and draft cost and the tokens per step the
//                                 trained stories260K draft reached earlier in the same run
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const SIZES = [1, 2, 4, 5, 6, 8, 16, 26, 64];
const TREES = ['auto', 'chain-1', 'chain-3', 'chimera-25'];
// A small model's run of 256 tokens takes tens of milliseconds, where a timer tick or a collection
// moves one run by several percent: the median of this many alternating runs.
const SMALL_REPS = 9;
// Nodes a tree's verification evaluates (the root and the drafted nodes).
const TREE_NODES = { 'chain-1': 2, 'chain-3': 4, 'chimera-25': 26 };
// Tokens per step of the trained stories260K draft, by tree (filled by the stories260K case).
const trainedTau = {};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

// Median time of evaluating n tokens after a fixed prefix (the prefix stays cached; each measurement
// is cut back off with truncate()).
async function verifyCost(model, c, prefix, reps) {
  const session = model.createSession({ contextSize: prefix.length + 80 });
  await session.evaluate(prefix, 1);
  const tokens = prefix.slice(1);
  const ms = {};
  for (const n of SIZES) {
    const batch = Array.from({ length: n }, (_, i) => tokens[i % tokens.length]);
    const times = [];
    for (let r = 0; r < reps + 1; r++) {
      const t = performance.now();
      await session.evaluate(batch, n);
      const dt = performance.now() - t;
      session.truncate(prefix.length);
      if (r > 0) times.push(dt); // the first one warms up
    }
    ms[n] = median(times);
  }
  session.dispose();
  const relative = Object.fromEntries(SIZES.map((n) => [n, round(ms[n] / ms[1], 2)]));
  return { msPerForward: Object.fromEntries(SIZES.map((n) => [n, round(ms[n], 3)])), relative };
}

async function plainVsChimera(model, draft, tree, text, n, reps) {
  const plain = model.createSession({ contextSize: 1024 });
  const spec = model.createSession({ contextSize: 1024, draft, tree });
  const opts = { maxTokens: n, temperature: 0, stopOnEos: false, append: false };
  const runs = { plain: [], spec: [] };
  let last;
  for (let r = 0; r < reps; r++) {
    plain.reset();
    spec.reset();
    const a = await plain.complete(text, opts);
    const b = await spec.complete(text, opts);
    if (b.tokens.join() !== a.tokens.join()) throw new Error('speculative greedy output differs from plain');
    runs.plain.push(a.stats.tokensPerSecond);
    runs.spec.push(b.stats.tokensPerSecond);
    last = b.stats;
  }
  plain.dispose();
  spec.dispose();
  const p = median(runs.plain), s = median(runs.spec);
  return {
    tree, genTokens: n, plainTokPerSec: round(p, 2), chimeraTokPerSec: round(s, 2), speedup: round(s / p, 3),
    tokensPerStep: round(last.tokensPerStep, 3), steps: last.steps, acceptedByDepth: last.acceptedByDepth,
    msDraftPerStep: round(last.msDraft / last.steps, 3), msVerifyPerStep: round(last.msVerify / last.steps, 3),
  };
}

// Speedup of each tree on this model if its draft were as good as the trained stories260K draft:
// τ / (verify cost of the tree's nodes + the draft's time per step), both in plain decode steps
// measured here. 'best' is what tree: 'auto' would settle on (plain decoding = 1).
function projection(name, threads, cost, untrained) {
  const stepMs = cost.msPerForward[1];
  const trees = {};
  let best = { tree: 'plain', speedup: 1 };
  for (const [tree, nodes] of Object.entries(TREE_NODES)) {
    if (trainedTau[tree] === undefined || cost.relative[nodes] === undefined) continue;
    const draftSteps = untrained[tree].msDraftPerStep / stepMs;
    const speedup = trainedTau[tree] / (cost.relative[nodes] + draftSteps);
    trees[tree] = { tokensPerStep: trainedTau[tree], verifySteps: cost.relative[nodes], draftSteps: round(draftSteps),
      projectedSpeedup: round(speedup) };
    if (speedup > best.speedup) best = { tree, speedup: round(speedup) };
  }
  return { type: 'projection', model: name, threads, basis: 'tokens per step of the trained stories260K draft',
    msPerDecodeStep: stepMs, trees, auto: best };
}

// c: a case of run.js; emit: prints one JSON line.
async function runSpeculativeCase(c, args, emit) {
  const { loadModel } = require(path.join(__dirname, '..', '..', 'dist'));
  const model = await loadModel(c.file, { threads: args.threads, gpu: false });
  try {
    const text = c.words.slice(0, 40).join(' ');
    const prefix = model.tokenize(c.words.join(' ')).slice(0, c.promptTokens);
    const big = model.info.weightBytes > 1e8;
    const cost = await verifyCost(model, c, prefix, big ? 2 : 20);
    emit({ type: 'verify-cost', model: c.name, threads: args.threads, prefixTokens: prefix.length, ...cost });
    // An untrained draft (the paper's initialisation): a lower bound on τ, and the draft's cost on
    // models without a trained one. Its matrices are stored like the base model's (a Q8_0 base gets a
    // Q8_0 draft), as a deployed draft would be.
    const dtype = ['F16', 'BF16', 'Q8_0'].includes(model.info.dtype) ? model.info.dtype : undefined;
    const draft = await model.createDraft({ heads: 5, seed: 1, dtype });
    const untrained = {};
    for (const tree of TREES) {
      const r = await plainVsChimera(model, draft, tree, text, big ? 24 : 256, big ? 2 : SMALL_REPS);
      untrained[tree] = r;
      emit({ type: 'speculative', model: c.name, threads: args.threads, draft: 'untrained', draftDtype: draft.info.dtype,
        draftBytes: draft.info.weightBytes, ...r });
    }
    draft.dispose();
    if (c.trainedDraft && fs.existsSync(c.trainedDraft)) {
      const trained = await model.loadDraft(c.trainedDraft);
      for (const tree of TREES) {
        const r = await plainVsChimera(model, trained, tree, text, 256, SMALL_REPS);
        if (TREE_NODES[tree] && c.name === 'stories260K') trainedTau[tree] = r.tokensPerStep;
        emit({ type: 'speculative', model: c.name, threads: args.threads, draft: 'trained', ...r });
      }
      trained.dispose();
    }
    if (big && Object.keys(trainedTau).length) emit(projection(c.name, args.threads, cost, untrained));
  } finally {
    await model.dispose();
  }
}

module.exports = { runSpeculativeCase, verifyCost };
