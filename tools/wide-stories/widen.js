// Exact widening of a small LLaMA model and its Chimera draft to a bigger shape that computes the same
// function (make.js beside this file). The construction, for real width C0 -> C:
//
// - Residual dimensions 0..C0-1 carry the small model's residual; K_CONST dimensions after them carry a
//   tiny constant c from the embedding (every layer's norms give them weight 0, and no layer writes
//   them); every other dimension is exactly zero.
// - RMSNorm over C instead of C0: gains divided by sqrt(C / C0), epsilon eps * C0 / C.
// - Head h of the small model (head size HS0, group g0) becomes head G * (h / g0) + h % g0 (group G);
//   its rotary pair j becomes pair j * HS / HS0, since theta^(-2 i / HS) at i = j HS / HS0 equals
//   theta^(-2 j / HS0); Wq is scaled by sqrt(HS / HS0) for the change of 1 / sqrt(head size).
// - Layers past the small model's write nothing (zero Wo and W2).
// - Padded vocabulary rows (of the output and of draft heads) read the constant dimensions with a
//   weight of -PAD_WEIGHT: after the final norm those carry c * G / rms > 0, so a padded token's logit
//   is about -64 * PAD_WEIGHT * c * G / rms (below -500 for any rms this model reaches) and never wins.
//   Real rows give the constant dimensions weight 0.
// - Wherever a weight cannot change the result (it multiplies an input that is exactly zero, or only
//   feeds outputs that are multiplied by zero), it holds a seeded random value ~N(0, 0.02), so every
//   tensor is dense like a real model's. What must be zero is zero.
// The draft is widened the same way to its own width D (no constant dimensions inside it): its input
// projections P_e and P_c copy the real dimensions and ignore the constant ones, so the constant never
// reaches its layer.
'use strict';

const { normalTables } = require('../writers/normal-table');

const K_CONST = 64;          // residual dimensions that carry the constant
const CONST_VALUE = 1e-4;    // c, in the embedding
const CONST_GAIN = 10;       // G, the final norm's gain on the constant dimensions
const PAD_WEIGHT = 1e4;      // padded vocabulary rows read the constant dimensions with -PAD_WEIGHT

const TABLE = normalTables(0.02).t32;

// Seeded random values ~N(0, 0.02) (xorshift32 over a 65536-level table).
class RandomSource {
  constructor(seed) { this.x = (seed >>> 0) || 0x9e3779b9; }
  fill(out) {
    let x = this.x;
    for (let i = 0; i < out.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      out[i] = TABLE[x & 0xffff];
    }
    this.x = x;
    return out;
  }
  matrix(rows, cols) { return this.fill(new Float32Array(rows * cols)); }
}

// Row-major matrix helpers.
function zeroCols(m, cols, c0, c1) {
  const rows = m.length / cols;
  for (let r = 0; r < rows; r++) m.fill(0, r * cols + c0, r * cols + c1);
}
function zeroRows(m, cols, r0, r1) { m.fill(0, r0 * cols, r1 * cols); }
// dst[dr][dc0 + j] = scale * src[sr][sc0 + j] for j < n
function copyRow(dst, dcols, dr, dc0, src, scols, sr, sc0, n, scale = 1) {
  for (let j = 0; j < n; j++) dst[dr * dcols + dc0 + j] = scale * src[sr * scols + sc0 + j];
}

// The wide row of small row d (0 <= d < HS0) of a rotary head: pair d >> 1 -> pair (d >> 1) * s.
function ropeDim(d, s) { return 2 * s * (d >> 1) + (d & 1); }

