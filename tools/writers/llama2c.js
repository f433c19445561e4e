// llama2.c writers: the legacy (version 0) checkpoint and tokenizer.bin, as karpathy/llama2.c's
// export.py and tokenizer.py write them (see ../shared/models/stories260K/README.md for the layout).
//
//   writeLlama2c(file, { C, HD, L, NH, NKV, V, maxContext, weights })
//     weights: { tok_embd, layers: [{ attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down }],
//                output_norm, output }   (output null/undefined = tied: the header's vocab is positive)
//     each weight a float source (sources.js), row-major (out, in) as the model uses it.
//   writeLlama2cTokenizer(file, { pieces, scores })   pieces with plain spaces (not U+2581)
'use strict';

const fs = require('node:fs');
const { encodedChunks, writeAll } = require('./sources');

function writeSource(fd, source, count, name) {
  for (const chunk of encodedChunks(source, 'F32', count, name)) writeAll(fs, fd, chunk);
}

// The obsolete RoPE tables (freq_cis_real, freq_cis_imag), [seq_len, head_size / 2] each; readers skip them.
function* ropeTable(seqLen, HS, part) {
  const half = Math.floor(HS / 2);
  for (let pos = 0; pos < seqLen; pos++) {
    const row = new Float32Array(half);
    for (let i = 0; i < half; i++) {
      const angle = pos * 10000 ** (-(2 * i) / HS);
      row[i] = part === 'cos' ? Math.cos(angle) : Math.sin(angle);
    }
    yield row;
  }
}

function writeLlama2c(file, { C, HD, L, NH, NKV, V, maxContext, weights: w }) {
  if (C % NH) throw new Error(`C ${C} is not a multiple of NH ${NH}`);
  const HS = C / NH;
  const KVD = NKV * HS;
  const tied = !w.output;
  const header = Buffer.alloc(28);
  [C, HD, L, NH, NKV, tied ? V : -V, maxContext].forEach((v, i) => header.writeInt32LE(v, 4 * i));
  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fs, fd, header);
    writeSource(fd, w.tok_embd, V * C, 'tok_embd');
    // Each tensor type holds all layers back to back.
    const perLayer = [['attn_norm', C], ['wq', C * C], ['wk', KVD * C], ['wv', KVD * C], ['wo', C * C],
      ['ffn_norm', C], ['w_gate', HD * C], ['w_down', C * HD], ['w_up', HD * C]];
    for (const [key, count] of perLayer) {
      for (let l = 0; l < L; l++) writeSource(fd, w.layers[l][key], count, `layers[${l}].${key}`);
    }
    writeSource(fd, w.output_norm, C, 'output_norm');
    const half = Math.floor(HS / 2);
    writeSource(fd, () => ropeTable(maxContext, HS, 'cos'), maxContext * half, 'rope cos');
    writeSource(fd, () => ropeTable(maxContext, HS, 'sin'), maxContext * half, 'rope sin');
    if (!tied) writeSource(fd, w.output, V * C, 'output');
  } finally {
    fs.closeSync(fd);
  }
}

function writeLlama2cTokenizer(file, { pieces, scores }) {
  const bufs = pieces.map((p) => Buffer.from(p, 'utf8'));
  const maxLen = bufs.reduce((m, b) => Math.max(m, b.length), 0);
  const parts = [Buffer.alloc(4)];
  parts[0].writeInt32LE(maxLen);
  bufs.forEach((b, i) => {
    const head = Buffer.alloc(8);
    head.writeFloatLE(scores[i], 0);
    head.writeInt32LE(b.length, 4);
    parts.push(head, b);
  });
  fs.writeFileSync(file, Buffer.concat(parts));
}

module.exports = { writeLlama2c, writeLlama2cTokenizer };
