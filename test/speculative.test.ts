// Chimera speculative decoding is lossless: greedy output equals plain greedy token for token for any
// draft and tree; the caches after a speculative step equal plain decoding's; sampled output follows
// the base distribution (a lossy verifier, kept as a negative control, fails the same test).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Draft, InvalidArgumentError, loadModel, Model } from '../lib';
import { describeStories, storiesGguf, tempDir } from './helpers';
import { chiCritical, chiSquare, firstThree } from './sampling';
import { writeContextFreeGguf, writeTiny } from './tinyModel';

const greedy = { temperature: 0, stopOnEos: false };

// Mulberry32: a seeded random tree, prefix-closed by construction.
function randomTree(seed: number, nodes: number, depth: number, width: number): number[][] {
  let a = seed;
  const rnd = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const paths: number[][] = [];
  const have = new Set<string>(['']);
  while (paths.length < nodes) {
    const parents = [[], ...paths].filter((p) => p.length < depth);
    const parent = parents[Math.floor(rnd() * parents.length)];
    const child = [...parent, Math.floor(rnd() * width)];
    if (have.has(child.join())) continue;
    have.add(child.join());
    paths.push(child);
  }
  return paths;
}

// A copy of a saved draft with every weight perturbed by seeded noise of relative size `scale`
// (read and rewritten as safetensors, keeping the metadata that names the base model).
function perturbDraft(src: string, dst: string, scale: number, seed: number): string {
  const buf = fs.readFileSync(src);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const data = buf.subarray(8 + n);
  let a = seed;
  const rnd = () => {
    a = (a * 1103515245 + 12345) % 2147483648;
    return a / 2147483648 - 0.5;
  };
  const tensors = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, v]) => {
      const { shape, dtype, data_offsets: [b, e] } = v as { shape: number[]; dtype: string; data_offsets: [number, number] };
      if (dtype === 'I32') return { name, shape, dtype, data: new Int32Array(data.buffer.slice(data.byteOffset + b, data.byteOffset + e)) };
      const w = new Float32Array(data.buffer.slice(data.byteOffset + b, data.byteOffset + e));
      let rms = 0;
      for (const x of w) rms += x * x;
      rms = Math.sqrt(rms / w.length) || 1;
      for (let i = 0; i < w.length; i++) w[i] += scale * rms * rnd();
      return { name, shape, dtype: 'F32', data: w };
    });
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { writeSafetensors } = require(path.join(__dirname, '..', 'tools', 'writers', 'hf.js'));
  writeSafetensors(dst, tensors, header.__metadata__);
  return dst;
}

// A wide tree: many guesses per depth, so that deep paths get accepted even with an untrained draft.
const wideTree: number[][] = [];
for (let i = 0; i < 24; i++) wideTree.push([i]);
for (let i = 0; i < 16; i++) wideTree.push([0, i]);
for (let i = 0; i < 12; i++) wideTree.push([0, 0, i]);
for (let i = 0; i < 8; i++) wideTree.push([0, 0, 0, i]);

async function plainAndSpeculative(model: Model, draft: Draft, tree: string | number[][], prompts: string[], n: number) {
  const plain = model.createSession({ contextSize: 1024 });
  const spec = model.createSession({ contextSize: 1024, draft, tree });
  const out: { plain: number[]; spec: number[]; accepted: number[]; steps: number }[] = [];
  for (const p of prompts) {
    // Multi-turn: each prompt continues the same session.
    const a = await plain.complete(p, { ...greedy, maxTokens: n });
    const b = await spec.complete(p, { ...greedy, maxTokens: n });
    out.push({ plain: a.tokens, spec: b.tokens, accepted: b.stats.acceptedByDepth ?? [], steps: b.stats.steps ?? 0 });
  }
  expect(spec.tokens).toEqual(plain.tokens);
  plain.dispose();
  spec.dispose();
  return out;
}

