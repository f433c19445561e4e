// Public option types and their validation. Bad values throw InvalidArgumentError (E_INVALID_ARG)
// with a sentence that names the option; the native side checks again.
import type { Draft } from './draft';
import { LookupCache } from './lookup';
import { InvalidArgumentError } from './errors';

export interface LoadModelOptions {
  /** llama2.c checkpoints only: the tokenizer.bin that goes with the checkpoint. */
  tokenizer?: string;
  /** Compute threads; default: the CPUs this process may use. */
  threads?: number;
  /**
   * Where the model runs. 'auto' (default): the CUDA backend when this build has it and a GPU with
   * compute capability 8.0+ is present, otherwise the CPU. 'cuda': the GPU or a CudaError. false: the CPU.
   */
  gpu?: 'auto' | 'cuda' | false;
  /** Rejects the load with AbortError (the model is freed as soon as its load finishes). */
  signal?: AbortSignal;
  /**
   * Reads every weight once at load and rejects with NumericError naming the first tensor that holds
   * a NaN or infinity (a corrupt file, or F32 bytes labelled F16). Costs one pass over the weights.
   */
  checkTensors?: boolean;
  /**
   * Continuous batching: concurrent generate/complete calls on sessions of this model share forward
   * passes, so the weights are read once per step for all of them. Output is identical to running each
   * alone. `maxSessions` bounds the sessions in one pass (default 64; 1 turns batching off) and
   * `maxRows` its rows (tokens and tree nodes; default 512; one request larger than that runs alone).
   */
  batch?: { maxSessions?: number; maxRows?: number };
}

export interface SessionOptions {
  /** KV cache capacity in tokens; default: the model's context length (at most 4096). */
  contextSize?: number;
  /** Largest number of tokens evaluated in one forward pass during prefill; default 64. */
  batchSize?: number;
  /** A Chimera draft (model.loadDraft / model.createDraft): turns on speculative decoding. */
  draft?: Draft;
  /**
   * The token tree the draft fills: 'auto' (default: plain decoding, chain-1..3 and chimera-25, chosen
   * step by step by the tokens/s each delivers on this machine), 'chimera-25', 'chain-N', or a list of
   * paths of top-k indices such as [[0],[1],[0,0]]. Every tree is lossless; it only changes speed.
   */
  tree?: string | number[][];
  /**
   * Lookup decoding, without a draft: each step proposes a tree of continuations found in the
   * session's own tokens (the most recent earlier occurrence of the latest tokens, and the n-grams
   * of the session), verified like a draft's, and runs it only where its modelled tokens/s beat plain
   * decoding. Lossless like every tree. `corpus` adds the n-grams of a corpus (a cache from
   * model.buildLookupCache / loadLookupCache); `maxNodes` (2..64, default 32) bounds the rows of one
   * step; `when: 'always'` verifies every candidate tree even where a plain step models faster (where
   * verifying rows is nearly free, or to test). With a draft, lookup nodes join the draft's tree
   * (merged where they agree), up to maxNodes more rows: with tree 'auto' where the measured costs say
   * a node pays for its row, with a fixed tree where its modelled chance is at least 0.3.
   */
  lookup?: boolean | { corpus?: LookupCache; maxNodes?: number; when?: 'auto' | 'always' };
}

export interface SamplingOptions {
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 40. */
  topK?: number;
  /** Nucleus sampling mass; 1 = off. Default 0.95. */
  topP?: number;
  /** Drop tokens below minP x the top probability; 0 = off. Default 0.05. */
  minP?: number;
  /** Repetition penalty; 1 = off (default). */
  repeatPenalty?: number;
  /** How many recent tokens the penalty looks at. Default 64. */
  repeatLastN?: number;
  /** Seed of the sampler; the same seed and input give the same output. Default 0. */
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate. Default 256. */
  maxTokens?: number;
  /** Stop when the text contains one of these; the stop string is not part of the output. */
  stop?: string[];
  /** Stop at the end-of-sequence token (default true). */
  stopOnEos?: boolean;
  /** Cancels generation within one step; the result then has `aborted: true`. */
  signal?: AbortSignal;
  /**
   * true (default): the prompt continues the session's context (its earlier prompts and output).
   * false: the prompt replaces the context; the longest common prefix of the cache is still reused.
   */
  append?: boolean;
  /** true: control-token text in the prompt ('<|im_start|>', '<|eot_id|>') is read as those tokens. */
  special?: boolean;
}

