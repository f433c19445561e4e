// ggml's 4- to 6-bit block formats in JS, for the model writers: Q4_0 (32 values, 18 bytes) and the
// k-quants Q4_K (256 values, 144 bytes), Q5_K (176) and Q6_K (210). Layouts as native/common/quant_blocks.h
// describes them. Encoders pick each block's scales from its range and round to nearest (as the native
// quantisers do); decoders give what a loader computes with.
'use strict';

const BLOCK = { Q4_0: 32, Q4_K: 256, Q5_K: 256, Q6_K: 256 };
const BLOCK_BYTES = { Q4_0: 18, Q4_K: 144, Q5_K: 176, Q6_K: 210 };

// f32ToF16 / f16ToF32 are passed in by dtypes.js (one implementation of the half conversions).
function makeQuantBlocks({ f32ToF16, f16ToF32 }) {
  const rint = (x) => {  // round half to even, as lrintf
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  const putF16 = (out, o, x) => { out.writeUInt16LE(f32ToF16(x), o); return f16ToF32(out.readUInt16LE(o)); };
  // The value of largest magnitude in values[o, o + n), with its sign.
  const signedMax = (v, o, n) => {
    let amax = 0, max = 0;
    for (let i = o; i < o + n; i++) if (Math.abs(v[i]) > amax) { amax = Math.abs(v[i]); max = v[i]; }
    return max;
  };

  function scaleMin(j, q, o) {
    if (j < 4) return [q[o + j] & 63, q[o + j + 4] & 63];
    return [(q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4), (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4)];
  }

  // Q4_K / Q5_K: 8 sub-blocks of 32 as scale * q - min, q in [0, qmax]; returns the 256 q values.
  function encodeAffine(x, xo, qmax, out, o, scalesAt) {
    const scale = [], min = [];
    for (let j = 0; j < 8; j++) {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < 32; i++) { lo = Math.min(lo, x[xo + 32 * j + i]); hi = Math.max(hi, x[xo + 32 * j + i]); }
      lo = Math.min(lo, 0);
      scale.push(Math.fround((hi - lo) / qmax));
      min.push(-lo);
    }
    const maxScale = Math.max(...scale), maxMin = Math.max(...min);
    const invS = maxScale > 0 ? 63 / maxScale : 0, invM = maxMin > 0 ? 63 / maxMin : 0;
    const ls = scale.map((s) => Math.min(63, rint(invS * s))), lm = min.map((m) => Math.min(63, rint(invM * m)));
    const s = scalesAt;
    for (let j = 0; j < 8; j++) {
      if (j < 4) { out[o + s + j] = ls[j]; out[o + s + j + 4] = lm[j]; } else {
        out[o + s + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
        out[o + s + j - 4] |= (ls[j] >> 4) << 6;
        out[o + s + j] |= (lm[j] >> 4) << 6;
      }
    }
    const d = putF16(out, o, maxScale / 63), dmin = putF16(out, o + 2, maxMin / 63);
    const L = new Uint8Array(256);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMin(j, out, o + s);
      const ds = d * sc, dm = dmin * m;
      for (let i = 0; i < 32; i++) L[32 * j + i] = ds > 0 ? clamp(rint((x[xo + 32 * j + i] + dm) / ds), 0, qmax) : 0;
    }
    return L;
  }

  function packNibbles(L, out, o) {
    for (let j = 0; j < 256; j += 64)
      for (let l = 0; l < 32; l++) out[o + j / 2 + l] = (L[j + l] & 0xf) | ((L[j + l + 32] & 0xf) << 4);
  }

  const encoders = {
    Q4_0(x, xo, out, o) {
      const d = putF16(out, o, signedMax(x, xo, 32) / -8);
      const id = d ? 1 / d : 0;
      for (let i = 0; i < 16; i++)
        out[o + 2 + i] = clamp(rint(x[xo + i] * id) + 8, 0, 15) | (clamp(rint(x[xo + i + 16] * id) + 8, 0, 15) << 4);
    },
    Q4_K(x, xo, out, o) { packNibbles(encodeAffine(x, xo, 15, out, o, 4), out, o + 16); },
    Q5_K(x, xo, out, o) {
      const L = encodeAffine(x, xo, 31, out, o, 4);
      for (let l = 0; l < 32; l++) {
        let h = 0;
        for (let j = 0; j < 8; j++) h |= (L[32 * j + l] >> 4) << j;
        out[o + 16 + l] = h;
      }
      packNibbles(L, out, o + 48);
    },
    Q6_K(x, xo, out, o) {
      const scale = [];
      for (let s = 0; s < 16; s++) scale.push(Math.fround(signedMax(x, xo + 16 * s, 16) / -32));
      let maxScale = 0;
      for (const s of scale) if (Math.abs(s) > Math.abs(maxScale)) maxScale = s;
      const iscale = maxScale ? Math.fround(-128 / maxScale) : 0;
      const sc = scale.map((s) => Math.min(127, rint(iscale * s)));
      for (let s = 0; s < 16; s++) out.writeInt8(sc[s], o + 192 + s);
      const d = putF16(out, o + 208, iscale ? 1 / iscale : 0);
      const L = new Uint8Array(256);
      for (let s = 0; s < 16; s++) {
        const ds = d * sc[s];
        for (let i = 0; i < 16; i++) L[16 * s + i] = clamp(ds ? rint(x[xo + 16 * s + i] / ds) : 0, -32, 31) + 32;
      }
      for (let h = 0; h < 2; h++) {
        const ql = o + 64 * h, qh = o + 128 + 32 * h, b = 128 * h;
        for (let l = 0; l < 32; l++) {
          out[ql + l] = (L[b + l] & 0xf) | ((L[b + l + 64] & 0xf) << 4);
          out[ql + l + 32] = (L[b + l + 32] & 0xf) | ((L[b + l + 96] & 0xf) << 4);
          out[qh + l] = (L[b + l] >> 4) | ((L[b + l + 32] >> 4) << 2) | ((L[b + l + 64] >> 4) << 4) | ((L[b + l + 96] >> 4) << 6);
        }
      }
    },
  };

  const decoders = {
    Q4_0(b, o, y, yo) {
      const d = f16ToF32(b.readUInt16LE(o));
      for (let i = 0; i < 16; i++) {
        y[yo + i] = d * ((b[o + 2 + i] & 0xf) - 8);
        y[yo + i + 16] = d * ((b[o + 2 + i] >> 4) - 8);
      }
    },
    Q4_K(b, o, y, yo) { decodeAffine(b, o, y, yo, false); },
    Q5_K(b, o, y, yo) { decodeAffine(b, o, y, yo, true); },
    Q6_K(b, o, y, yo) {
      const d = f16ToF32(b.readUInt16LE(o + 208));
      for (let v = 0; v < 256; v++) {
        const h = v >> 7, k = (v & 127) >> 5, l = v & 31;
        const lo = b[o + 64 * h + 32 * (k & 1) + l];
        const q = ((k >= 2 ? lo >> 4 : lo & 0xf) | (((b[o + 128 + 32 * h + l] >> (2 * k)) & 3) << 4)) - 32;
        y[yo + v] = d * b.readInt8(o + 192 + 8 * h + 2 * k + (l >> 4)) * q;
      }
    },
  };

  function decodeAffine(b, o, y, yo, fifth) {
    const d = f16ToF32(b.readUInt16LE(o)), dmin = f16ToF32(b.readUInt16LE(o + 2));
    const qs = o + (fifth ? 48 : 16);
    for (let v = 0; v < 256; v++) {
      const j = v >> 5, l = v & 31, byte = b[qs + 32 * (j >> 1) + l];
      let q = j & 1 ? byte >> 4 : byte & 0xf;
      if (fifth) q |= ((b[o + 16 + l] >> j) & 1) << 4;
      const [sc, m] = scaleMin(j, b, o + 4);
      y[yo + v] = d * sc * q - dmin * m;
    }
  }

  return { encoders, decoders };
}

module.exports = { BLOCK, BLOCK_BYTES, makeQuantBlocks };
