#!/usr/bin/env node
// Generates synthetic, memory-bound LLaMA models with random weights as GGUF files, for benchmarking:
// the TinyLlama-1.1B shape (dim 2048, 22 layers, 32 heads / 4 KV heads, FFN 5632, vocabulary 32000,
// context 2048, untied output), in F16, F32, Q8_0 and llama-quantize's Q4_K_M mix.
//
//   node bench/make-synthetic.js [--dtypes=f16,f32[,q8_0]] [--out=DIR] [--seed=N] [--force]
//
// Files go to bench/models/ (git-ignored) as synthetic-llama-d2048-l22-h32-kv4-ff5632-v32000-<dtype>.gguf
// and are only written when missing (--force rewrites). The file is written to <name>.partial and
// renamed at the end, so an interrupted run never leaves a truncated model behind. Tensors are
// generated and written in chunks of a few MB: memory use stays small even for the 4.4 GB F32 file.
//
// Weights: ~N(0, 0.02) (a seeded xorshift32 stream indexing a 65536-level inverse-CDF table; see
// bench/lib/synthetic.js), seeded per tensor name, so the F16 / F32 / Q8_0 files hold the same values
// up to rounding. RMSNorm weights are 1 (F32, as llama.cpp's converter stores them). The tokenizer is
// a valid SentencePiece "llama" vocabulary of 32000 pieces (<unk>, <s>, </s>, 256 <0xNN> byte tokens,
// then "▁", ASCII characters and "▁<letters>" pieces with decreasing scores), so chimera-llm and
// llama.cpp (node-llama-cpp) both load the file; the text such a model generates is of course noise.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const S = require('./lib/synthetic');
const { FILE_TYPE, mixType } = require('../tools/writers/quant-mix');

const SHAPE = { dim: 2048, layers: 22, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000, context: 2048 };
const SHAPE_TAG = `d${SHAPE.dim}-l${SHAPE.layers}-h${SHAPE.heads}-kv${SHAPE.kvHeads}-ff${SHAPE.ffn}-v${SHAPE.vocab}`;
const DTYPES = {
  f32: { type: S.GGML.F32, fileType: 0 }, // LLAMA_FTYPE_ALL_F32
  f16: { type: S.GGML.F16, fileType: 1 }, // LLAMA_FTYPE_MOSTLY_F16
  q8_0: { type: S.GGML.Q8_0, fileType: 7 }, // LLAMA_FTYPE_MOSTLY_Q8_0
  // llama-quantize's Q4_K_M mix (tools/writers/quant-mix.js): Q4_K, with Q6_K for the output matrix and
  // for attn_v / ffn_down in the first and last eighth of the layers and every third layer between.
  q4_k_m: { mix: 'Q4_K_M', fileType: FILE_TYPE.Q4_K_M },
};

function modelFileName(dtype) {
  return `synthetic-llama-${SHAPE_TAG}-${dtype}.gguf`;
}

