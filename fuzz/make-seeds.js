#!/usr/bin/env node
// Writes the seed corpora of the libFuzzer harnesses (fuzz/fuzz_<name>.cpp) into fuzz/corpus/<name>/
// (git-ignored), with the repository's own test writers (tools/writers). No dependencies.
//
//   node fuzz/make-seeds.js [--out DIR] [--only gguf,json,...]
//
// The seeds of the llama2c, llama2c_tokenizer, hf_config and draft harnesses are checked by the harness
// against side files it generates itself (fuzz/fuzz_common.h): they use the same small shapes (FIXTURE),
// and the draft's base fingerprint is computed from the fixture's closed-form weights (fixtureValue).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const writers = path.join(root, 'tools', 'writers');
const { makeTinyModel, writeTinyModel, LazyTensor, ggufMetadata, namedWeights } = require(path.join(writers, 'tiny-model.js'));
const { writeGGUF } = require(path.join(writers, 'gguf.js'));
const { writeSafetensors, makeTokenizerJson } = require(path.join(writers, 'hf.js'));
const { writeLlama2cTokenizer } = require(path.join(writers, 'llama2c.js'));

// Keep in sync with fuzz/fuzz_common.h (kC, kL, kNH, kNKV, kHD, kCtx, kV, fixture_value).
const FIXTURE = { C: 16, L: 1, NH: 2, NKV: 1, HD: 32, V: 264, maxContext: 32 };
const fixtureValue = (salt, r, c) => Math.fround((((r * 31 + c * 17 + salt * 7) % 61) - 30) / 100);

// A small byte-level tokenizer.json: the 256 byte pieces in GPT-2's alphabet, a few merges, two added
// tokens, and the pre-tokenizer pipeline of Llama 3 or SmolLM.
function byteLevelTokenizerJson(kind) {
  const alphabet = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    alphabet.push(String.fromCodePoint(keep ? b : 256 + extra++));
  }
  const vocab = {};
  alphabet.forEach((c, i) => { vocab[c] = i; });
  const merges = [['\u0120', 't'], ['h', 'e'], ['\u0120t', 'he'], ['i', 'n']];
  for (const [l, r] of merges) if (!(l + r in vocab)) vocab[l + r] = Object.keys(vocab).length;
  const n = Object.keys(vocab).length;
  const llamaRegex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const pre = kind === 'smollm'
    ? { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }] }
    : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: llamaRegex }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] };
  return {
    version: '1.0',
    added_tokens: [
      { id: n, content: '<|begin_of_text|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: n + 1, content: '<|eot_id|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: n + 2, content: '<think>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false },
    ],
    normalizer: kind === 'smollm' ? null : { type: 'NFC' },
    pre_tokenizer: pre,
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false,
      ignore_merges: kind !== 'smollm', vocab, merges: kind === 'smollm' ? merges : merges.map(([l, r]) => `${l} ${r}`) },
  };
}

// The fixture model with a byte-level (tokenizer.ggml.model = gpt2) vocabulary: the small
// tokenizer.json's pieces, merges and added tokens, as llama.cpp's converter writes them.
function writeByteLevelGguf(file) {
  const tj = byteLevelTokenizerJson('llama3');
  const pieces = [];
  const types = [];
  for (const [p, id] of Object.entries(tj.model.vocab)) { pieces[id] = p; types[id] = 1; }
  for (const a of tj.added_tokens) { pieces[a.id] = a.content; types[a.id] = a.special ? 3 : 4; }
  const m = tiny({ V: pieces.length });
  const meta = ggufMetadata(m).filter(([k]) => !k.startsWith('tokenizer.'));
  meta.push(['tokenizer.ggml.model', 'string', 'gpt2'], ['tokenizer.ggml.pre', 'string', 'llama-bpe'],
    ['tokenizer.ggml.tokens', 'string[]', pieces], ['tokenizer.ggml.token_type', 'int32[]', types],
    ['tokenizer.ggml.merges', 'string[]', tj.model.merges], ['tokenizer.ggml.bos_token_id', 'uint32', tj.added_tokens[0].id],
    ['tokenizer.ggml.eos_token_id', 'uint32', tj.added_tokens[1].id], ['tokenizer.chat_template', 'string', '{{ x }}']);
  const tensors = namedWeights(m).map(([name, t, matrix]) => (matrix
    ? { name, shape: [t.rows, t.cols], dtype: 'F32', data: t } : { name, shape: [t.cols], dtype: 'F32', data: t }));
  writeGGUF(file, { metadata: meta, tensors });
}

