// Native draft training: the loss falls and the heads learn to agree with the base; a run is
// deterministic for a seed; resuming a checkpoint equals an uninterrupted run; bad options and
// unreadable corpora are typed errors. The speedup a trained draft brings is measured in the bench.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileNotFoundError, InvalidArgumentError, loadModel, Model, trainBase, trainDraft, TrainProgress } from '../lib';
import { tempDir } from './helpers';
import { writeContextFreeGguf, writeTiny } from './tinyModel';

let dir: string;
let model: Model;
beforeAll(async () => {
  dir = tempDir();
  model = await loadModel(writeTiny(dir, 'gguf'), { threads: 2 });
});
afterAll(() => model.dispose());

const small = { heads: 2, data: 'self:16', steps: 12, seqLen: 24, batch: 2, warmup: 2, seed: 3 };

async function savedBytes(draftPromise: ReturnType<typeof trainDraft>, name: string): Promise<Buffer> {
  const file = path.join(dir, name);
  await (await draftPromise).save(file);
  return fs.readFileSync(file);
}

test('the loss falls and per-head agreement with the base rises (fixed seed)', async () => {
  const cf = await loadModel(writeContextFreeGguf(path.join(dir, 'cf.gguf'), 3), { threads: 2 });
  const seen: TrainProgress[] = [];
  const draft = await trainDraft(
    cf,
    { heads: 3, data: 'self:24', steps: 60, seqLen: 32, batch: 2, warmup: 5, lr: 3e-3, seed: 1 },
    { onProgress: (p) => p.phase === 'train' && seen.push(p) },
  );
  expect(seen.length).toBeGreaterThanOrEqual(6);
  const first = seen[0], last = seen[seen.length - 1];
  expect(last.step).toBe(60);
  expect(last.loss).toBeLessThan(first.loss * 0.7);
  for (let k = 0; k < 3; k++) expect(last.agreementByHead[k]).toBeGreaterThan(first.agreementByHead[k] + 0.1);
  expect(draft.info.heads).toBe(3);
  await cf.dispose();
});

test('training is deterministic for a seed, and another seed differs', async () => {
  const a = await savedBytes(trainDraft(model, small), 'a.safetensors');
  const b = await savedBytes(trainDraft(model, small), 'b.safetensors');
  const c = await savedBytes(trainDraft(model, { ...small, seed: 4 }), 'c.safetensors');
  expect(a.equals(b)).toBe(true);
  expect(a.equals(c)).toBe(false);
});

