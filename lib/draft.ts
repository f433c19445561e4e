// A Chimera draft model attached to a base model (see README: drafts, trees, the lossless guarantee).
import type { NativeDraft } from './addonTypes';
import { binding } from './binding';
import { DisposedError, InvalidArgumentError, callNative, callNativeSync } from './errors';

export interface DraftInfo {
  heads: number;
  /** The base model's width and vocabulary. */
  hiddenSize: number;
  vocabSize: number;
  /** The draft's own width (its encoder layer and trigram vectors; at most hiddenSize). */
  width: number;
  /** How many vocabulary tokens the heads cover (the most frequent ones; vocabSize = all). */
  headVocabSize: number;
  weightBytes: number;
  formatVersion: number;
  /** How the draft's matrices are stored: one of DraftDType. */
  dtype: string;
}

/** The types a draft's matrices can be stored as (vectors stay F32). */
export type DraftDType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';
const DRAFT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K'];

/** @internal checks a dtype option (undefined: keep the draft as it is). */
export function checkDraftDType(dtype: unknown): DraftDType | undefined {
  if (dtype === undefined) return undefined;
  if (typeof dtype !== 'string' || !DRAFT_DTYPES.includes(dtype))
    throw new InvalidArgumentError(`dtype must be one of ${DRAFT_DTYPES.join(', ')}`);
  return dtype as DraftDType;
}

export class Draft {
  /** @internal */
  private nativeDraft: NativeDraft | undefined;
  readonly info: DraftInfo;

  /** @internal use model.loadDraft() or model.createDraft() */
  constructor(native: NativeDraft) {
    this.nativeDraft = native;
    this.info = native.info();
  }

  get disposed(): boolean {
    return this.nativeDraft === undefined;
  }

  /** @internal */
  get native(): NativeDraft {
    if (!this.nativeDraft) throw new DisposedError('the draft has been disposed');
    return this.nativeDraft;
  }

  /**
   * Writes the draft as safetensors (with metadata naming its base model). `dtype` F16 or BF16 halves
   * the file (matrices only; a draft kept for further training should stay F32).
   */
  async save(path: string, options: { dtype?: 'F32' | 'F16' | 'BF16' } = {}): Promise<void> {
    if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('path must be a non-empty string');
    const dtype = options.dtype ?? 'F32';
    if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new InvalidArgumentError('dtype must be F32, F16 or BF16');
    const native = this.native;
    await callNative(() => native.save(path, dtype));
  }

  /** Idempotent; sessions that use the draft keep it alive until they are disposed. */
  dispose(): void {
    this.nativeDraft?.dispose();
    this.nativeDraft = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}

/** The metadata of a draft file (format version, heads, shapes, base fingerprint), without a base model. */
export function readDraftMetadata(path: string): Record<string, string> {
  if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('path must be a non-empty string');
  return callNativeSync(() => binding().readDraftMetadata(path));
}
