// Tiny random models of every architecture chimera runs, written as GGUF (as llama.cpp's converter
// lays each one out) and as a Hugging Face directory (transformers' names and config.json), so that
// tests can check both loaders against llama.cpp and against each other.
//
//   const m = makeArchModel('llama3' | 'qwen2' | 'qwen3' | 'phi3' | 'llama', { seed, C, L, NH, NKV, HS, HD,
//                           tied, std, outGain })
//     m.arch        GGUF general.architecture ('llama3' is a `llama` model with Llama 3.x RoPE scaling)
//     m.config      { C, L, NH, NKV, HS, HD, V, maxContext, rmsEps, ropeTheta, tied, ropeScaling }
//     m.tensors     [{ gguf, hf, shape, matrix, data }] in GGUF file order; data is a LazyTensor or a
//                   Float32Array (rope_freqs). hf is null for tensors transformers does not store.
//   writeArchGguf(file, m, dtype)    matrices as F32 | F16 | Q8_0 | ... or a mix (Q4_K_M, quant-mix.js);
//                                    vectors F32 (as the converters do)
//   writeArchHf(dir, m, dtype)       F32 | F16 | BF16; llama Q/K rows permuted to the half-split layout
//
// Per architecture (what llama.cpp's converter writes, and what the HF checkpoint has):
//   llama3  rope.freq_base 500000; rope_freqs.weight holds the "llama3" per-pair divisors that the HF
//           config's rope_scaling describes.
//   qwen2   attn_{q,k,v}.bias / self_attn.{q,k,v}_proj.bias; NeoX RoPE (no Q/K permutation); tied output.
//   qwen3   attn_{q,k}_norm.weight (HS) / self_attn.{q,k}_norm.weight; head size from
//           qwen3.attention.key_length / head_dim, here 2 x C / NH.
//   phi3    attn_qkv.weight = [Q; K; V] / self_attn.qkv_proj.weight; ffn_up.weight = [gate; up] /
//           mlp.gate_up_proj.weight; NeoX RoPE.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { writeGGUF } = require('./gguf');
const { writeHF, makeTokenizerJson } = require('./hf');
const { LazyTensor, halfSplitOrder } = require('./tiny-model');
const { buildVocab } = require('./tiny-vocab');
const { MIXES, mixType } = require('./quant-mix');

const ARCHS = ['llama', 'llama3', 'qwen2', 'qwen3', 'phi3'];

