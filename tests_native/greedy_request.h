// A greedy generation request for the native tests: the text replaces the context, no repetition
// penalty, EOS ignored, so outputs compare token for token.
#pragma once
#include <string>

#include "generate/session.h"

namespace test {

inline chimera::GenerateRequest greedy_request(const std::string& text, int max_tokens) {
  chimera::GenerateRequest req;
  req.text = text;
  req.append = false;
  req.max_tokens = max_tokens;
  req.sampling.temperature = 0;
  req.sampling.repeat_penalty = 1.0f;
  req.stop_on_eos = false;
  return req;
}

}  // namespace test
