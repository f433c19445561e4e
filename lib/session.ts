// A generation session: one sequence with its own KV cache. Prompts continue the session's context
// (or replace it, reusing the cached common prefix). Generation runs natively off the JS thread.
import type { NativeGenerateResult, NativeModelInfo, NativeSession } from './addonTypes';
import { ChatMessage, ChatState, ChatTemplate, checkMessages } from './chat';
import { BusyError, ContextFullError, DisposedError, InvalidArgumentError, callNative, callNativeSync } from './errors';
import { GenerateOptions, validateGenerateOptions } from './options';

export interface Chunk {
  /** New text; never ends inside a UTF-8 character or shows part of a stop string. */
  text: string;
  /** The token ids generated since the previous chunk. */
  tokens: number[];
}

export interface GenerationStats {
  promptTokensPerSecond: number;
  tokensPerSecond: number;
  msTotal: number;
  msPrompt: number;
  msGenerate: number;
  /** Prompt tokens computed in this call (the rest came from the cache). */
  promptTokensEvaluated: number;
  promptTokensReused: number;
  generatedTokens: number;
  /** Speculative decoding only (a draft or lookup was attached): */
  speculative?: boolean;
  /** Tokens emitted per verification step (accepted + bonus), over the speculative steps. */
  tokensPerStep?: number;
  /** Speculative steps (one base forward over the tree each). */
  steps?: number;
  /** Single-token steps: chosen by tree 'auto' when no tree pays, or taken when the tree no longer fits the context. */
  plainSteps?: number;
  /** acceptedByDepth[d]: steps whose accepted path reached depth d+1. */
  acceptedByDepth?: number[];
  msDraft?: number;
  msVerify?: number;
  /** Steps taken with each tree ('plain': one-token steps); with tree 'auto' this shows the choices. */
  stepsByTree?: Record<string, number>;
  /**
   * Lookup: accepted tokens each source proposed (a token two sources agreed on counts for both);
   * `draft` with a draft and lookup together.
   */
  acceptedBySource?: { prompt: number; session: number; corpus: number; draft?: number };
}

/** What `complete()` resolves to and what `chimera generate --json` prints. */
export interface CompletionResult {
  text: string;
  /** Token ids this call added to the context (BOS included when it was added). */
  promptTokens: number[];
  /** Generated token ids. */
  tokens: number[];
  stopReason: 'eos' | 'maxTokens' | 'stop' | 'abort' | 'contextFull';
  aborted: boolean;
  stats: GenerationStats;
}

// A token-id prompt as an Int32Array (undefined for a text prompt); anything else is refused.
function promptTokens(prompt: unknown): Int32Array | undefined {
  if (typeof prompt === 'string') return undefined;
  if (!Array.isArray(prompt) || prompt.some((t) => !Number.isInteger(t) || t < 0 || t > 0x7fffffff))
    throw new InvalidArgumentError('prompt must be a string or an array of non-negative integer token ids');
  return Int32Array.from(prompt as number[]);
}

function toResult(r: NativeGenerateResult): CompletionResult {
  const perSecond = (n: number, ms: number) => (ms > 0 ? (n * 1000) / ms : 0);
  return {
    text: r.text,
    promptTokens: r.promptTokens,
    tokens: r.tokens,
    stopReason: r.stopReason,
    aborted: r.stopReason === 'abort',
    stats: {
      promptTokensPerSecond: perSecond(r.evaluatedPromptTokens, r.msPrompt),
      tokensPerSecond: perSecond(r.tokens.length, r.msGenerate),
      msTotal: r.msTotal,
      msPrompt: r.msPrompt,
      msGenerate: r.msGenerate,
      promptTokensEvaluated: r.evaluatedPromptTokens,
      promptTokensReused: r.reusedTokens,
      generatedTokens: r.tokens.length,
      ...(r.speculative
        ? {
            speculative: true,
            tokensPerStep: r.steps ? (r.speculativeTokens ?? 0) / r.steps : 0,
            steps: r.steps,
            plainSteps: r.plainSteps,
            acceptedByDepth: r.acceptedByDepth,
            msDraft: r.msDraft,
            msVerify: r.msVerify,
            stepsByTree: r.stepsByTree,
            ...(r.acceptedBySource ? { acceptedBySource: r.acceptedBySource } : {}),
          }
        : {}),
    },
  };
}

