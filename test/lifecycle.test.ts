// Object lifetimes and concurrency: abort, dispose (idempotent, during a call, use after), busy
// sessions, many sessions on one model.
import { BusyError, DisposedError, loadModel, Model } from '../lib';
import { tempDir } from './helpers';
import { writeTiny } from './tinyModel';

let file: string;
let model: Model;
beforeAll(async () => {
  file = writeTiny(tempDir(), 'gguf');
  model = await loadModel(file, { threads: 2 });
});
afterAll(() => model.dispose());

const long = { temperature: 0, maxTokens: 100000, stopOnEos: false };

test('an AbortSignal stops generation within a step and resolves with what was generated', async () => {
  const s = model.createSession({ contextSize: 4096 });
  const ac = new AbortController();
  const it = s.generate('go', { ...long, signal: ac.signal });
  const first = await it.next();
  expect(first.done).toBe(false);
  ac.abort();
  let step = await it.next();
  while (!step.done) step = await it.next();
  expect(step.value.aborted).toBe(true);
  expect(step.value.stopReason).toBe('abort');
  expect(step.value.tokens.length).toBeGreaterThan(0);
  expect(step.value.tokens.length).toBeLessThan(4000);
  // The session stays usable and its history holds exactly what was generated.
  const hist = s.tokens;
  expect(hist.slice(hist.length - step.value.tokens.length)).toEqual(step.value.tokens);
  const again = await s.complete(' more', { temperature: 0, maxTokens: 3, stopOnEos: false });
  expect(again.tokens).toHaveLength(3);
  s.dispose();
});

test('an already aborted signal resolves at once with no tokens', async () => {
  const s = model.createSession({ contextSize: 256 });
  const r = await s.complete('go', { ...long, signal: AbortSignal.abort() });
  expect(r.aborted).toBe(true);
  expect(r.tokens).toHaveLength(0);
  s.dispose();
});

test('breaking out of the stream stops the native loop', async () => {
  const s = model.createSession({ contextSize: 4096 });
  let n = 0;
  for await (const chunk of s.generate('go', long)) {
    n += chunk.tokens.length;
    if (n >= 3) break;
  }
  // The session is free again right away.
  const r = await s.complete('x', { temperature: 0, maxTokens: 2 });
  expect(r.tokens).toHaveLength(2);
  s.dispose();
});

test('a second generate on a busy session is rejected with BusyError', async () => {
  const s = model.createSession({ contextSize: 4096 });
  const ac = new AbortController();
  const p = s.complete('go', { ...long, signal: ac.signal });
  await expect(s.complete('again', { maxTokens: 1 })).rejects.toBeInstanceOf(BusyError);
  await expect(s.evaluate([1])).rejects.toBeInstanceOf(BusyError);
  ac.abort();
  expect((await p).aborted).toBe(true);
  s.dispose();
});

test('dispose is idempotent; use after dispose throws DisposedError', async () => {
  const s = model.createSession({ contextSize: 64 });
  s.dispose();
  s.dispose();
  expect(s.disposed).toBe(true);
  await expect(s.complete('x')).rejects.toBeInstanceOf(DisposedError);
  expect(() => s.reset()).toThrow(DisposedError);
  await expect(s.evaluate([1])).rejects.toMatchObject({ code: 'E_DISPOSED' });
});

test('disposing a session during generation stops it and the promise still resolves', async () => {
  const s = model.createSession({ contextSize: 4096 });
  const p = s.complete('go', long);
  await new Promise((r) => setTimeout(r, 20));
  s.dispose();
  const r = await p;
  expect(r.aborted).toBe(true);
});

test('Symbol.asyncDispose disposes models and sessions', async () => {
  const m = await loadModel(file, { threads: 1 });
  const s = m.createSession({ contextSize: 64 });
  await s[Symbol.asyncDispose]();
  expect(s.disposed).toBe(true);
  await m[Symbol.asyncDispose]();
  expect(m.disposed).toBe(true);
  await m.dispose();
  expect(() => m.createSession()).toThrow(DisposedError);
  expect(() => m.tokenize('x')).toThrow(DisposedError);
});

test('a session keeps working after its model object is disposed? no: model.dispose disposes its sessions', async () => {
  const m = await loadModel(file, { threads: 1 });
  const s = m.createSession({ contextSize: 64 });
  await m.dispose();
  expect(s.disposed).toBe(true);
});

test('many sessions on one model run concurrently and agree with sequential runs', async () => {
  const prompts = ['a', 'b c', 'the', 'dog', 'x y z', 'hello', 'cat', 'q'];
  const opts = { temperature: 0, maxTokens: 24, stopOnEos: false };
  const sequential: number[][] = [];
  for (const p of prompts) {
    const s = model.createSession({ contextSize: 128 });
    sequential.push((await s.complete(p, opts)).tokens);
    s.dispose();
  }
  const sessions = prompts.map(() => model.createSession({ contextSize: 128 }));
  const results = await Promise.all(sessions.map((s, i) => s.complete(prompts[i], opts)));
  expect(results.map((r) => r.tokens)).toEqual(sequential);
  sessions.forEach((s) => s.dispose());
});

test('16 generations run at once: each on its own thread, not queued behind libuv\'s pool of 4', async () => {
  // With libuv's pool (UV_THREADPOOL_SIZE, 4 by default) the calls past the 4th would only start
  // after one of the first four had finished.
  expect(Number(process.env.UV_THREADPOOL_SIZE ?? 4)).toBeLessThan(16);
  const opts = { temperature: 0, maxTokens: 2000, stopOnEos: false };
  const sessions = Array.from({ length: 16 }, () => model.createSession({ contextSize: 2048 + 8 }));
  let started = 0;
  let startedWhenFirstDone = -1;
  const results = await Promise.all(
    sessions.map(async (s) => {
      let first = true;
      let tokens = 0;
      for await (const chunk of s.generate('once', opts)) {
        if (first) started++;
        first = false;
        tokens += chunk.tokens.length;
      }
      if (startedWhenFirstDone < 0) startedWhenFirstDone = started;
      return tokens;
    }),
  );
  expect(results).toEqual(sessions.map(() => 2000));
  expect(startedWhenFirstDone).toBe(16);
  sessions.forEach((s) => s.dispose());
});

test('creating and disposing many sessions does not grow memory without bound', async () => {
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 300; i++) {
    const s = model.createSession({ contextSize: 1024 });
    await s.complete('a', { temperature: 0, maxTokens: 1 });
    s.dispose();
  }
  const growth = process.memoryUsage().rss - before;
  // 300 leaked sessions would hold >= 300 KV caches; allow for allocator noise only.
  expect(growth).toBeLessThan(64 * 1024 * 1024);
});