// Widens one decoder layer. small: { attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
// ffn_up, ffn_down } as row-major Float32Arrays; d0 / d: { C, NH, NKV, HS, F }; constDims: [from, to) of
// the residual that must be ignored. Returns the wide tensors (same names).
function widenLayer(small, d0, d, constDims, rnd) {
  const { C: C0, NH: NH0, NKV: NKV0, HS: HS0, F: F0 } = d0;
  const { C, NH, NKV, HS, F } = d;
  const g0 = NH0 / NKV0, G = NH / NKV, s = HS / HS0;
  if (!Number.isInteger(s) || NKV < NKV0 || G < g0 || F < F0 || C < C0) throw new Error('widenLayer: the wide shape must contain the small one');
  const wideHead = (h) => G * Math.floor(h / g0) + (h % g0);
  const normGain = 1 / Math.sqrt(C / C0);
  const norm = (g) => {
    const out = rnd.fill(new Float32Array(C)).map(Math.abs);
    for (let i = 0; i < C0; i++) out[i] = g[i] * normGain;
    out.fill(0, constDims[0], constDims[1]);
    return out;
  };
  const QD = NH * HS, KVD = NKV * HS, QD0 = NH0 * HS0;
  const wq = rnd.matrix(QD, C), wk = rnd.matrix(KVD, C), wv = rnd.matrix(KVD, C);
  zeroCols(wk, C, 0, C0);  // keys of padded pairs are zero, so random queries there add nothing
  const qScale = Math.sqrt(s);
  for (let h = 0; h < NH0; h++)
    for (let j = 0; j < HS0; j++) copyRow(wq, C, wideHead(h) * HS + ropeDim(j, s), 0, small.attn_q, C0, h * HS0 + j, 0, C0, qScale);
  for (let g = 0; g < NKV0; g++)
    for (let j = 0; j < HS0; j++) {
      copyRow(wk, C, g * HS + ropeDim(j, s), 0, small.attn_k, C0, g * HS0 + j, 0, C0);
      copyRow(wv, C, g * HS + j, 0, small.attn_v, C0, g * HS0 + j, 0, C0);
    }
  // Wo reads only the real heads' real value dimensions and writes only real residual dimensions.
  const wo = new Float32Array(C * QD);
  for (let i = 0; i < C0; i++)
    for (let h = 0; h < NH0; h++)
      for (let j = 0; j < HS0; j++) wo[i * QD + wideHead(h) * HS + j] = small.attn_output[i * QD0 + h * HS0 + j];
  const gate = rnd.matrix(F, C), up = rnd.matrix(F, C);
  zeroCols(up, C, 0, C0);  // padded hidden units: SiLU(gate) * 0
  for (let u = 0; u < F0; u++) {
    copyRow(gate, C, u, 0, small.ffn_gate, C0, u, 0, C0);
    copyRow(up, C, u, 0, small.ffn_up, C0, u, 0, C0);
  }
  const down = rnd.matrix(C, F);
  zeroRows(down, F, C0, C);
  for (let i = 0; i < C0; i++) copyRow(down, F, i, 0, small.ffn_down, F0, i, 0, F0);
  return { attn_norm: norm(small.attn_norm), attn_q: wq, attn_k: wk, attn_v: wv, attn_output: wo,
    ffn_norm: norm(small.ffn_norm), ffn_gate: gate, ffn_up: up, ffn_down: down };
}

// A layer that adds nothing: random everywhere except zero Wo and W2.
function silentLayer(d, rnd) {
  const { C, NH, NKV, HS, F } = d;
  return { attn_norm: rnd.fill(new Float32Array(C)).map((v) => 1 + v), attn_q: rnd.matrix(NH * HS, C),
    attn_k: rnd.matrix(NKV * HS, C), attn_v: rnd.matrix(NKV * HS, C), attn_output: new Float32Array(C * NH * HS),
    ffn_norm: rnd.fill(new Float32Array(C)).map((v) => 1 + v), ffn_gate: rnd.matrix(F, C), ffn_up: rnd.matrix(F, C),
    ffn_down: new Float32Array(C * F) };
}

// The wide token embedding (V, C): real rows copy the small embedding and carry the constant.
function widenEmbedding(e0, V0, C0, V, C, rnd) {
  const e = rnd.matrix(V, C);
  for (let t = 0; t < V0; t++) {
    e.fill(0, t * C, (t + 1) * C);
    copyRow(e, C, t, 0, e0, C0, t, 0, C0);
    e.fill(CONST_VALUE, t * C + C0, t * C + C0 + K_CONST);
  }
  return e;
}

// Output rows (V, inCols) over an input whose constant dimensions are [c0, c0 + K_CONST): real rows
// (t < V0) get `real(t, row)` and weight 0 on the constants; padded rows weight -PAD_WEIGHT there.
function vocabularyRows(V, V0, inCols, c0, rnd, real) {
  const w = rnd.matrix(V, inCols);
  for (let t = 0; t < V; t++) {
    const row = w.subarray(t * inCols, (t + 1) * inCols);
    if (t < V0) {
      row.fill(0, c0, c0 + K_CONST);
      real(t, row);
    } else {
      row.fill(-PAD_WEIGHT, c0, c0 + K_CONST);
    }
  }
  return w;
}

// An input projection (D, C) that copies real dimensions 0..C0-1 and reads nothing else but zeros.
function copyProjection(D, C, C0, rnd) {
  const p = rnd.matrix(D, C);
  zeroCols(p, C, 0, C0 + K_CONST);
  for (let i = 0; i < C0; i++) p[i * C + i] = 1;
  return p;
}

module.exports = { K_CONST, CONST_VALUE, CONST_GAIN, PAD_WEIGHT, RandomSource, widenLayer, silentLayer,
  widenEmbedding, vocabularyRows, copyProjection, copyRow, ropeDim };
