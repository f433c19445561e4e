// The response objects of OpenAI's completions and chat completions APIs, whole and as stream chunks.
import { randomUUID } from 'node:crypto';
import type { CompletionResult } from '../session';

export type Endpoint = 'completion' | 'chat';
export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** One response's identity: every chunk of a stream carries the same id, created and model. */
export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

export function newHead(endpoint: Endpoint, model: string): ResponseHead {
  const prefix = endpoint === 'chat' ? 'chatcmpl-' : 'cmpl-';
  return { id: prefix + randomUUID().replace(/-/g, ''), created: Math.floor(Date.now() / 1000), model };
}

/** 'stop' for an end-of-generation token or a stop string, 'length' for max_tokens or a full context. */
export function finishReason(r: CompletionResult): FinishReason {
  return r.stopReason === 'eos' || r.stopReason === 'stop' ? 'stop' : 'length';
}

export function usageOf(promptTokens: number, r: CompletionResult): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: r.tokens.length, total_tokens: promptTokens + r.tokens.length };
}

export function wholeResponse(endpoint: Endpoint, head: ResponseHead, r: CompletionResult, usage: Usage): object {
  const finish_reason = finishReason(r);
  if (endpoint === 'chat') {
    return {
      ...head, object: 'chat.completion', system_fingerprint: null,
      choices: [{ index: 0, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason }],
      usage,
    };
  }
  return {
    ...head, object: 'text_completion', system_fingerprint: null,
    choices: [{ index: 0, text: r.text, logprobs: null, finish_reason }],
    usage,
  };
}

/** A stream chunk with new text (or, with `finish`, the last chunk of the choice). */
export function streamChunk(endpoint: Endpoint, head: ResponseHead, text: string, finish: FinishReason | null, first = false): object {
  if (endpoint === 'chat') {
    const delta = finish !== null && text === '' ? {} : first ? { role: 'assistant', content: text } : { content: text };
    return {
      ...head, object: 'chat.completion.chunk', system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
  }
  return {
    ...head, object: 'text_completion', system_fingerprint: null,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
  };
}

/** The chunk after the last one when stream_options.include_usage is set: no choices, the usage. */
export function usageChunk(endpoint: Endpoint, head: ResponseHead, usage: Usage): object {
  return { ...head, object: endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion', choices: [], usage };
}
