// Error type of the native core. Nothing in the core exits or aborts on bad input: every check throws
// chimera::Error{code, message}, and the N-API boundary turns it into a JS Error with `.code`.
#pragma once
#include <stdexcept>
#include <string>
#include <sstream>

namespace chimera {

// The closed set of error codes; lib/errors.ts mirrors it.
enum class ErrorCode {
  InvalidArg,      // E_INVALID_ARG: an option or argument has a bad value
  NotFound,        // E_NOT_FOUND: a file does not exist or cannot be opened
  Format,          // E_FORMAT: wrong magic, truncated or malformed file
  Unsupported,     // E_UNSUPPORTED: architecture, dtype or version we do not handle
  Tensor,          // E_TENSOR: a tensor is missing or has the wrong shape
  PromptTooLong,   // E_PROMPT_TOO_LONG: the prompt does not fit the context
  ContextFull,     // E_CONTEXT_FULL: the context filled up during generation
  Busy,            // E_BUSY: the session is already generating
  Disposed,        // E_DISPOSED: the object was disposed
  Aborted,         // E_ABORTED: the operation was aborted
  OutOfMemory,     // E_OOM
  Cuda,            // E_CUDA
  Numeric,         // E_NUMERIC: non-finite weights or logits (a corrupt model or a mislabelled dtype)
  Internal,        // E_INTERNAL: a bug; please report
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Builds a message from stream pieces: throw_error(ErrorCode::Format, "tensor ", name, " is truncated").
template <typename... Args>
[[noreturn]] void throw_error(ErrorCode code, const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(code, os.str());
}

}  // namespace chimera

// Check macros: the condition is an input check, never compiled out.
#define CHIMERA_CHECK(cond, code, ...)                        \
  do {                                                        \
    if (!(cond)) ::chimera::throw_error((code), __VA_ARGS__); \
  } while (0)
