// The GPU case of `npm run bench` (when cudaStatus() says a GPU is usable): stories260K on the CUDA
// backend, plain greedy decoding vs Chimera (chimera-25, chain-4, auto) with its trained draft when
// bench/models/stories260K.chimera.safetensors exists; plus the C++ driver's synthetic 1.1B BF16 case
// (build-native/chimera_bench synthetic) when that binary has been built (`npm run test:native`).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

async function runGpuCase(lib, storiesFile, draftFile, args, emit) {
  const status = await lib.cudaStatus();
  if (!status.available) {
    emit({ type: 'skip', model: 'gpu', reason: status.built ? status.reason : 'this build has no CUDA backend' });
    return;
  }
  if (!fs.existsSync(storiesFile)) {
    emit({ type: 'skip', model: 'gpu', reason: `${storiesFile} is missing` });
    return;
  }
  const model = await lib.loadModel(storiesFile, { gpu: 'cuda' });
  const prompts = ['Once upon a time', 'Lily and Ben went to the park', 'The little dog'];
  const tokens = args.tokens ?? 256;
  const opts = { temperature: 0, maxTokens: tokens, stopOnEos: false };
  async function rate(session) {
    await session.complete(prompts[0], { ...opts, maxTokens: 16 });  // warm-up (uploads, graph recording)
    let tokPerS = 0, steps = 0, drafted = 0;
    for (const p of prompts) {
      session.reset();
      const r = await session.complete(p, opts);
      tokPerS += r.tokens.length / (r.stats.msGenerate / 1000);
      if (r.stats.speculative) {
        steps += r.stats.steps;
        drafted += r.stats.tokensPerStep * r.stats.steps;
      }
    }
    return { tokPerS: tokPerS / prompts.length, tokensPerStep: steps ? drafted / steps : null };
  }
  const plain = await rate(model.createSession({ contextSize: 1024 }));
  emit({ type: 'gpu', model: 'stories260K', backend: model.backend, mode: 'plain', tokensPerS: Math.round(plain.tokPerS) });
  if (fs.existsSync(draftFile)) {
    const draft = await model.loadDraft(draftFile);
    for (const tree of ['chimera-25', 'chain-4', 'auto']) {
      const r = await rate(model.createSession({ contextSize: 1024, draft, tree }));
      emit({ type: 'gpu', model: 'stories260K', backend: model.backend, mode: `chimera ${tree}`,
        tokensPerS: Math.round(r.tokPerS), ratioVsPlain: +(r.tokPerS / plain.tokPerS).toFixed(2),
        tokensPerStep: r.tokensPerStep === null ? null : +r.tokensPerStep.toFixed(2) });
    }
    draft.dispose();
  } else {
    emit({ type: 'skip', model: 'gpu chimera', reason: `${draftFile} is missing (train it: see bench/README.md)` });
  }
  model.dispose();
  const driver = path.resolve(__dirname, '..', '..', 'build-native', 'chimera_bench');
  if (!fs.existsSync(driver)) {
    emit({ type: 'skip', model: 'gpu synthetic-1.1b', reason: `${driver} is not built (npm run test:native builds it)` });
    return;
  }
  const out = spawnSync(driver, ['synthetic'], { encoding: 'utf8', timeout: 300000 });
  for (const line of (out.stdout || '').split('\n')) {
    if (!line.startsWith('{')) continue;
    emit({ type: 'gpu', ...JSON.parse(line) });
  }
  if (out.status !== 0) emit({ type: 'error', model: 'gpu synthetic-1.1b', error: (out.stderr || '').trim() });
}

module.exports = { runGpuCase };
