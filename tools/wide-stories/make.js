// stories260K widened exactly to the TinyLlama-1.1B shape: a memory-bound model with real behaviour.
// Used by bench/make-wide-stories.js (the command line), the benchmark and `chimera demo`.
//
//   node bench/make-wide-stories.js [--dtype f32|f16|bf16|q8_0|q4_k_m[,...]] [--out DIR] [--force]
//        [--model models/stories260K.gguf] [--draft models/stories260K.chimera.safetensors]
//        [--dim 2048 --layers 22 --heads 32 --kv-heads 4 --ffn 5632 --vocab 32000 --context 2048]
//        [--draft-width 256 --head-vocab 8192] [--seed N] [--quiet]
//
// Writes, for each dtype (default f16; --out defaults to bench/models, git-ignored):
//   DIR/wide-stories260K-<dtype>.gguf                   dim 2048, 22 layers, 32 / 4 heads, FFN 5632,
//       vocabulary 32000, untied output, every tensor dense and stored, computing stories260K's function
//       (F32: its greedy output is golden.json's; other types: stories260K up to rounding);
//   DIR/wide-stories260K-<dtype>.chimera.safetensors    the project's trained stories260K draft widened
//       the same way: inputs 2048 wide, its own width 256 (8 heads of 32, FFN 704), heads over 8,192
//       tokens. It accepts what the small draft accepts. Safetensors holds F32 / F16 / BF16: the q8_0
//       model's draft is F16 (load it with { dtype: 'Q8_0' }).
// The construction is in widen.js. Smaller shapes (for tests) take the same flags. Files are
// written to <name>.partial and renamed when complete; existing files are kept unless --force.
'use strict';

const fs = require('node:fs');
const { MIXES, mixType } = require('../writers/quant-mix');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { readGGUF } = require('../readers/gguf');
const { writeGGUF } = require('../writers/gguf');
const { writeSafetensors } = require('../writers/hf');
const W = require('./widen');

const ROOT = path.join(__dirname, '..', '..');
// [dtype or llama-quantize mix (tools/writers/quant-mix.js), general.file_type]
const DTYPES = { f32: ['F32', 0], f16: ['F16', 1], bf16: ['BF16', 32], q8_0: ['Q8_0', 7], q4_k_m: ['Q4_K_M', 15] };
const DRAFT_DTYPE = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'F16', q4_k_m: 'F16' };
const LAYER_NAMES = ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'];
const UNUSED_TOKEN = 5;  // GGUF token type: never produced by tokenising text

const USAGE = 'usage: node bench/make-wide-stories.js [--dtype f32|f16|bf16|q8_0|q4_k_m[,...]] [--out DIR] [--force]\n' +
  '  [--model GGUF] [--draft SAFETENSORS|none] [--dim N --layers N --heads N --kv-heads N --ffn N --vocab N --context N]\n' +
  '  [--draft-width N --head-vocab N] [--seed N] [--quiet]';

