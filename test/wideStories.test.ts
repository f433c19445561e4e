// tools/wide-stories (bench/make-wide-stories.js): stories260K widened exactly to a bigger shape computes stories260K's
// function, and its widened draft accepts exactly what the small draft accepts. A mid-size shape keeps
// the test fast (the construction does not depend on the size; the bench builds the 1.1B shape):
// dim 256 with 64 real dimensions, 7 layers (2 that add nothing), 16/4 heads, vocabulary 1024, a draft
// of width 128 with heads over 768 tokens.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Draft, loadModel, Model } from '../lib';
import { golden, hasStories, repoRoot, softmax, tempDir } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { makeWide, parseArgs } = require(path.join(repoRoot, 'tools', 'wide-stories', 'make.js')) as {
  makeWide(a: unknown): { model: string; draft: string }[];
  parseArgs(argv: string[]): Record<string, unknown>;
};

const smallModel = path.join(repoRoot, 'models', 'stories260K.gguf');
const smallDraft = path.join(repoRoot, 'models', 'stories260K.chimera.safetensors');
const SHAPE = ['--dim', '256', '--layers', '7', '--heads', '16', '--kv-heads', '4', '--ffn', '512', '--vocab', '1024',
  '--draft-width', '128', '--head-vocab', '768', '--quiet'];
const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park'];
const greedy = { temperature: 0 };

function build(dtype: string, dir: string) {
  return makeWide(parseArgs([...SHAPE, '--dtype', dtype, '--out', dir]))[0];
}

describe('stories260K widened exactly (tools/wide-stories)', () => {
  let dir: string;
  let small: Model;
  beforeAll(async () => {
    dir = tempDir();
    small = await loadModel(smallModel, { threads: 2 });
  });
  afterAll(() => {
    small.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('F32: greedy output equals stories260K and golden.json; the widened draft accepts exactly what the small one does', async () => {
    const files = build('f32', dir);
    const wide = await loadModel(files.model, { threads: 2 });
    expect(wide.info.embeddingLength).toBe(256);
    expect(wide.info.vocabSize).toBe(1024);
    const cases = hasStories ? golden().cases.map((c) => ({ prompt: c.prompt, want: c.output_ids as number[] })) : [];
    for (const p of PROMPTS) {
      const s = small.createSession({ contextSize: 512 });
      cases.push({ prompt: p, want: (await s.complete(p, { ...greedy, maxTokens: 64 })).tokens });
      s.dispose();
    }
    for (const c of cases) {
      const s = wide.createSession({ contextSize: 512 });
      const r = await s.complete(c.prompt, { ...greedy, maxTokens: c.want.length });
      expect(r.tokens).toEqual(c.want);
      s.dispose();
    }

    const drafts: [Draft, Draft] = [await small.loadDraft(smallDraft), await wide.loadDraft(files.draft)];
    expect(drafts[1].info).toMatchObject({ width: 128, headVocabSize: 768, hiddenSize: 256, formatVersion: 2 });
    for (const tree of ['chimera-25', 'chain-3']) {
      for (const p of PROMPTS) {
        const runs = [];
        for (const [i, m] of [small, wide].entries()) {
          const s = m.createSession({ contextSize: 512, draft: drafts[i], tree });
          runs.push(await s.complete(p, { ...greedy, maxTokens: 80 }));
          s.dispose();
        }
        expect(runs[0].stats.steps).toBeGreaterThan(0);  // tree steps ran
        expect(runs[1].tokens).toEqual(runs[0].tokens);
        expect(runs[1].stats.steps).toBe(runs[0].stats.steps);
        expect(runs[1].stats.acceptedByDepth).toEqual(runs[0].stats.acceptedByDepth);
      }
    }
    wide.dispose();
  });

  test.each(['f16', 'bf16', 'q8_0'])('%s: stories260K up to rounding (next-token probabilities within 0.02)', async (dtype) => {
    const files = build(dtype, dir);
    const wide = await loadModel(files.model, { threads: 2 });
    const draft = await wide.loadDraft(files.draft, { dtype: dtype === 'q8_0' ? 'Q8_0' : undefined });
    for (const p of PROMPTS) {
      const ids = small.tokenize(p);
      const [a, b] = [small.createSession({ contextSize: 512 }), wide.createSession({ contextSize: 512 })];
      const pa = softmax((await a.evaluate(ids, 1)).logits);
      const pb = softmax((await b.evaluate(ids, 1)).logits);
      let worst = 0;
      for (let t = 0; t < pb.length; t++) worst = Math.max(worst, Math.abs((pa[t] ?? 0) - pb[t]));
      expect(worst).toBeLessThan(0.02);
      a.dispose();
      b.dispose();
      // The widened draft works on the rounded model too: tree steps run and the output is lossless.
      const plain = wide.createSession({ contextSize: 512 });
      const spec = wide.createSession({ contextSize: 512, draft, tree: 'chain-3' });
      const want = await plain.complete(p, { ...greedy, maxTokens: 40 });
      const got = await spec.complete(p, { ...greedy, maxTokens: 40 });
      expect(got.tokens).toEqual(want.tokens);
      expect(got.stats.steps).toBeGreaterThan(0);
      expect((got.stats.acceptedByDepth ?? [0])[0]).toBeGreaterThan(got.stats.steps! / 2);
      plain.dispose();
      spec.dispose();
    }
    wide.dispose();
  });
});
