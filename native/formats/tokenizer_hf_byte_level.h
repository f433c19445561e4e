// The byte-level (GPT-2 style) parts of a Hugging Face tokenizer.json: which of the supported
// pre-tokenizers its pipeline is, whether it adds BOS, and refusals for pipelines we do not implement.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "common/json.h"
#include "tokenizer/tokenizer.h"

namespace chimera {

// True when the pre-tokenizer or decoder has a ByteLevel step.
bool hf_is_byte_level(const Json& root);

// Sets d.pre, d.ignore_merges, d.bos and d.add_bos from the pipeline; `id_of` maps a piece to its id
// (-1 when absent). Throws E_UNSUPPORTED naming the step it cannot reproduce.
void read_hf_byte_level_options(const Json& root, const Json& model, const std::string& path,
                                const std::function<int32_t(const std::string&)>& id_of, TokenizerData& d);

}  // namespace chimera