/** What a session needs of its model: its tokenizer and metadata (chat), and to be told of disposal. */
export interface SessionOwner {
  forget(s: Session): void;
  tokenize(text: string, options: { addBos?: boolean; atStart?: boolean; special?: boolean }): number[];
  readonly info: NativeModelInfo;
}

/** chat() options: generation options, and a Jinja chat template replacing the model's own. */
export interface ChatOptions extends Omit<GenerateOptions, 'append'> {
  template?: string;
}

/** chat() resolves to the completion with the reply as a message. */
export interface ChatResult extends CompletionResult {
  message: ChatMessage;
}

export class Session {
  /** @internal */
  private native: NativeSession | undefined;
  /** @internal keeps the model's JS object alive while the session is */
  private readonly owner: SessionOwner;
  private running = false;
  private readonly chatState = new ChatState();
  private chatTemplates = new Map<string, ChatTemplate>();

  /** @internal use model.createSession() */
  constructor(native: NativeSession, owner: SessionOwner) {
    this.native = native;
    this.owner = owner;
  }

  get disposed(): boolean {
    return this.native === undefined;
  }

  /** Token ids of the session's context (prompts and generated text so far). */
  get tokens(): number[] {
    return Array.from(callNativeSync(() => this.ensure().history()));
  }

  get contextSize(): number {
    return this.ensure().stats().contextSize;
  }

  /**
   * Streams generated text. The generator's return value is the full result. The prompt is text, or
   * token ids used as they are (no BOS added): e.g. a chat template tokenized with special tokens.
   */
  async *generate(prompt: string | number[], options: GenerateOptions = {}): AsyncGenerator<Chunk, CompletionResult, undefined> {
    const tokens = promptTokens(prompt);
    const opts = validateGenerateOptions(options);
    const native = this.ensure();
    if (this.running) throw new BusyError('the session is already generating; await it or use another session');
    // The cache is about to change outside chat(): the next chat turn must not take it for its own.
    this.chatState.forget();

    const queue: Chunk[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    const onChunk = (text: string, tokens: number[]) => {
      queue.push({ text, tokens });
      wake?.();
    };
    // Options left out take the native defaults (GenerateRequest and SamplingParams, the one home of
    // the defaults that the README lists).
    const request = {
      text: tokens ? '' : (prompt as string),
      tokens,
      append: opts.append,
      special: opts.special,
      maxTokens: opts.maxTokens,
      temperature: opts.temperature,
      topK: opts.topK,
      topP: opts.topP,
      minP: opts.minP,
      repeatPenalty: opts.repeatPenalty,
      repeatLastN: opts.repeatLastN,
      seed: opts.seed,
      stop: opts.stop,
      stopOnEos: opts.stopOnEos,
      aborted: opts.signal?.aborted ?? false,
    };
    const done = callNative(() => native.generate(request, onChunk)).finally(() => {
      finished = true;
      wake?.();
    });
    this.running = true;
    const onAbort = () => native.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let completed = false;
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as Chunk;
        if (finished) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      const result = toResult(await done);
      while (queue.length > 0) yield queue.shift() as Chunk;
      completed = true;
      if (result.stopReason === 'contextFull')
        throw new ContextFullError(
          `the context filled up after ${result.tokens.length} generated tokens (contextSize ${this.contextSize}); ` +
            'the result so far is in error.result',
          result,
        );
      return result;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (!completed) {
        // The consumer stopped early (break / throw): stop the native loop and wait for it.
        native.abort();
        await done.catch(() => undefined);
      }
      this.running = false;
    }
  }

