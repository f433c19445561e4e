// Errors of the HTTP server in OpenAI's shape: `{ error: { message, type, param, code } }` with a
// status code, and the mapping from the library's typed errors (lib/errors.ts) to those.
import { ChimeraError } from '../errors';

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 for a request that names `param` wrongly. */
export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** Any error thrown while serving a request, as the ApiError to answer with. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ChimeraError) {
    switch (err.code) {
      case 'E_INVALID_ARG':
        return badRequest(err.message);
      case 'E_PROMPT_TOO_LONG':
        return badRequest(err.message, 'prompt', 'context_length_exceeded');
      case 'E_UNSUPPORTED':
        return badRequest(err.message, null, 'unsupported');
      case 'E_DISPOSED':
        return new ApiError(503, 'the server is shutting down', 'unavailable_error', null, 'shutting_down');
      default:
        return new ApiError(500, `${err.code}: ${err.message}`, 'server_error', null, err.code);
    }
  }
  // fastify's own errors (bad JSON, wrong content type, body too large) carry a statusCode.
  const e = err as { statusCode?: unknown; message?: unknown; code?: unknown };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return new ApiError(e.statusCode, String(e.message), 'invalid_request_error', null, typeof e.code === 'string' ? e.code : null);
  return new ApiError(500, `internal error: ${(err as Error)?.message ?? String(err)}`, 'server_error');
}