function fail(message: string): never {
  throw new InvalidArgumentError(message);
}

export function checkInteger(name: string, v: unknown, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    fail(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  return v;
}

export function checkNumber(name: string, v: unknown, min: number, max: number, minExclusive = false): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v > max || (minExclusive ? v <= min : v < min))
    fail(`${name} must be a number in ${minExclusive ? '(' : '['}${min}, ${max}], got ${String(v)}`);
  return v;
}

export function checkObject(name: string, v: unknown): Record<string, unknown> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(`${name} must be an object`);
  return v as Record<string, unknown>;
}

export function validateLoadOptions(o: LoadModelOptions | undefined): LoadModelOptions {
  const opts = checkObject('options', o) as LoadModelOptions;
  if (opts.tokenizer !== undefined && (typeof opts.tokenizer !== 'string' || opts.tokenizer === ''))
    fail('tokenizer must be a non-empty path string');
  checkInteger('threads', opts.threads, 1, 1024);
  if (opts.gpu !== undefined && opts.gpu !== 'auto' && opts.gpu !== 'cuda' && opts.gpu !== false)
    fail(`gpu must be 'auto', 'cuda' or false, got ${JSON.stringify(opts.gpu)}`);
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) fail('signal must be an AbortSignal');
  if (opts.checkTensors !== undefined && typeof opts.checkTensors !== 'boolean') fail('checkTensors must be a boolean');
  if (opts.batch !== undefined) {
    const b = checkObject('batch', opts.batch) as NonNullable<LoadModelOptions['batch']>;
    checkInteger('batch.maxSessions', b.maxSessions, 1, 4096);
    checkInteger('batch.maxRows', b.maxRows, 1, 65536);
  }
  return opts;
}

export function validateSessionOptions(o: SessionOptions | undefined): SessionOptions {
  const opts = checkObject('options', o) as SessionOptions;
  checkInteger('contextSize', opts.contextSize, 2, 1 << 22);
  checkInteger('batchSize', opts.batchSize, 1, 4096);
  if (opts.tree !== undefined) {
    const t = opts.tree;
    const ok =
      typeof t === 'string' ||
      (Array.isArray(t) && t.every((p) => Array.isArray(p) && p.every((i) => Number.isInteger(i))));
    if (!ok) fail("tree must be 'chimera-25', 'chain-N' or a list of paths of integers like [[0],[1],[0,0]]");
    if (opts.draft === undefined) fail('tree needs a draft');
  }
  if (opts.lookup !== undefined && typeof opts.lookup !== 'boolean') {
    const l = checkObject('lookup', opts.lookup) as { corpus?: unknown; maxNodes?: number; when?: unknown };
    checkInteger('lookup.maxNodes', l.maxNodes, 2, 64);
    if (l.when !== undefined && l.when !== 'auto' && l.when !== 'always') fail("lookup.when must be 'auto' or 'always'");
    if (l.corpus !== undefined && !(l.corpus instanceof LookupCache))
      fail('lookup.corpus must be a LookupCache (model.buildLookupCache or model.loadLookupCache)');
  }
  return opts;
}

export function validateGenerateOptions(o: GenerateOptions | undefined): GenerateOptions {
  const opts = checkObject('options', o) as GenerateOptions;
  checkInteger('maxTokens', opts.maxTokens, 0, 1 << 30);
  checkNumber('temperature', opts.temperature, 0, 1e6);
  checkInteger('topK', opts.topK, 0, 1 << 30);
  checkNumber('topP', opts.topP, 0, 1, true);
  checkNumber('minP', opts.minP, 0, 0.999999);
  checkNumber('repeatPenalty', opts.repeatPenalty, 0, 1e6, true);
  checkInteger('repeatLastN', opts.repeatLastN, 0, 1 << 30);
  checkInteger('seed', opts.seed, 0, Number.MAX_SAFE_INTEGER);
  if (opts.stop !== undefined && (!Array.isArray(opts.stop) || opts.stop.some((s) => typeof s !== 'string')))
    fail('stop must be an array of strings');
  if (opts.stopOnEos !== undefined && typeof opts.stopOnEos !== 'boolean') fail('stopOnEos must be a boolean');
  if (opts.append !== undefined && typeof opts.append !== 'boolean') fail('append must be a boolean');
  if (opts.special !== undefined && typeof opts.special !== 'boolean') fail('special must be a boolean');
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) fail('signal must be an AbortSignal');
  return opts;
}
