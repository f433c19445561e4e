// Continuous batching through the public API: concurrent generations on sessions of one model share
// forward passes (model.batchStats() counts them), and each one's output equals running it alone:
// greedy token for token, seeded sampling draw for draw, with and without a draft's tree steps.
import { defaultDraftPath, defaultModelPath, InvalidArgumentError, loadModel, Model } from '../lib';

const prompts = ['Once upon a time', 'The little dog', 'She said', 'In the morning the', 'A big red ball', 'Tom and'];

async function alone(model: Model, options: object, make: () => object): Promise<number[][]> {
  const out: number[][] = [];
  const s = model.createSession(make());
  for (const p of prompts) out.push((await s.complete(p, { ...options, append: false })).tokens);
  s.dispose();
  return out;
}

async function together(model: Model, options: object, make: () => object) {
  const sessions = prompts.map(() => model.createSession(make()));
  const before = model.batchStats();
  const results = await Promise.all(sessions.map((s, i) => s.complete(prompts[i], options)));
  const after = model.batchStats();
  for (const s of sessions) s.dispose();
  return { tokens: results.map((r) => r.tokens), results, shared: after.batchedPasses - before.batchedPasses, after };
}

describe('continuous batching', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(defaultModelPath, { threads: 2 });
  });
  afterAll(() => model.dispose());

  test('greedy: concurrent sessions share passes and each equals running alone', async () => {
    const opts = { maxTokens: 48, temperature: 0, stopOnEos: false };
    const want = await alone(model, opts, () => ({}));
    const got = await together(model, opts, () => ({}));
    expect(got.tokens).toEqual(want);
    expect(got.shared).toBeGreaterThan(0);
    expect(got.after.maxSessions).toBeGreaterThanOrEqual(2);
    expect(got.after.activeSessions).toBe(0);
  });

  test('seeded sampling: each draw equals running alone', async () => {
    const opts = { maxTokens: 40, temperature: 0.9, topP: 0.95, seed: 1234, stopOnEos: false };
    const want = await alone(model, opts, () => ({}));
    const got = await together(model, opts, () => ({}));
    expect(got.tokens).toEqual(want);
    expect(got.shared).toBeGreaterThan(0);
  });

  test('with a draft: tree steps run inside shared passes, output unchanged', async () => {
    const draft = await model.loadDraft(defaultDraftPath);
    const make = () => ({ draft, tree: 'chimera-25' });
    const opts = { maxTokens: 48, temperature: 0, stopOnEos: false };
    const want = await alone(model, opts, make);
    const got = await together(model, opts, make);
    expect(got.tokens).toEqual(want);
    expect(got.shared).toBeGreaterThan(0);
    const steps = got.results.reduce((n, r) => n + (r.stats.steps ?? 0), 0);
    expect(steps).toBeGreaterThan(0);
    draft.dispose();
  });

  test("tree: 'auto' inside a batch stays lossless", async () => {
    const draft = await model.loadDraft(defaultDraftPath);
    const make = () => ({ draft });
    const opts = { maxTokens: 48, temperature: 0, stopOnEos: false };
    const want = await alone(model, opts, () => ({}));
    const got = await together(model, opts, make);
    expect(got.tokens).toEqual(want);
    // Trees were tried inside the shared passes (on this tiny model a first try models a gain).
    expect(got.results.some((r) => (r.stats.steps ?? 0) > 0)).toBe(true);
    expect(got.shared).toBeGreaterThan(0);
    draft.dispose();
  });

  test('long prompts are prefilled in chunks beside the others', async () => {
    const long = 'Once upon a time there was a little girl. '.repeat(12);
    const opts = { maxTokens: 24, temperature: 0, stopOnEos: false };
    const solo = model.createSession({ batchSize: 8 });
    const wantLong = (await solo.complete(long, opts)).tokens;
    const wantShort = (await solo.complete('The cat', { ...opts, append: false })).tokens;
    solo.dispose();
    const a = model.createSession({ batchSize: 8 });
    const b = model.createSession({ batchSize: 8 });
    const before = model.batchStats();
    const [ra, rb] = await Promise.all([a.complete(long, opts), b.complete('The cat', opts)]);
    const after = model.batchStats();
    expect(ra.tokens).toEqual(wantLong);
    expect(rb.tokens).toEqual(wantShort);
    expect(ra.stats.promptTokensEvaluated).toBeGreaterThan(64);
    expect(after.batchedPasses).toBeGreaterThan(before.batchedPasses);
    a.dispose();
    b.dispose();
  });

  test('batch.maxSessions 1 turns batching off; bad bounds are refused', async () => {
    const serial = await loadModel(defaultModelPath, { threads: 2, batch: { maxSessions: 1 } });
    const opts = { maxTokens: 24, temperature: 0, stopOnEos: false };
    const got = await together(serial, opts, () => ({}));
    expect(got.tokens).toEqual(await alone(model, opts, () => ({})));
    expect(got.after.batchedPasses).toBe(0);
    expect(got.after.maxBatchSessions).toBe(1);
    serial.dispose();
    await expect(loadModel(defaultModelPath, { batch: { maxSessions: 0 } })).rejects.toThrow(InvalidArgumentError);
    await expect(loadModel(defaultModelPath, { batch: { maxRows: 1.5 } })).rejects.toThrow(InvalidArgumentError);
    await expect(loadModel(defaultModelPath, { batch: 'big' as never })).rejects.toThrow(InvalidArgumentError);
  });
});
