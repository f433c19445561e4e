// Deterministic tiny LLaMA models for tests and benchmarks, written in any of the three formats.
//
//   const m = makeTinyModel({ seed, C, L, NH, NKV, HD, V, maxContext, tied, std, rmsEps, ropeTheta })
//     m.config     { C, L, NH, NKV, HS, HD, V, maxContext, rmsEps, ropeTheta, tied }
//     m.weights    { tok_embd, layers: [{ attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down }],
//                    output_norm, output }   (output null when tied)
//                  Each is a lazy tensor { name, rows, cols, length, row(r), chunks(), toFloat32Array() }
//                  (row-major (out, in); RoPE layout interleaved, as GGUF and llama2.c use). Values are
//                  generated per row from a seeded PRNG, so huge models never live in memory.
//     m.tokenizer  { pieces, scores, types, merges, bos, eos, unk }: <unk> <s> </s>, 256 <0xNN> byte tokens,
//                  " ", characters, then BPE merges learned from a small built-in text (" the", ...).
//   writeTinyModel(dir, m, 'gguf' | 'llama2c' | 'hf', opts) -> { path, tokenizerPath? }
//     gguf: opts.dtype F32|F16|BF16|Q8_0|Q4_0|Q4_K|Q5_K|Q6_K, or a mix Q4_K_M|Q5_K_M|... (quant-mix.js)
//           for the matrices (norms stay F32), opts.version, opts.alignment
//     llama2c: F32 model.bin + tokenizer.bin (pass tokenizerPath to the loader)
//     hf: opts.dtype F32|F16|BF16, opts.shards; Q/K rows permuted to the half-split RoPE layout, as
//         HF's conversion does, so all three formats give the same logits.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { writeGGUF } = require('./gguf');
const { writeLlama2c, writeLlama2cTokenizer } = require('./llama2c');
const { writeHF, makeTokenizerJson } = require('./hf');
const { buildVocab } = require('./tiny-vocab');
const { MIXES, mixType } = require('./quant-mix');

// ---- seeded values ----

function hashString(seed, s) {
  let h = (2166136261 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

// mulberry32: small, fast, good enough for test weights.
function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Rows of (rows, cols) values with mean `mean` and standard deviation `std`: the sum of two uniforms
// (triangular), rescaled. Row r depends only on (seed, name, r), so rows can be produced in any order.
class LazyTensor {
  constructor(name, rows, cols, seed, mean, std) {
    Object.assign(this, { name, rows, cols, length: rows * cols });
    this.seed = hashString(seed, name);
    this.mean = mean;
    this.scale = std / Math.sqrt(1 / 6);
  }

  row(r) {
    const rnd = mulberry32((this.seed ^ Math.imul(r + 1, 0x9e3779b1)) >>> 0);
    const out = new Float32Array(this.cols);
    for (let i = 0; i < this.cols; i++) out[i] = this.mean + (rnd() + rnd() - 1) * this.scale;
    return out;
  }

  // Row-aligned chunks of about `maxFloats` values, rows in `order` (default 0..rows-1).
  *chunks(maxFloats = 1 << 20, order = null) {
    const perChunk = Math.max(1, Math.floor(maxFloats / this.cols));
    for (let r0 = 0; r0 < this.rows; r0 += perChunk) {
      const n = Math.min(perChunk, this.rows - r0);
      const out = new Float32Array(n * this.cols);
      for (let i = 0; i < n; i++) out.set(this.row(order ? order[r0 + i] : r0 + i), i * this.cols);
      yield out;
    }
  }

  toFloat32Array() {
    const out = new Float32Array(this.length);
    let at = 0;
    for (const c of this.chunks()) { out.set(c, at); at += c.length; }
    return out;
  }
}

function makeTinyModel(options = {}) {
  const o = { seed: 1, C: 64, L: 2, NH: 4, NKV: 2, HD: 128, V: 320, maxContext: 256, tied: false, std: 0.2,
    rmsEps: 1e-5, ropeTheta: 10000, ...options };
  const { seed, C, L, NH, NKV, HD, V, std } = o;
  if (C % NH || NH % NKV) throw new Error(`need C % NH == 0 and NH % NKV == 0 (C ${C}, NH ${NH}, NKV ${NKV})`);
  const HS = C / NH;
  const KVD = NKV * HS;
  const mat = (name, rows, cols) => new LazyTensor(name, rows, cols, seed, 0, std);
  const norm = (name) => new LazyTensor(name, 1, C, seed, 1, 0.1);
  const layers = [];
  for (let l = 0; l < L; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attn_norm: norm(`${p}attn_norm.weight`), wq: mat(`${p}attn_q.weight`, C, C), wk: mat(`${p}attn_k.weight`, KVD, C),
      wv: mat(`${p}attn_v.weight`, KVD, C), wo: mat(`${p}attn_output.weight`, C, C), ffn_norm: norm(`${p}ffn_norm.weight`),
      w_gate: mat(`${p}ffn_gate.weight`, HD, C), w_up: mat(`${p}ffn_up.weight`, HD, C), w_down: mat(`${p}ffn_down.weight`, C, HD),
    });
  }
  return {
    config: { C, L, NH, NKV, HS, HD, V, maxContext: o.maxContext, rmsEps: o.rmsEps, ropeTheta: o.ropeTheta, tied: o.tied },
    weights: { tok_embd: mat('token_embd.weight', V, C), layers, output_norm: norm('output_norm.weight'),
      output: o.tied ? null : mat('output.weight', V, C) },
    tokenizer: buildVocab(V),
  };
}

