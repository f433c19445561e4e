// Special-token matching and the end-of-generation texts (see special_tokens.h).
#include "tokenizer/special_tokens.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/tokenizer.h"

namespace chimera {

namespace {

// llama.cpp's lists (llama-vocab.cpp): texts that end a turn or a generation in the chat formats of
// Llama 3, ChatML (Qwen), Phi-3, Gemma, granite and code models.
const char* const kEogTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
                                 "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
                                 "<end_of_utterance>"};
// Searched in this order for the end-of-turn token when the file names none.
const char* const kEotTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                 "<|end_of_text|>", "<EOT>", "_<EOT>", "<end_of_utterance>"};
const char* const kFimTexts[] = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>",
                                 "<|repo_name|>", "<|file_sep|>", "<fim-prefix>", "<fim-suffix>", "<fim-middle>",
                                 "<fim-pad>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>"};
// FIM markers that end a generation (padding, repository and file separators).
const char* const kFimEogTexts[] = {"<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<fim-pad>", "<fim_pad>"};

template <size_t N>
bool in_list(const char* const (&list)[N], const std::string& s) {
  for (const char* t : list) {
    if (s == t) return true;
  }
  return false;
}

}  // namespace

bool is_eog_text(const std::string& text) { return in_list(kEogTexts, text) || in_list(kFimEogTexts, text); }

bool is_fim_text(const std::string& text) { return in_list(kFimTexts, text); }

int32_t find_eot_by_text(const TokenizerData& d) {
  for (const char* t : kEotTexts) {
    for (size_t i = 0; i < d.pieces.size(); i++) {
      if (d.pieces[i] == t) return (int32_t)i;
    }
  }
  return -1;
}

SpecialTokenMatcher::SpecialTokenMatcher(const TokenizerData& d) : first_byte_(256, 0) {
  for (size_t i = 0; i < d.pieces.size(); i++) {
    const TokenType t = d.types[i];
    const bool control = t == TokenType::Control || t == TokenType::Unknown;
    if (!control && t != TokenType::UserDefined) continue;
    if (d.pieces[i].empty()) continue;
    tokens_.push_back({d.pieces[i], (int32_t)i, control});
    first_byte_[(unsigned char)d.pieces[i][0]] = 1;
  }
  // Longest first, so the first hit at a position is the longest; equal texts keep the lower id.
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
}

void SpecialTokenMatcher::split(const std::string& text, bool control, std::vector<Fragment>& out) const {
  out.clear();
  size_t start = 0;  // of the pending ordinary text
  size_t pos = 0;
  while (pos < text.size()) {
    const Entry* hit = nullptr;
    if (first_byte_.size() == 256 && first_byte_[(unsigned char)text[pos]]) {
      for (const Entry& e : tokens_) {
        if ((control || !e.control) && e.text.size() <= text.size() - pos &&
            std::memcmp(text.data() + pos, e.text.data(), e.text.size()) == 0) {
          hit = &e;
          break;
        }
      }
    }
    if (hit == nullptr) {
      pos++;
      continue;
    }
    if (pos > start) out.push_back({start, pos, -1});
    out.push_back({pos, pos + hit->text.size(), hit->id});
    pos += hit->text.size();
    start = pos;
  }
  if (text.size() > start) out.push_back({start, text.size(), -1});
}

}  // namespace chimera
