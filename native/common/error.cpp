// Names of the error codes, as JS sees them in `err.code`.
#include "common/error.h"

namespace chimera {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArg: return "E_INVALID_ARG";
    case ErrorCode::NotFound: return "E_NOT_FOUND";
    case ErrorCode::Format: return "E_FORMAT";
    case ErrorCode::Unsupported: return "E_UNSUPPORTED";
    case ErrorCode::Tensor: return "E_TENSOR";
    case ErrorCode::PromptTooLong: return "E_PROMPT_TOO_LONG";
    case ErrorCode::ContextFull: return "E_CONTEXT_FULL";
    case ErrorCode::Busy: return "E_BUSY";
    case ErrorCode::Disposed: return "E_DISPOSED";
    case ErrorCode::Aborted: return "E_ABORTED";
    case ErrorCode::OutOfMemory: return "E_OOM";
    case ErrorCode::Cuda: return "E_CUDA";
    case ErrorCode::Numeric: return "E_NUMERIC";
    case ErrorCode::Internal: return "E_INTERNAL";
  }
  return "E_INTERNAL";
}

}  // namespace chimera
