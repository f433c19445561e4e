#!/usr/bin/env node
// chimera-llm benchmark: chimera-llm vs node-llama-cpp (llama.cpp), side by side in one process.
//
//   node bench/run.js [--quick] [--cases=stories260K,synth-1b-f16,...] [--threads=N] [--tokens=N]
//                     [--reps=N] [--prompt=N] [--no-bandwidth] [--engines=chimera,node-llama-cpp]
//                     [--wait-idle[=SECONDS]] [--no-speculative] [--spec-tokens=N] [--prompts=N]
//
// Output: JSON lines on stdout (progress goes to stderr):
//   1. {"type":"machine", ...}                     the CPU, cores, node version, load, read bandwidth
//   2. {"type":"result", "model", "engine", ...}   one per model x engine
//   3. {"type":"summary", "model", ...}            one per model: chimera / node-llama-cpp ratios
//   4. {"type":"verify-cost"|"speculative", ...}   chimera only: the cost of verifying n tree nodes
//      relative to one decode step, and plain vs Chimera decoding (bench/lib/speculative.js)
//   5. {"type":"gpu", ...}                         with a usable GPU: stories260K plain vs Chimera on the
//      CUDA backend and the C++ driver's synthetic 1.1B BF16 case (bench/lib/gpu.js)
//   ({"type":"skip"|"error", ...} lines say why a case did not run.)
//
// Definitions (the same for both engines; see bench/README.md):
//   * Both engines get the SAME prompt token ids (BOS + text tokenized by chimera-llm; `tokenizerAgrees`
//     says whether node-llama-cpp's own tokenizer gives the same ids) and generate exactly `genTokens`
//     tokens greedily (temperature 0, EOS ignored), from an empty context each repetition.
//   * prefill: P prompt tokens evaluated in one call; prefill tok/s = P / prefill time.
//       chimera:        stats.msPrompt of session.complete() (native clock: prompt forward passes only).
//       node-llama-cpp: wall time from calling sequence.evaluate(promptTokens) to the first yielded token
//                       (prompt forward passes + one greedy pick over the vocabulary + JS round trip).
//   * decode: the first generated token comes from the prefill logits, so N generated tokens cost N-1
//     single-token forward passes. decode ms/token = decode time / (N - 1); decode tok/s = 1000 / that.
//       chimera:        decode time = stats.msGenerate (native clock from the end of the prefill until the
//                       N-th token is sampled; the N-th token is not evaluated).
//       node-llama-cpp: decode time = wall time from the 1st to the N-th token yielded by the
//                       sequence.evaluate() generator (the generator is closed then; the N-th token is not
//                       evaluated).
//   * Each engine is loaded once and warmed up (one short prompt + a few tokens, which also pulls the
//     weights into the page cache); then the repetitions alternate chimera / node-llama-cpp so that
//     background load on a shared machine hits both alike. Median, min and max over the repetitions.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { runSpeculativeCase } = require('./lib/speculative');
const { runGpuCase } = require('./lib/gpu');
const { runWideSpeculation, ensureWideFiles } = require('./lib/wide');

const REPO = path.resolve(__dirname, '..');
const SHARED = path.resolve(REPO, '..', 'shared');
const MODELS_DIR = path.join(__dirname, 'models');

