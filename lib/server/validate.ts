// Checks the bodies of /v1/completions and /v1/chat/completions and turns them into the library's
// generation options. Anything wrong is a 400 in OpenAI's error shape naming the parameter.
import { randomInt } from 'node:crypto';
import type { ChatMessage } from '../chat';
import type { GenerateOptions } from '../options';
import { badRequest } from './apiError';

/** What the server knows when it checks a request. */
export interface RequestLimits {
  /** Names a request may give in `model`. */
  modelIds: string[];
  /** The sessions' context size: a chat reply's default length bound. */
  contextSize: number;
}

export interface ParsedRequest {
  stream: boolean;
  includeUsage: boolean;
  options: GenerateOptions;
}

export interface CompletionRequest extends ParsedRequest {
  prompt: string | number[];
}

export interface ChatRequest extends ParsedRequest {
  messages: ChatMessage[];
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

// Parameters OpenAI defines that this server does not implement: refused unless left at their default.
const UNSUPPORTED: [string, (v: unknown) => boolean][] = [
  ['n', (v) => v === 1],
  ['best_of', (v) => v === 1],
  ['echo', (v) => v === false],
  ['logprobs', (v) => v === false || v === 0],
  ['top_logprobs', (v) => v === 0],
  ['suffix', (v) => v === ''],
  ['presence_penalty', (v) => v === 0],
  ['frequency_penalty', (v) => v === 0],
  ['logit_bias', (v) => typeof v === 'object' && Object.keys(v as object).length === 0],
  ['tools', (v) => Array.isArray(v) && v.length === 0],
  ['response_format', (v) => (v as { type?: unknown })?.type === 'text'],
];

function object(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

function num(b: Record<string, unknown>, name: string, min: number, max: number, integer: boolean): number | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)))
    throw badRequest(`${name} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`, name, 'invalid_type');
  if (v < min || v > max) throw badRequest(`${name} must be in ${min}..${max}, got ${v}`, name, 'invalid_value');
  return v;
}

function bool(b: Record<string, unknown>, name: string): boolean | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badRequest(`${name} must be a boolean, got ${JSON.stringify(v)}`, name, 'invalid_type');
  return v;
}

function stops(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string'))
    throw badRequest('stop must be a string or an array of strings', 'stop', 'invalid_type');
  if (list.length > 16) throw badRequest(`stop takes at most 16 strings, got ${list.length}`, 'stop', 'invalid_value');
  if (list.some((s) => s === '')) throw badRequest('stop strings must not be empty', 'stop', 'invalid_value');
  return list.length > 0 ? (list as string[]) : undefined;
}

/** The parameters both endpoints share. `maxTokensName` differs (chat also takes max_completion_tokens). */
function common(b: Record<string, unknown>, limits: RequestLimits, defaultMaxTokens: number): ParsedRequest {
  if (b.model !== undefined && b.model !== null) {
    if (typeof b.model !== 'string') throw badRequest('model must be a string', 'model', 'invalid_type');
    if (!limits.modelIds.includes(b.model))
      throw badRequest(`model '${b.model}' is not served here; GET /v1/models lists '${limits.modelIds[0]}'`, 'model', 'model_not_found');
  }
  for (const [name, isDefault] of UNSUPPORTED) {
    const v = b[name];
    if (v !== undefined && v !== null && !isDefault(v))
      throw badRequest(`${name} ${JSON.stringify(v)} is not supported by this server`, name, 'unsupported_parameter');
  }
  // More than the context holds is allowed: the reply then ends with the context, finish_reason 'length'.
  const maxTokens = num(b, 'max_completion_tokens', 0, 1 << 30, true) ?? num(b, 'max_tokens', 0, 1 << 30, true);
  const topP = num(b, 'top_p', 0, 1, false);
  const options: GenerateOptions = {
    maxTokens: maxTokens ?? defaultMaxTokens,
    temperature: num(b, 'temperature', 0, 2, false),
    // top_p 0 keeps only the most likely token, as OpenAI reads it; the sampler's range is (0, 1].
    topP: topP === 0 ? 1e-9 : topP,
    topK: num(b, 'top_k', 0, 1 << 30, true),
    minP: num(b, 'min_p', 0, 0.999999, false),
    repeatPenalty: num(b, 'repeat_penalty', 0.01, 100, false),
    // Without a seed each request samples differently, as OpenAI's API does.
    seed: num(b, 'seed', 0, Number.MAX_SAFE_INTEGER, true) ?? randomInt(0, 2 ** 47),
    stop: stops(b.stop),
  };
  const stream = bool(b, 'stream') ?? false;
  let includeUsage = false;
  if (b.stream_options !== undefined && b.stream_options !== null) {
    if (!stream) throw badRequest('stream_options needs stream: true', 'stream_options', 'invalid_value');
    const so = b.stream_options as Record<string, unknown>;
    if (typeof so !== 'object' || Array.isArray(so))
      throw badRequest('stream_options must be an object like { include_usage: true }', 'stream_options', 'invalid_type');
    includeUsage = bool(so, 'include_usage') ?? false;
  }
  return { stream, includeUsage, options };
}

