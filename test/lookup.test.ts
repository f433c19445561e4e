// Lookup decoding without a draft (createSession({ lookup: true })): greedy output equals plain decoding
// token for token, sampled output follows the base distribution (a lossy verifier, the negative
// control, fails the same test), and the steps that ran are reported with the source of each accepted
// token.
import * as path from 'node:path';
import { InvalidArgumentError, loadModel, Model } from '../lib';
import { repoRoot, tempDir } from './helpers';
import { chiCritical, chiSquare, firstThree } from './sampling';
import { writeContextFreeGguf } from './tinyModel';

// stories260K ships in models/, so this runs on a fresh clone.
const storiesModel = path.join(repoRoot, 'models', 'stories260K.gguf');
const greedy = { temperature: 0, stopOnEos: false, append: false };

describe('lookup decoding on stories260K', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(storiesModel, { threads: 2 });
  });
  afterAll(() => model.dispose());

  // stories260K decodes a step in about 0.1 ms, where a lookup step rarely pays: 'auto' mostly keeps
  // plain decoding here, so the trees are exercised with 'always' (and 'auto' must agree too).
  test('greedy output equals plain decoding, and lookup steps ran where the text repeats', async () => {
    const plain = model.createSession({ contextSize: 768 });
    const lookup = model.createSession({ contextSize: 768, lookup: { when: 'always' } });
    const auto = model.createSession({ contextSize: 768, lookup: true });
    const story = await plain.complete('Once upon a time, there was a little girl named Lily.', { ...greedy, maxTokens: 120 });
    // The model's own story, then its start again: the continuation copies what came before.
    const prompts = [
      'Once upon a time, there was a little girl named Lily.' + story.text + '\n\nOnce upon a time, there was a little girl named Lily.',
      'The dog ran to the park and',
      'Tom and Sue had a big red box. They',
    ];
    let steps = 0, fromPrompt = 0, emitted = 0;
    for (const p of prompts) {
      const a = await plain.complete(p, { ...greedy, maxTokens: 160 });
      const b = await lookup.complete(p, { ...greedy, maxTokens: 160 });
      expect(b.tokens).toEqual(a.tokens);
      expect((await auto.complete(p, { ...greedy, maxTokens: 160 })).tokens).toEqual(a.tokens);
      expect(b.stats.speculative).toBe(true);
      steps += b.stats.steps ?? 0;
      emitted += (b.stats.tokensPerStep ?? 0) * (b.stats.steps ?? 0);
      fromPrompt += b.stats.acceptedBySource?.prompt ?? 0;
      expect(Object.keys(b.stats.stepsByTree ?? {})).toEqual(['plain', 'lookup']);
    }
    expect(steps).toBeGreaterThan(0);
    expect(fromPrompt).toBeGreaterThan(0);
    expect(emitted / steps).toBeGreaterThan(1.5);  // a verified step emits its accepted tokens and the bonus
    [plain, lookup, auto].forEach((s) => s.dispose());
  });

  test('bad lookup options are typed errors', async () => {
    expect(() => model.createSession({ lookup: 'yes' as never })).toThrow(InvalidArgumentError);
    expect(() => model.createSession({ lookup: { maxNodes: 1 } })).toThrow(InvalidArgumentError);
    expect(() => model.createSession({ lookup: { maxNodes: 65 } })).toThrow(InvalidArgumentError);
    expect(() => model.createSession({ lookup: { when: 'sometimes' as never } })).toThrow(InvalidArgumentError);
    const off = model.createSession({ lookup: false });
    const r = await off.complete('Once', { ...greedy, maxTokens: 4 });
    expect(r.stats.speculative).toBeUndefined();
    off.dispose();
  });
});

describe('lookup sampling is exact', () => {
  // A model whose next-token law ignores the context: its own samples make a prompt whose n-grams
  // predict it, so lookup trees run at nearly every step.
  test('temperature 1: the joint law of the first 3 tokens matches plain sampling; a lossy verifier fails', async () => {
    const model = await loadModel(writeContextFreeGguf(path.join(tempDir(), 'cf.gguf'), 6), { threads: 2 });
    const opts = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    const plain = model.createSession({ contextSize: 128 });
    const sample = await plain.complete('the', { ...opts, maxTokens: 60, seed: 7, stopOnEos: false, append: false });
    const prompt = 'the' + sample.text;
    // A model this small decodes a step in microseconds, where building a tree costs as much: 'always'
    // verifies the trees anyway.
    const lookup = model.createSession({ contextSize: 128, lookup: { when: 'always' } });
    const lossy = model.createSession({ contextSize: 128, lookup: { when: 'always' }, verify: 'lossy-test-only' } as never);
    const N = 2500;
    const cp = await firstThree(plain, N, opts, prompt);
    const exact = chiSquare(cp, await firstThree(lookup, N, opts, prompt), N);
    const biased = chiSquare(cp, await firstThree(lossy, N, opts, prompt), N);
    const ran = await lookup.complete(prompt, { ...opts, maxTokens: 24, seed: 1, stopOnEos: false, append: false });
    console.log(`lookup chi-square exact ${exact.stat.toFixed(1)} (df ${exact.df}), lossy ${biased.stat.toFixed(1)}, ` +
      `critical ${chiCritical(exact.df).toFixed(1)}`);
    expect(ran.stats.steps).toBeGreaterThan(0);
    expect(exact.df).toBeGreaterThan(5);
    expect(exact.stat).toBeLessThan(chiCritical(exact.df));
    expect(biased.stat).toBeGreaterThan(chiCritical(biased.df));
    [plain, lookup, lossy].forEach((s) => s.dispose());
    await model.dispose();
  });
});

