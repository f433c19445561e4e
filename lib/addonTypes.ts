// The native surface of the addon, typed in one place (native/addon/addon.cpp registers it).
// Nothing else in lib/ touches the untyped module.

export interface NativeModelInfo {
  architecture: string;
  name: string;
  format: 'gguf' | 'llama2c' | 'hf';
  path: string;
  embeddingLength: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headSize: number;
  feedForwardLength: number;
  vocabSize: number;
  contextLength: number;
  rmsEps: number;
  ropeTheta: number;
  ropeLayout: 'interleaved' | 'half-split';
  tiedOutput: boolean;
  /** The type of the first layer's query matrix (see tensorTypes for a mixed file). */
  dtype: string;
  /** Weight matrices per type, e.g. { Q4_K: 12, Q6_K: 3 } for a Q4_K_M file. */
  tensorTypes: Record<string, number>;
  weightBytes: number;
  mappedBytes: number;
  ownedBytes: number;
  /** Bytes of weight copies in a faster layout for the CPU kernels (Q8_0 on AVX2), made at load. */
  repackedBytes: number;
  threads: number;
  backend: string;
  kernels: string;
  tokenizer: {
    /** 'llama' (SentencePiece BPE) or 'gpt2' (byte-level BPE). */
    model: string;
    /** Byte-level pre-tokenizer ('llama-bpe', 'qwen2', 'gpt-2', 'smollm'), '' for SentencePiece. */
    pre: string;
    vocabSize: number;
    /** Special token ids, -1 when the vocabulary has none. */
    bos: number;
    eos: number;
    eot: number;
    eom: number;
    /** Their texts ('' when absent), e.g. '<|begin_of_text|>', '<|eot_id|>'. */
    bosText: string;
    eosText: string;
    eotText: string;
    /** Every id that ends generation (eos, eot, eom and end-of-turn control tokens). */
    eogTokens: number[];
    addBos: boolean;
    addSpacePrefix: boolean;
    /** The model's Jinja chat template (GGUF tokenizer.chat_template / tokenizer_config.json), '' if none. */
    chatTemplate: string;
  };
}

/** Generation options; absent ones take the native defaults (GenerateRequest, SamplingParams). */
export interface NativeGenerateRequest {
  text: string;
  /** A prompt as token ids, used as given (no BOS added), instead of text. */
  tokens?: Int32Array;
  append?: boolean;
  special?: boolean;
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  repeatLastN?: number;
  seed?: number;
  stop?: string[];
  stopOnEos?: boolean;
  /** The caller's AbortSignal had already fired. */
  aborted: boolean;
}

export interface NativeGenerateResult {
  text: string;
  promptTokens: number[];
  tokens: number[];
  stopReason: 'eos' | 'maxTokens' | 'stop' | 'abort' | 'contextFull';
  reusedTokens: number;
  evaluatedPromptTokens: number;
  msPrompt: number;
  msGenerate: number;
  msTotal: number;
  speculative: boolean;
  steps?: number;
  plainSteps?: number;
  speculativeTokens?: number;
  acceptedByDepth?: number[];
  msDraft?: number;
  msVerify?: number;
  stepsByTree?: Record<string, number>;
  acceptedBySource?: { prompt: number; session: number; corpus: number; draft?: number };
}

export interface NativeDraft {
  info(): {
    heads: number; hiddenSize: number; vocabSize: number; width: number; headVocabSize: number; weightBytes: number;
    formatVersion: number; dtype: string;
  };
  save(path: string, dtype?: 'F32' | 'F16' | 'BF16'): Promise<void>;
  dispose(): void;
}

export interface NativeSession {
  generate(req: NativeGenerateRequest, onChunk: (text: string, tokens: number[]) => void): Promise<NativeGenerateResult>;
  evaluate(tokens: number[] | Int32Array, rows: number): Promise<{ logits: Float32Array; hidden: Float32Array }>;
  abort(): void;
  reset(): void;
  truncate(length: number): void;
  history(): Int32Array;
  stats(): { contextSize: number; busy: boolean; kvBytes: number };
  dispose(): void;
}

