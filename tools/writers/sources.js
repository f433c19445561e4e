// Tensor data sources for the writers. A source is a Float32Array (or number array), a function that
// returns an iterable of Float32Array chunks, or an object with `chunks()` (such as the lazy tensors of
// tiny-model.js). Streaming sources let a writer produce multi-GB files holding one chunk at a time.
'use strict';

const { blockSize, bytesFor, encodeFloats } = require('./dtypes');

const CHUNK = 1 << 20; // floats per chunk when slicing an in-memory array

function* sliceArray(values) {
  for (let i = 0; i < values.length; i += CHUNK) {
    yield values instanceof Float32Array ? values.subarray(i, i + CHUNK) : Float32Array.from(values.slice(i, i + CHUNK));
  }
}

// Iterable of Float32Array chunks of a source.
function floatChunks(source) {
  if (ArrayBuffer.isView(source) || Array.isArray(source)) return sliceArray(source);
  if (typeof source === 'function') return source();
  if (source && typeof source.chunks === 'function') return source.chunks();
  throw new Error('tensor data must be a Float32Array, a function returning chunks, or an object with chunks()');
}

// Encodes a float source to `dtype` chunk by chunk. Blocks (32 or 256 values) may straddle chunks, so
// leftovers are carried over. Checks that exactly `count` values arrive.
function* encodedChunks(source, dtype, count, name) {
  const block = blockSize(dtype);
  let carry = new Float32Array(0);
  let seen = 0;
  for (const chunk of floatChunks(source)) {
    seen += chunk.length;
    let values = chunk;
    if (block > 1) {
      values = new Float32Array(carry.length + chunk.length);
      values.set(carry);
      values.set(chunk, carry.length);
      const whole = values.length - (values.length % block);
      carry = values.slice(whole);
      values = values.subarray(0, whole);
    }
    if (values.length) yield encodeFloats(dtype, values);
  }
  if (seen !== count) throw new Error(`${name}: the data source gave ${seen} values, the shape needs ${count}`);
  if (carry.length) throw new Error(`${name}: ${dtype} needs a multiple of ${block} values`);
}

// Raw bytes of a tensor spec { name, dtype, data } or { name, nbytes, chunks() -> Buffers }.
function tensorByteChunks(t, count) {
  if (t.data !== undefined) return encodedChunks(t.data, t.dtype, count, t.name);
  if (typeof t.chunks === 'function') return t.chunks();
  throw new Error(`tensor ${t.name}: give data (floats) or chunks() (encoded Buffers)`);
}

function tensorBytes(t, rowLength, count) {
  if (t.data === undefined && t.nbytes !== undefined) return t.nbytes;
  return bytesFor(t.dtype, rowLength) * (count / rowLength);
}

function writeAll(fs, fd, buf) {
  for (let off = 0; off < buf.length;) off += fs.writeSync(fd, buf, off, buf.length - off);
}

module.exports = { floatChunks, encodedChunks, tensorByteChunks, tensorBytes, writeAll };