// ---- writers ----

const SP = (p) => p.replace(/ /g, '\u2581');

function ggufMetadata(m) {
  const c = m.config;
  const t = m.tokenizer;
  return [
    ['general.architecture', 'string', 'llama'], ['general.name', 'string', 'tiny-llama'],
    ['llama.context_length', 'uint32', c.maxContext], ['llama.embedding_length', 'uint32', c.C],
    ['llama.block_count', 'uint32', c.L], ['llama.feed_forward_length', 'uint32', c.HD],
    ['llama.rope.dimension_count', 'uint32', c.HS], ['llama.rope.freq_base', 'float32', c.ropeTheta],
    ['llama.attention.head_count', 'uint32', c.NH], ['llama.attention.head_count_kv', 'uint32', c.NKV],
    ['llama.attention.layer_norm_rms_epsilon', 'float32', c.rmsEps], ['llama.vocab_size', 'uint32', c.V],
    ['tokenizer.ggml.model', 'string', 'llama'], ['tokenizer.ggml.tokens', 'string[]', t.pieces.map(SP)],
    ['tokenizer.ggml.scores', 'float32[]', t.scores], ['tokenizer.ggml.token_type', 'int32[]', t.types],
    ['tokenizer.ggml.bos_token_id', 'uint32', t.bos], ['tokenizer.ggml.eos_token_id', 'uint32', t.eos],
    ['tokenizer.ggml.unknown_token_id', 'uint32', t.unk], ['tokenizer.ggml.add_bos_token', 'bool', true],
    ['tokenizer.ggml.add_eos_token', 'bool', false], ['tokenizer.ggml.add_space_prefix', 'bool', true],
  ];
}

// Every weight with its canonical (GGUF) name, in file order.
function namedWeights(m) {
  const w = m.weights;
  const out = [['token_embd.weight', w.tok_embd, true]];
  w.layers.forEach((l, i) => {
    const p = `blk.${i}.`;
    out.push([`${p}attn_norm.weight`, l.attn_norm, false], [`${p}attn_q.weight`, l.wq, true],
      [`${p}attn_k.weight`, l.wk, true], [`${p}attn_v.weight`, l.wv, true], [`${p}attn_output.weight`, l.wo, true],
      [`${p}ffn_norm.weight`, l.ffn_norm, false], [`${p}ffn_gate.weight`, l.w_gate, true],
      [`${p}ffn_up.weight`, l.w_up, true], [`${p}ffn_down.weight`, l.w_down, true]);
  });
  out.push(['output_norm.weight', w.output_norm, false]);
  if (w.output) out.push(['output.weight', w.output, true]);
  return out;
}