describe('lookup caches', () => {
  test('a corpus cache feeds the tree, saves and loads, and is refused by another vocabulary', async () => {
    const model = await loadModel(storiesModel, { threads: 2 });
    const plain = model.createSession({ contextSize: 512 });
    // The corpus: the model's own greedy stories from a few openings.
    const openings = ['Once upon a time', 'One day, a little boy', 'There was a big tree', 'The cat'];
    const texts: string[] = [];
    for (const o of openings) texts.push(o + (await plain.complete(o, { ...greedy, maxTokens: 150 })).text);
    const cache = await model.buildLookupCache(texts);
    expect(cache.info.contexts).toBeGreaterThan(100);
    expect(cache.info.vocabSize).toBe(model.info.vocabSize);
    const file = path.join(tempDir(), 'stories.ngram');
    await cache.save(file);
    const loaded = await model.loadLookupCache(file);
    expect(loaded.info).toEqual(cache.info);
    const lookup = model.createSession({ contextSize: 512, lookup: { corpus: loaded, when: 'always' } });
    let fromCorpus = 0;
    for (const o of openings) {
      const a = await plain.complete(o, { ...greedy, maxTokens: 120 });
      const b = await lookup.complete(o, { ...greedy, maxTokens: 120 });
      expect(b.tokens).toEqual(a.tokens);
      fromCorpus += b.stats.acceptedBySource?.corpus ?? 0;
    }
    expect(fromCorpus).toBeGreaterThan(0);
    // Another vocabulary: the tiny context-free model's.
    const other = await loadModel(writeContextFreeGguf(path.join(tempDir(), 'cf.gguf'), 6), { threads: 2 });
    await expect(other.loadLookupCache(file)).rejects.toMatchObject({ code: 'E_INVALID_ARG' });
    await expect(model.loadLookupCache(path.join(tempDir(), 'missing.ngram'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(() => model.createSession({ lookup: { corpus: {} as never } })).toThrow(InvalidArgumentError);
    loaded.dispose();
    expect(() => loaded.info).toThrow();
    [plain, lookup].forEach((s) => s.dispose());
    cache.dispose();
    await other.dispose();
    await model.dispose();
  });
});

describe('lookup with a draft', () => {
  test('one tree from both: greedy equals plain, accepted tokens by source include the draft and lookup', async () => {
    const model = await loadModel(storiesModel, { threads: 2 });
    const draft = await model.loadDraft(path.join(repoRoot, 'models', 'stories260K.chimera.safetensors'));
    const plain = model.createSession({ contextSize: 768 });
    const both = model.createSession({ contextSize: 768, draft, tree: 'chimera-25', lookup: true });
    const alone = model.createSession({ contextSize: 768, draft, tree: 'chimera-25' });
    const auto = model.createSession({ contextSize: 768, draft, lookup: true });  // tree 'auto': cost-gated lookup nodes
    const story = await plain.complete('Once upon a time', { ...greedy, maxTokens: 100 });
    const prompts = ['Once upon a time' + story.text + '\n\nOnce upon a time', 'The dog ran to the park and'];
    let fromDraft = 0, fromLookup = 0, tauBoth = 0, tauAlone = 0;
    for (const p of prompts) {
      const a = await plain.complete(p, { ...greedy, maxTokens: 150 });
      const b = await both.complete(p, { ...greedy, maxTokens: 150 });
      const c = await alone.complete(p, { ...greedy, maxTokens: 150 });
      expect(b.tokens).toEqual(a.tokens);
      expect(c.tokens).toEqual(a.tokens);
      expect((await auto.complete(p, { ...greedy, maxTokens: 150 })).tokens).toEqual(a.tokens);
      const s = b.stats.acceptedBySource!;
      fromDraft += s.draft ?? 0;
      fromLookup += s.prompt + s.session + s.corpus;
      tauBoth += b.stats.tokensPerStep!;
      tauAlone += c.stats.tokensPerStep!;
    }
    expect(fromDraft).toBeGreaterThan(0);
    expect(fromLookup).toBeGreaterThan(0);
    // On text that repeats, lookup adds accepted tokens the draft's tree alone does not reach.
    expect(tauBoth).toBeGreaterThan(tauAlone);
    [plain, both, alone, auto].forEach((s) => s.dispose());
    draft.dispose();
    await model.dispose();
  });
});