describe('speculative decoding on a tiny random model', () => {
  let model: Model;
  let drafts: Draft[];
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    model = await loadModel(writeTiny(dir, 'gguf'), { threads: 2 });
    const untrained = await model.createDraft({ heads: 5, seed: 1 });
    await untrained.save(path.join(dir, 'untrained.safetensors'));
    const perturbed = perturbDraft(path.join(dir, 'untrained.safetensors'), path.join(dir, 'perturbed.safetensors'), 0.5, 9);
    drafts = [untrained, await model.loadDraft(perturbed)];
  });
  afterAll(() => model.dispose());

  // Each case asserts that tree steps ran. 'auto' is not among them: on these models its policy may
  // run plain decoding throughout (the test below checks what it reports), which would compare plain
  // decoding with itself; switching between plain and tree steps is covered by the context-limit test.
  const trees: [string, string | number[][]][] = [
    ['chimera-25', 'chimera-25'],
    ['chain-1', 'chain-1'],
    ['chain-5', 'chain-5'],
    ['random', randomTree(5, 30, 5, 6)],
    ['wide', wideTree],
  ];
  test.each(trees)('greedy with tree %s equals plain greedy for 256+ tokens over two turns', async (_n, tree) => {
    for (const draft of drafts) {
      const runs = await plainAndSpeculative(model, draft, tree, ['the cat', ' and then'], 160);
      for (const r of runs) expect(r.spec).toEqual(r.plain);
      // A comparison proves something only if the tree ran.
      expect(runs.reduce((s, r) => s + r.steps, 0)).toBeGreaterThan(0);
    }
  });

  test('greedy equals plain with a draft that agrees often (deep paths accepted)', async () => {
    const agreeing = await loadModel(writeContextFreeGguf(path.join(dir, 'cf.gguf'), 6), { threads: 2 });
    const draft = await agreeing.createDraft({ heads: 5, seed: 4 });
    for (const tree of ['chimera-25', 'chain-5'] as const) {
      const runs = await plainAndSpeculative(agreeing, draft, tree, ['the cat', ' and then'], 150);
      for (const r of runs) expect(r.spec).toEqual(r.plain);
      expect(runs.reduce((s, r) => s + (r.accepted[2] ?? 0), 0)).toBeGreaterThan(5);
    }
    await agreeing.dispose();
  });

  test("tree 'auto' is the default and reports the trees it chose", async () => {
    const s = model.createSession({ contextSize: 1024, draft: drafts[0] });
    const r = await s.complete('the', { ...greedy, maxTokens: 120 });
    const by = r.stats.stepsByTree!;
    // 'auto' is one tree, fitted to the measured costs and acceptance as decoding goes, against plain decoding.
    expect(Object.keys(by).sort()).toEqual(['auto', 'plain']);
    const total = Object.values(by).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(20);
    // Plain decoding runs first (the rate to beat); a tree is tried only when its estimated cost fits
    // the exploration budget.
    expect(by.plain).toBeGreaterThanOrEqual(3);
    expect(r.stats.plainSteps! + (r.stats.steps ?? 0)).toBe(total);
    s.dispose();
  });

  test('the wide tree accepts paths deeper than one, so compaction is exercised', async () => {
    const runs = await plainAndSpeculative(model, drafts[0], wideTree, ['a', ' b'], 200);
    const deep = runs.reduce((s, r) => s + (r.accepted[1] ?? 0), 0);
    expect(deep).toBeGreaterThan(0);
  });

  test('after speculative steps the KV cache and next logits equal plain decoding (1e-4)', async () => {
    const plain = model.createSession({ contextSize: 512 });
    const spec = model.createSession({ contextSize: 512, draft: drafts[0], tree: wideTree });
    const a = await plain.complete('the', { ...greedy, maxTokens: 50 });
    const b = await spec.complete('the', { ...greedy, maxTokens: 50 });
    expect(b.tokens).toEqual(a.tokens);
    expect(b.stats.steps).toBeGreaterThan(0);
    const pa = await plain.evaluate([5, 9], 2);
    const pb = await spec.evaluate([5, 9], 2);
    let worst = 0;
    for (let i = 0; i < pa.logits.length; i++) worst = Math.max(worst, Math.abs(pa.logits[i] - pb.logits[i]));
    for (let i = 0; i < pa.hidden.length; i++) worst = Math.max(worst, Math.abs(pa.hidden[i] - pb.hidden[i]));
    expect(worst).toBeLessThan(1e-4);
    plain.dispose();
    spec.dispose();
  });

  test('stop strings, EOS-free maxTokens and abort behave as in plain decoding', async () => {
    const plain = model.createSession({ contextSize: 512 });
    const spec = model.createSession({ contextSize: 512, draft: drafts[0], tree: wideTree });
    const full = await plain.complete('x', { ...greedy, maxTokens: 60, append: false });
    const stop = full.text.slice(20, 22);
    for (const n of [1, 7, 33]) {
      const a = await plain.complete('x', { ...greedy, maxTokens: n, append: false });
      const b = await spec.complete('x', { ...greedy, maxTokens: n, append: false });
      expect(b.tokens).toEqual(a.tokens);
    }
    const a = await plain.complete('x', { ...greedy, maxTokens: 60, stop: [stop], append: false });
    const b = await spec.complete('x', { ...greedy, maxTokens: 60, stop: [stop], append: false });
    expect(b.text).toBe(a.text);
    expect(b.tokens).toEqual(a.tokens);
    expect(spec.tokens).toEqual(plain.tokens);
    plain.dispose();
    spec.dispose();
  });

  test('abort stops within a step and leaves caches equal to plain decoding of the same tokens', async () => {
    const spec = model.createSession({ contextSize: 4096, draft: drafts[0], tree: wideTree });
    const ac = new AbortController();
    const it = spec.generate('go', { ...greedy, maxTokens: 100000, signal: ac.signal });
    await it.next();
    ac.abort();
    let step = await it.next();
    while (!step.done) step = await it.next();
    expect(step.value.aborted).toBe(true);
    expect(step.value.tokens.length).toBeLessThan(4000);
    const history = spec.tokens;
    expect(history.slice(history.length - step.value.tokens.length)).toEqual(step.value.tokens);
    const fresh = model.createSession({ contextSize: 4096 });
    const a = await fresh.evaluate([...history, 5], 1);
    const b = await spec.evaluate([5], 1);
    let worst = 0;
    for (let i = 0; i < a.logits.length; i++) worst = Math.max(worst, Math.abs(a.logits[i] - b.logits[i]));
    expect(worst).toBeLessThan(1e-4);
    fresh.dispose();
    spec.dispose();
  });

  test('context limits: the tree falls back to single steps when it no longer fits', async () => {
    const plain = model.createSession({ contextSize: 64 });
    const spec = model.createSession({ contextSize: 64, draft: drafts[0], tree: 'chimera-25' });
    const n = 64 - model.tokenize('x').length - 1;
    const a = await plain.complete('x', { ...greedy, maxTokens: n });
    const b = await spec.complete('x', { ...greedy, maxTokens: n });
    expect(b.tokens).toEqual(a.tokens);
    expect(b.stats.plainSteps).toBeGreaterThan(0);
    plain.dispose();
    spec.dispose();
  });

  test('bad trees, drafts for another base and truncated draft files are typed errors', async () => {
    const bad: unknown[] = ['chain-0', 'nonsense', [[1, 0]], [[0], [0]], [[0, 0, 0, 0, 0, 0]], [[-1]], [[99]], [['a']], 7];
    for (const tree of bad)
      expect(() => model.createSession({ draft: drafts[0], tree: tree as number[][] })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_ARG' }),
      );
    const file = path.join(dir, 'tiny.chimera.safetensors');
    await drafts[0].save(file);
    const reloaded = await model.loadDraft(file);
    expect(reloaded.info.heads).toBe(5);
    const other = await loadModel(writeTiny(tempDir(), 'gguf', { seed: 2 }), { threads: 1 });
    await expect(other.loadDraft(file)).rejects.toMatchObject({ code: 'E_INVALID_ARG' });
    await other.dispose();
    const bytes = fs.readFileSync(file);
    for (const cut of [4, 100, Math.floor(bytes.length / 2), bytes.length - 1]) {
      const t = path.join(dir, `cut-${cut}.safetensors`);
      fs.writeFileSync(t, bytes.subarray(0, cut));
      await expect(model.loadDraft(t)).rejects.toMatchObject({ code: expect.stringMatching(/^E_(FORMAT|TENSOR)$/) });
    }
    await expect(model.loadDraft(path.join(dir, 'missing.safetensors'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});

// ---- sampling exactness ----

describe('speculative sampling is exact', () => {
  const N = 2500;
  const settings: [string, Record<string, number>][] = [
    ['temperature 1', { temperature: 1, topK: 0, topP: 1, minP: 0 }],
    ['temperature 1, top-p 0.9', { temperature: 1, topK: 0, topP: 0.9, minP: 0 }],
  ];

  async function compare(model: Model, draft: Draft, opts: Record<string, number>) {
    const plain = model.createSession({ contextSize: 64 });
    const spec = model.createSession({ contextSize: 64, draft, tree: 'chimera-25' });
    const lossy = model.createSession({ contextSize: 64, draft, tree: 'chimera-25', verify: 'lossy-test-only' } as never);
    const cp = await firstThree(plain, N, opts);
    const exact = chiSquare(cp, await firstThree(spec, N, opts), N);
    const biased = chiSquare(cp, await firstThree(lossy, N, opts), N);
    [plain, spec, lossy].forEach((s) => s.dispose());
    console.log(`chi-square exact ${exact.stat.toFixed(1)} (df ${exact.df}), lossy ${biased.stat.toFixed(1)} ` +
      `(df ${biased.df}), critical ${chiCritical(exact.df).toFixed(1)}`);
    return { exact, biased };
  }

  describe('on a random model (context-dependent, peaked distributions)', () => {
    let model: Model;
    let draft: Draft;
    beforeAll(async () => {
      model = await loadModel(writeTiny(tempDir(), 'gguf', { seed: 3, std: 0.6 }), { threads: 2 });
      draft = await model.createDraft({ heads: 3, seed: 4 });
    });
    afterAll(() => model.dispose());

    test.each(settings)('%s: the joint law of the first 3 tokens matches plain sampling', async (_n, opts) => {
      const { exact } = await compare(model, draft, opts);
      expect(exact.df).toBeGreaterThan(5);
      expect(exact.stat).toBeLessThan(chiCritical(exact.df));
    });
  });

  describe('on a model the untrained draft agrees with (deep paths accepted)', () => {
    let model: Model;
    let draft: Draft;
    beforeAll(async () => {
      model = await loadModel(writeContextFreeGguf(path.join(tempDir(), 'cf.gguf'), 6), { threads: 2 });
      draft = await model.createDraft({ heads: 3, seed: 4 });
    });
    afterAll(() => model.dispose());

    test.each(settings)('%s: exact verification passes the test and a lossy verifier fails it', async (_n, opts) => {
      const { exact, biased } = await compare(model, draft, opts);
      expect(exact.df).toBeGreaterThan(5);
      expect(exact.stat).toBeLessThan(chiCritical(exact.df));
      expect(biased.stat).toBeGreaterThan(chiCritical(biased.df));
    });
  });
});

describeStories('speculative decoding on stories260K', () => {
  test('greedy equals plain for 300 tokens with chimera-25, chain-1, chain-5 and a random tree', async () => {
    const model = await loadModel(storiesGguf, { threads: 2 });
    const draft = await model.createDraft({ heads: 5, seed: 1 });
    for (const tree of ['chimera-25', 'chain-1', 'chain-5', randomTree(9, 40, 5, 8)] as const) {
      const runs = await plainAndSpeculative(model, draft, tree as string | number[][], ['Once upon a time', ' The dog'], 150);
      for (const r of runs) expect(r.spec).toEqual(r.plain);
      expect(runs.reduce((s, r) => s + r.steps, 0)).toBeGreaterThan(0);
    }
    await model.dispose();
  });

  test('a draft stored as F16, BF16 or Q8_0 is smaller, drafts much the same and stays lossless', async () => {
    const model = await loadModel(storiesGguf, { threads: 2 });
    const f32 = await model.createDraft({ heads: 3, seed: 1 });
    expect(f32.info.dtype).toBe('F32');
    const file = path.join(tempDir(), 'stories.chimera.safetensors');
    await f32.save(file);
    for (const dtype of ['F16', 'BF16', 'Q8_0'] as const) {
      for (const draft of [await model.createDraft({ heads: 3, seed: 1, dtype }), await model.loadDraft(file, { dtype })]) {
        expect(draft.info.dtype).toBe(dtype);
        expect(draft.info.weightBytes).toBeLessThan(f32.info.weightBytes * (dtype === 'Q8_0' ? 0.3 : 0.55));
        const runs = await plainAndSpeculative(model, draft, 'chimera-25', ['Once upon a time'], 100);
        for (const r of runs) expect(r.spec).toEqual(r.plain);
        // Any stored type saves, widened or narrowed to the file's type.
        const again = path.join(tempDir(), 'again.chimera.safetensors');
        await draft.save(again, { dtype: 'F32' });
        const reloaded = await model.loadDraft(again);
        expect(reloaded.info.dtype).toBe('F32');
        reloaded.dispose();
        draft.dispose();
      }
    }
    await expect(model.createDraft({ dtype: 'Q4' as never })).rejects.toThrow(InvalidArgumentError);
    await expect(model.loadDraft(file, { dtype: 'f16' as never })).rejects.toThrow(InvalidArgumentError);
    f32.dispose();
    await model.dispose();
  });
});