export function parseCompletionRequest(body: unknown, limits: RequestLimits): CompletionRequest {
  const b = object(body);
  let prompt = b.prompt;
  // A batch of one prompt is that prompt; a token-id prompt is used as it is.
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') prompt = prompt[0];
  const isTokens = Array.isArray(prompt) && prompt.every((t) => Number.isInteger(t) && t >= 0);
  if (prompt === undefined || prompt === null) throw badRequest('prompt is required', 'prompt', 'missing_required_parameter');
  if (Array.isArray(prompt) && prompt.length > 1 && prompt.every((p) => typeof p === 'string' || Array.isArray(p)))
    throw badRequest('one prompt per request: this server does not batch prompts', 'prompt', 'unsupported_parameter');
  if (typeof prompt !== 'string' && !isTokens)
    throw badRequest('prompt must be a string or an array of token ids', 'prompt', 'invalid_type');
  if (isTokens && (prompt as number[]).length === 0) throw badRequest('prompt must not be empty', 'prompt', 'invalid_value');
  return { ...common(b, limits, 16), prompt: prompt as string | number[] };
}

function messageContent(m: Record<string, unknown>, i: number): string {
  const c = m.content;
  if (typeof c === 'string') return c;
  // Content parts: only text parts can be read by a text model.
  if (Array.isArray(c) && c.every((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'text'
    && typeof (p as { text?: unknown }).text === 'string'))
    return c.map((p) => (p as { text: string }).text).join('');
  throw badRequest(`messages[${i}].content must be a string or an array of text parts`, `messages[${i}].content`, 'invalid_type');
}

export function parseChatRequest(body: unknown, limits: RequestLimits): ChatRequest {
  const b = object(body);
  const msgs = b.messages;
  if (msgs === undefined || msgs === null) throw badRequest('messages is required', 'messages', 'missing_required_parameter');
  if (!Array.isArray(msgs)) throw badRequest('messages must be an array', 'messages', 'invalid_type');
  if (msgs.length === 0) throw badRequest('messages must not be empty', 'messages', 'invalid_value');
  const messages = msgs.map((raw, i): ChatMessage => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      throw badRequest(`messages[${i}] must be an object`, `messages[${i}]`, 'invalid_type');
    const m = raw as Record<string, unknown>;
    if (typeof m.role !== 'string' || !ROLES.has(m.role))
      throw badRequest(`messages[${i}].role must be one of ${[...ROLES].join(', ')}, got ${JSON.stringify(m.role)}`,
        `messages[${i}].role`, 'invalid_value');
    // 'developer' is OpenAI's newer name for the system message; templates know 'system'.
    return { role: m.role === 'developer' ? 'system' : m.role, content: messageContent(m, i) };
  });
  // A reply runs to the end of its turn (or the context) unless max_tokens says otherwise.
  return { ...common(b, limits, limits.contextSize), messages };
}
