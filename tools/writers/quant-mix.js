// Which type each tensor gets in a llama-quantize style mix (Q4_K_M, Q5_K_M, ...), so the writers can
// produce files shaped like the ones people download. As llama.cpp's mixes: the output matrix takes Q6_K;
// in the _M mixes attn_v and ffn_down take Q6_K in the first and last eighth of the layers and every
// third layer between; a tensor whose rows are not whole blocks of its type falls back to Q8_0 (or F16).
'use strict';

const { blockSize } = require('./dtypes');

const MIXES = {
  Q4_0: { base: 'Q4_0', output: 'Q6_K', moreBits: null },
  Q4_K_S: { base: 'Q4_K', output: 'Q6_K', moreBits: null },
  Q4_K_M: { base: 'Q4_K', output: 'Q6_K', moreBits: 'Q6_K' },
  Q5_K_S: { base: 'Q5_K', output: 'Q6_K', moreBits: null },
  Q5_K_M: { base: 'Q5_K', output: 'Q6_K', moreBits: 'Q6_K' },
  Q6_K: { base: 'Q6_K', output: 'Q6_K', moreBits: null },
};
// llama-quantize's file types, for general.file_type.
const FILE_TYPE = { Q4_0: 2, Q4_K_S: 14, Q4_K_M: 15, Q5_K_S: 16, Q5_K_M: 17, Q6_K: 18 };

const useMoreBits = (layer, layers) =>
  layer < layers / 8 || layer >= (7 * layers) / 8 || (layer - Math.floor(layers / 8)) % 3 === 2;

function fits(dtype, cols) {
  return cols % blockSize(dtype) === 0;
}

// The type of matrix `name` (GGUF name, e.g. blk.3.attn_v.weight) with `cols` columns in mix `mix`.
function mixType(mix, name, cols, layers) {
  const m = MIXES[mix];
  if (!m) throw new Error(`unknown quantisation mix ${mix} (${Object.keys(MIXES).join(', ')})`);
  let want = m.base;
  const layer = /^blk\.(\d+)\./.exec(name);
  if (name === 'output.weight') want = m.output;
  else if (m.moreBits && layer && /\.(attn_v|ffn_down)\.weight$/.test(name) && useMoreBits(Number(layer[1]), layers))
    want = m.moreBits;
  if (fits(want, cols)) return want;
  return fits('Q8_0', cols) ? 'Q8_0' : 'F16';
}

module.exports = { MIXES, FILE_TYPE, mixType };
