// GPU availability: what loadModel(path, { gpu: 'auto' }) will choose.
import { binding } from './binding';
import { callNative } from './errors';
import type { CudaStatus } from './addonTypes';

export type { CudaStatus } from './addonTypes';

/** Whether this build has the CUDA backend and a GPU it can run on (and why not). */
export async function cudaStatus(): Promise<CudaStatus> {
  return callNative(() => binding().cudaStatus());
}
