// A loaded model: metadata, tokenizer and sessions. Loading runs natively off the JS thread.
import * as nodePath from 'node:path';
import type { BatchStats, NativeModel, NativeModelInfo } from './addonTypes';
import { binding } from './binding';
import { Draft, DraftDType, checkDraftDType } from './draft';
import { LookupCache } from './lookup';
import { AbortError, DisposedError, InvalidArgumentError, callNative, callNativeSync } from './errors';
import { LoadModelOptions, SessionOptions, checkInteger, validateLoadOptions, validateSessionOptions } from './options';
import { Session } from './session';

export type ModelInfo = NativeModelInfo;

export class Model {
  /** @internal */
  private native: NativeModel | undefined;
  private readonly sessions = new Set<Session>();
  readonly info: ModelInfo;

  /** @internal use loadModel() */
  constructor(native: NativeModel) {
    this.native = native;
    this.info = native.info();
  }

  get disposed(): boolean {
    return this.native === undefined;
  }

  get backend(): string {
    return this.info.backend;
  }

  /**
   * Text to token ids. `addBos` defaults to the model's setting. `special: true` reads control tokens
   * written in the text ('<|eot_id|>', '<|im_start|>') as those tokens; by default they are plain text.
   */
  tokenize(text: string, options: { addBos?: boolean; atStart?: boolean; special?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError('text must be a string');
    const native = this.ensure();
    const addBos = options.addBos ?? this.info.tokenizer.addBos;
    if (options.special !== undefined && typeof options.special !== 'boolean')
      throw new InvalidArgumentError('special must be a boolean');
    const special = options.special ?? false;
    return Array.from(callNativeSync(() => native.tokenize(text, addBos, options.atStart ?? true, special)));
  }

  /**
   * Token ids to text (incomplete UTF-8 at the end becomes U+FFFD). The tokens start the text unless
   * `previous` names the token before them (then a leading space is kept, as in generated output).
   */
  detokenize(tokens: number[] | Int32Array, options: { previous?: number } = {}): string {
    const native = this.ensure();
    return callNativeSync(() => native.detokenize(tokens, options.previous ?? -1));
  }

  createSession(options: SessionOptions = {}): Session {
    const opts = validateSessionOptions(options);
    const native = this.ensure();
    const lookup = typeof opts.lookup === 'object' ? { ...opts.lookup, corpus: opts.lookup.corpus?.native } : opts.lookup;
    const nativeOpts = { ...opts, draft: opts.draft?.native, lookup };
    const s = new Session(callNativeSync(() => native.createSession(nativeOpts)), this);
    this.sessions.add(s);
    return s;
  }

  /**
   * An n-gram cache for lookup decoding (createSession({ lookup: { corpus } })) from texts of the kind
   * the model will write (each text one document, tokenized by this model); `order` is the longest
   * context in tokens (1..8, default 3). Built off the JS thread.
   */
  async buildLookupCache(texts: string[], options: { order?: number } = {}): Promise<LookupCache> {
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string'))
      throw new InvalidArgumentError('texts must be an array of strings');
    const order = options.order ?? 3;
    if (!Number.isInteger(order) || order < 1 || order > 8) throw new InvalidArgumentError('order must be an integer in 1..8');
    const native = this.ensure();
    return new LookupCache(await callNative(() => native.buildLookupCache(texts, order)));
  }

  /** Loads a lookup cache saved with cache.save(); one built for another vocabulary is refused. */
  async loadLookupCache(path: string): Promise<LookupCache> {
    if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('path must be a non-empty string');
    const native = this.ensure();
    return new LookupCache(await callNative(() => native.loadLookupCache(path)));
  }

  /**
   * Loads a Chimera draft trained for this model; a draft made for another base model is refused.
   * `dtype` stores its matrices as F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K (or F32; under a block
   * type a matrix whose columns are not a multiple of its block, 32 or 256, becomes F16): the draft's
   * weights are read once per drafted token, so a smaller draft drafts faster. Speculation stays
   * lossless whatever the draft's type.
   */
  async loadDraft(path: string, options: { dtype?: DraftDType } = {}): Promise<Draft> {
    if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('path must be a non-empty string');
    const dtype = checkDraftDType(options.dtype);
    const native = this.ensure();
    return new Draft(await callNative(() => native.loadDraft(path, { dtype })));
  }

  /**
   * An untrained draft with the paper's initialisation (heads [W_out, W_out], ResBlock weight zero):
   * the starting point of training, and a correct (if slow) draft for tests. `width` is the draft's
   * own width (default: the base's width up to 256, else an eighth of it, at least 256) and
   * `headVocab` how many tokens its heads cover (default min(vocabulary, max(8192, vocabulary / 4));
   * here the first ids, while trainDraft picks the most frequent ones).
   */
  async createDraft(
    options: { heads?: number; width?: number; headVocab?: number; seed?: number; dtype?: DraftDType } = {},
  ): Promise<Draft> {
    const native = this.ensure();
    const heads = options.heads ?? 5;
    if (!Number.isInteger(heads) || heads < 1 || heads > 16) throw new InvalidArgumentError('heads must be an integer in 1..16');
    const info = this.info;
    checkInteger('width', options.width, 8, info.embeddingLength);
    checkInteger('headVocab', options.headVocab, 1, info.vocabSize);
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed) || seed < 0) throw new InvalidArgumentError('seed must be a non-negative integer');
    const dtype = checkDraftDType(options.dtype);
    const { width, headVocab } = options;
    return new Draft(await callNative(() => native.createDraft({ heads, width, headVocab, seed, dtype })));
  }

  /**
   * How continuous batching has gone: concurrent generations on this model's sessions share forward
   * passes (see loadModel's `batch` option).
   */
  batchStats(): BatchStats {
    return this.ensure().batchStats();
  }

  /** @internal the native handle, for other modules of this package */
  nativeHandle(): NativeModel {
    return this.ensure();
  }

  /** @internal */
  forget(s: Session): void {
    this.sessions.delete(s);
  }

  /**
   * Disposes the model and its sessions, synchronously like Session and Draft (a generation in flight
   * stops at its next step; its memory is freed when it ends). Idempotent.
   */
  dispose(): void {
    if (!this.native) return;
    for (const s of [...this.sessions]) s.dispose();
    this.sessions.clear();
    this.native.dispose();
    this.native = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  private ensure(): NativeModel {
    if (!this.native) throw new DisposedError('the model has been disposed');
    return this.native;
  }
}

