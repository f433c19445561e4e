#!/usr/bin/env node
// Soak test: for a bounded time, random operations on the public API as a busy service would do
// them: sessions created, used, aborted mid-generation and disposed; speculative sessions with the
// default draft and lookup sessions (alone and with the draft); worker threads terminated in the
// middle of a native call; models loaded and dropped.
// Fails (exit 1) if anything crashes or rejects unexpectedly, or if the resident set grows past a bound
// after the warm-up. Prints one JSON line with the figures.
//
//   npm run soak -- [--seconds 60] [--max-growth-mb 48] [--seed 1]
'use strict';
const path = require('node:path');
const { Worker, isMainThread, parentPort } = require('node:worker_threads');

const lib = require(path.join(__dirname, '..', 'dist', 'index.js'));

// ---- worker thread: load the default model and generate until terminated ----
if (!isMainThread) {
  (async () => {
    const model = await lib.loadModel(undefined, { threads: 1 });
    const s = model.createSession({ contextSize: 4096 });
    parentPort.postMessage('running');
    for (;;) await s.complete('Once upon a time', { maxTokens: 4000, temperature: 0.8, stopOnEos: false, seed: 1 });
  })();
  return;
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`soak: --${name} expects a positive number\n`);
    process.exit(2);
  }
  return v;
}

const seconds = arg('seconds', 60);
const maxGrowthMb = arg('max-growth-mb', 48);
let rngState = arg('seed', 1) >>> 0;
const rand = () => {
  rngState = (rngState * 1664525 + 1013904223) >>> 0;
  return rngState / 2 ** 32;
};
const pick = (n) => Math.floor(rand() * n);
const mb = (b) => Math.round((b / 2 ** 20) * 10) / 10;

const counts = { generate: 0, aborted: 0, speculative: 0, evaluate: 0, sessionsDisposed: 0, workersTerminated: 0, modelsLoaded: 0 };

async function useSession(model, draft) {
  const speculative = draft && rand() < 0.3;
  // Lookup too: alone, or with the draft (both in one tree); 'always' so its trees run on this tiny model.
  const lookup = rand() < 0.3 ? { when: 'always' } : undefined;
  const s = model.createSession({ contextSize: 512, ...(speculative ? { draft, tree: 'chain-2' } : {}), ...(lookup ? { lookup } : {}) });
  try {
    const rounds = 1 + pick(3);
    for (let i = 0; i < rounds; i++) {
      const ac = new AbortController();
      const abortSoon = rand() < 0.3;
      if (abortSoon) setTimeout(() => ac.abort(), pick(5));
      const r = await s.complete(i === 0 ? 'Once upon a time' : ' and then', {
        maxTokens: 16 + pick(48),
        temperature: rand() < 0.5 ? 0 : 0.8,
        seed: pick(1000),
        signal: ac.signal,
        append: rand() < 0.7,
      });
      counts.generate++;
      if (r.aborted) counts.aborted++;
      if (speculative) counts.speculative++;
      if (s.tokens.length > 400) s.reset();
    }
    if (rand() < 0.3) {
      await s.evaluate([1, 2, 3, 4], 1 + pick(4));
      counts.evaluate++;
    }
  } finally {
    s.dispose();
    counts.sessionsDisposed++;
  }
}

function terminateWorkerMidCall() {
  return new Promise((resolve, reject) => {
    const w = new Worker(__filename);
    w.on('message', () => setTimeout(() => w.terminate(), 1 + pick(30)));
    w.on('error', reject);
    w.on('exit', () => {
      counts.workersTerminated++;
      resolve();
    });
  });
}

async function loadAndDrop() {
  const m = await lib.loadModel(undefined, { threads: 1 });
  const s = m.createSession({ contextSize: 64 });
  await s.complete('The', { maxTokens: 4, temperature: 0 });
  await m.dispose();  // disposes the session too
  counts.modelsLoaded++;
}

async function main() {
  const model = await lib.loadModel(undefined, { threads: 2 });
  const draft = await model.loadDraft(lib.defaultDraftPath);
  const t0 = Date.now();
  const warmupEnd = t0 + seconds * 200;  // the first fifth of the run
  let rssAfterWarmup = 0;
  let peak = 0;
  let operations = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const r = rand();
    if (r < 0.08) await terminateWorkerMidCall();
    else if (r < 0.14) await loadAndDrop();
    else {
      // A few sessions at once, as concurrent requests do.
      const n = 1 + pick(4);
      await Promise.all(Array.from({ length: n }, () => useSession(model, draft)));
    }
    operations++;
    const rss = process.memoryUsage().rss;
    peak = Math.max(peak, rss);
    if (!rssAfterWarmup && Date.now() >= warmupEnd) {
      if (global.gc) global.gc();
      rssAfterWarmup = process.memoryUsage().rss;
    }
  }
  if (global.gc) global.gc();
  const rssEnd = process.memoryUsage().rss;
  draft.dispose();
  await model.dispose();
  const growth = rssAfterWarmup ? rssEnd - rssAfterWarmup : 0;
  const ok = growth <= maxGrowthMb * 2 ** 20;
  const report = {
    case: 'soak', seconds, operations, ...counts,
    rssAfterWarmupMb: mb(rssAfterWarmup), rssEndMb: mb(rssEnd), peakRssMb: mb(peak), growthMb: mb(growth),
    maxGrowthMb, ok,
  };
  process.stdout.write(JSON.stringify(report) + '\n');
  if (!ok) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`soak: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
