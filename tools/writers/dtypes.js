// Element encodings shared by the model writers: F32, F16 and BF16 (round to nearest even, bit-exact
// with native/common/dtype.h), ggml Q8_0 (blocks of 32: an F16 scale then 32 int8, as ggml's
// quantize_row_q8_0_ref), and Q4_0 / Q4_K / Q5_K / Q6_K (quant-blocks.js). Also the decoders, so tests
// can compute what a file really holds.
'use strict';

const { BLOCK, BLOCK_BYTES, makeQuantBlocks } = require('./quant-blocks');

const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 };
const DTYPES = Object.keys(GGML_TYPE);
const Q8_BLOCK = 32;
const Q8_BLOCK_BYTES = 34;
// Values per block of each type (1 for the float types).
const blockSize = (dtype) => (dtype === 'Q8_0' ? Q8_BLOCK : BLOCK[dtype] || 1);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function checkDtype(dtype) {
  if (!DTYPES.includes(dtype)) throw new Error(`unknown dtype ${dtype} (expected one of ${DTYPES.join(', ')})`);
}

function f32ToF16(x) {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);
  if (abs >= 0x477ff000) return sign | 0x7c00; // overflow to inf
  if (abs < 0x38800000) { // subnormal half or zero
    if (abs < 0x33000000) return sign;
    const e = abs >>> 23;
    const m = (abs & 0x7fffff) | 0x800000;
    const shift = 126 - e;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (r & 1))) r++;
    return sign | r;
  }
  let r = abs - 0x38000000;
  const rem = r & 0x1fff;
  r >>>= 13;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return sign | r;
}

function f16ToF32(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function f32ToBf16(x) {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function bf16ToF32(h) {
  u32[0] = (h << 16) >>> 0;
  return f32[0];
}

// C's roundf: halves away from zero (Math.round rounds -2.5 to -2).
const roundf = (x) => (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5));

function bytesFor(dtype, n) {
  checkDtype(dtype);
  const block = blockSize(dtype);
  if (n % block) throw new Error(`${dtype} needs a multiple of ${block} elements per row, got ${n}`);
  if (dtype === 'Q8_0') return (n / Q8_BLOCK) * Q8_BLOCK_BYTES;
  if (BLOCK[dtype]) return (n / block) * BLOCK_BYTES[dtype];
  return n * (dtype === 'F32' ? 4 : 2);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Float32Array (or number array) -> Buffer in `dtype`. Q8_0 needs a length that is a multiple of 32.
function encodeFloats(dtype, values) {
  const n = values.length;
  const out = Buffer.alloc(bytesFor(dtype, n));
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) new Float32Array(out.buffer, out.byteOffset, n).set(values);
    else for (let i = 0; i < n; i++) out.writeFloatLE(values[i], 4 * i);
  } else if (dtype === 'F16' || dtype === 'BF16') {
    const enc = dtype === 'F16' ? f32ToF16 : f32ToBf16;
    if (LITTLE_ENDIAN) {
      const h = new Uint16Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) h[i] = enc(values[i]);
    } else {
      for (let i = 0; i < n; i++) out.writeUInt16LE(enc(values[i]), 2 * i);
    }
  } else if (dtype === 'Q8_0') {
    encodeQ8(values, out);
  } else {
    const enc = quant.encoders[dtype];
    for (let b = 0; b < n / BLOCK[dtype]; b++) enc(values, b * BLOCK[dtype], out, b * BLOCK_BYTES[dtype]);
  }
  return out;
}

function encodeQ8(values, out) {
  for (let b = 0; b < values.length / Q8_BLOCK; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_BLOCK; i++) amax = Math.max(amax, Math.abs(values[b * Q8_BLOCK + i]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const o = b * Q8_BLOCK_BYTES;
    out.writeUInt16LE(f32ToF16(d), o);
    for (let i = 0; i < Q8_BLOCK; i++) out[o + 2 + i] = roundf(Math.fround(values[b * Q8_BLOCK + i] * id)) & 0xff;
  }
}

// Buffer in `dtype` -> Float32Array of n values (what a loader computes with).
function decodeFloats(dtype, buf, n) {
  const out = new Float32Array(n);
  if (dtype === 'F32') {
    for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(4 * i);
  } else if (dtype === 'F16' || dtype === 'BF16') {
    const dec = dtype === 'F16' ? f16ToF32 : bf16ToF32;
    for (let i = 0; i < n; i++) out[i] = dec(buf.readUInt16LE(2 * i));
  } else if (BLOCK[dtype]) {
    const dec = quant.decoders[dtype];
    for (let b = 0; b < n / BLOCK[dtype]; b++) dec(buf, b * BLOCK_BYTES[dtype], out, b * BLOCK[dtype]);
  } else {
    for (let b = 0; b < n / Q8_BLOCK; b++) {
      const o = b * Q8_BLOCK_BYTES;
      const d = f16ToF32(buf.readUInt16LE(o));
      for (let i = 0; i < Q8_BLOCK; i++) out[b * Q8_BLOCK + i] = Math.fround(d * buf.readInt8(o + 2 + i));
    }
  }
  return out;
}

const quant = makeQuantBlocks({ f32ToF16, f16ToF32 });

// Round trip through `dtype`: the values a model file of that dtype holds.
const roundTrip = (dtype, values) => decodeFloats(dtype, encodeFloats(dtype, values), values.length);

module.exports = {
  GGML_TYPE, DTYPES, Q8_BLOCK, blockSize, checkDtype, bytesFor, encodeFloats, decodeFloats, roundTrip,
  f32ToF16, f16ToF32, f32ToBf16, bf16ToF32,
};