/** The embedded default model shipped in the package (models/README.md), and its trained draft. */
export const defaultModelPath = nodePath.join(__dirname, '..', 'models', 'chimera-brown-1m.gguf');
export const defaultDraftPath = nodePath.join(__dirname, '..', 'models', 'chimera-brown-1m.chimera.safetensors');

/**
 * Loads a model: a GGUF file, a llama2.c checkpoint (with `options.tokenizer`), or a Hugging Face
 * directory (config.json, *.safetensors, tokenizer.json). Without a path: the embedded default model.
 */
export async function loadModel(path: string = defaultModelPath, options: LoadModelOptions = {}): Promise<Model> {
  if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('path must be a non-empty string');
  const opts = validateLoadOptions(options);
  const { signal } = opts;
  const aborted = () => new AbortError('loading the model was aborted');
  if (signal?.aborted) throw aborted();
  const gpu = opts.gpu === undefined ? 'auto' : opts.gpu === false ? 'off' : opts.gpu;
  const load = callNative(() => binding().loadModel(path, {
    tokenizer: opts.tokenizer, threads: opts.threads, gpu, checkTensors: opts.checkTensors,
    batchMaxSessions: opts.batch?.maxSessions, batchMaxRows: opts.batch?.maxRows,
  }));
  if (!signal) return new Model(await load);
  // The native load cannot stop half way; an abort rejects now and frees the model when it arrives.
  return new Promise<Model>((resolve, reject) => {
    const onAbort = () => {
      reject(aborted());
      load.then((n) => n.dispose(), () => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    load.then(
      (n) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return;
        resolve(new Model(n));
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
