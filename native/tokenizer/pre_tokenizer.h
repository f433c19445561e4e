// The pre-tokenizers of byte-level (GPT-2 style) BPE vocabularies: the regexes that split text into
// words before BPE, chosen by name as llama.cpp chooses them from `tokenizer.ggml.pre`. Each is a hand-
// written matcher over code point classes (std::regex is far too slow and lacks \p{..}); the test
// tests_native/test_pre_tokenizer.cpp checks them against the JS regexes on a generated corpus.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/unicode_class.h"

namespace chimera {

enum class PreTokenizer {
  // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  Llama3,
  // As Llama3 with \p{N} (one digit per word).
  Qwen2,
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Gpt2,
  // Every \p{N} its own word, then Gpt2 on each stretch between them.
  SmolLM,
};

// llama.cpp's `tokenizer.ggml.pre` names: "llama-bpe"/"llama3"/"llama-v3", "qwen2", "gpt-2"/"gpt2",
// "smollm" (and aliases that share a regex). Others throw E_UNSUPPORTED naming the value.
PreTokenizer pre_tokenizer_from_name(const std::string& name);
const char* pre_tokenizer_name(PreTokenizer p);

// Splits text[0..n) into words, appending their [begin, end) byte offsets to `words`. `cps` is scratch.
// Every byte of the input belongs to exactly one word.
void pre_tokenize(PreTokenizer p, const char* text, size_t n, std::vector<CodePoint>& cps,
                  std::vector<std::pair<uint32_t, uint32_t>>& words);

}  // namespace chimera
