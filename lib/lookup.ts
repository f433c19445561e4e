// An n-gram cache for lookup decoding (createSession({ lookup: { corpus } })): built from texts of the
// kind the model will write, or loaded from a file saved earlier.
import type { NativeLookupCache } from './addonTypes';
import { DisposedError, InvalidArgumentError, callNative } from './errors';

export interface LookupCacheInfo {
  /** Distinct contexts (n-grams) with followers. */
  contexts: number;
  /** Longest context, in tokens. */
  order: number;
  /** The vocabulary it was built for (a model with another vocabulary refuses it). */
  vocabSize: number;
}

export class LookupCache {
  /** @internal */
  private nativeCache: NativeLookupCache | undefined;

  /** @internal use model.buildLookupCache() or model.loadLookupCache() */
  constructor(native: NativeLookupCache) {
    this.nativeCache = native;
  }

  get info(): LookupCacheInfo {
    return this.native.info();
  }

  get disposed(): boolean {
    return this.nativeCache === undefined;
  }

  /** @internal */
  get native(): NativeLookupCache {
    if (!this.nativeCache) throw new DisposedError('the lookup cache has been disposed');
    return this.nativeCache;
  }

  /** Writes the cache to a file (model.loadLookupCache reads it back). */
  async save(path: string): Promise<void> {
    if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('path must be a non-empty string');
    const native = this.native;
    await callNative(() => native.save(path));
  }

  /** Idempotent; sessions that use the cache keep it alive until they are disposed. */
  dispose(): void {
    this.nativeCache?.dispose();
    this.nativeCache = undefined;
  }
}