  /**
   * A chat turn: renders `messages` with the model's chat template (tokenizer.chat_template, or
   * `options.template`) and streams the assistant's reply like generate(). The KV cache is kept across
   * turns: when the conversation extends the previous chat() call's (its messages plus the reply it
   * produced), only the new part is evaluated. The reply ends at the model's end-of-turn tokens.
   */
  async *chat(messages: ChatMessage[], options: ChatOptions = {}): AsyncGenerator<Chunk, ChatResult, undefined> {
    const msgs = checkMessages(messages);
    const { template, ...generateOptions } = options;
    if ((generateOptions as GenerateOptions).append !== undefined)
      throw new InvalidArgumentError('chat() decides what the cache keeps: append is not an option here');
    const rendered = this.chatTemplate(template).render(msgs, true);
    const continuation = this.chatState.continuation(rendered, this.ensure().history().length);
    const tok = this.owner.info.tokenizer;
    const prompt =
      continuation !== undefined
        ? this.owner.tokenize(continuation, { addBos: false, atStart: false, special: true })
        : this.owner.tokenize(rendered, {
            addBos: tok.addBos && !(tok.bosText && rendered.startsWith(tok.bosText)),
            atStart: true,
            special: true,
          });
    this.chatState.forget();
    const it = this.generate(prompt, { ...generateOptions, append: continuation !== undefined });
    let step = await it.next();
    while (!step.done) {
      yield step.value;
      step = await it.next();
    }
    const result = step.value;
    // After an end-of-turn stop the cache holds exactly the rendering plus the reply; after a stop
    // string or maxTokens it may not, and the next turn re-renders (reusing the common prefix).
    if (result.stopReason === 'eos') this.chatState.update(rendered + result.text, this.ensure().history().length);
    return { ...result, message: { role: 'assistant', content: result.text } };
  }

  /** chat() to the end of the reply. */
  async completeChat(messages: ChatMessage[], options: ChatOptions = {}): Promise<ChatResult> {
    const it = this.chat(messages, options);
    for (;;) {
      const step = await it.next();
      if (step.done) return step.value;
    }
  }

  private chatTemplate(source: string | undefined): ChatTemplate {
    if (source !== undefined && typeof source !== 'string') throw new InvalidArgumentError('template must be a string');
    const tok = this.owner.info.tokenizer;
    const text = source ?? tok.chatTemplate ?? '';
    let t = this.chatTemplates.get(text);
    if (!t) {
      t = new ChatTemplate(text, { bos: tok.bosText ?? '', eos: tok.eosText ?? '' });
      this.chatTemplates.set(text, t);
    }
    return t;
  }

  /** Generates to the end and resolves with the whole result. */
  async complete(prompt: string | number[], options: GenerateOptions = {}): Promise<CompletionResult> {
    const it = this.generate(prompt, options);
    for (;;) {
      const step = await it.next();
      if (step.done) return step.value;
    }
  }

  /**
   * Appends tokens to the context and returns the logits (rows x vocab) and final hidden states
   * (rows x embedding) of the last `rows` of them.
   */
  async evaluate(tokens: number[] | Int32Array, rows = 1): Promise<{ logits: Float32Array; hidden: Float32Array }> {
    const native = this.ensure();
    if (this.running) throw new BusyError('the session is already generating');
    if (!Number.isInteger(rows) || rows < 0 || rows > tokens.length)
      throw new InvalidArgumentError(`rows must be an integer in 0..${tokens.length}, got ${String(rows)}`);
    this.chatState.forget();
    return callNative(() => native.evaluate(tokens, rows));
  }

  /** Keeps the first `length` tokens of the context (their cache entries stay; nothing is recomputed). */
  truncate(length: number): void {
    const native = this.ensure();
    if (this.running) throw new BusyError('the session is already generating');
    if (!Number.isInteger(length) || length < 0) throw new InvalidArgumentError('length must be a non-negative integer');
    this.chatState.forget();
    callNativeSync(() => native.truncate(length));
  }

  /** Forgets the context. */
  reset(): void {
    const native = this.ensure();
    this.chatState.forget();
    callNativeSync(() => native.reset());
  }

  /** Frees the KV cache. Idempotent; a pending generation stops at its next step and still resolves. */
  dispose(): void {
    if (!this.native) return;
    this.native.dispose();
    this.native = undefined;
    this.owner.forget(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  private ensure(): NativeSession {
    if (!this.native) throw new DisposedError('the session has been disposed');
    return this.native;
  }
}