/** Continuous batching of a model's sessions (model.batchStats()). */
export interface BatchStats {
  /** Forward passes run for the model's sessions. */
  passes: number;
  /** Passes that held two or more sessions' rows. */
  batchedPasses: number;
  /** Sessions' forwards run (each pass counts its sessions). */
  sessionSteps: number;
  /** Rows (tokens and tree nodes) run. */
  rows: number;
  /** The most sessions one pass has held. */
  maxSessions: number;
  /** Milliseconds spent running passes; over a stretch of wall time, their share is how busy the model was. */
  passMs: number;
  /** Sessions generating now. */
  activeSessions: number;
  /** The bounds in force (loadModel's `batch`). */
  maxBatchSessions: number;
  maxBatchRows: number;
}

export interface NativeModel {
  info(): NativeModelInfo;
  batchStats(): BatchStats;
  tokenize(text: string, addBos: boolean, atStart: boolean, special: boolean): Int32Array;
  detokenize(tokens: number[] | Int32Array, previous?: number): string;
  tokenText(tokens: number[] | Int32Array): string[];
  createSession(options: {
    contextSize?: number;
    batchSize?: number;
    draft?: NativeDraft;
    tree?: string | number[][];
    verify?: 'exact' | 'lossy-test-only';
    lookup?: boolean | { corpus?: NativeLookupCache; maxNodes?: number; when?: 'auto' | 'always' };
  }): NativeSession;
  buildLookupCache(texts: string[], order: number): Promise<NativeLookupCache>;
  loadLookupCache(path: string): Promise<NativeLookupCache>;
  loadDraft(path: string, options?: { dtype?: string }): Promise<NativeDraft>;
  createDraft(options: { heads?: number; width?: number; headVocab?: number; seed?: number; dtype?: string }): Promise<NativeDraft>;
  dispose(): void;
}

export interface NativeLookupCache {
  info(): { contexts: number; order: number; vocabSize: number };
  save(path: string): Promise<void>;
  dispose(): void;
}

export interface NativeTrainProgress {
  phase: 'data' | 'train';
  step: number;
  steps: number;
  loss: number;
  ceByHead: number[];
  agreementByHead: number[];
  mse: number;
  predictionsPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface NativeBaseTrainProgress {
  phase: 'tokenizer' | 'train';
  step: number;
  steps: number;
  loss: number;
  validationLoss: number | null;
  accuracy: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface Binding {
  trainBase(
    options: Record<string, unknown>,
    threads: number,
    onProgress?: (p: NativeBaseTrainProgress) => void,
  ): { promise: Promise<number>; abort(): void };
  trainDraft(
    model: NativeModel,
    options: Record<string, unknown>,
    onProgress?: (p: NativeTrainProgress) => void,
  ): { promise: Promise<NativeDraft>; abort(): void };
  loadModel(
    path: string,
    options: {
      tokenizer?: string;
      threads?: number;
      gpu?: 'auto' | 'cuda' | 'off';
      checkTensors?: boolean;
      batchMaxSessions?: number;
      batchMaxRows?: number;
    },
  ): Promise<NativeModel>;
  /** Whether a CUDA device is usable, and why not. */
  cudaStatus(): Promise<CudaStatus>;
  readDraftMetadata(path: string): Record<string, string>;
  kernelPath(): string;
  cpuCount(): number;
  /** The addon was built with the CUDA backend. */
  hasCuda: boolean;
  version: string;
}

export interface CudaStatus {
  /** This build of the addon includes the CUDA backend (nvcc was found at install time). */
  built: boolean;
  /** A GPU the backend can run on is present (compute capability 8.0 or newer, a working driver). */
  available: boolean;
  /** Why not, when available is false. */
  reason: string;
}
