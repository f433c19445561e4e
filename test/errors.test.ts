// Every typed error of the API, each from a real cause, and the process survives all of them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AbortError,
  BusyError,
  ContextFullError,
  DisposedError,
  FileNotFoundError,
  FormatError,
  InvalidArgumentError,
  loadModel,
  Model,
  PromptTooLongError,
  TensorError,
  UnsupportedError,
} from '../lib';
import { tempDir } from './helpers';
import { writeTiny, writeTinyGgufEdited } from './tinyModel';

let dir: string;
let good: string;
let model: Model;
beforeAll(async () => {
  dir = tempDir();
  good = writeTiny(dir, 'gguf');
  model = await loadModel(good, { threads: 1 });
});
afterAll(() => model.dispose());

describe('loading', () => {
  test('a missing file is FileNotFoundError', async () => {
    await expect(loadModel(path.join(dir, 'nope.gguf'))).rejects.toBeInstanceOf(FileNotFoundError);
  });

  test('wrong magic is FormatError', async () => {
    const f = path.join(dir, 'magic.gguf');
    const bytes = fs.readFileSync(good);
    bytes.write('GGUX', 0, 'latin1');
    fs.writeFileSync(f, bytes);
    // Not GGUF, so it is read as a llama2.c checkpoint, whose header and size do not fit.
    await expect(loadModel(f, { tokenizer: f })).rejects.toBeInstanceOf(FormatError);
  });

  test('a truncated file is FormatError at every cut', async () => {
    const bytes = fs.readFileSync(good);
    const f = path.join(dir, 'cut.gguf');
    for (const cut of [3, 10, 100, 1000, Math.floor(bytes.length / 2), bytes.length - 1]) {
      fs.writeFileSync(f, bytes.subarray(0, cut));
      await expect(loadModel(f)).rejects.toBeInstanceOf(FormatError);
    }
  });

  test('an unsupported architecture is UnsupportedError', async () => {
    const f = writeTinyGgufEdited(path.join(dir, 'arch.gguf'), (meta) => {
      for (const m of meta) if (m[0] === 'general.architecture') m[2] = 'gpt2';
    });
    await expect(loadModel(f)).rejects.toBeInstanceOf(UnsupportedError);
  });

  test('an unsupported tensor dtype is UnsupportedError', async () => {
    // Q5_0 (ggml type 6, 22 bytes per 32 values): a valid GGUF type chimera does not compute with.
    const f = writeTinyGgufEdited(path.join(dir, 'q5_0.gguf'), (_meta, tensors) => {
      const t = tensors.find((x) => x.name === 'blk.0.attn_q.weight')!;
      const blocks = (t.shape[0] * t.shape[1]) / 32;
      Object.assign(t, { dtype: undefined, data: undefined, type: 6 /* Q5_0 */, nbytes: blocks * 22,
        chunks: function* () { yield Buffer.alloc(blocks * 22); } });
    });
    await expect(loadModel(f)).rejects.toThrow(/Q5_0.*cannot compute with/);
    await expect(loadModel(f)).rejects.toBeInstanceOf(UnsupportedError);
  });

  test('a missing tensor and a tensor of the wrong shape are TensorError', async () => {
    const missing = writeTinyGgufEdited(path.join(dir, 'missing.gguf'), (_m, tensors) => {
      tensors.splice(tensors.findIndex((x) => x.name === 'blk.1.ffn_down.weight'), 1);
    });
    await expect(loadModel(missing)).rejects.toBeInstanceOf(TensorError);
    const shape = writeTinyGgufEdited(path.join(dir, 'shape.gguf'), (_m, tensors) => {
      const t = tensors.find((x) => x.name === 'blk.0.attn_k.weight')!;
      t.shape = [t.shape[0] * 2, t.shape[1] / 2];
    });
    await expect(loadModel(shape)).rejects.toMatchObject({ code: 'E_TENSOR', message: /blk\.0\.attn_k\.weight/ });
  });

  test('bad options are InvalidArgumentError before any work', async () => {
    await expect(loadModel('')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(loadModel(good, { threads: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(loadModel(good, { threads: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(loadModel(good, { tokenizer: 7 as unknown as string })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  test('an aborted load is AbortError', async () => {
    await expect(loadModel(good, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    const ac = new AbortController();
    const p = loadModel(good, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
  });
});

describe('generation', () => {
  test('a prompt longer than the context is PromptTooLongError', async () => {
    const s = model.createSession({ contextSize: 8 });
    await expect(s.complete('the quick brown fox jumps over the lazy dog')).rejects.toBeInstanceOf(PromptTooLongError);
    // The session is unharmed.
    expect((await s.complete('a', { maxTokens: 2, temperature: 0 })).tokens).toHaveLength(2);
    s.dispose();
  });

  test('a context that fills during generation is ContextFullError carrying the result', async () => {
    const s = model.createSession({ contextSize: 16 });
    const err = await s.complete('a', { maxTokens: 100, temperature: 0, stopOnEos: false }).catch((e) => e);
    expect(err).toBeInstanceOf(ContextFullError);
    const r = (err as ContextFullError).result as { tokens: number[] };
    expect(r.tokens.length).toBe(16 - model.tokenize('a').length);
    s.dispose();
  });

  test.each([
    [{ temperature: -1 }],
    [{ temperature: NaN }],
    [{ topP: 0 }],
    [{ topP: 1.5 }],
    [{ topK: -1 }],
    [{ minP: 1 }],
    [{ maxTokens: -1 }],
    [{ maxTokens: 1.5 }],
    [{ repeatPenalty: 0 }],
    [{ seed: -3 }],
    [{ stop: 'x' }],
    [{ signal: {} }],
  ])('invalid generate option %j is InvalidArgumentError', async (opts) => {
    const s = model.createSession({ contextSize: 32 });
    await expect(s.complete('a', opts as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    s.dispose();
  });

  test('invalid session options and prompt types are InvalidArgumentError', async () => {
    expect(() => model.createSession({ contextSize: 1 })).toThrow(InvalidArgumentError);
    expect(() => model.createSession({ contextSize: 2.5 })).toThrow(InvalidArgumentError);
    expect(() => model.createSession({ batchSize: 0 })).toThrow(InvalidArgumentError);
    const s = model.createSession({ contextSize: 32 });
    await expect(s.complete(42 as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.evaluate([1, 99999])).rejects.toBeInstanceOf(InvalidArgumentError);
    s.dispose();
  });

  test('busy and disposed sessions are BusyError and DisposedError', async () => {
    const s = model.createSession({ contextSize: 4096 });
    const ac = new AbortController();
    const p = s.complete('a', { maxTokens: 100000, temperature: 0, stopOnEos: false, signal: ac.signal });
    await expect(s.complete('b')).rejects.toBeInstanceOf(BusyError);
    ac.abort();
    await p;
    s.dispose();
    await expect(s.complete('b')).rejects.toBeInstanceOf(DisposedError);
  });

  test('the process is still healthy after all of the above', async () => {
    const s = model.createSession({ contextSize: 64 });
    const r = await s.complete('the', { maxTokens: 5, temperature: 0 });
    expect(r.tokens).toHaveLength(5);
    s.dispose();
  });
});
