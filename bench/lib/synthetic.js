// Pieces of the synthetic LLaMA model used by bench/make-synthetic.js: the tokenizer vocabulary, the
// seeded weight streams (xorshift32 + inverse-CDF table, ~N(0, sigma)) encoded as F32 / F16 / Q8_0.
// Everything is produced in chunks so that no tensor (let alone a model) is held in memory whole.
'use strict';

// Element encoders of the project's model writers (bit-exact with native/common/dtype.h and ggml's reference
// quantize_row_q8_0).
const { bytesFor, encodeFloats } = require('../../tools/writers/dtypes');

// ---------- tokenizer: a valid SentencePiece ("llama") vocabulary ----------
// ids 0..2: <unk> <s> </s>; 3..258: <0x00>..<0xFF> byte tokens; then "▁", the 94 printable ASCII
// characters, and "▁" + every lowercase word of 1, 2, 3 letters (and 4 letters until the vocabulary is
// full). Every prefix of a "▁word" piece is a piece too, so SentencePiece merging always reaches it.
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 };

function makeVocab(size) {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_TYPE.BYTE);
  }
  const push = (p) => {
    if (tokens.length < size) { tokens.push(p); types.push(TOKEN_TYPE.NORMAL); }
  };
  push('\u2581');
  for (let c = 33; c <= 126; c++) push(String.fromCharCode(c));
  const L = 'abcdefghijklmnopqrstuvwxyz';
  let words = [''];
  for (let len = 1; tokens.length < size; len++) {
    const next = [];
    for (const w of words) for (const c of L) next.push(w + c);
    words = next;
    for (const w of words) push('\u2581' + w);
  }
  // Scores: specials and bytes 0, then strictly decreasing (earlier pieces are preferred merges).
  const scores = tokens.map((_, i) => (i < 259 ? 0 : -(i - 258)));
  return { tokens, types, scores };
}

// ---------- PRNG and normal values ----------
// xorshift32 (Marsaglia); a zero state is replaced. Seeds come from an FNV-1a hash of the tensor name,
// so every dtype of the model gets the same underlying values.
function seedFor(globalSeed, name) {
  let h = (2166136261 ^ globalSeed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return h || 0x9e3779b9;
}

const { normInv, normalTables } = require('../../tools/writers/normal-table');

// GGML type ids and their storage.
const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14 };
const GGML_NAME = Object.fromEntries(Object.entries(GGML).map(([k, v]) => [v, k]));
function tensorBytes(type, n) {
  if (type === GGML.F32) return n * 4;
  if (type === GGML.F16) return n * 2;
  if (GGML_NAME[type]) return bytesFor(GGML_NAME[type], n);
  throw new Error(`unsupported type ${type}`);
}

// Yields Buffers with the `n` elements of a random tensor of `type` (chunks of `chunkElems`, a
// multiple of 32). Element i is table[16-bit index i] with indexes from one xorshift32 stream.
function* randomTensorChunks(type, n, seed, tables, chunkElems = 1 << 21) {
  let x = seed >>> 0;
  const { t32, t16 } = tables;
  for (let off = 0; off < n; off += chunkElems) {
    const m = Math.min(chunkElems, n - off);
    // m is even (all tensor sizes here are); each xorshift step gives two indexes.
    const idx = new Uint16Array(m);
    for (let i = 0; i < m; i += 2) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      idx[i] = x & 0xffff;
      idx[i + 1] = x >>> 16;
    }
    if (type === GGML.F16) {
      const out = new Uint16Array(m);
      for (let i = 0; i < m; i++) out[i] = t16[idx[i]];
      yield Buffer.from(out.buffer);
    } else if (type === GGML.F32) {
      const out = new Float32Array(m);
      for (let i = 0; i < m; i++) out[i] = t32[idx[i]];
      yield Buffer.from(out.buffer);
    } else if (GGML_NAME[type]) {
      // Block types (Q8_0: F16 scale amax / 127 and 32 int8; Q4_0, k-quants: tools/writers/quant-blocks.js);
      // chunks are multiples of 256 values, so blocks never straddle them.
      const vals = new Float32Array(m);
      for (let i = 0; i < m; i++) vals[i] = t32[idx[i]];
      yield encodeFloats(GGML_NAME[type], vals);
    } else {
      throw new Error(`unsupported type ${type}`);
    }
  }
}

// Yields Buffers of `n` F32 values equal to `value`.
function* constTensorChunks(n, value, chunkElems = 1 << 20) {
  for (let off = 0; off < n; off += chunkElems) {
    const m = Math.min(chunkElems, n - off);
    yield Buffer.from(new Float32Array(m).fill(value).buffer);
  }
}

module.exports = { TOKEN_TYPE, GGML, makeVocab, seedFor, normInv, normalTables, tensorBytes,
  randomTensorChunks, constTensorChunks };
