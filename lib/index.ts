// chimera-llm: LLaMA-family inference for Node.js.
export { defaultDraftPath, defaultModelPath, loadModel, Model } from './model';
export type { ModelInfo } from './model';
export { Session } from './session';
export { Draft, readDraftMetadata } from './draft';
export { LookupCache } from './lookup';
export type { LookupCacheInfo } from './lookup';
export type { DraftDType, DraftInfo } from './draft';
export type { ChatOptions, ChatResult, Chunk, CompletionResult, GenerationStats } from './session';
export { ChatTemplate } from './chat';
export type { ChatMessage } from './chat';
export type { GenerateOptions, LoadModelOptions, SamplingOptions, SessionOptions } from './options';
export * from './errors';
export { trainBase, trainDraft } from './train';
export { cudaStatus } from './gpu';
export type { CudaStatus } from './gpu';
export type { BaseTrainProgress, TrainBaseOptions, TrainDraftOptions, TrainProgress } from './train';