function parseArgs(argv) {
  const a = { dtypes: ['f16'], out: path.join(ROOT, 'bench', 'models'), force: false, quiet: false, seed: 260,
    model: path.join(ROOT, 'models', 'stories260K.gguf'), draft: path.join(ROOT, 'models', 'stories260K.chimera.safetensors'),
    dim: 2048, layers: 22, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000, context: 2048, draftWidth: 256, headVocab: 8192 };
  const ints = { '--dim': 'dim', '--layers': 'layers', '--heads': 'heads', '--kv-heads': 'kvHeads', '--ffn': 'ffn',
    '--vocab': 'vocab', '--context': 'context', '--draft-width': 'draftWidth', '--head-vocab': 'headVocab', '--seed': 'seed' };
  for (let i = 0; i < argv.length; i++) {
    let [k, v] = argv[i].split(/=(.*)/s);
    const value = () => (v !== undefined ? v : argv[++i]);
    if (k === '--dtype' || k === '--dtypes') a.dtypes = value().split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    else if (k === '--out') a.out = path.resolve(value());
    else if (k === '--model') a.model = path.resolve(value());
    else if (k === '--draft') a.draft = value() === 'none' ? null : path.resolve(v !== undefined ? v : argv[i]);
    else if (k === '--force') a.force = true;
    else if (k === '--quiet') a.quiet = true;
    else if (ints[k]) {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${k} needs a positive integer`);
      a[ints[k]] = n;
    } else throw Object.assign(new Error(`${k === '--help' || k === '-h' ? '' : `unknown argument ${argv[i]}\n`}${USAGE}`), { usage: true });
  }
  for (const d of a.dtypes) if (!DTYPES[d]) throw new Error(`unknown dtype ${d} (${Object.keys(DTYPES).join(', ')})`);
  return a;
}

function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const data = buf.subarray(8 + n);
  const tensors = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = t.data_offsets;
    const bytes = Buffer.from(data.subarray(b, e));  // aligned copy
    if (t.dtype === 'F32') tensors.set(name, { shape: t.shape, data: new Float32Array(bytes.buffer, bytes.byteOffset, (e - b) / 4) });
    else if (t.dtype === 'I32') tensors.set(name, { shape: t.shape, data: new Int32Array(bytes.buffer, bytes.byteOffset, (e - b) / 4) });
    else throw new Error(`${file}: tensor ${name} is ${t.dtype}; widening reads F32 drafts (save the draft as F32)`);
  }
  return { metadata: header.__metadata__ || {}, tensors };
}

// The small model as row-major Float32Arrays plus its shape.
function readSmall(file) {
  const g = readGGUF(file);
  const m = (k) => g.metadata.get(k);
  if (m('general.architecture') !== 'llama') throw new Error(`${file}: a llama model is needed`);
  const shape = { C: m('llama.embedding_length'), L: m('llama.block_count'), NH: m('llama.attention.head_count'),
    NKV: m('llama.attention.head_count_kv'), F: m('llama.feed_forward_length'), eps: m('llama.attention.layer_norm_rms_epsilon'),
    theta: m('llama.rope.freq_base') || 10000 };
  shape.HS = shape.C / shape.NH;
  const t = (name) => {
    const x = g.tensors.get(name);
    if (!x) throw new Error(`${file}: tensor ${name} missing`);
    return x.data();
  };
  shape.V = g.tensors.get('token_embd.weight').dims[1];
  const layers = [];
  for (let l = 0; l < shape.L; l++) {
    const layer = {};
    for (const n of LAYER_NAMES) layer[n] = t(`blk.${l}.${n}.weight`);
    layers.push(layer);
  }
  const output = g.tensors.has('output.weight') ? t('output.weight') : t('token_embd.weight');
  return { g, shape, embd: t('token_embd.weight'), outputNorm: t('output_norm.weight'), output, layers };
}

// Native base_fingerprint(): 16 values of the embedding and 16 of the output at hashed positions.
function baseFingerprint(embd, output, V, C) {
  const out = [];
  for (const w of [embd, output])
    for (let i = 0; i < 16; i++) {
      const r = (i * 2654435761) % V, c = (i * 40503) % C;
      out.push(w[r * C + c]);
    }
  return out.map((v) => String(Math.fround(v))).join(',');
}

function wideNames(a) {
  return { model: path.join(a.out, `wide-stories260K-${a.dtype}.gguf`), draft: path.join(a.out, `wide-stories260K-${a.dtype}.chimera.safetensors`) };
}

// Describes the wide model: GGUF metadata and lazily built tensors (built one at a time when written).
function describeWideModel(small, a) {
  const s = small.shape;
  const d = { C: a.dim, NH: a.heads, NKV: a.kvHeads, HS: a.dim / a.heads, F: a.ffn };
  if (a.dim < s.C + W.K_CONST || a.vocab < s.V || a.layers < s.L) throw new Error('the wide shape must contain stories260K plus 64 constant dimensions');
  const [dtype, fileType] = DTYPES[a.dtype];
  const md = (k) => small.g.metadata.get(k);
  const tokens = [...md('tokenizer.ggml.tokens')], scores = [...md('tokenizer.ggml.scores')], types = [...md('tokenizer.ggml.token_type')];
  for (let t = s.V; t < a.vocab; t++) {
    tokens.push(`<unused${t}>`);
    scores.push(0);
    types.push(UNUSED_TOKEN);
  }
  const metadata = [
    ['general.architecture', 'string', 'llama'],
    ['general.name', 'string', `wide-stories260K-${a.dtype}`],
    ['general.description', 'string', `stories260K (Karpathy, llama2.c, MIT) widened exactly to dim ${a.dim}, ${a.layers} layers, ` +
      `${a.heads}/${a.kvHeads} heads, FFN ${a.ffn}, vocabulary ${a.vocab}; chimera-llm benchmark model (bench/make-wide-stories.js)`],
    ['general.file_type', 'uint32', fileType],
    ['general.quantization_version', 'uint32', 2],
    ['llama.context_length', 'uint32', a.context],
    ['llama.embedding_length', 'uint32', a.dim],
    ['llama.block_count', 'uint32', a.layers],
    ['llama.feed_forward_length', 'uint32', a.ffn],
    ['llama.rope.dimension_count', 'uint32', d.HS],
    ['llama.rope.freq_base', 'float32', s.theta],
    ['llama.attention.head_count', 'uint32', a.heads],
    ['llama.attention.head_count_kv', 'uint32', a.kvHeads],
    ['llama.attention.layer_norm_rms_epsilon', 'float32', (s.eps * s.C) / a.dim],
    ['llama.vocab_size', 'uint32', a.vocab],
    ['tokenizer.ggml.model', 'string', 'llama'],
    ['tokenizer.ggml.tokens', 'string[]', tokens],
    ['tokenizer.ggml.scores', 'float32[]', scores],
    ['tokenizer.ggml.token_type', 'int32[]', types],
  ];
  for (const k of ['tokenizer.ggml.unknown_token_id', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id'])
    if (md(k) !== undefined) metadata.push([k, 'uint32', md(k)]);
  for (const k of ['tokenizer.ggml.add_bos_token', 'tokenizer.ggml.add_eos_token', 'tokenizer.ggml.add_space_prefix'])
    if (md(k) !== undefined) metadata.push([k, 'bool', md(k)]);

  const rnd = new W.RandomSource(a.seed);
  const d0 = { C: s.C, NH: s.NH, NKV: s.NKV, HS: s.HS, F: s.F };
  const constDims = [s.C, s.C + W.K_CONST];
  const embd = W.widenEmbedding(small.embd, s.V, s.C, a.vocab, a.dim, rnd);
  const output = W.vocabularyRows(a.vocab, s.V, a.dim, s.C, rnd, (t, row) => row.set(small.output.subarray(t * s.C, (t + 1) * s.C)));
  const outputNorm = rnd.fill(new Float32Array(a.dim)).map(Math.abs);
  for (let i = 0; i < s.C; i++) outputNorm[i] = small.outputNorm[i] / Math.sqrt(a.dim / s.C);
  outputNorm.fill(W.CONST_GAIN, constDims[0], constDims[1]);

  const tensors = [];
  // A mix name gives each matrix the type llama-quantize would (shape is [rows, cols]).
  const typeOf = (name, shape) => (MIXES[dtype] ? mixType(dtype, name, shape[1], a.layers) : dtype);
  const add = (name, shape, make, vector = false) =>
    tensors.push({ name, shape, dtype: vector ? 'F32' : typeOf(name, shape), data: () => [make()] });
  add('token_embd.weight', [a.vocab, a.dim], () => embd);
  for (let l = 0; l < a.layers; l++) {
    // Each layer's tensors are built when its first tensor is written, then released.
    let layer = null;
    const get = (n) => () => {
      if (!layer) layer = l < s.L ? W.widenLayer(small.layers[l], d0, d, constDims, rnd) : W.silentLayer(d, rnd);
      const out = layer[n];
      if (n === 'ffn_down') layer = null;
      return out;
    };
    const QD = d.NH * d.HS, KVD = d.NKV * d.HS;
    add(`blk.${l}.attn_norm.weight`, [a.dim], get('attn_norm'), true);
    add(`blk.${l}.attn_q.weight`, [QD, a.dim], get('attn_q'));
    add(`blk.${l}.attn_k.weight`, [KVD, a.dim], get('attn_k'));
    add(`blk.${l}.attn_v.weight`, [KVD, a.dim], get('attn_v'));
    add(`blk.${l}.attn_output.weight`, [a.dim, QD], get('attn_output'));
    add(`blk.${l}.ffn_norm.weight`, [a.dim], get('ffn_norm'), true);
    add(`blk.${l}.ffn_gate.weight`, [a.ffn, a.dim], get('ffn_gate'));
    add(`blk.${l}.ffn_up.weight`, [a.ffn, a.dim], get('ffn_up'));
    add(`blk.${l}.ffn_down.weight`, [a.dim, a.ffn], get('ffn_down'));
  }
  add('output_norm.weight', [a.dim], () => outputNorm, true);
  add('output.weight', [a.vocab, a.dim], () => output);
  return { metadata, tensors, fingerprint: baseFingerprint(embd, output, a.vocab, a.dim) };
}

// The wide draft: the small draft (format 1 or 2, F32) widened to width draftWidth over a wide base.
function describeWideDraft(small, smallDraft, fingerprint, a) {
  const s = small.shape;
  const meta = smallDraft.metadata;
  const T = (n) => {
    const t = smallDraft.tensors.get(n);
    if (!t) throw new Error(`draft tensor ${n} missing`);
    return t.data;
  };
  const version = Number(meta.format_version);
  const K = Number(meta.heads);
  const D0 = version >= 2 ? Number(meta.draft_width) : s.C;
  const ld0 = version >= 2
    ? { C: D0, NH: Number(meta.draft_head_count), NKV: Number(meta.draft_head_count_kv), HS: Number(meta.draft_head_size), F: Number(meta.draft_feed_forward_length) }
    : { C: s.C, NH: s.NH, NKV: s.NKV, HS: s.HS, F: s.F };
  const eps0 = version >= 2 && meta.draft_rms_eps ? Number(meta.draft_rms_eps) : s.eps;
  const D = a.draftWidth, C = a.dim, C0 = s.C;
  const ld = { C: D, NH: ld0.NH, NKV: ld0.NKV, HS: D / ld0.NH, F: Math.max(ld0.F, Math.ceil((D * a.ffn) / a.dim / 32) * 32) };
  if (D < D0 || !Number.isInteger(ld.HS) || ld.HS % ld0.HS) throw new Error(`draft width ${D} must hold the small draft's (${D0}) with head sizes a multiple of ${ld0.HS}`);
  const smallTokens = version >= 2 ? Array.from(T('heads.tokens')) : Array.from({ length: s.V }, (_, i) => i);
  const headTokens = [...smallTokens];
  for (let t = s.V; headTokens.length < Math.max(a.headVocab, smallTokens.length) && t < a.vocab; t++) headTokens.push(t);
  headTokens.sort((x, y) => x - y);
  const smallRow = new Map(smallTokens.map((t, i) => [t, i]));
  const rnd = new W.RandomSource(a.seed ^ 0x5eed);
  const [dtype] = [DRAFT_DTYPE[a.dtype]];

  // P_e and P_c: the small draft's projections (identity in format 1) on the real dimensions.
  const projection = (name) => {
    const p = W.copyProjection(D, C, C0, rnd);
    for (let i = 0; i < D0; i++) p.fill(0, i * C, i * C + C0);
    const p0 = version >= 2 ? T(name) : null;
    for (let i = 0; i < D0; i++)
      for (let j = 0; j < C0; j++) p[i * C + j] = p0 ? p0[i * C0 + j] : i === j ? 1 : 0;
    return p;
  };
  // Trigram encoder over [e_a; e_b; e_c]: block b of the small (offset b D0) sits at offset b D.
  const D3 = 3 * D, D30 = 3 * D0;
  const res0 = T('trigram.res.weight'), bias0 = T('trigram.res.bias'), proj0 = T('trigram.proj.weight');
  const res = rnd.matrix(D3, D3);
  for (let bi = 0; bi < 3; bi++)
    for (let i = 0; i < D0; i++)
      for (let bj = 0; bj < 3; bj++) W.copyRow(res, D3, bi * D + i, bj * D, res0, D30, bi * D0 + i, bj * D0, D0);
  const bias = rnd.fill(new Float32Array(D3));
  for (let b = 0; b < 3; b++) for (let i = 0; i < D0; i++) bias[b * D + i] = bias0[b * D0 + i];
  const proj = new Float32Array(D * D3);  // padded R outputs are SiLU(random): W_p must not read them
  for (let i = 0; i < D0; i++) for (let b = 0; b < 3; b++) W.copyRow(proj, D3, i, b * D, proj0, D30, i, b * D0, D0);
  const smallLayer = {};
  for (const n of LAYER_NAMES) smallLayer[n] = T(`layer.${n}.weight`);
  const layer = W.widenLayer(smallLayer, ld0, ld, [D, D], rnd);

  const tensors = [];
  const add = (name, shape, data, vector = false) => tensors.push({ name, shape, dtype: vector ? 'F32' : dtype, data });
  add('trigram.embed_proj.weight', [D, C], projection('trigram.embed_proj.weight'));
  add('trigram.res.weight', [D3, D3], res);
  add('trigram.res.bias', [D3], bias, true);
  add('trigram.proj.weight', [D, D3], proj);
  add('context.proj.weight', [D, C], projection('context.proj.weight'));
  const QD = ld.NH * ld.HS, KVD = ld.NKV * ld.HS;
  const layerShapes = { attn_norm: [D], attn_q: [QD, D], attn_k: [KVD, D], attn_v: [KVD, D], attn_output: [D, QD],
    ffn_norm: [D], ffn_gate: [ld.F, D], ffn_up: [ld.F, D], ffn_down: [D, ld.F] };
  for (const n of LAYER_NAMES) add(`layer.${n}.weight`, layerShapes[n], layer[n], n.endsWith('norm'));
  // Heads over [h_n (C) ; h^ (D)]: the small head's two halves at offsets 0 and C.
  const in0 = C0 + D0, inW = C + D, Vh = headTokens.length;
  for (let k = 0; k < K; k++) {
    const h0 = T(`heads.${k}.weight`);
    const h = W.vocabularyRows(Vh, Vh, inW, C0, rnd, () => {});
    for (let r = 0; r < Vh; r++) {
      const row = h.subarray(r * inW, (r + 1) * inW);
      const sr = smallRow.get(headTokens[r]);
      if (sr === undefined) { row.fill(-W.PAD_WEIGHT, C0, C0 + W.K_CONST); continue; }
      W.copyRow(row, inW, 0, 0, h0, in0, sr, 0, C0);
      W.copyRow(row, inW, 0, C, h0, in0, sr, C0, D0);
    }
    add(`heads.${k}.weight`, [Vh, inW], h);
  }
  tensors.push({ name: 'heads.tokens', shape: [Vh], dtype: 'I32', data: Int32Array.from(headTokens) });
  const metadata = {
    format: 'chimera-draft', format_version: '2', heads: String(K), hidden_size: String(C), vocab_size: String(a.vocab),
    base_layers: String(a.layers), base_fingerprint: fingerprint, draft_width: String(D),
    draft_head_count: String(ld.NH), draft_head_count_kv: String(ld.NKV), draft_head_size: String(ld.HS),
    draft_rope_dimension_count: String(ld.HS), draft_feed_forward_length: String(ld.F),
    draft_rms_eps: String(Math.fround((eps0 * D0) / D)), head_vocab_size: String(Vh),
  };
  return { metadata, tensors };
}

function writeAtomically(file, write) {
  const tmp = `${file}.partial`;
  try {
    write(tmp);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.renameSync(tmp, file);
}

// args: parseArgs' result; onProgress(fraction, dtype) is called as tensors are written (else a
// percentage goes to stderr unless args.quiet). Returns the files, one { model, draft } per dtype.
function makeWide(args, onProgress) {
  const log = (s) => { if (!args.quiet && !onProgress) process.stderr.write(s); };
  const small = readSmall(args.model);
  const smallDraft = args.draft ? readSafetensors(args.draft) : null;
  fs.mkdirSync(args.out, { recursive: true });
  const written = [];
  for (const dtype of args.dtypes) {
    const a = { ...args, dtype };
    const names = wideNames(a);
    if (fs.existsSync(names.model) && (!smallDraft || fs.existsSync(names.draft)) && !args.force) {
      log(`[make-wide-stories] ${names.model} exists, skipping\n`);
      written.push(names);
      continue;
    }
    const t0 = performance.now();
    const model = describeWideModel(small, a);
    log(`[make-wide-stories] writing ${names.model}: stories260K widened to dim ${a.dim}, ${a.layers} layers, ` +
      `${a.heads}/${a.kvHeads} heads, FFN ${a.ffn}, vocabulary ${a.vocab}, ${DTYPES[dtype][0]}\n`);
    let done = 0, shown = -1;
    const tensors = model.tensors.map((t) => ({ ...t, data: () => {
      done++;
      if (onProgress) onProgress(done / model.tensors.length, dtype);
      const pct = Math.floor((100 * done) / model.tensors.length);
      if (pct !== shown) { shown = pct; log(`\r[make-wide-stories] ${dtype}: ${pct}%  `); }
      return t.data();
    } }));
    writeAtomically(names.model, (tmp) => writeGGUF(tmp, { metadata: model.metadata, tensors }));
    log(`\n[make-wide-stories] ${dtype}: ${fs.statSync(names.model).size} bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    if (smallDraft) {
      const draft = describeWideDraft(small, smallDraft, model.fingerprint, a);
      writeAtomically(names.draft, (tmp) => writeSafetensors(tmp, draft.tensors, draft.metadata));
      log(`[make-wide-stories] ${names.draft}: ${fs.statSync(names.draft).size} bytes\n`);
    }
    written.push(names);
  }
  return written;
}

module.exports = { makeWide, parseArgs, wideNames };