test('soft targets (KL to the base distribution) train too, and differ from hard labels', async () => {
  const seen: TrainProgress[] = [];
  const hard = await savedBytes(trainDraft(model, small), 'hard.safetensors');
  const soft = await savedBytes(
    trainDraft(model, { ...small, softTargets: 1 }, { onProgress: (p) => p.phase === 'train' && seen.push(p) }),
    'soft.safetensors',
  );
  expect(soft.equals(hard)).toBe(false);
  expect(seen[seen.length - 1].loss).toBeLessThan(seen[0].loss);
  await expect(trainDraft(model, { ...small, softTargets: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
});

test('resuming from a checkpoint gives the same weights as an uninterrupted run', async () => {
  const whole = await savedBytes(trainDraft(model, small), 'whole.safetensors');
  const ckpt = path.join(dir, 'ck-{step}.safetensors');
  await trainDraft(model, { ...small, checkpoint: ckpt, checkpointEvery: 5 });
  expect(fs.existsSync(path.join(dir, 'ck-5.safetensors'))).toBe(true);
  expect(fs.existsSync(path.join(dir, 'ck-5.safetensors.optim.safetensors'))).toBe(true);
  const resumed = await savedBytes(trainDraft(model, { ...small, resume: path.join(dir, 'ck-5.safetensors') }), 'resumed.safetensors');
  expect(resumed.equals(whole)).toBe(true);
  // The last checkpoint is the final draft.
  expect(fs.readFileSync(path.join(dir, 'ck-12.safetensors')).equals(whole)).toBe(true);
});

test('a draft trained from a file corpus loads back and keeps greedy decoding exact', async () => {
  const corpus = path.join(dir, 'corpus.txt');
  fs.writeFileSync(corpus, 'the cat sat on the mat. the dog ran to the cat. '.repeat(40));
  const draft = await trainDraft(model, { ...small, data: `file:${corpus}` });
  const file = path.join(dir, 'corpus.chimera.safetensors');
  await draft.save(file);
  const loaded = await model.loadDraft(file);
  const plain = model.createSession({ contextSize: 256 });
  const spec = model.createSession({ contextSize: 256, draft: loaded, tree: 'chain-2' });
  const opts = { temperature: 0, maxTokens: 60, stopOnEos: false };
  expect((await spec.complete('the cat', opts)).tokens).toEqual((await plain.complete('the cat', opts)).tokens);
  plain.dispose();
  spec.dispose();
});

test('bad options and unreadable corpora are typed errors', async () => {
  for (const bad of [{ steps: 0 }, { heads: 17 }, { seqLen: 4 }, { lr: 0 }, { data: 'bogus' }, { batch: 1.5 }])
    await expect(trainDraft(model, bad as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  await expect(trainDraft(model, { ...small, data: `file:${path.join(dir, 'missing.txt')}` })).rejects.toBeInstanceOf(
    FileNotFoundError,
  );
  const short = path.join(dir, 'short.txt');
  fs.writeFileSync(short, 'hi');
  await expect(trainDraft(model, { ...small, data: `file:${short}` })).rejects.toBeInstanceOf(InvalidArgumentError);
  await expect(trainDraft(model, { ...small, resume: path.join(dir, 'nope.safetensors') })).rejects.toBeInstanceOf(
    FileNotFoundError,
  );
  const ac = new AbortController();
  const p = trainDraft(model, { ...small, steps: 100000 }, { signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await expect(p).rejects.toMatchObject({ code: 'E_ABORTED' });
});

describe('train-base', () => {
  const corpusText = Array.from({ length: 300 }, (_, i) =>
    `The ${['cat', 'dog', 'bird'][i % 3]} sat on the ${['mat', 'log', 'hill'][i % 3]} and looked at day ${i}. ` +
    'Naïve café visitors said "hello" to it.').join('\n');

  test('trains a tokenizer and a model whose GGUF loads, generates and round-trips text', async () => {
    const corpus = path.join(dir, 'base-corpus.txt');
    fs.writeFileSync(corpus, corpusText);
    const out = path.join(dir, 'base.gguf');
    const seen: number[] = [];
    const loss = await trainBase(
      { corpus, out, vocab: 320, dim: 32, layers: 1, heads: 2, hidden: 64, seqLen: 32, steps: 30, batch: 4, lr: 1e-2, warmup: 3 },
      { threads: 2, onProgress: (p) => p.phase === 'train' && seen.push(p.loss) },
    );
    expect(Number.isFinite(loss)).toBe(true);
    expect(seen[seen.length - 1]).toBeLessThan(seen[0]);
    const m = await loadModel(out, { threads: 1 });
    expect(m.info.vocabSize).toBe(320);
    expect(m.info.embeddingLength).toBe(32);
    const text = 'The cat sat on the mat. Naïve ✓';
    expect(m.detokenize(m.tokenize(text, { addBos: false }))).toBe(text);
    const s = m.createSession({ contextSize: 64 });
    expect((await s.complete('The dog', { temperature: 0, maxTokens: 8 })).tokens).toHaveLength(8);
    await m.dispose();
  });

  test('bad corpora and options are typed errors', async () => {
    const out = path.join(dir, 'never.gguf');
    await expect(trainBase({ corpus: path.join(dir, 'missing.txt'), out })).rejects.toBeInstanceOf(FileNotFoundError);
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '');
    await expect(trainBase({ corpus: empty, out })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(trainBase({ corpus: empty, out, vocab: 100 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(trainBase({ corpus: empty, out, dim: 30, heads: 4 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(trainBase({ corpus: '', out })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(fs.existsSync(out)).toBe(false);
  });
});