// ---------- arguments ----------
function parseArgs(argv) {
  try {
    return parseArgsOrThrow(argv);
  } catch (e) {
    e.usage = true;
    throw e;
  }
}
function parseArgsOrThrow(argv) {
  const a = { quick: false, cases: null, threads: 2, tokens: null, reps: null, prompt: null, bandwidth: true,
    engines: ['chimera', 'node-llama-cpp'], speculative: true };
  for (const arg of argv) {
    const [k, v] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const int = () => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${k} needs a positive integer, got ${v}`);
      return n;
    };
    switch (k) {
      case '--quick': a.quick = true; break;
      case '--cases': a.cases = v.split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--threads': a.threads = int(); break;
      case '--tokens': a.tokens = int(); break;
      case '--reps': a.reps = int(); break;
      case '--prompt': a.prompt = int(); break;
      case '--no-bandwidth': a.bandwidth = false; break;
      case '--no-speculative': a.speculative = false; break;
      case '--spec-tokens': a.specTokens = int(); break;
      case '--prompts': a.prompts = int(); break;
      case '--wait-idle': a.waitIdle = v === undefined ? 300 : int(); break;
      case '--engines': a.engines = v.split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--help': case '-h':
        process.stderr.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 9).join('\n') + '\n');
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default: throw new Error(`unknown argument ${arg} (see --help)`);
    }
  }
  return a;
}

// ---------- cases ----------
// A fixed English passage (TinyStories style) for stories260K; words are added until the prompt has
// the wanted number of tokens.
const STORY = ('Once upon a time, there was a little girl named Lily. She loved to play outside in the park ' +
  'with her friends. One day, she saw a big red ball under a tree. She ran to the ball and picked it up. ' +
  'It was shiny and round. Lily wanted to show it to her mom. She ran home as fast as she could. ' +
  'Her mom was in the kitchen making a cake. "Mom, look what I found!" said Lily. Her mom smiled and said, ' +
  '"That is a very nice ball, Lily. Where did you find it?" Lily told her mom about the park and the big ' +
  'tree. Then they went outside to play with the ball together. They threw it high in the sky and laughed. ' +
  'The sun was warm and the birds were singing. When it was time for dinner, Lily was tired but happy. ' +
  'She said thank you to her mom and went to bed with a big smile on her face.').split(' ');

// The synthetic models' vocabulary has a token for every "▁" + 1-3 lowercase letters (see make-synthetic.js).
function synthWords(n) {
  const out = [];
  const L = 'abcdefghijklmnopqrstuvwxyz';
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const len = 1 + ((x >>> 8) % 3);
    let w = '';
    for (let j = 0; j < len; j++) { x = (x * 1103515245 + 12345) >>> 0; w += L[(x >>> 10) % 26]; }
    out.push(w);
  }
  return out;
}

const SYNTH_SHAPE = 'd2048-l22-h32-kv4-ff5632-v32000';
function caseList() {
  const synth = (dtype) => ({
    name: `synth-1b-${dtype}`,
    file: path.join(MODELS_DIR, `synthetic-llama-${SYNTH_SHAPE}-${dtype}.gguf`),
    missingHint: `run: node bench/make-synthetic.js --dtypes=${dtype}`,
    promptTokens: 64, genTokens: 32, reps: 2, contextSize: 256, words: synthWords(200), quick: false,
  });
  // stories260K widened exactly to the 1.1B shape, with its trained draft (built when missing).
  const wide = (dtype) => ({
    name: `wide-${dtype}`, kind: 'wide', dtype,
    file: path.join(MODELS_DIR, `wide-stories260K-${dtype}.gguf`),
    draftFile: path.join(MODELS_DIR, `wide-stories260K-${dtype}.chimera.safetensors`), draftDtype: 'Q8_0',
    missingHint: `run: node bench/make-wide-stories.js --dtype ${dtype}`,
    promptTokens: 64, genTokens: 32, reps: 2, contextSize: 256, words: STORY, quick: false,
  });
  return [
    {
      name: 'stories260K',
      file: path.join(REPO, 'models', 'stories260K.gguf'),
      missingHint: 'models/stories260K.gguf ships with the repository',
      promptTokens: 128, genTokens: 256, reps: 3, contextSize: 512, words: STORY, quick: true,
      trainedDraft: path.join(REPO, 'models', 'stories260K.chimera.safetensors'),
    },
    {
      name: 'default-model',
      file: path.join(REPO, 'models', 'chimera-brown-1m.gguf'),
      missingHint: 'models/chimera-brown-1m.gguf ships with the repository',
      promptTokens: 64, genTokens: 128, reps: 3, contextSize: 512, words: STORY, quick: true,
      trainedDraft: path.join(REPO, 'models', 'chimera-brown-1m.chimera.safetensors'),
    },
    wide('f16'),
    wide('q8_0'),
    synth('f16'),
    synth('f32'),
    // Q8_0 and Q4_K_M run only when asked for with --cases (make them with:
    // node bench/make-synthetic.js --dtypes=q8_0,q4_k_m).
    { ...synth('q8_0'), optional: true },
    { ...synth('q4_k_m'), optional: true },
    // The widened model as llama-quantize's Q4_K_M mix (node bench/make-wide-stories.js --dtype q4_k_m).
    { ...wide('q4_k_m'), optional: true },
  ];
}

// ---------- helpers ----------
const log = (...m) => process.stderr.write(`[bench] ${m.join(' ')}\n`);
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const round = (x, d = 2) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
function spread(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: round(m), min: round(s[0]), max: round(s[s.length - 1]) };
}
function readVersion(file) {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')).version; } catch { return null; }
}
// CPU time the whole machine spent busy (from /proc/stat, in seconds), to subtract our own process's
// CPU time from: what is left is other processes competing for the cores during a measurement.
function machineBusySeconds() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] || 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - idle) / 100; // USER_HZ = 100 on Linux
  } catch {
    return null;
  }
}
function selfCpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
// Measures `fn` and how many cores other processes kept busy meanwhile (0 = the machine was ours).
async function withContention(fn) {
  const b0 = machineBusySeconds(), s0 = selfCpuSeconds(), t0 = performance.now();
  const r = await fn();
  const wall = (performance.now() - t0) / 1000;
  const b1 = machineBusySeconds(), s1 = selfCpuSeconds();
  const others = b0 == null || wall < 0.05 ? null : Math.max(0, (b1 - b0 - (s1 - s0)) / wall);
  return { r, others };
}
// Waits (up to `maxSeconds`) until other processes use less than `threshold` cores over 2 s.
async function waitIdle(maxSeconds, threshold = 0.25) {
  const t0 = Date.now();
  let lastLog = 0;
  for (;;) {
    const { others } = await withContention(() => new Promise((r) => setTimeout(r, 2000)));
    if (others == null || others < threshold) return { waitedS: round((Date.now() - t0) / 1000, 0), others: round(others) };
    if (Date.now() - t0 > maxSeconds * 1000) return { waitedS: round((Date.now() - t0) / 1000, 0), others: round(others), gaveUp: true };
    if (Date.now() - lastLog > 30000) {
      lastLog = Date.now();
      log(`waiting for an idle machine (other processes use ${others.toFixed(2)} cores)`);
    }
  }
}
function loadavg() { return os.loadavg().map((x) => round(x)); }
function commonPrefix(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function cpuFlags() {
  try {
    const txt = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const line = txt.split('\n').find((l) => l.startsWith('flags'));
    const flags = new Set((line || '').split(':')[1].trim().split(/\s+/));
    return ['avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512_bf16', 'avx_vnni', 'neon'].filter((f) => flags.has(f));
  } catch {
    return null;
  }
}

// Memory read bandwidth with `threads` worker threads: each fills its own 256 MiB buffer with 7s
// and scans it for a byte that is not there (Buffer.indexOf -> memchr, vectorised native code), a few
// passes; bandwidth = all bytes scanned / the slowest worker's time. Buffers far exceed the caches.
async function measureBandwidth(threads) {
  const { Worker } = require('node:worker_threads');
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const buf = Buffer.alloc(workerData.bytes, 7);          // written, so every page is real memory
    buf.indexOf(1);                                         // warm
    parentPort.once('message', () => {
      const t = process.hrtime.bigint();
      let found = 0;
      for (let p = 0; p < workerData.passes; p++) found += buf.indexOf(1);
      const ns = Number(process.hrtime.bigint() - t);
      parentPort.postMessage({ ns, bytes: workerData.bytes * workerData.passes, found });
    });
    parentPort.postMessage('ready');`;
  const bytes = 256 * 1024 * 1024, passes = 8;
  const workers = Array.from({ length: threads }, () => new Worker(src, { eval: true, workerData: { bytes, passes } }));
  try {
    await Promise.all(workers.map((w) => new Promise((res, rej) => { w.once('message', res); w.once('error', rej); })));
    const results = await Promise.all(workers.map((w) => new Promise((res, rej) => {
      w.once('message', res); w.once('error', rej); w.postMessage('go');
    })));
    const maxNs = Math.max(...results.map((r) => r.ns));
    const total = results.reduce((s, r) => s + r.bytes, 0);
    return round(total / maxNs, 2); // bytes per ns = GB/s
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

// ---------- engines ----------
class ChimeraEngine {
  constructor(threads) { this.name = 'chimera'; this.threads = threads; }
  async load(file, c) {
    const { loadModel } = require(path.join(REPO, 'dist'));
    const t = performance.now();
    this.model = await loadModel(file, { threads: this.threads, gpu: false });  // the CPU comparison
    this.loadMs = performance.now() - t;
    this.session = this.model.createSession({ contextSize: c.contextSize });
    this.info = this.model.info;
    return { loadMs: round(this.loadMs, 1), backend: this.info.backend, kernels: this.info.kernels,
      dtype: this.info.dtype, weightBytes: this.info.weightBytes, ownedBytes: this.info.ownedBytes,
      contextSize: this.session.contextSize, batchSize: 'default' };
  }
  async run(text, promptIds, n) {
    this.session.reset();
    const r = await this.session.complete(text, { maxTokens: n, temperature: 0, stopOnEos: false, append: true });
    if (r.promptTokens.length !== promptIds.length || commonPrefix(r.promptTokens, promptIds) !== promptIds.length)
      throw new Error('chimera evaluated a different prompt than the one measured');
    if (r.stats.promptTokensEvaluated !== promptIds.length)
      throw new Error(`chimera reused ${r.stats.promptTokensReused} cached prompt tokens after reset()`);
    if (r.tokens.length !== n) throw new Error(`chimera generated ${r.tokens.length} tokens, wanted ${n} (${r.stopReason})`);
    return { prefillMs: r.stats.msPrompt, decodeMs: r.stats.msGenerate, tokens: r.tokens };
  }
  async dispose() { await this.model?.dispose(); this.model = undefined; }
}

class LlamaCppEngine {
  constructor(threads) { this.name = 'node-llama-cpp'; this.threads = threads; }
  // gpu:false + build:'never' + skipDownload: use the installed prebuilt CPU binary, never build or
  // download. maxThreads caps the thread splitter; contexts get the thread count explicitly (llama.cpp's
  // n_threads and n_threads_batch are both set from it).
  static async getLlama(threads) {
    if (!LlamaCppEngine.llama) {
      const nlc = await import('node-llama-cpp');
      LlamaCppEngine.llama = await nlc.getLlama({ gpu: false, build: 'never', skipDownload: true,
        usePrebuiltBinaries: true, progressLogs: false, maxThreads: threads, logLevel: nlc.LlamaLogLevel.error });
      LlamaCppEngine.version = readVersion(path.join(REPO, 'node_modules', 'node-llama-cpp', 'package.json'));
    }
    return LlamaCppEngine.llama;
  }
  async load(file, c) {
    const llama = await LlamaCppEngine.getLlama(this.threads);
    const t = performance.now();
    this.model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    this.context = await this.model.createContext({ contextSize: c.contextSize, batchSize: c.contextSize, sequences: 1,
      threads: { ideal: this.threads, min: this.threads } });
    this.loadMs = performance.now() - t;
    this.sequence = this.context.getSequence();
    return { loadMs: round(this.loadMs, 1), version: LlamaCppEngine.version, buildType: llama.buildType,
      gpu: llama.gpu, flashAttention: this.context.flashAttention, contextSize: this.context.contextSize,
      batchSize: this.context.batchSize, threads: this.context.idealThreads };
  }
  tokenize(text) { return this.model.tokenize(text, false); }
  get bos() { return this.model.tokens.bos; }
  async run(text, promptIds, n) {
    await this.sequence.clearHistory();
    const tokens = [];
    const times = [];
    const t0 = performance.now();
    for await (const tok of this.sequence.evaluate(promptIds, { temperature: 0, yieldEogToken: true })) {
      times.push(performance.now());
      tokens.push(tok);
      if (tokens.length >= n) break;
    }
    if (tokens.length !== n) throw new Error(`node-llama-cpp generated ${tokens.length} tokens, wanted ${n}`);
    return { prefillMs: times[0] - t0, decodeMs: times[n - 1] - times[0], tokens };
  }
  async dispose() {
    await this.context?.dispose();
    await this.model?.dispose();
    this.context = this.model = undefined;
  }
}

// ---------- one model ----------
async function runCase(c, args) {
  const P = args.prompt ?? c.promptTokens;
  const N = args.tokens ?? c.genTokens;
  const R = args.reps ?? c.reps;
  if (N < 2) throw new Error('--tokens must be >= 2 (decode time covers tokens 2..N)');
  const engines = args.engines.map((e) => (e === 'chimera' ? new ChimeraEngine(args.threads)
    : e === 'node-llama-cpp' ? new LlamaCppEngine(args.threads) : null));
  if (engines.includes(null)) throw new Error(`unknown engine in --engines=${args.engines.join(',')}`);
  const loadInfo = {};
  try {
    for (const e of engines) {
      log(c.name, 'loading', e.name);
      loadInfo[e.name] = await e.load(c.file, c);
    }
    // The prompt: words from the case's text until there are P tokens (BOS included), tokenized by
    // chimera when it runs (else node-llama-cpp); both engines then get these exact ids.
    const ch = engines.find((e) => e.name === 'chimera');
    const lc = engines.find((e) => e.name === 'node-llama-cpp');
    const tokenize = ch ? (t) => ch.model.tokenize(t) : (t) => [lc.bos, ...lc.tokenize(t)];
    let text = '';
    let ids = tokenize(text);
    for (let i = 0; ids.length < P; i++) {
      const w = c.words[i % c.words.length];
      const next = text ? `${text} ${w}` : w;
      const nextIds = tokenize(next);
      if (nextIds.length > P) break;
      text = next;
      ids = nextIds;
    }
    if (ids.length + N > (loadInfo.chimera?.contextSize ?? c.contextSize))
      throw new Error(`prompt ${ids.length} + ${N} tokens do not fit the context size ${c.contextSize}`);
    const tokenizerAgrees = ch && lc ? commonPrefix([lc.bos, ...lc.tokenize(text)], ids) === ids.length &&
      lc.tokenize(text).length + 1 === ids.length : null;

    // Warm-up: a short prompt + a few tokens each (JIT, thread pools, page cache).
    const warm = ids.slice(0, Math.min(ids.length, 16));
    const warmText = ch ? ch.model.detokenize(warm.slice(1)) : text;
    for (const e of engines) {
      log(c.name, 'warm-up', e.name);
      const t = performance.now();
      if (e.name === 'chimera') {
        e.session.reset();
        await e.session.complete(warmText, { maxTokens: 4, temperature: 0, stopOnEos: false });
      } else {
        await e.run(warmText, warm, 4);
      }
      loadInfo[e.name].warmupMs = round(performance.now() - t, 1);
    }

    const samples = Object.fromEntries(engines.map((e) => [e.name, []]));
    for (let r = 0; r < R; r++) {
      for (const e of engines) {
        const { r: s, others } = await withContention(() => e.run(text, ids, N));
        samples[e.name].push({ ...s, others });
        log(c.name, `rep ${r + 1}/${R}`, e.name, `prefill ${s.prefillMs.toFixed(1)} ms,`,
          `decode ${(s.decodeMs / (N - 1)).toFixed(2)} ms/token`);
      }
    }

    const results = {};
    for (const e of engines) {
      const ss = samples[e.name];
      const prefillTps = ss.map((s) => (ids.length * 1000) / s.prefillMs);
      const decodeTps = ss.map((s) => ((N - 1) * 1000) / s.decodeMs);
      const res = {
        type: 'result', model: c.name, engine: e.name, threads: args.threads,
        promptTokens: ids.length, genTokens: N, reps: R,
        prefillTokPerSec: spread(prefillTps),
        prefillMs: spread(ss.map((s) => s.prefillMs)),
        decodeTokPerSec: spread(decodeTps),
        decodeMsPerToken: spread(ss.map((s) => s.decodeMs / (N - 1))),
        // Every repetition must give the same greedy tokens (deterministic engine).
        deterministic: ss.every((s) => commonPrefix(s.tokens, ss[0].tokens) === N),
        firstTokens: ss[0].tokens.slice(0, 8),
        // Cores kept busy by OTHER processes during the repetitions (null: too short to tell). Results
        // with values well above 0 were measured on a contended machine.
        otherProcessesCores: ss.some((s) => s.others == null) ? null : spread(ss.map((s) => s.others)),
        ...loadInfo[e.name],
      };
      results[e.name] = { res, tokens: ss[0].tokens };
      emit(res);
    }
    if (results.chimera && results['node-llama-cpp']) {
      const a = results.chimera.res, b = results['node-llama-cpp'].res;
      const weightBytes = loadInfo.chimera.weightBytes;
      emit({
        type: 'summary', model: c.name, threads: args.threads, promptTokens: ids.length, genTokens: N, reps: R,
        decodeRatio: round(a.decodeTokPerSec.median / b.decodeTokPerSec.median, 3),
        prefillRatio: round(a.prefillTokPerSec.median / b.prefillTokPerSec.median, 3),
        chimeraDecodeTokPerSec: a.decodeTokPerSec.median, llamaCppDecodeTokPerSec: b.decodeTokPerSec.median,
        chimeraPrefillTokPerSec: a.prefillTokPerSec.median, llamaCppPrefillTokPerSec: b.prefillTokPerSec.median,
        tokenizerAgrees,
        // How many leading greedy tokens the two engines agree on (random-weight models have many
        // near-ties, so an early divergence there is expected rounding, not a bug).
        sameGreedyTokens: commonPrefix(results.chimera.tokens, results['node-llama-cpp'].tokens),
        weightBytes,
        // Measured read bandwidth / the weight bytes each decode step reads: a rough decode ceiling.
        decodeCeilingTokPerSec: args.bandwidthGBs ? round((args.bandwidthGBs * 1e9) / weightBytes, 2) : null,
        // true when other processes kept more than a quarter of a core busy (median) while either engine
        // was measured: the ratios are then unreliable (llama.cpp's spinning thread pool suffers most).
        contended: [a, b].some((x) => x.otherProcessesCores == null) ? null
          : [a, b].some((x) => x.otherProcessesCores.median > 0.25),
      });
    }
  } finally {
    for (const e of engines) await e.dispose().catch(() => undefined);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const all = caseList();
  let cases;
  if (args.cases) {
    cases = args.cases.filter((n) => n !== 'gpu').map((n) => {
      const c = all.find((x) => x.name === n);
      if (!c) throw Object.assign(new Error(`unknown case ${n}; cases: gpu, ${all.map((x) => x.name).join(', ')}`), { usage: true });
      return c;
    });
  } else {
    cases = all.filter((c) => (args.quick ? c.quick : !c.optional));
  }

  const cpus = os.cpus();
  let bw = null;
  let idle = null;
  if (args.waitIdle) idle = await waitIdle(args.waitIdle);
  let bwSamples = null;
  if (args.bandwidth) {
    // The machine's read bandwidth drifts (25-40 GB/s seen on one host within an hour): the ceiling is
    // the best of three probes, and every probe is reported.
    log(`measuring read bandwidth with ${args.threads} worker threads (3 probes)`);
    bwSamples = [];
    for (let i = 0; i < 3; i++) {
      const v = await measureBandwidth(args.threads).catch((e) => (log('bandwidth:', e.message), null));
      if (v !== null) bwSamples.push(v);
    }
    bw = bwSamples.length ? Math.max(...bwSamples) : null;
  }
  args.bandwidthGBs = bw;
  let chimeraVersion = null;
  try { chimeraVersion = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version; } catch { /* */ }
  emit({
    type: 'machine', cpu: cpus[0]?.model ?? null, logicalCpus: cpus.length,
    availableParallelism: os.availableParallelism ? os.availableParallelism() : null,
    cpuFlags: cpuFlags(), totalMemGB: round(os.totalmem() / 2 ** 30, 1), node: process.version,
    platform: `${process.platform}-${process.arch}`, threads: args.threads, loadavg: loadavg(),
    // Cores used by other processes just before the bandwidth probe (with --wait-idle only).
    otherProcessesCoresAtStart: idle ? idle.others : null,
    readBandwidthGBs: bw, readBandwidthSamplesGBs: bwSamples, chimeraVersion, date: new Date().toISOString(),
  });

  let failed = false;
  for (const c of cases) {
    if (c.kind === 'wide') {
      try {
        ensureWideFiles(c, log);
      } catch (e) {
        emit({ type: 'error', model: c.name, error: `building the wide model: ${e.message}` });
        failed = true;
        continue;
      }
    }
    if (!fs.existsSync(c.file)) {
      emit({ type: 'skip', model: c.name, reason: `${c.file} is missing (${c.missingHint})` });
      continue;
    }
    try {
      if (args.waitIdle) {
        const w = await waitIdle(args.waitIdle);
        if (w.gaveUp) log(`${c.name}: the machine stayed busy (${w.others} cores used by others); measuring anyway`);
      }
      await runCase(c, args);
      if (args.speculative && c.kind === 'wide') {
        await runWideSpeculation(c, { ...args, tokens: args.specTokens }, emit, log, () => LlamaCppEngine.getLlama(args.threads));
      } else if (args.speculative) {
        await runSpeculativeCase(c, args, emit);
      }
    } catch (e) {
      failed = true;
      emit({ type: 'error', model: c.name, error: String(e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e) });
    }
  }
  // The GPU case (skipped with its reason where no usable GPU exists).
  if (!args.cases || args.cases.includes('gpu')) {
    try {
      await runGpuCase(require(path.join(REPO, 'dist')), path.join(SHARED, 'models', 'stories260K', 'stories260K.gguf'),
        path.join(MODELS_DIR, 'stories260K.chimera.safetensors'), args, emit);
    } catch (e) {
      failed = true;
      emit({ type: 'error', model: 'gpu', error: String(e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e) });
    }
  }
  // node-llama-cpp keeps its Llama instance (and native threads) alive; dispose it so the process exits.
  if (LlamaCppEngine.llama) await LlamaCppEngine.llama.dispose().catch(() => undefined);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`${e && e.usage ? `bench/run.js: ${e.message}` : e && e.stack ? e.stack : e}\n`);
  process.exit(2);
});
