// Generation behaviour on a tiny random model written by the tests (runs on a fresh clone):
// sampling reproducibility, stop strings, EOS, maxTokens, context reuse and continuation, streaming.
import { loadModel, Model } from '../lib';
import { tempDir } from './helpers';
import { writeTiny } from './tinyModel';

let model: Model;
beforeAll(async () => {
  const file = writeTiny(tempDir(), 'gguf');
  model = await loadModel(file, { threads: 2 });
});
afterAll(() => model.dispose());

const greedy = { temperature: 0, maxTokens: 40, stopOnEos: false };

test('greedy decoding is deterministic and independent of the session', async () => {
  const a = model.createSession({ contextSize: 256 });
  const b = model.createSession({ contextSize: 256 });
  const ra = await a.complete('the cat', greedy);
  const rb = await b.complete('the cat', greedy);
  expect(ra.tokens).toHaveLength(40);
  expect(rb.tokens).toEqual(ra.tokens);
  a.dispose();
  b.dispose();
});

test('sampling with a seed is reproducible, and another seed differs', async () => {
  const s = model.createSession({ contextSize: 256 });
  const opts = { temperature: 1, topK: 0, topP: 1, minP: 0, maxTokens: 40, seed: 7, stopOnEos: false, append: false };
  const r1 = await s.complete('hello', opts);
  const r2 = await s.complete('hello', opts);
  const r3 = await s.complete('hello', { ...opts, seed: 8 });
  expect(r2.tokens).toEqual(r1.tokens);
  expect(r3.tokens).not.toEqual(r1.tokens);
  s.dispose();
});

test('topK 1 and a tiny topP both reduce sampling to greedy', async () => {
  const s = model.createSession({ contextSize: 256 });
  const g = await s.complete('abc', { ...greedy, append: false });
  const k1 = await s.complete('abc', { ...greedy, temperature: 1.5, topK: 1, seed: 3, append: false });
  const p0 = await s.complete('abc', { ...greedy, temperature: 1.5, topK: 0, topP: 1e-6, seed: 3, append: false });
  expect(k1.tokens).toEqual(g.tokens);
  expect(p0.tokens).toEqual(g.tokens);
  s.dispose();
});

test('streamed chunks concatenate to the text, which equals the decode of the tokens', async () => {
  const s = model.createSession({ contextSize: 256 });
  let streamed = '';
  const tokens: number[] = [];
  const it = s.generate('x', { temperature: 1.2, topK: 0, topP: 1, minP: 0, seed: 11, maxTokens: 60, stopOnEos: false });
  let step = await it.next();
  while (!step.done) {
    streamed += step.value.text;
    tokens.push(...step.value.tokens);
    step = await it.next();
  }
  const r = step.value;
  expect(streamed).toBe(r.text);
  expect(tokens).toEqual(r.tokens);
  // A chunk boundary inside a multi-byte character would have produced replacement characters here.
  expect(model.detokenize(r.tokens, { previous: r.promptTokens[r.promptTokens.length - 1] })).toBe(r.text);
  s.dispose();
});

test('a stop string ends generation and is not part of the text', async () => {
  const s = model.createSession({ contextSize: 256 });
  const full = await s.complete('the', { ...greedy, append: false });
  // Pick a stop string from the middle of the greedy text.
  const at = Math.floor(full.text.length / 2);
  const stop = full.text.slice(at, at + 2);
  const r = await s.complete('the', { ...greedy, append: false, stop: [stop] });
  expect(r.stopReason).toBe('stop');
  expect(r.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  expect(r.text.includes(stop)).toBe(false);
  s.dispose();
});

test('maxTokens bounds the output; maxTokens 0 generates nothing', async () => {
  const s = model.createSession({ contextSize: 256 });
  const r = await s.complete('a', { ...greedy, maxTokens: 5 });
  expect(r.tokens).toHaveLength(5);
  expect(r.stopReason).toBe('maxTokens');
  const z = await s.complete('a', { ...greedy, maxTokens: 0, append: false });
  expect(z.tokens).toHaveLength(0);
  s.dispose();
});

test('continuing a session equals generating the concatenated context in one go', async () => {
  const s = model.createSession({ contextSize: 256 });
  const first = await s.complete('the dog', { ...greedy, maxTokens: 10 });
  const second = await s.complete(' and', { ...greedy, maxTokens: 10 });
  expect(second.promptTokens[0]).not.toBe(model.info.tokenizer.bos);
  const history = s.tokens;
  expect(history).toEqual([...first.promptTokens, ...first.tokens, ...second.promptTokens, ...second.tokens]);

  // A fresh session fed the same context by evaluate() predicts the same next token.
  const fresh = model.createSession({ contextSize: 256 });
  const ctx = [...first.promptTokens, ...first.tokens, ...second.promptTokens];
  const { logits } = await fresh.evaluate(ctx, 1);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  expect(best).toBe(second.tokens[0]);
  s.dispose();
  fresh.dispose();
});

test('a replaced prompt reuses the cached common prefix', async () => {
  const s = model.createSession({ contextSize: 256 });
  const a = await s.complete('the quick brown fox', { ...greedy, maxTokens: 4, append: false });
  const b = await s.complete('the quick brown fox', { ...greedy, maxTokens: 4, append: false });
  expect(b.stats.promptTokensReused).toBe(a.promptTokens.length - 1);
  expect(b.stats.promptTokensEvaluated).toBe(1);
  expect(b.tokens).toEqual(a.tokens);
  s.dispose();
});

test('the result has the documented shape', async () => {
  const s = model.createSession({ contextSize: 256 });
  const r = await s.complete('hi', { ...greedy, maxTokens: 3 });
  expect(Object.keys(r).sort()).toEqual(['aborted', 'promptTokens', 'stats', 'stopReason', 'text', 'tokens']);
  expect(r.promptTokens[0]).toBe(model.info.tokenizer.bos);
  for (const k of ['promptTokensPerSecond', 'tokensPerSecond', 'msTotal'] as const)
    expect(typeof r.stats[k]).toBe('number');
  s.dispose();
});
