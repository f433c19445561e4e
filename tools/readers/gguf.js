// A small GGUF reader: metadata, tensor infos, and tensors decoded to Float32Array (F32, F16, BF16,
// Q8_0). Enough for scripts that transform a model (bench/make-wide-stories.js); the library's own
// loader is native (native/formats/gguf_file.cpp).
'use strict';

const fs = require('node:fs');
const { decodeFloats } = require('../writers/dtypes');

const TYPE_NAMES = { 0: 'F32', 1: 'F16', 8: 'Q8_0', 30: 'BF16' };
const BLOCK = { F32: [1, 4], F16: [1, 2], BF16: [1, 2], Q8_0: [32, 34] };

function readGGUF(file) {
  const buf = fs.readFileSync(file);
  let off = 0;
  const u32 = () => { const v = buf.readUInt32LE(off); off += 4; return v; };
  const u64 = () => { const v = Number(buf.readBigUInt64LE(off)); off += 8; return v; };
  const str = () => { const n = u64(); const s = buf.toString('utf8', off, off + n); off += n; return s; };
  const scalar = (t) => {
    switch (t) {
      case 0: return buf.readUInt8(off++);
      case 1: return buf.readInt8(off++);
      case 2: { const v = buf.readUInt16LE(off); off += 2; return v; }
      case 3: { const v = buf.readInt16LE(off); off += 2; return v; }
      case 4: return u32();
      case 5: { const v = buf.readInt32LE(off); off += 4; return v; }
      case 6: { const v = buf.readFloatLE(off); off += 4; return v; }
      case 7: return buf.readUInt8(off++) !== 0;
      case 8: return str();
      case 10: return u64();
      case 11: { const v = Number(buf.readBigInt64LE(off)); off += 8; return v; }
      case 12: { const v = buf.readDoubleLE(off); off += 8; return v; }
      default: throw new Error(`${file}: GGUF value type ${t} unsupported`);
    }
  };
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error(`${file} is not a GGUF file`);
  off = 4;
  const version = u32();
  const nTensors = u64(), nKv = u64();
  const metadata = new Map();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const t = u32();
    if (t === 9) {
      const et = u32(), n = u64();
      const arr = new Array(n);
      for (let j = 0; j < n; j++) arr[j] = scalar(et);
      metadata.set(key, arr);
    } else {
      metadata.set(key, scalar(t));
    }
  }
  const infos = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const dims = [];
    for (let j = 0; j < nd; j++) dims.push(u64());
    const type = u32();
    const offset = u64();
    if (!TYPE_NAMES[type]) throw new Error(`${file}: tensor ${name} has GGML type ${type}, unsupported here`);
    infos.push({ name, dims, type: TYPE_NAMES[type], offset });
  }
  const align = metadata.get('general.alignment') || 32;
  const dataStart = Math.ceil(off / align) * align;
  const tensors = new Map();
  for (const t of infos) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    const [per, bytes] = BLOCK[t.type];
    const start = dataStart + t.offset;
    const raw = buf.subarray(start, start + (count / per) * bytes);
    tensors.set(t.name, { ...t, count, data: () => decodeFloats(t.type, raw, count) });
  }
  return { version, metadata, tensors };
}

module.exports = { readGGUF };
