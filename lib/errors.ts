// Typed errors of chimera-llm. Every error has a stable `.code`; native errors arrive with the same
// codes (native/common/error.h) and are turned into these classes by `fromNative`.

export type ErrorCode =
  | 'E_INVALID_ARG'
  | 'E_NOT_FOUND'
  | 'E_FORMAT'
  | 'E_UNSUPPORTED'
  | 'E_TENSOR'
  | 'E_PROMPT_TOO_LONG'
  | 'E_CONTEXT_FULL'
  | 'E_BUSY'
  | 'E_DISPOSED'
  | 'E_ABORTED'
  | 'E_OOM'
  | 'E_CUDA'
  | 'E_NUMERIC'
  | 'E_NO_BINARY'
  | 'E_QUEUE'
  | 'E_INTERNAL';

export class ChimeraError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class InvalidArgumentError extends ChimeraError {
  constructor(message: string) { super('E_INVALID_ARG', message); }
}
export class FileNotFoundError extends ChimeraError {
  constructor(message: string) { super('E_NOT_FOUND', message); }
}
/** Wrong magic, truncated or malformed file. */
export class FormatError extends ChimeraError {
  constructor(message: string) { super('E_FORMAT', message); }
}
/** An architecture, dtype or file version this library does not handle. */
export class UnsupportedError extends ChimeraError {
  constructor(message: string) { super('E_UNSUPPORTED', message); }
}
/** A tensor is missing from the file or has the wrong shape. */
export class TensorError extends ChimeraError {
  constructor(message: string) { super('E_TENSOR', message); }
}
export class PromptTooLongError extends ChimeraError {
  constructor(message: string) { super('E_PROMPT_TOO_LONG', message); }
}
/** The context filled up during generation; `result` holds what was generated until then. */
export class ContextFullError extends ChimeraError {
  result?: unknown;
  constructor(message: string, result?: unknown) {
    super('E_CONTEXT_FULL', message);
    this.result = result;
  }
}
export class BusyError extends ChimeraError {
  constructor(message: string) { super('E_BUSY', message); }
}
export class DisposedError extends ChimeraError {
  constructor(message: string) { super('E_DISPOSED', message); }
}
export class AbortError extends ChimeraError {
  constructor(message: string) { super('E_ABORTED', message); }
}
export class OutOfMemoryError extends ChimeraError {
  constructor(message: string) { super('E_OOM', message); }
}
export class CudaError extends ChimeraError {
  constructor(message: string) { super('E_CUDA', message); }
}
/** Non-finite weights (loadModel with checkTensors) or logits during generation: a corrupt model. */
export class NumericError extends ChimeraError {
  constructor(message: string) { super('E_NUMERIC', message); }
}
/** The native addon could not be found or loaded. */
export class NoBinaryError extends ChimeraError {
  constructor(message: string, cause?: unknown) { super('E_NO_BINARY', message, { cause }); }
}
/**
 * A queued job (createQueueClient) ended without a result from the model: Redis was unreachable, the
 * job was removed, or no worker finished it (every attempt died or stalled).
 */
export class QueueError extends ChimeraError {
  constructor(message: string) { super('E_QUEUE', message); }
}
export class InternalError extends ChimeraError {
  constructor(message: string) { super('E_INTERNAL', message); }
}

const byCode: Record<string, new (message: string) => ChimeraError> = {
  E_INVALID_ARG: InvalidArgumentError,
  E_NOT_FOUND: FileNotFoundError,
  E_FORMAT: FormatError,
  E_UNSUPPORTED: UnsupportedError,
  E_TENSOR: TensorError,
  E_PROMPT_TOO_LONG: PromptTooLongError,
  E_CONTEXT_FULL: ContextFullError,
  E_BUSY: BusyError,
  E_DISPOSED: DisposedError,
  E_ABORTED: AbortError,
  E_OOM: OutOfMemoryError,
  E_CUDA: CudaError,
  E_NUMERIC: NumericError,
  E_QUEUE: QueueError,
  E_INTERNAL: InternalError,
};

/** Turns an error thrown by the addon into the matching typed error (other values pass through). */
export function fromNative(err: unknown): unknown {
  if (err instanceof ChimeraError) return err;
  // Not `instanceof Error`: the addon's errors come from the main realm, which differs from the
  // caller's under vm contexts (and jest).
  if (typeof err === 'object' && err !== null) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    const Cls = typeof code === 'string' ? byCode[code] : undefined;
    if (Cls) return new Cls(String(message));
  }
  return err;
}

/** Awaits a native promise and rethrows its error as a typed error. */
export async function callNative<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fromNative(err);
  }
}

/** Calls a synchronous native function and rethrows its error as a typed error. */
export function callNativeSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}