const HARNESSES = ['gguf', 'safetensors', 'llama2c', 'llama2c_tokenizer', 'hf_tokenizer', 'hf_config', 'json', 'draft',
  'lookup_cache'];

function parseArgs(argv) {
  const o = { out: path.join(__dirname, 'corpus'), only: HARNESSES };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') o.out = path.resolve(argv[++i]);
    else if (argv[i] === '--only') o.only = argv[++i].split(',').filter(Boolean);
    else throw new Error(`unknown argument ${argv[i]} (--out DIR, --only a,b)`);
  }
  for (const n of o.only) if (!HARNESSES.includes(n)) throw new Error(`unknown harness ${n} (${HARNESSES.join(', ')})`);
  return o;
}

const tiny = (opts = {}) => makeTinyModel({ seed: 1, ...FIXTURE, ...opts });

// Runs `fn(dir)` in a fresh temporary directory, removed afterwards.
function inTemp(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chimera-seeds-'));
  try {
    return fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function copySeed(from, dir, name) {
  fs.copyFileSync(from, path.join(dir, name));
}

// ---- per harness ----

const SEEDS = {
  gguf(dir) {
    inTemp((t) => {
      copySeed(writeTinyModel(t, tiny(), 'gguf', { fileName: 'a.gguf' }).path, dir, 'seed-f32.gguf');
      copySeed(writeTinyModel(t, tiny({ tied: true }), 'gguf', { fileName: 'b.gguf', dtype: 'F16', version: 2, alignment: 64 }).path,
        dir, 'seed-f16-tied-v2-align64.gguf');
      copySeed(writeTinyModel(t, tiny(), 'gguf', { fileName: 'c.gguf', dtype: 'BF16' }).path, dir, 'seed-bf16.gguf');
      // Q8_0 needs columns in whole blocks of 32.
      copySeed(writeTinyModel(t, tiny({ C: 32, HD: 64 }), 'gguf', { fileName: 'd.gguf', dtype: 'Q8_0' }).path, dir, 'seed-q8_0.gguf');
    });
    writeByteLevelGguf(path.join(dir, 'seed-gpt2-tokenizer.gguf'));
  },

  safetensors(dir) {
    inTemp((t) => {
      writeTinyModel(t, tiny(), 'hf', { dtype: 'F16' });
      copySeed(path.join(t, 'model.safetensors'), dir, 'seed-model-f16.safetensors');
    });
    writeSafetensors(path.join(dir, 'seed-small.safetensors'), [
      { name: 'a', shape: [2, 3], dtype: 'F32', data: [1, 2, 3, 4, 5, 6] },
      { name: 'b', shape: [4], dtype: 'BF16', data: [1, -1, 0.5, 2] },
      { name: 'c', shape: [1, 1, 2], dtype: 'F16', data: [3, 4] },
    ], { format: 'pt', note: 'fuzz seed' });
    // Dtypes the writers do not produce (checked for size, never computed with), an empty and a 0-d tensor.
    const entries = [['i8', 'I8', [3], 3], ['u16', 'U16', [2], 4], ['f64', 'F64', [1], 8], ['bool', 'BOOL', [2], 2],
      ['e4m3', 'F8_E4M3', [2], 2], ['i64', 'I64', [1], 8], ['empty', 'F32', [0, 4], 0], ['scalar', 'F32', [], 4]];
    const header = { __metadata__: { format: 'pt' } };
    let off = 0;
    for (const [name, dtype, shape, bytes] of entries) {
      header[name] = { dtype, shape, data_offsets: [off, off + bytes] };
      off += bytes;
    }
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    const data = Buffer.alloc(off);
    for (let i = 0; i < off; i++) data[i] = (i * 37) & 0x3f;
    fs.writeFileSync(path.join(dir, 'seed-dtypes.safetensors'), Buffer.concat([len, json, data]));
  },

  llama2c(dir) {
    inTemp((t) => {
      copySeed(writeTinyModel(t, tiny(), 'llama2c', { fileName: 'a.bin' }).path, dir, 'seed-untied.bin');
      copySeed(writeTinyModel(t, tiny({ tied: true, seed: 2 }), 'llama2c', { fileName: 'b.bin' }).path, dir, 'seed-tied.bin');
    });
  },

  llama2c_tokenizer(dir) {
    writeLlama2cTokenizer(path.join(dir, 'seed-tokenizer.bin'), tiny().tokenizer);
    // Scores and lengths of another shape: every piece of the fixture vocabulary, made longer.
    const t = tiny().tokenizer;
    writeLlama2cTokenizer(path.join(dir, 'seed-tokenizer-long.bin'),
      { pieces: t.pieces.map((p, i) => (i < 259 ? p : p + p + '\u00e9')), scores: t.scores.map((s) => s * 0.5) });
  },

  hf_tokenizer(dir) {
    const t = tiny().tokenizer;
    const write = (name, obj) => fs.writeFileSync(path.join(dir, name), JSON.stringify(obj, null, 2) + '\n');
    write('seed-tokenizer.json', makeTokenizerJson(t));
    write('seed-tokenizer-no-prefix.json', makeTokenizerJson({ ...t, addSpacePrefix: false }));
    // The Metaspace pre-tokenizer form of the dummy prefix, and merges as "left right" strings.
    const meta = makeTokenizerJson(t);
    meta.normalizer = null;
    meta.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
    meta.model.merges = meta.model.merges.map(([l, r]) => `${l} ${r}`);
    write('seed-tokenizer-metaspace.json', meta);
    // Byte-level (GPT-2 style) pipelines: Llama 3's Split regex, SmolLM's digits + ByteLevel.
    write('seed-tokenizer-byte-level.json', byteLevelTokenizerJson('llama3'));
    write('seed-tokenizer-byte-level-smollm.json', byteLevelTokenizerJson('smollm'));
  },

  hf_config(dir) {
    inTemp((t) => {
      writeTinyModel(t, tiny(), 'hf');
      const config = JSON.parse(fs.readFileSync(path.join(t, 'config.json'), 'utf8'));
      const write = (name, obj) => fs.writeFileSync(path.join(dir, name), JSON.stringify(obj, null, 2) + '\n');
      write('seed-config.json', config);
      write('seed-config-variants.json', { ...config, tie_word_embeddings: true, head_dim: 8, eos_token_id: [2, 1],
        bos_token_id: null, rope_scaling: null, attention_bias: false, mlp_bias: false, max_position_embeddings: 16 });
      const { model_type: _, ...noType } = config;
      write('seed-config-architectures-only.json', noType);
    });
  },

  json(dir) {
    const write = (name, text) => fs.writeFileSync(path.join(dir, name), text);
    inTemp((t) => {
      writeTinyModel(t, tiny(), 'hf');
      for (const f of ['config.json', 'tokenizer_config.json']) copySeed(path.join(t, f), dir, `seed-${f}`);
      const st = fs.readFileSync(path.join(t, 'model.safetensors'));
      write('seed-safetensors-header.json', st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString('utf8'));
    });
    write('seed-strings.json', '["a\\"b\\\\c\\/d\\b\\f\\n\\r\\t", "\\u00e9\\u20ac\\ud83d\\ude00", "\u00e9\u20ac\ud83d\ude00", ""]');
    write('seed-numbers.json', '[0, -0, 1, -1, 1.5, -2.25e-3, 1E+2, 12345678901234567890, 9007199254740993, 1e308, 5e-324]');
    write('seed-nested.json', '{"a": {"b": [[], {}, [null, true, false]], "c": {"": 0}}, "d": [[[[[[1]]]]]]}');
  },

  draft(dir) {
    const { C, V, NH, NKV, HD, L } = FIXTURE;
    const HS = C / NH;
    const fingerprint = [];
    for (const salt of [1, 2]) { // base_fingerprint: the embedding, then the output projection (both V x C)
      for (let i = 0; i < 16; i++) {
        const r = Number((BigInt(i) * 2654435761n) % BigInt(V));
        fingerprint.push(fixtureValue(salt, r, (i * 40503) % C));
      }
    }
    const write = (name, heads, dtype) => {
      const t = (tname, shape) => {
        const rows = shape.length === 2 ? shape[0] : 1;
        const cols = shape[shape.length - 1];
        const vec = shape.length === 1;
        const data = new LazyTensor(tname, rows, cols, 5, vec ? 1 : 0, vec ? 0.1 : 0.05);
        return { name: tname, shape, dtype: vec ? 'F32' : dtype, data };
      };
      const tensors = [t('trigram.res.weight', [3 * C, 3 * C]), t('trigram.res.bias', [3 * C]), t('trigram.proj.weight', [C, 3 * C]),
        t('layer.attn_norm.weight', [C]), t('layer.attn_q.weight', [NH * HS, C]), t('layer.attn_k.weight', [NKV * HS, C]),
        t('layer.attn_v.weight', [NKV * HS, C]), t('layer.attn_output.weight', [C, NH * HS]), t('layer.ffn_norm.weight', [C]),
        t('layer.ffn_gate.weight', [HD, C]), t('layer.ffn_up.weight', [HD, C]), t('layer.ffn_down.weight', [C, HD])];
      for (let k = 0; k < heads; k++) tensors.push(t(`heads.${k}.weight`, [V, 2 * C]));
      writeSafetensors(path.join(dir, name), tensors, {
        format: 'chimera-draft', format_version: '1', heads: String(heads), hidden_size: String(C), vocab_size: String(V),
        head_count: String(NH), head_count_kv: String(NKV), feed_forward_length: String(HD), base_layers: String(L),
        base_fingerprint: fingerprint.join(','),
      });
    };
    write('seed-draft-f32-k1.safetensors', 1, 'F32');
    write('seed-draft-f16-k2.safetensors', 2, 'F16');
    write('seed-draft-bf16-k1.safetensors', 1, 'BF16');
  },

  lookup_cache(dir) {
    // NgramTable's file (native/spec/ngram_table.cpp): magic, version, order, vocabulary size, contexts.
    const file = (name, order, vocab, contexts) => {
      const parts = [Buffer.from('CHNGRAM1', 'latin1')];
      const head = Buffer.alloc(20);
      head.writeUInt32LE(1, 0);
      head.writeUInt32LE(order, 4);
      head.writeUInt32LE(vocab, 8);
      head.writeBigUInt64LE(BigInt(contexts.length), 12);
      parts.push(head);
      for (const [key, total, followers] of contexts) {
        const e = Buffer.alloc(16 + 8 * followers.length);
        e.writeBigUInt64LE(key, 0);
        e.writeUInt32LE(total, 8);
        e.writeUInt32LE(followers.length, 12);
        followers.forEach(([tok, n], j) => {
          e.writeInt32LE(tok, 16 + 4 * j);
          e.writeUInt32LE(n, 16 + 4 * followers.length + 4 * j);
        });
        parts.push(e);
      }
      fs.writeFileSync(path.join(dir, name), Buffer.concat(parts));
    };
    file('seed-small.ngram', 3, FIXTURE.V, [[0x1234n, 5, [[7, 3], [9, 2]]], [0xfedcba9876543210n, 1, [[263, 1]]]]);
    file('seed-empty.ngram', 1, 0, []);
    file('seed-full.ngram', 8, FIXTURE.V, [[42n, 40, Array.from({ length: 8 }, (_, j) => [j, 8 - j])]]);
  },
};

function main() {
  const o = parseArgs(process.argv.slice(2));
  for (const name of o.only) {
    const dir = path.join(o.out, name);
    fs.mkdirSync(dir, { recursive: true });
    SEEDS[name](dir);
    const files = fs.readdirSync(dir).filter((f) => f.startsWith('seed-'));
    const bytes = files.reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    console.log(`seeds ${name}: ${files.length} files, ${bytes} bytes in ${path.relative(process.cwd(), dir) || dir}`);
  }
}

if (require.main === module) main();

module.exports = { HARNESSES, FIXTURE, fixtureValue, SEEDS };