// The model as metadata + tensor list; each tensor has a `chunks()` generator of its bytes.
function describeModel(dtype, seed, shape = SHAPE) {
  const { type, fileType, mix } = DTYPES[dtype];
  const { dim, layers, heads, kvHeads, ffn, vocab, context } = shape;
  const headDim = dim / heads;
  const vocabData = S.makeVocab(vocab);
  const metadata = [
    ['general.architecture', 'string', 'llama'],
    ['general.name', 'string', `synthetic-llama-${SHAPE_TAG}-${dtype}`],
    ['general.description', 'string', `random weights ~N(0, 0.02), seed ${seed}; chimera-llm benchmark model`],
    ['general.file_type', 'uint32', fileType],
    ['general.quantization_version', 'uint32', 2],
    ['llama.context_length', 'uint32', context],
    ['llama.embedding_length', 'uint32', dim],
    ['llama.block_count', 'uint32', layers],
    ['llama.feed_forward_length', 'uint32', ffn],
    ['llama.rope.dimension_count', 'uint32', headDim],
    ['llama.attention.head_count', 'uint32', heads],
    ['llama.attention.head_count_kv', 'uint32', kvHeads],
    ['llama.attention.layer_norm_rms_epsilon', 'float32', 1e-5],
    ['llama.rope.freq_base', 'float32', 10000],
    ['llama.vocab_size', 'uint32', vocab],
    ['tokenizer.ggml.model', 'string', 'llama'],
    ['tokenizer.ggml.tokens', 'string[]', vocabData.tokens],
    ['tokenizer.ggml.scores', 'float32[]', vocabData.scores],
    ['tokenizer.ggml.token_type', 'int32[]', vocabData.types],
    ['tokenizer.ggml.bos_token_id', 'uint32', 1],
    ['tokenizer.ggml.eos_token_id', 'uint32', 2],
    ['tokenizer.ggml.unknown_token_id', 'uint32', 0],
    ['tokenizer.ggml.add_bos_token', 'bool', true],
    ['tokenizer.ggml.add_eos_token', 'bool', false],
  ];
  const tables = S.normalTables(0.02);
  const tensors = [];
  // dims are GGUF order: ne[0] (contiguous, the input features of a matrix) first.
  const rand = (name, dims) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const t = mix ? S.GGML[mixType(mix, name, dims[0], layers)] : type;
    tensors.push({ name, dims, type: t, nbytes: S.tensorBytes(t, n),
      chunks: () => S.randomTensorChunks(t, n, S.seedFor(seed, name), tables) });
  };
  const ones = (name, n) => {
    tensors.push({ name, dims: [n], type: S.GGML.F32, nbytes: n * 4, chunks: () => S.constTensorChunks(n, 1) });
  };
  rand('token_embd.weight', [dim, vocab]);
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    ones(`${p}attn_norm.weight`, dim);
    rand(`${p}attn_q.weight`, [dim, dim]);
    rand(`${p}attn_k.weight`, [dim, kvHeads * headDim]);
    rand(`${p}attn_v.weight`, [dim, kvHeads * headDim]);
    rand(`${p}attn_output.weight`, [dim, dim]);
    ones(`${p}ffn_norm.weight`, dim);
    rand(`${p}ffn_gate.weight`, [dim, ffn]);
    rand(`${p}ffn_up.weight`, [dim, ffn]);
    rand(`${p}ffn_down.weight`, [ffn, dim]);
  }
  ones('output_norm.weight', dim);
  rand('output.weight', [dim, vocab]);
  return { metadata, tensors };
}

function parseArgs(argv) {
  const a = { dtypes: ['f16', 'f32'], out: path.join(__dirname, 'models'), seed: 1234, force: false };
  for (const arg of argv) {
    const i = arg.indexOf('=');
    const k = i < 0 ? arg : arg.slice(0, i), v = i < 0 ? undefined : arg.slice(i + 1);
    if (k === '--dtypes') a.dtypes = v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    else if (k === '--out') a.out = path.resolve(v);
    else if (k === '--seed') a.seed = Number(v) >>> 0;
    else if (k === '--force') a.force = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  for (const d of a.dtypes) if (!DTYPES[d]) throw new Error(`unknown dtype ${d} (${Object.keys(DTYPES).join(', ')})`);
  return a;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  // The project's streaming GGUF writer: tensors given as { name, dims, type, nbytes, chunks() }.
  const { writeGGUF } = require('../tools/writers/gguf');
  fs.mkdirSync(args.out, { recursive: true });
  for (const dtype of args.dtypes) {
    const file = path.join(args.out, modelFileName(dtype));
    if (fs.existsSync(file) && !args.force) {
      process.stderr.write(`[make-synthetic] ${file} exists, skipping\n`);
      continue;
    }
    const model = describeModel(dtype, args.seed);
    const total = model.tensors.reduce((s, t) => s + t.nbytes, 0);
    process.stderr.write(`[make-synthetic] writing ${file} (${(total / 1e9).toFixed(2)} GB of tensors, ` +
      `${model.tensors.length} tensors)\n`);
    const t0 = performance.now();
    const tmp = `${file}.partial`;
    let done = 0, shown = -1;
    const tensors = model.tensors.map((t) => ({ ...t, *chunks() {
      for (const c of t.chunks()) {
        yield c;
        done += c.length;
        const pct = Math.floor((100 * done) / total);
        if (pct !== shown) { shown = pct; process.stderr.write(`\r[make-synthetic] ${dtype}: ${pct}%  `); }
      }
    } }));
    try {
      writeGGUF(tmp, { metadata: model.metadata, tensors });
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fs.renameSync(tmp, file);
    const size = fs.statSync(file).size;
    process.stderr.write(`\n[make-synthetic] ${dtype}: ${size} bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  });
}

module.exports = { SHAPE, SHAPE_TAG, DTYPES, modelFileName, describeModel };
