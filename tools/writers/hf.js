// Hugging Face checkpoint writers: safetensors files (one, or shards with model.safetensors.index.json),
// config.json, tokenizer.json and tokenizer_config.json, as transformers and tokenizers lay them out.
//
//   writeSafetensors(file, tensors, metadata?)   tensors: [{ name, shape, dtype: F32|F16|BF16, data }] or
//     { name, shape, dtype: 'I32', data: Int32Array } (integer tensors, such as a draft's head token ids)
//   writeHF(dir, { config, tensors, tokenizer, tokenizerConfig, shards = 1 })
//     config / tokenizer / tokenizerConfig: plain objects written as JSON; tensors as above, split into
//     `shards` files of about equal size (shards > 1 writes the index).
//   makeTokenizerJson({ pieces, types, merges, addSpacePrefix })   a SentencePiece-style BPE tokenizer.json
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { encodedChunks, writeAll } = require('./sources');
const { bytesFor } = require('./dtypes');

const SAFETENSORS_DTYPES = ['F32', 'F16', 'BF16'];

function describe(t) {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (t.dtype === 'I32') {
    if (!(t.data instanceof Int32Array) || t.data.length !== count) throw new Error(`tensor ${t.name}: I32 data must be an Int32Array of ${count}`);
    return { spec: t, count, nbytes: 4 * count };
  }
  if (!SAFETENSORS_DTYPES.includes(t.dtype)) throw new Error(`tensor ${t.name}: safetensors dtype ${t.dtype} unsupported here`);
  return { spec: t, count, nbytes: bytesFor(t.dtype, count) };
}

// Header: JSON padded with spaces to a multiple of 8, so the data area (and F32 data) stays aligned.
function writeSafetensors(file, tensors, metadata = { format: 'pt' }) {
  const infos = tensors.map(describe);
  const header = { __metadata__: metadata };
  let offset = 0;
  for (const t of infos) {
    header[t.spec.name] = { dtype: t.spec.dtype, shape: t.spec.shape, data_offsets: [offset, offset + t.nbytes] };
    offset += t.nbytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fs, fd, len);
    writeAll(fs, fd, Buffer.from(json, 'utf8'));
    for (const t of infos) {
      if (t.spec.dtype === 'I32') writeAll(fs, fd, Buffer.from(t.spec.data.buffer, t.spec.data.byteOffset, t.nbytes));
      else for (const chunk of encodedChunks(t.spec.data, t.spec.dtype, t.count, t.spec.name)) writeAll(fs, fd, chunk);
    }
  } finally {
    fs.closeSync(fd);
  }
  return offset;
}

// Splits tensors into `shards` consecutive groups of roughly equal bytes.
function splitShards(tensors, shards) {
  const sizes = tensors.map((t) => describe(t).nbytes);
  const target = sizes.reduce((a, b) => a + b, 0) / shards;
  const groups = [[]];
  let acc = 0;
  tensors.forEach((t, i) => {
    if (acc >= target * groups.length && groups.length < shards) groups.push([]);
    groups[groups.length - 1].push(t);
    acc += sizes[i];
  });
  return groups;
}

function writeJson(file, obj) {
  fs.writeFileSync(file, JSON.stringify(obj, null, 2) + '\n');
}

function writeHF(dir, { config, tensors, tokenizer, tokenizerConfig, shards = 1 }) {
  fs.mkdirSync(dir, { recursive: true });
  writeJson(path.join(dir, 'config.json'), config);
  if (tokenizer) writeJson(path.join(dir, 'tokenizer.json'), tokenizer);
  if (tokenizerConfig) writeJson(path.join(dir, 'tokenizer_config.json'), tokenizerConfig);
  if (shards <= 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    return;
  }
  const groups = splitShards(tensors, shards);
  const weightMap = {};
  let total = 0;
  groups.forEach((group, i) => {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    total += writeSafetensors(path.join(dir, name), group);
    for (const t of group) weightMap[t.name] = name;
  });
  writeJson(path.join(dir, 'model.safetensors.index.json'), { metadata: { total_size: total }, weight_map: weightMap });
}

const SPACE = '\u2581';
const toSp = (p) => p.replace(/ /g, SPACE);

// tokenizer.json of a Llama-style (SentencePiece-converted) BPE tokenizer with byte fallback.
// types: 1 normal, 2 unknown, 3 control, 6 byte; merges: [[left, right], ...] in rank order (plain spaces).
function makeTokenizerJson({ pieces, types, merges, addSpacePrefix = true }) {
  const vocab = {};
  pieces.forEach((p, id) => { vocab[toSp(p)] = id; });
  const added = [];
  pieces.forEach((p, id) => {
    if (types[id] === 2 || types[id] === 3) {
      added.push({ id, content: p, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    }
  });
  const normalizers = [{ type: 'Replace', pattern: { String: ' ' }, content: SPACE }];
  if (addSpacePrefix) normalizers.unshift({ type: 'Prepend', prepend: SPACE });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'Sequence', normalizers },
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [
      { type: 'Replace', pattern: { String: SPACE }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: {
      type: 'BPE', dropout: null, unk_token: pieces[types.indexOf(2)] ?? null, continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab, merges: merges.map(([l, r]) => [toSp(l), toSp(r)]),
    },
  };
}

module.exports = { writeSafetensors, writeHF, makeTokenizerJson };