function writeGgufModel(dir, m, opts) {
  const dtype = opts.dtype || 'F32';
  // A llama-quantize mix name (Q4_K_M, ...) picks each matrix's type; otherwise all matrices take dtype.
  const typeOf = MIXES[dtype] ? (name, cols) => mixType(dtype, name, cols, m.config.L) : () => dtype;
  const tensors = namedWeights(m).map(([name, t, matrix]) => (matrix
    ? { name, shape: [t.rows, t.cols], dtype: typeOf(name, t.cols), data: t }
    : { name, shape: [t.cols], dtype: 'F32', data: t }));
  const file = path.join(dir, opts.fileName || 'model.gguf');
  writeGGUF(file, { metadata: ggufMetadata(m), tensors, alignment: opts.alignment || 32, version: opts.version || 3 });
  return { path: file };
}

function writeLlama2cModel(dir, m, opts) {
  if (opts.dtype && opts.dtype !== 'F32') throw new Error('llama2.c checkpoints are F32 only');
  const c = m.config;
  const file = path.join(dir, opts.fileName || 'model.bin');
  const tokenizerPath = path.join(dir, 'tokenizer.bin');
  writeLlama2c(file, { ...c, weights: m.weights });
  writeLlama2cTokenizer(tokenizerPath, m.tokenizer);
  return { path: file, tokenizerPath };
}

// Row order that turns an interleaved-RoPE head into a half-split one: [0, 2, 4, ..., 1, 3, 5, ...].
function halfSplitOrder(rows, HS) {
  const order = [];
  for (let h = 0; h < rows / HS; h++) {
    for (let j = 0; j < HS; j += 2) order.push(h * HS + j);
    for (let j = 1; j < HS; j += 2) order.push(h * HS + j);
  }
  return order;
}

const HF_NAMES = { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight', attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  ffn_norm: 'post_attention_layernorm', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj' };

function hfName(name) {
  const b = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
  return b ? `model.layers.${b[1]}.${HF_NAMES[b[2]]}.weight` : HF_NAMES[name];
}

function writeHfModel(dir, m, opts) {
  const dtype = opts.dtype || 'F32';
  const c = m.config;
  const tensors = namedWeights(m).map(([name, t, matrix]) => {
    const permute = /attn_[qk]\.weight$/.test(name);
    const data = permute ? () => t.chunks(1 << 20, halfSplitOrder(t.rows, c.HS)) : t;
    return { name: hfName(name), shape: matrix ? [t.rows, t.cols] : [t.cols], dtype: matrix ? dtype : 'F32', data };
  });
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: c.C, intermediate_size: c.HD,
    num_attention_heads: c.NH, num_hidden_layers: c.L, num_key_value_heads: c.NKV, vocab_size: c.V,
    max_position_embeddings: c.maxContext, rms_norm_eps: c.rmsEps, rope_theta: c.ropeTheta, rope_scaling: null,
    hidden_act: 'silu', tie_word_embeddings: c.tied, bos_token_id: m.tokenizer.bos, eos_token_id: m.tokenizer.eos,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
  };
  const tokenizerConfig = { add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>',
    unk_token: '<unk>', legacy: true, model_max_length: c.maxContext, tokenizer_class: 'LlamaTokenizer' };
  writeHF(dir, { config, tensors, tokenizer: makeTokenizerJson(m.tokenizer), tokenizerConfig, shards: opts.shards || 1 });
  return { path: dir };
}

function writeTinyModel(dir, model, format, opts = {}) {
  fs.mkdirSync(dir, { recursive: true });
  if (format === 'gguf') return writeGgufModel(dir, model, opts);
  if (format === 'llama2c') return writeLlama2cModel(dir, model, opts);
  if (format === 'hf') return writeHfModel(dir, model, opts);
  throw new Error(`unknown format ${format} (gguf, llama2c or hf)`);
}

module.exports = { makeTinyModel, writeTinyModel, ggufMetadata, namedWeights, LazyTensor, halfSplitOrder };