// The per-pair RoPE divisors of rope_scaling {rope_type: "llama3"}, as llama.cpp's converter computes
// them for rope_freqs.weight.
function llama3RopeFactors(theta, dims, s) {
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  const out = new Float32Array(dims / 2);
  for (let i = 0; i < dims / 2; i++) {
    const wavelen = (2 * Math.PI) / (1 / theta ** ((2 * i) / dims));
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

const DEFAULTS = {
  llama: { ropeTheta: 10000, tied: false },
  // original_max_position_embeddings 256 puts the pairs of a 16-wide head in all three bands
  // (wavelength 6 and 33: kept; 168: blended; 871 and up: slowed by `factor`).
  llama3: { ropeTheta: 500000, tied: false, ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1,
    high_freq_factor: 4, original_max_position_embeddings: 256 } },
  qwen2: { ropeTheta: 1000000, tied: true },
  qwen3: { ropeTheta: 1000000, tied: false, headScale: 2 },
  phi3: { ropeTheta: 10000, tied: false },
};

function makeArchModel(archName, options = {}) {
  if (!ARCHS.includes(archName)) throw new Error(`unknown architecture ${archName} (${ARCHS.join(', ')})`);
  const d = DEFAULTS[archName];
  const o = { seed: 1, C: 64, L: 2, NH: 4, NKV: 2, HD: 128, V: 320, maxContext: 512, std: 0.2, outStd: 0.2,
    rmsEps: 1e-5, ...d, ...options };
  const { seed, C, L, NH, NKV, HD, V, std } = o;
  const HS = o.HS || (C / NH) * (d.headScale || 1);
  const QD = NH * HS, KVD = NKV * HS;
  const arch = archName === 'llama3' ? 'llama' : archName;
  const t = [];
  const mat = (gguf, hf, rows, cols, s = std) => t.push({ gguf, hf, shape: [rows, cols], matrix: true,
    data: new LazyTensor(gguf, rows, cols, seed, 0, s) });
  const vec = (gguf, hf, n, mean, s) => t.push({ gguf, hf, shape: [n], matrix: false,
    data: new LazyTensor(gguf, 1, n, seed, mean, s) });
  mat('token_embd.weight', 'model.embed_tokens.weight', V, C, 1);
  for (let l = 0; l < L; l++) {
    const g = (n) => `blk.${l}.${n}`;
    const h = (n) => `model.layers.${l}.${n}`;
    vec(g('attn_norm.weight'), h('input_layernorm.weight'), C, 1, 0.1);
    if (arch === 'phi3') {
      mat(g('attn_qkv.weight'), h('self_attn.qkv_proj.weight'), QD + 2 * KVD, C);
    } else {
      mat(g('attn_q.weight'), h('self_attn.q_proj.weight'), QD, C);
      mat(g('attn_k.weight'), h('self_attn.k_proj.weight'), KVD, C);
      mat(g('attn_v.weight'), h('self_attn.v_proj.weight'), KVD, C);
    }
    if (arch === 'qwen2') {
      vec(g('attn_q.bias'), h('self_attn.q_proj.bias'), QD, 0, 0.5);
      vec(g('attn_k.bias'), h('self_attn.k_proj.bias'), KVD, 0, 0.5);
      vec(g('attn_v.bias'), h('self_attn.v_proj.bias'), KVD, 0, 0.5);
    }
    if (arch === 'qwen3') {
      vec(g('attn_q_norm.weight'), h('self_attn.q_norm.weight'), HS, 1, 0.3);
      vec(g('attn_k_norm.weight'), h('self_attn.k_norm.weight'), HS, 1, 0.3);
    }
    mat(g('attn_output.weight'), h('self_attn.o_proj.weight'), C, QD);
    vec(g('ffn_norm.weight'), h('post_attention_layernorm.weight'), C, 1, 0.1);
    if (arch === 'phi3') {
      mat(g('ffn_up.weight'), h('mlp.gate_up_proj.weight'), 2 * HD, C);
    } else {
      mat(g('ffn_gate.weight'), h('mlp.gate_proj.weight'), HD, C);
      mat(g('ffn_up.weight'), h('mlp.up_proj.weight'), HD, C);
    }
    mat(g('ffn_down.weight'), h('mlp.down_proj.weight'), C, HD);
  }
  vec('output_norm.weight', 'model.norm.weight', C, 1, 0.1);
  if (!o.tied) mat('output.weight', 'lm_head.weight', V, C, o.outStd);
  if (o.ropeScaling) {
    t.push({ gguf: 'rope_freqs.weight', hf: null, shape: [HS / 2], matrix: false,
      data: llama3RopeFactors(o.ropeTheta, HS, o.ropeScaling) });
  }
  return {
    arch,
    name: archName,
    config: { C, L, NH, NKV, HS, HD, V, maxContext: o.maxContext, rmsEps: o.rmsEps, ropeTheta: o.ropeTheta,
      tied: o.tied, ropeScaling: o.ropeScaling || null },
    tensors: t,
    tokenizer: buildVocab(V),
  };
}

const SP = (p) => p.replace(/ /g, '\u2581');

function archMetadata(m) {
  const c = m.config;
  const a = m.arch;
  const tk = m.tokenizer;
  const meta = [
    ['general.architecture', 'string', a], ['general.name', 'string', 'chimera-arch-test'],
    [`${a}.context_length`, 'uint32', c.maxContext], [`${a}.embedding_length`, 'uint32', c.C],
    [`${a}.block_count`, 'uint32', c.L], [`${a}.feed_forward_length`, 'uint32', c.HD],
    [`${a}.rope.dimension_count`, 'uint32', c.HS], [`${a}.rope.freq_base`, 'float32', c.ropeTheta],
    [`${a}.attention.head_count`, 'uint32', c.NH], [`${a}.attention.head_count_kv`, 'uint32', c.NKV],
    [`${a}.attention.layer_norm_rms_epsilon`, 'float32', c.rmsEps],
  ];
  if (c.HS * c.NH !== c.C) meta.push([`${a}.attention.key_length`, 'uint32', c.HS], [`${a}.attention.value_length`, 'uint32', c.HS]);
  meta.push(
    ['tokenizer.ggml.model', 'string', 'llama'], ['tokenizer.ggml.tokens', 'string[]', tk.pieces.map(SP)],
    ['tokenizer.ggml.scores', 'float32[]', tk.scores], ['tokenizer.ggml.token_type', 'int32[]', tk.types],
    ['tokenizer.ggml.bos_token_id', 'uint32', tk.bos], ['tokenizer.ggml.eos_token_id', 'uint32', tk.eos],
    ['tokenizer.ggml.unknown_token_id', 'uint32', tk.unk], ['tokenizer.ggml.add_bos_token', 'bool', true],
    ['tokenizer.ggml.add_eos_token', 'bool', false], ['tokenizer.ggml.add_space_prefix', 'bool', true],
  );
  return meta;
}

// GGUF `llama` rotates adjacent pairs, so its Q/K rows are the HF rows permuted; the GGUF rows are the
// ones generated here, and the HF writer applies the inverse (halfSplitOrder).
function writeArchGguf(file, m, dtype = 'F32') {
  // A llama-quantize mix name (Q4_K_M, ...) picks each matrix's type (shape is [rows, cols]).
  const typeOf = MIXES[dtype] ? (t) => mixType(dtype, t.gguf, t.shape[1], m.config.L) : () => dtype;
  const tensors = m.tensors.map((t) => ({ name: t.gguf, shape: t.shape, dtype: t.matrix ? typeOf(t) : 'F32', data: t.data }));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeGGUF(file, { metadata: archMetadata(m), tensors });
  return file;
}

function hfConfig(m, dtype) {
  const c = m.config;
  const cls = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', phi3: 'Phi3ForCausalLM' };
  const config = {
    architectures: [cls[m.arch]], model_type: m.arch, hidden_size: c.C, intermediate_size: c.HD,
    num_attention_heads: c.NH, num_hidden_layers: c.L, num_key_value_heads: c.NKV, vocab_size: c.V,
    max_position_embeddings: c.maxContext, rms_norm_eps: c.rmsEps, rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling, hidden_act: 'silu', tie_word_embeddings: c.tied, bos_token_id: m.tokenizer.bos,
    eos_token_id: m.tokenizer.eos, torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
  };
  if (m.arch === 'qwen3') Object.assign(config, { head_dim: c.HS, attention_bias: false });
  if (m.arch === 'qwen2' || m.arch === 'qwen3') config.use_sliding_window = false;
  return config;
}

function writeArchHf(dir, m, dtype = 'F32') {
  const c = m.config;
  const tensors = m.tensors.filter((t) => t.hf).map((t) => {
    const permute = m.arch === 'llama' && /attn_[qk]\.weight$/.test(t.gguf);
    const data = permute ? () => t.data.chunks(1 << 20, halfSplitOrder(t.shape[0], c.HS)) : t.data;
    return { name: t.hf, shape: t.shape, dtype: t.matrix ? dtype : 'F32', data };
  });
  const tokenizerConfig = { add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>',
    unk_token: '<unk>', legacy: true, model_max_length: c.maxContext, tokenizer_class: 'LlamaTokenizer' };
  fs.mkdirSync(dir, { recursive: true });
  writeHF(dir, { config: hfConfig(m, dtype), tensors, tokenizer: makeTokenizerJson(m.tokenizer), tokenizerConfig });
  return dir;
}

module.exports = { ARCHS, makeArchModel, writeArchGguf, writeArchHf, llama3RopeFactors, archMetadata };
