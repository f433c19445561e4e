// `chimera serve`: the OpenAI-compatible HTTP API driven by the official `openai` npm client, unchanged.
// Greedy completions and chat completions (whole and streamed) equal session.complete / completeChat on
// the same input, usage counts the tokens, stop strings end the text, bad input is a 400 in OpenAI's
// error shape, a missing key a 401, and /metrics exports the metric names. (The queue, aborts, drafts,
// a real chat template and SIGTERM: serveQueue.test.ts.)
import OpenAI from 'openai';
import { loadModel, type ChatMessage, type Model } from '../lib';
import { createServer, type ChimeraServer } from '../lib/server/app';
import { CHATML_STOP, CHATML_TEMPLATE } from '../lib/server/template';
import { KEY, PROMPT, clientOf, listen, rejection, storiesPath } from './serveHelpers';

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
    expect((await client.models.retrieve(modelId)).id).toBe(modelId);
    expect((await rejection(client.models.retrieve('gpt-4o'))).status).toBe(404);
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
      [{ prompt: PROMPT, stream: true, stream_options: [1] }, 'stream_options'],
      [{ prompt: PROMPT, logprobs: 2 }, 'logprobs'],
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
      'chimera_queue_length', 'chimera_active_sessions', 'chimera_sessions', 'chimera_process_resident_memory_bytes',
      'chimera_forward_passes_total', 'chimera_batch_sessions_per_pass', 'chimera_batch_max_sessions'])
      expect(text).toContain(name);
    expect(text).toMatch(/chimera_requests_total\{endpoint="\/v1\/completions",status="200"\} [1-9]/);
    expect(text).toMatch(/chimera_requests_total\{endpoint="\/v1\/completions",status="400"\} [1-9]/);
    expect(text).toMatch(/chimera_sessions 2\b/);
    expect(text).toMatch(/chimera_forward_passes_total [1-9]/);
    const generated = Number(/chimera_generated_tokens_total (\d+)/.exec(text)?.[1]);
    expect(generated).toBeGreaterThanOrEqual(24 * 2 + 30);
  });
});

