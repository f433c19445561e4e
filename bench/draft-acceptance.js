#!/usr/bin/env node
// Tokens per step (τ) of a trained draft on held-out prompts, greedy, plus wall-clock speedup over plain
// decoding in the same run, for several trees. One JSON line per tree.
//
//   node bench/draft-acceptance.js --model M.gguf --draft D.safetensors [--trees=chimera-25,chain-3]
//                                  [--tokens=N] [--threads=N] [--prompts=stories|brown]
//                                  [--lookup=session|corpus]
// --lookup adds lookup candidates to the draft's tree (README: "Lookup decoding"): from the session's
// tokens, or also from an n-gram cache of bench/models/stories260K-samples-1000.json (npm run
// bench:lookup samples it once).
'use strict';
const path = require('node:path');
const { loadModel } = require(path.join(__dirname, '..', 'dist'));

const PROMPTS = {
  // Story openings in the TinyStories style; the draft's self-generated data starts from BOS plus 1-3
  // sampled tokens, so none of these is a training prompt.
  stories: ['Once upon a time', 'Lily and Tom', 'The cat', 'One day, a little boy named Tim', 'The sun was hot and',
    'Sara had a red ball', 'There was a big tree', 'Mom said', 'The dog ran to the park', 'A bird sat on'],
  brown: ['The jury said', 'In the morning, the', 'He looked at her and', 'The President of the United States',
    'It was a long time', 'The first thing', 'She said that', 'In this country', 'The church', 'When the war'],
};

function arg(name, fallback) {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  if (a) return a.slice(name.length + 3);
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const model = await loadModel(arg('model'), { threads: Number(arg('threads', '2')), gpu: false });
  const draft = await model.loadDraft(arg('draft'));
  const n = Number(arg('tokens', '200'));
  const prompts = PROMPTS[arg('prompts', 'stories')];
  const lookupMode = arg('lookup');
  let lookup;
  if (lookupMode === 'session') lookup = true;
  else if (lookupMode === 'corpus') {
    const texts = JSON.parse(require('node:fs').readFileSync(path.join(__dirname, 'models', 'stories260K-samples-1000.json'), 'utf8'));
    lookup = { corpus: await model.buildLookupCache(texts) };
  } else if (lookupMode !== undefined) throw new Error('--lookup must be session or corpus');
  for (const tree of arg('trees', 'chimera-25,chain-3,chain-2').split(',')) {
    const plain = model.createSession({ contextSize: 1024 });
    const spec = model.createSession({ contextSize: 1024, draft, tree, ...(lookup ? { lookup } : {}) });
    let steps = 0, specTokens = 0, msPlain = 0, msSpec = 0, tokens = 0;
    const byDepth = [];
    for (const p of prompts) {
      const opts = { temperature: 0, maxTokens: n, stopOnEos: false, append: false };
      const a = await plain.complete(p, opts);
      const b = await spec.complete(p, opts);
      if (a.tokens.join() !== b.tokens.join()) throw new Error(`output differs for "${p}"`);
      steps += b.stats.steps;
      specTokens += b.stats.tokensPerStep * b.stats.steps;
      msPlain += a.stats.msGenerate;
      msSpec += b.stats.msGenerate;
      tokens += a.tokens.length;
      b.stats.acceptedByDepth.forEach((x, i) => (byDepth[i] = (byDepth[i] ?? 0) + x));
    }
    process.stdout.write(JSON.stringify({
      type: 'draft-acceptance', model: model.info.name || path.basename(arg('model')), tree, lookup: lookupMode ?? null,
      prompts: prompts.length,
      tokensPerPrompt: n, tokensPerStep: +(specTokens / steps).toFixed(3),
      // share of steps whose accepted path reached depth d+1
      acceptedByDepth: byDepth.map((x) => +(x / steps).toFixed(3)),
      plainTokPerSec: +((tokens * 1000) / msPlain).toFixed(1), chimeraTokPerSec: +((tokens * 1000) / msSpec).toFixed(1),
      speedup: +(msPlain / msSpec).toFixed(3), identicalOutputs: true,
    }) + '\n');
    plain.dispose();
    spec.dispose();
  }
  await model.dispose();
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
