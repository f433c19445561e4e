// GGUF writer (v3 by default; v2 on request): metadata of every GGUF value type, including nested
// arrays, and tensors in F32 / F16 / BF16 / Q8_0 at any power-of-two alignment. Tensor data is
// streamed (see sources.js), so multi-GB files are written holding one chunk at a time.
//
//   writeGGUF(file, {
//     metadata: [[key, type, value], ...],  // type: 'uint8'..'uint64', 'int8'..'int64', 'float32', 'float64',
//                                           // 'bool', 'string', '<type>[]' (array), or 'array' with
//                                           // value [elementType, values] (values may be nested [type, values])
//     tensors: [{ name, shape: [rows, cols] | dims: [ne0, ne1, ...], dtype, data }        // floats, encoded here
//               | { name, shape | dims, type: ggmlTypeId, nbytes, chunks: () => Buffers }], // raw bytes
//     alignment = 32, version = 3 })
//
// `shape` is row-major (outermost first); GGUF stores ggml `ne`, innermost (column) dimension first.
'use strict';

const fs = require('node:fs');
const { GGML_TYPE, checkDtype } = require('./dtypes');
const { tensorByteChunks, tensorBytes, writeAll } = require('./sources');

const VT = { uint8: 0, int8: 1, uint16: 2, int16: 3, uint32: 4, int32: 5, float32: 6, bool: 7, string: 8,
  array: 9, uint64: 10, int64: 11, float64: 12 };
const SIZE = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, bool: 1, uint64: 8, int64: 8,
  float64: 8 };

class Bytes {
  constructor() { this.parts = []; this.length = 0; }
  push(b) { this.parts.push(b); this.length += b.length; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  concat() { return Buffer.concat(this.parts, this.length); }
}

function scalar(out, type, v) {
  if (type === 'string') return out.str(v);
  if (!(type in SIZE)) throw new Error(`unknown GGUF value type ${type}`);
  const b = Buffer.alloc(SIZE[type]);
  switch (type) {
    case 'uint8': b.writeUInt8(v); break;
    case 'int8': b.writeInt8(v); break;
    case 'uint16': b.writeUInt16LE(v); break;
    case 'int16': b.writeInt16LE(v); break;
    case 'uint32': b.writeUInt32LE(v); break;
    case 'int32': b.writeInt32LE(v); break;
    case 'float32': b.writeFloatLE(v); break;
    case 'float64': b.writeDoubleLE(v); break;
    case 'bool': b.writeUInt8(v ? 1 : 0); break;
    case 'uint64': b.writeBigUInt64LE(BigInt(v)); break;
    case 'int64': b.writeBigInt64LE(BigInt(v)); break;
    default: break;
  }
  return out.push(b);
}

// An array body: element type tag, count, elements. Nested arrays are [elementType, values] pairs.
function array(out, elemType, values) {
  if (!(elemType in VT)) throw new Error(`unknown GGUF array element type ${elemType}`);
  out.u32(VT[elemType]);
  out.u64(values.length);
  for (const v of values) {
    if (elemType === 'array') array(out, v[0], v[1]);
    else scalar(out, elemType, v);
  }
}

function value(out, type, v) {
  if (type.endsWith('[]')) {
    out.u32(VT.array);
    return array(out, type.slice(0, -2), v);
  }
  if (type === 'array') {
    out.u32(VT.array);
    return array(out, v[0], v[1]);
  }
  if (!(type in VT)) throw new Error(`unknown GGUF value type ${type}`);
  out.u32(VT[type]);
  return scalar(out, type, v);
}

const alignUp = (n, a) => Math.ceil(n / a) * a;

// Normalises a tensor spec: ggml dims, type id, element count, byte size.
function describe(t) {
  const dims = t.dims ? [...t.dims] : [...t.shape].reverse();
  if (!dims.length || dims.length > 4) throw new Error(`tensor ${t.name}: 1 to 4 dimensions, got ${dims.length}`);
  const count = dims.reduce((a, b) => a * b, 1);
  let type = t.type;
  if (t.data !== undefined) {
    checkDtype(t.dtype);
    type = GGML_TYPE[t.dtype];
  }
  if (type === undefined) throw new Error(`tensor ${t.name}: give dtype (with data) or type (with chunks)`);
  return { spec: t, dims, type, count, nbytes: tensorBytes(t, dims[0], count) };
}

function buildHeader(metadata, tensors, alignment, version) {
  const h = new Bytes();
  h.push(Buffer.from('GGUF', 'latin1'));
  h.u32(version);
  h.u64(tensors.length);
  h.u64(metadata.length);
  for (const [key, type, v] of metadata) {
    h.str(key);
    value(h, type, v);
  }
  let offset = 0;
  for (const t of tensors) {
    h.str(t.spec.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(t.type);
    h.u64(offset);
    t.offset = offset;
    offset = alignUp(offset + t.nbytes, alignment);
  }
  return h.concat();
}

function writeGGUF(file, { metadata = [], tensors = [], alignment = 32, version = 3 } = {}) {
  if (!(alignment > 0 && (alignment & (alignment - 1)) === 0)) throw new Error(`alignment ${alignment} is not a power of two`);
  const meta = alignment === 32 || metadata.some(([k]) => k === 'general.alignment')
    ? metadata : [...metadata, ['general.alignment', 'uint32', alignment]];
  const infos = tensors.map(describe);
  const head = buildHeader(meta, infos, alignment, version);
  const dataStart = alignUp(head.length, alignment);
  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fs, fd, head);
    writeAll(fs, fd, Buffer.alloc(dataStart - head.length));
    let pos = 0;
    for (const t of infos) {
      writeAll(fs, fd, Buffer.alloc(t.offset - pos));
      let written = 0;
      for (const chunk of tensorByteChunks(t.spec, t.count)) {
        writeAll(fs, fd, chunk);
        written += chunk.length;
      }
      if (written !== t.nbytes) throw new Error(`tensor ${t.spec.name}: ${written} bytes written, ${t.nbytes} expected`);
      pos = t.offset + written;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { dataStart, tensors: infos.map((t) => ({ name: t.spec.name, offset: t.offset, nbytes: t.nbytes })) };
}

module.exports = { writeGGUF, GGML_TYPE };
