// stories260K through both of its files must reproduce the golden greedy outputs of llama.cpp and an
// independent implementation token for token, and the golden top-5 probabilities within 1e-4.
import { loadModel, Model } from '../lib';
import { describeStories, golden, GoldenCase, hasStories, softmax, storiesBin, storiesGguf, storiesTokenizer } from './helpers';

// Read only when the shared assets exist (the block is skipped otherwise, but test.each runs eagerly).
const cases: [string, GoldenCase][] = hasStories
  ? golden().cases.map((c) => [c.prompt, c])
  : [['(absent)', {} as GoldenCase]];

const files: [string, () => Promise<Model>][] = [
  ['GGUF', () => loadModel(storiesGguf, { threads: 2 })],
  ['llama2.c', () => loadModel(storiesBin, { tokenizer: storiesTokenizer, threads: 2 })],
];

describeStories('stories260K golden outputs', () => {
  for (const [label, load] of files) {
    describe(label, () => {
      let model: Model;
      beforeAll(async () => {
        model = await load();
      });
      afterAll(() => model.dispose());

      test.each(cases)('greedy "%s" matches golden.json', async (_p, c) => {
        const session = model.createSession({ contextSize: 512 });
        const r = await session.complete(c.prompt, { maxTokens: c.output_ids.length, temperature: 0, stopOnEos: false });
        expect(r.promptTokens).toEqual(c.prompt_ids);
        expect(r.tokens).toEqual(c.output_ids);
        expect(r.text).toBe(c.text);
        session.dispose();
      });

      test('top-5 probabilities of the first 3 steps are within 1e-4 of golden', async () => {
        const c = golden().cases[0];
        expect(c.top5_logits_first3).toBeDefined();
        const session = model.createSession({ contextSize: 512 });
        let next: number[] = c.prompt_ids;
        for (let step = 0; step < 3; step++) {
          const { logits } = await session.evaluate(next, 1);
          const probs = softmax(logits);
          for (const ref of c.top5_logits_first3![step]) {
            expect(Math.abs(probs[ref.id] - ref.prob)).toBeLessThan(1e-4);
            expect(Math.abs(logits[ref.id] - ref.logit)).toBeLessThan(1e-3);
          }
          const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]).slice(0, 5);
          expect(order).toEqual(c.top5_logits_first3![step].map((e) => e.id));
          next = [c.output_ids[step]];
        }
        session.dispose();
      });
    });
  }
});
