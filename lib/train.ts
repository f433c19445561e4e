// Native training of a Chimera draft for a loaded base model (self-distillation; see README).
import type { NativeBaseTrainProgress, NativeTrainProgress } from './addonTypes';
import { binding } from './binding';
import { Draft } from './draft';
import { AbortError, InvalidArgumentError, callNative, callNativeSync } from './errors';
import type { Model } from './model';
import { checkInteger, checkNumber, checkObject } from './options';

export interface TrainDraftOptions {
  /** Draft heads (tree depth it can fill). Default 5. */
  heads?: number;
  /** The draft's own width (default: the base's width up to 256, else an eighth of it, at least 256). */
  width?: number;
  /** Tokens the heads cover: the data's most frequent ones (default min(vocabulary, max(8192, vocabulary / 4))). */
  headVocab?: number;
  /** 'self:N' (N sequences the base generates itself; default 'self:1000') or 'file:PATH' (a text file). */
  data?: string;
  /** Optimiser steps. Default 2000. */
  steps?: number;
  /** Tokens per training sequence. Default 128. */
  seqLen?: number;
  /** Sequences per step. Default 8. */
  batch?: number;
  /** Peak learning rate (AdamW, linear warm-up then cosine decay). Default 2e-3. */
  lr?: number;
  /** Final learning rate as a fraction of lr. Default 0.1. */
  lrMinRatio?: number;
  /** Warm-up steps. Default 100. */
  warmup?: number;
  weightDecay?: number;
  /** Global gradient-norm limit. Default 1. */
  clip?: number;
  /** Weight of the hidden-state MSE term. Default 1. */
  mseWeight?: number;
  /**
   * Soft targets: train each head toward the base's whole distribution (KL at this temperature)
   * instead of its greedy choice; raises acceptance under sampling. 0 (default) = hard labels.
   */
  softTargets?: number;
  seed?: number;
  /**
   * Checkpoint file (a draft file plus `<file>.optim.safetensors`), written every checkpointEvery steps;
   * `{step}` in the name is replaced by the step, keeping one checkpoint per save.
   */
  checkpoint?: string;
  checkpointEvery?: number;
  /** Resume from a checkpoint written with the same options: the result equals an uninterrupted run. */
  resume?: string;
}

export type TrainProgress = NativeTrainProgress;

/** Trains a draft for `model`; resolves with the draft (save it with draft.save(path)). */
export async function trainDraft(
  model: Model,
  options: TrainDraftOptions = {},
  hooks: { onProgress?: (p: TrainProgress) => void; signal?: AbortSignal } = {},
): Promise<Draft> {
  const o = validateTrainDraftOptions(options);
  const native = model.nativeHandle();
  return new Draft(await runTrainingJob((report) => binding().trainDraft(native, { ...o }, report), hooks));
}

/** Checks trainDraft's options (InvalidArgumentError naming the bad one) before any work. */
export function validateTrainDraftOptions(options: TrainDraftOptions | undefined): TrainDraftOptions {
  const o = checkObject('options', options) as TrainDraftOptions;
  checkInteger('heads', o.heads, 1, 16);
  checkInteger('width', o.width, 8, 1 << 16);
  checkInteger('headVocab', o.headVocab, 1, 1 << 24);
  checkInteger('steps', o.steps, 1, 1e9);
  checkInteger('seqLen', o.seqLen, 8, 8192);
  checkInteger('batch', o.batch, 1, 4096);
  checkNumber('lr', o.lr, 0, 1, true);
  checkNumber('lrMinRatio', o.lrMinRatio, 0, 1);
  checkInteger('warmup', o.warmup, 0, 1e9);
  checkNumber('weightDecay', o.weightDecay, 0, 10);
  checkNumber('clip', o.clip, 0, 1e9, true);
  checkNumber('mseWeight', o.mseWeight, 0, 1e6);
  checkNumber('softTargets', o.softTargets, 0, 100);
  checkInteger('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('checkpointEvery', o.checkpointEvery, 1, 1e9);
  for (const k of ['data', 'checkpoint', 'resume'] as const)
    if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === '')) throw new InvalidArgumentError(`${k} must be a non-empty string`);
  if (o.data !== undefined && !/^(self:\d+|file:.+)$/.test(o.data))
    throw new InvalidArgumentError(`data must be 'self:N' or 'file:PATH', got '${o.data}'`);
  return o;
}

export interface TrainBaseOptions {
  /** UTF-8 text file to train on (the last 5% is held out for the validation loss). */
  corpus: string;
  /** The .gguf file to write (tokenizer included). */
  out: string;
  vocab?: number;
  dim?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  hidden?: number;
  seqLen?: number;
  /** Context length recorded in the file. Default 512. */
  context?: number;
  steps?: number;
  batch?: number;
  lr?: number;
  warmup?: number;
  weightDecay?: number;
  /** Output projection shares the embedding (default true). */
  tied?: boolean;
  /** Matrix dtype in the file: 'F32' (default), 'F16' or 'BF16'. */
  dtype?: 'F32' | 'F16' | 'BF16';
  seed?: number;
  name?: string;
}

export type BaseTrainProgress = NativeBaseTrainProgress;

/**
 * Trains a small LLaMA base model on a text corpus (BPE tokenizer with byte fallback, then next-token
 * training) and writes it as GGUF. Resolves with the final held-out loss (nats per token).
 */
export async function trainBase(
  options: TrainBaseOptions,
  hooks: { onProgress?: (p: BaseTrainProgress) => void; signal?: AbortSignal; threads?: number } = {},
): Promise<number> {
  const o = validateTrainBaseOptions(options, hooks.threads);
  return runTrainingJob((report) => binding().trainBase({ ...o }, hooks.threads ?? 0, report), hooks);
}

/** Checks trainBase's options (InvalidArgumentError naming the bad one) before any work. */
export function validateTrainBaseOptions(options: TrainBaseOptions, threads?: number): TrainBaseOptions {
  const o = checkObject('options', options) as unknown as TrainBaseOptions;
  for (const k of ['corpus', 'out'] as const)
    if (typeof o[k] !== 'string' || o[k] === '') throw new InvalidArgumentError(`${k} must be a non-empty path`);
  for (const k of ['vocab', 'dim', 'layers', 'heads', 'kvHeads', 'hidden', 'seqLen', 'context', 'steps', 'batch'] as const)
    checkInteger(k, o[k], 1, 1 << 24);
  checkInteger('warmup', o.warmup, 0, 1 << 30);
  checkNumber('lr', o.lr, 0, 1, true);
  checkNumber('weightDecay', o.weightDecay, 0, 10);
  checkInteger('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('threads', threads, 1, 1024);
  if (o.dtype !== undefined && !['F32', 'F16', 'BF16'].includes(o.dtype)) throw new InvalidArgumentError('dtype must be F32, F16 or BF16');
  return o;
}

// Starts a native training job with a progress callback that user errors cannot break, ties it to the
// AbortSignal, and resolves with its result.
async function runTrainingJob<P, R>(
  start: (report: (p: P) => void) => { promise: Promise<R>; abort(): void },
  hooks: { onProgress?: (p: P) => void; signal?: AbortSignal },
): Promise<R> {
  if (hooks.signal?.aborted) throw new AbortError('training was aborted');
  const job = callNativeSync(() =>
    start((p) => {
      try {
        hooks.onProgress?.(p);
      } catch {
        // a user callback must not break training
      }
    }),
  );
  const onAbort = () => job.abort();
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await callNative(() => job.promise);
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
  }
}
